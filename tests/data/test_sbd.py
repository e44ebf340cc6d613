from __future__ import annotations

import numpy as np
import pytest

from seenet.data import sbd
from seenet.data.voc import load_label, read_split

scipy_io = pytest.importorskip("scipy.io")


def _write_mat(path, seg):
    path.parent.mkdir(parents=True, exist_ok=True)
    gtcls = {"Segmentation": seg, "Boundaries": np.zeros(1), "CategoriesPresent": np.unique(seg)}
    scipy_io.savemat(str(path), {"GTcls": gtcls})


def test_read_sbd_mat_round_trip(tmp_path):
    seg = np.random.default_rng(0).integers(0, 21, (7, 9)).astype(np.uint8)
    _write_mat(tmp_path / "a.mat", seg)
    np.testing.assert_array_equal(sbd.read_sbd_mat(tmp_path / "a.mat"), seg)
    (tmp_path / "bad.mat").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="bad.mat"):
        sbd.read_sbd_mat(tmp_path / "bad.mat")
    with pytest.raises(FileNotFoundError, match="none.mat"):
        sbd.read_sbd_mat(tmp_path / "none.mat")


def test_convert_sbd_merges_with_voc_and_writes_train_aug(tiny_voc, tmp_path):
    # tiny_voc: VOC train = 000000..000005, val = 000006..000008, all with VOC masks
    release = tmp_path / "benchmark_RELEASE" / "dataset"
    sbd_seg = np.full((5, 6), 4, np.uint8)
    for name in ("2008_000001", "2008_000002", "2007_000006", "2007_000000"):
        _write_mat(release / "cls" / f"{name}.mat", sbd_seg)
    (release / "train.txt").write_text("2008_000001\n2007_000006\n")
    (release / "val.txt").write_text("2008_000002\n2007_000000\n")
    (tiny_voc / "SegmentationClassAug").rename(tmp_path / "old_aug")
    counts = sbd.convert_sbd(release.parent, tiny_voc, progress=False)
    aug = tiny_voc / "SegmentationClassAug"
    # SBD-only images converted; VOC's own masks win where both exist
    np.testing.assert_array_equal(load_label(aug / "2008_000001.png"), sbd_seg)
    voc_mask = load_label(tiny_voc / "SegmentationClass" / "2007_000000.png")
    np.testing.assert_array_equal(load_label(aug / "2007_000000.png"), voc_mask)
    assert counts["sbd"] == 2 and counts["voc"] == 9
    # train_aug = SBD train + SBD val + VOC train - VOC val
    train_aug = read_split(tiny_voc, "train_aug")
    expected = sorted({"2008_000001", "2008_000002"} | {f"2007_{i:06d}" for i in range(6)})
    assert train_aug == expected and "2007_000006" not in train_aug
    assert counts["train_aug"] == 8
    again = sbd.convert_sbd(release.parent, tiny_voc, progress=False)
    assert again["skipped"] == 11 and again["sbd"] == 0


def test_missing_scipy_names_the_extra(hide_package, tmp_path):
    hide_package("scipy")
    with pytest.raises(ImportError, match=r"seenet\[voc\]"):
        sbd.read_sbd_mat(tmp_path / "a.mat")


def test_command_line_reports_errors(tmp_path, capsys):
    assert sbd.main([str(tmp_path / "nothing"), str(tmp_path)]) == 1
    assert "cls" in capsys.readouterr().err
