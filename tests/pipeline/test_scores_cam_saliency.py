"""The scoring, any-classifier and saliency stages on a tiny VOC tree."""

from __future__ import annotations

import json

import numpy as np
import pytest

from seenet import pipeline
from seenet.data.maps import load_maps, save_maps
from seenet.data.saliency import read_saliency
from seenet.data.synthetic_sod import make_synthetic_sod
from seenet.data.voc import load_label, read_split
from tiny_voc import make_tiny_voc, tiny_config


def _literal_sweep(maps_dir, voc, ids, thresholds, k=21):
    """mIoU at each threshold, one pixel at a time (VOC: classes present in truth or prediction)."""
    curve = {}
    for t in thresholds:
        tp, fp, fn = np.zeros(k), np.zeros(k), np.zeros(k)
        for image_id in ids:
            classes, maps = load_maps(maps_dir / f"{image_id}.npz")
            truth = load_label(voc / "SegmentationClass" / f"{image_id}.png")
            for y in range(truth.shape[0]):
                for x in range(truth.shape[1]):
                    gt = int(truth[y, x])
                    if gt == 255:
                        continue
                    pred = 0
                    if len(classes):
                        best = int(np.argmax(maps[:, y, x]))
                        if maps[best, y, x] >= t:
                            pred = int(classes[best]) + 1
                    if pred == gt:
                        tp[gt] += 1
                    else:
                        fp[pred] += 1
                        fn[gt] += 1
        union = tp + fp + fn
        curve[t] = float(np.mean(tp[union > 0] / union[union > 0]))
    return curve


@pytest.fixture
def voc_with_maps(tmp_path):
    voc = make_tiny_voc(tmp_path)
    rng = np.random.default_rng(0)
    maps_dir = tmp_path / "maps"
    for image_id in read_split(voc, "train_aug"):
        truth = load_label(voc / "SegmentationClass" / f"{image_id}.png")
        classes = np.unique(truth[(truth > 0) & (truth < 255)]) - 1
        maps = rng.random((len(classes), *truth.shape)).astype(np.float32)
        save_maps(maps_dir / f"{image_id}.npz", classes, maps)
    return voc, maps_dir


def test_evaluate_maps_equals_a_literal_sweep(voc_with_maps, tmp_path):
    voc, maps_dir = voc_with_maps
    thresholds = [0.2, 0.5, 0.8]
    cfg = tiny_config(voc, tmp_path / "run")
    cfg["evaluate_maps"] = {"maps_dir": str(maps_dir), "thresholds": thresholds}
    scores = pipeline.evaluate_maps(cfg)
    expected = _literal_sweep(maps_dir, voc, read_split(voc, "train"), thresholds)
    for t in thresholds:
        assert scores["curve"][f"{t:.2f}"] == pytest.approx(expected[t], abs=1e-12)
    assert scores["miou"] == pytest.approx(max(expected.values()))
    out = tmp_path / "run" / "evaluate_maps"
    assert json.loads((out / "scores.json").read_text())["threshold"] == scores["threshold"]
    assert (out / "curve.png").is_file() and (out / "run.json").is_file()
    assert scores["num_images"] == 6  # train, not train_aug, by default


def test_any_classifier_end_to_end(tmp_path):
    """classifier -> cam-maps -> evaluate-maps -> proxy-gt -> evaluate-labels."""
    voc = make_tiny_voc(tmp_path)
    cfg = tiny_config(voc, tmp_path / "run")
    cfg["attention"]["model"] = {"name": "classifier", "backbone": "resnet18",
                                 "pretrained": False}
    assert pipeline.train_attention(cfg)["iterations"] == 2
    for method in ("cam", "gradcam"):
        cfg["cam"] = {"method": method, "out_dir": str(tmp_path / method), "input_size": 32}
        summary = pipeline.cam_maps(cfg)
        assert summary["written"] == 6
        classes, maps = load_maps(tmp_path / method / "2007_000001.npz")
        assert maps.shape == (len(classes), 40, 48) and 0 <= maps.min() <= maps.max() <= 1
        cfg["evaluate_maps"] = {"maps_dir": str(tmp_path / method),
                                "out_dir": str(tmp_path / f"scores_{method}")}
        assert 0.0 <= pipeline.evaluate_maps(cfg)["miou"] <= 1.0
    cfg["proxy"] = {"maps_dir": str(tmp_path / "gradcam")}
    assert pipeline.proxy_gt(cfg)["written"] == 6
    labels = pipeline.evaluate_labels(cfg)
    assert 0.0 <= labels["miou"] <= 1.0 and 0.0 < labels["labelled_fraction"] <= 1.0


def test_cam_maps_refuse_a_seenet(tmp_path):
    voc = make_tiny_voc(tmp_path)
    cfg = tiny_config(voc, tmp_path / "run")
    pipeline.train_attention(cfg)
    with pytest.raises(ValueError, match="not a classifier"):
        pipeline.cam_maps(cfg)


