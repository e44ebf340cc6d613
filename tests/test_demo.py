from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from seenet.data.maps import save_maps
from seenet.data.synthetic import make_synthetic_voc
from seenet.data.voc import save_label
from seenet.demo import THRESHOLDS, attention_miou, background_miou, label_miou, run_demo

ENV = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")


def _seenet(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "seenet.cli", *args],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# ----------------------------------------------------------------------------- scoring


def _literal_miou(preds, targets, num_classes=21):
    """Mean IoU over classes with a non-empty union, with plain loops."""
    inter = np.zeros(num_classes)
    union = np.zeros(num_classes)
    for pred, target in zip(preds, targets):
        for c in range(num_classes):
            inter[c] += np.logical_and(pred == c, target == c).sum()
            union[c] += np.logical_or(pred == c, target == c).sum()
    return float(np.mean(inter[union > 0] / union[union > 0]))


@pytest.fixture(scope="module")
def small_tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("tree")
    make_synthetic_voc(root, num_train=3, num_val=2, size=32, seed=4)
    return root


def test_attention_miou_matches_a_literal_sweep(small_tree, tmp_path):
    ids = small_tree.joinpath("ImageSets/Segmentation/train_aug.txt").read_text().split()
    rng = np.random.default_rng(0)
    stored, targets = [], []
    for image_id in ids:
        target = np.asarray(Image.open(small_tree / "SegmentationClassAug" / f"{image_id}.png"))
        classes = np.array(sorted({0, 6} | {int(c) - 1 for c in np.unique(target) if c}))
        maps = rng.random((len(classes), 32, 32)).astype(np.float32)
        save_maps(tmp_path / f"{image_id}.npz", classes, maps)
        stored.append((classes, np.round(maps * 255) / 255))
        targets.append(target)
    result = attention_miou(tmp_path, small_tree)
    assert set(result["curve"]) == set(THRESHOLDS)
    for t in (0.05, 0.5, 0.95):
        preds = []
        for classes, maps in stored:
            pred = np.zeros((32, 32), np.int64)
            for i in range(32):
                for j in range(32):
                    k = int(np.argmax(maps[:, i, j]))
                    if maps[k, i, j] >= t - 1e-6:
                        pred[i, j] = classes[k] + 1
            preds.append(pred)
        assert result["curve"][t] == pytest.approx(_literal_miou(preds, targets), abs=1e-6)
    assert result["miou"] == max(result["curve"].values())
    assert result["curve"][result["threshold"]] == result["miou"]
    # coverages at the best t: object and background pixels marked as any class
    t = result["threshold"]
    marked = [np.max(maps, 0) >= t - 1e-6 for _, maps in stored]
    obj = sum(int((m & (tg > 0)).sum()) for m, tg in zip(marked, targets))
    bg = sum(int((m & (tg == 0)).sum()) for m, tg in zip(marked, targets))
    n_obj = sum(int((tg > 0).sum()) for tg in targets)
    n_bg = sum(int((tg == 0).sum()) for tg in targets)
    assert result["object_coverage"] == pytest.approx(obj / n_obj)
    assert result["background_coverage"] == pytest.approx(bg / n_bg)


def test_label_miou_and_background_floor(small_tree, tmp_path):
    ids = small_tree.joinpath("ImageSets/Segmentation/train_aug.txt").read_text().split()
    folder = small_tree / "SegmentationClassAug"
    targets = [np.asarray(Image.open(folder / f"{i}.png")) for i in ids]
    for image_id, target in zip(ids, targets):
        save_label(tmp_path / f"{image_id}.png", target)
    assert label_miou(tmp_path, small_tree) == pytest.approx(1.0)
    zeros = [np.zeros_like(t) for t in targets]
    assert background_miou(small_tree) == pytest.approx(_literal_miou(zeros, targets))
    # ignore (255) in a label file counts as background
    for image_id, target in zip(ids, targets):
        save_label(tmp_path / f"{image_id}.png", np.where(target > 0, 255, 0).astype(np.uint8))
    assert label_miou(tmp_path, small_tree) == pytest.approx(background_miou(small_tree))


