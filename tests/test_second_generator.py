"""The second generator (examples/experiments) draws valid samples and a VOC tree via seenet."""

import importlib.util
from pathlib import Path

import numpy as np
from PIL import Image

import seenet.data.synthetic as syn

PATH = Path(__file__).parents[1] / "examples" / "experiments" / "second_generator.py"


def _module():
    spec = importlib.util.spec_from_file_location("second_generator", PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_samples_keep_the_premise():
    gen = _module()
    for seed in range(8):
        s = gen.render_sample(np.random.default_rng(seed), size=96)
        assert s.image.shape == (96, 96, 3) and s.image.dtype == np.uint8
        assert set(np.unique(s.mask).tolist()) <= {0, 1, 4, 7, 19}
        union = np.zeros_like(s.mask, bool)
        for obj in s.objects:
            assert not (obj.body & obj.part).any()
            union |= obj.body | obj.part
        assert (union == (s.mask > 0)).all()  # every object pixel is a body or a part pixel
        assert s.labels  # at least one object is visible


def test_it_writes_a_voc_tree_through_seenet(tmp_path, monkeypatch):
    def first_label(root):
        ids = (root / "ImageSets" / "Segmentation" / "train_aug.txt").read_text().split()
        assert len(ids) == 3
        return np.asarray(Image.open(root / "SegmentationClass" / f"{ids[0]}.png"))

    syn.make_synthetic_voc(tmp_path / "demo", num_train=3, num_val=2, size=64, seed=0)
    monkeypatch.setattr(syn, "render_sample", _module().render_sample)
    syn.make_synthetic_voc(tmp_path / "second", num_train=3, num_val=2, size=64, seed=0)
    second = first_label(tmp_path / "second")
    assert second.max() > 0
    assert not np.array_equal(second, first_label(tmp_path / "demo"))  # the other generator's


def test_main_passes_options_through(monkeypatch):
    import pytest
    import torch

    import seenet.ablate

    calls = {}

    def fake_run(out, **kw):
        calls.update(out=out, **kw)

    monkeypatch.setattr(seenet.ablate, "run_ablation", fake_run)
    monkeypatch.setattr(syn, "render_sample", syn.render_sample)  # undone after the test
    threads = torch.get_num_threads()
    try:
        _module().main(
            [
                "--out",
                "x",
                "--seeds",
                "10,11",
                "--modes",
                "cam,seenet",
                "--threads",
                "1",
                "--option",
                "share_bc=true",
                "--option",
                "attention_iterations=720",
                "--branches",
            ]
        )
    finally:
        torch.set_num_threads(threads)
    assert calls == {
        "out": "x",
        "modes": ["cam", "seenet"],
        "seeds": [10, 11],
        "branches": True,
        "jobs": 1,
        "attention_iterations": 720,
        "attention_options": {"share_bc": True},
    }
    with pytest.raises(SystemExit):
        _module().main(["--out", "x", "--threads", "0"])