@pytest.fixture
def saliency_setup(tmp_path):
    voc = make_tiny_voc(tmp_path)
    sod = tmp_path / "sod"
    make_synthetic_sod(sod, num_images=8, size=48, seed=0)
    cfg = tiny_config(voc, tmp_path / "run")
    cfg["data"]["saliency_dir"] = str(tmp_path / "run" / "saliency_maps")
    cfg["saliency"] = {
        "data": {"root": str(sod)},
        "model": {"name": "SaliencyNet", "backbone": "mobilenetv3_small_050",
                  "pretrained": False, "decoder_channels": 8},
        "transforms": {"crop_size": 32},
        "train": {"iterations": 4, "batch_size": 2, "checkpoint_every": 2, "log_every": 1},
    }
    cfg["saliency_maps"] = {"input_size": 32}
    return voc, cfg


def test_saliency_stages(saliency_setup, tmp_path):
    voc, cfg = saliency_setup
    summary = pipeline.train_saliency(cfg)
    assert summary["iterations"] == 4
    maps = pipeline.saliency_maps(cfg)
    assert maps["written"] == 6  # data.train_split
    sal = read_saliency(tmp_path / "run" / "saliency_maps" / "2007_000001.png")
    assert sal.shape == (40, 48) and 0.0 <= float(sal.min()) <= float(sal.max()) <= 1.0
    assert pipeline.saliency_maps(cfg)["skipped"] == 6
    cfg["evaluate_saliency"] = {"split": "train_aug"}
    scores = pipeline.evaluate_saliency(cfg)
    assert set(scores) >= {"mae", "max_f", "s_measure"} and 0 <= scores["mae"] <= 1
    assert scores["num_images"] == 6
    # the built-in saliency when no folder is set
    cfg["data"]["saliency_dir"] = None
    cfg["evaluate_saliency"]["out_dir"] = str(tmp_path / "ft")
    assert pipeline.evaluate_saliency(cfg)["saliency"].startswith("frequency-tuned")


def test_train_saliency_resumes_to_the_same_weights(saliency_setup, tmp_path, monkeypatch):
    from seenet._io import load_state_dict_file
    from seenet.engine import loop

    _, cfg = saliency_setup
    reference = pipeline.train_saliency(cfg)
    cfg["saliency"]["train"]["out_dir"] = str(tmp_path / "resumed")
    real_step = loop._Run.step

    def crash_at_three(self, loss_fn, iteration):
        if iteration == 3:
            raise KeyboardInterrupt  # as a kill after the checkpoint of iteration 2
        return real_step(self, loss_fn, iteration)

    monkeypatch.setattr(loop._Run, "step", crash_at_three)
    with pytest.raises(KeyboardInterrupt):
        pipeline.train_saliency(cfg)
    monkeypatch.setattr(loop._Run, "step", real_step)
    with pytest.raises(ValueError, match="--resume"):
        pipeline.train_saliency(cfg)
    cfg["saliency"]["train"]["resume"] = True
    summary = pipeline.train_saliency(cfg)
    assert summary["resumed_from"] == 2
    a = load_state_dict_file(reference["weights"])
    b = load_state_dict_file(summary["weights"])
    assert a.keys() == b.keys() and all(bool((a[k] == b[k]).all()) for k in a)


def test_saliency_maps_with_crf(saliency_setup, tmp_path):
    pytest.importorskip("pydensecrf.densecrf")
    from PIL import Image

    from seenet.crf import refine_saliency

    voc, cfg = saliency_setup
    pipeline.train_saliency(cfg)
    pipeline.saliency_maps(cfg)
    plain = tmp_path / "run" / "saliency_maps"
    # the same weights into a folder with the CRF on: each map is the refinement of the plain one
    cfg["saliency_maps"] = {"input_size": 32, "crf": True, "out_dir": str(tmp_path / "crf")}
    assert pipeline.saliency_maps(cfg)["written"] == 6
    image = np.array(Image.open(voc / "JPEGImages" / "2007_000001.jpg").convert("RGB"))
    refined = read_saliency(tmp_path / "crf" / "2007_000001.png").numpy()
    expected = refine_saliency(image, read_saliency(plain / "2007_000001.png").numpy())
    assert np.abs(refined - expected).max() <= 2 / 255  # the plain map was rounded to 8 bits
    assert json.loads((tmp_path / "crf" / "run.json").read_text())["config"]["crf"] is True
    assert "crf" not in json.loads((plain / "run.json").read_text())["config"]
    # the plain maps' folder does not take CRF maps without --overwrite
    cfg["saliency_maps"] = {"input_size": 32, "crf": True}
    with pytest.raises(ValueError, match="overwrite"):
        pipeline.saliency_maps(cfg)


def test_saliency_maps_crf_needs_pydensecrf(saliency_setup, hide_package):
    _, cfg = saliency_setup
    hide_package("pydensecrf")
    cfg["saliency_maps"] = {"input_size": 32, "crf": True}
    with pytest.raises(ImportError, match=r"seenet\[crf\]"):
        pipeline.saliency_maps(cfg)  # before the missing weights are noticed