def test_refuses_a_foreign_non_empty_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not empty"):
        run_demo(tmp_path, "tiny")
    assert (tmp_path / "notes.txt").read_text() == "keep me"
    with pytest.raises(ValueError, match="preset"):
        run_demo(tmp_path / "new", "huge")


# ----------------------------------------------------------------------------- command line


def test_make_synthetic_command(tmp_path):
    out = tmp_path / "voc"
    result = _seenet("make-synthetic", "--out", str(out), "--num-train", "3", "--num-val", "2",
                     "--size", "40", "--quiet")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "3 training and 2 validation images" in result.stdout
    assert len(list((out / "JPEGImages").glob("*.jpg"))) == 5
    assert json.loads((out / "synthetic.json").read_text())["size"] == 40
    bad = _seenet("make-synthetic", "--out", str(tmp_path / "x"), "--num-train", "0")
    assert bad.returncode == 1 and "num_train" in bad.stderr


def test_demo_command_end_to_end(tmp_path):
    out = tmp_path / "demo"
    result = _seenet("demo", "--out", str(out), "--preset", "tiny", "--threads", "1")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "[demo 10/10" in result.stderr  # progress lines
    assert "report:" in result.stdout

    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {"attention", "proxy_gt", "segmentation", "no_context"}
    assert set(metrics["attention"]) == set(metrics["proxy_gt"]) == {"cam", "seenet"}
    for mode in ("cam", "seenet"):
        assert set(metrics["attention"][mode]) == {"miou", "threshold"}
        assert metrics["attention"][mode]["threshold"] in THRESHOLDS
        assert set(metrics["proxy_gt"][mode]) == {"miou"}
    assert set(metrics["segmentation"]) == {"miou"}
    ablation = metrics["no_context"]
    assert ablation["context_prob"] == 0.0 and set(ablation["attention"]) == {"cam", "seenet"}

    # every score beats predicting background everywhere on the same images
    data = out / "data"
    floor_train = background_miou(data, "train_aug")
    floor_val = background_miou(data, "val", "SegmentationClass")
    for mode in ("cam", "seenet"):
        assert metrics["attention"][mode]["miou"] > floor_train, (mode, metrics, floor_train)
        assert metrics["proxy_gt"][mode]["miou"] > floor_train, (mode, metrics, floor_train)
    assert metrics["segmentation"]["miou"] > floor_val, (metrics, floor_val)
    floor_ablation = background_miou(out / "data_no_context", "train_aug")
    for mode in ("cam", "seenet"):
        assert ablation["attention"][mode]["miou"] > floor_ablation, (mode, ablation)

    ids = (data / "ImageSets/Segmentation/train_aug.txt").read_text().split()
    report = (out / "report.md").read_text()
    assert "| attention mIoU" in report and "| proxy ground truth mIoU" in report
    figures = sorted((out / "figures").glob("example_*.png"))
    assert len(figures) == 2
    for fig in figures:
        assert f"]({fig.relative_to(out).as_posix()})" in report
        image = Image.open(fig)
        assert image.format == "PNG" and image.width > 5 * image.height  # six panels in a row
        assert np.asarray(image.convert("L")).std() > 10  # not blank
    assert "## Without class context" in report
    ablation_figures = sorted((out / "figures").glob("no_context_*.png"))
    assert len(ablation_figures) == 1
    assert f"]({ablation_figures[0].relative_to(out).as_posix()})" in report
    # the ablation data differ from the main data in the backgrounds only
    info = json.loads((out / "data_no_context" / "synthetic.json").read_text())
    assert info["context_prob"] == 0.0
    for image_id in ids:
        masks = [np.asarray(Image.open(out / d / "SegmentationClassAug" / f"{image_id}.png"))
                 for d in ("data", "data_no_context")]  # fmt: skip
        assert np.array_equal(*masks)
    # the stages wrote their real outputs
    for mode in ("cam", "seenet"):
        assert len(list((out / "runs" / mode / "maps").glob("*.npz"))) == len(ids)
        assert len(list((out / "runs" / mode / "proxy_gt").glob("*.png"))) == len(ids)
    assert (out / "runs" / "seenet" / "segmentation" / "model.safetensors").is_file()
