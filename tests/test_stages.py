from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from seenet import stages
from seenet.data.maps import dense_maps, load_maps
from seenet.data.voc import labels_from_mask, load_label, read_split
from seenet.metrics import ConfusionMatrix
from seenet.proxy import proxy_ground_truth
from seenet.saliency import SaliencyFolder
from tiny_voc import make_tiny_voc, tiny_config


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    root = tmp_path_factory.mktemp("stages")
    voc = make_tiny_voc(root)
    cfg = tiny_config(voc, root / "run")
    summaries = {}
    for name in ("train_attention", "attention_maps", "proxy_gt", "train_seg", "evaluate"):
        summaries[name] = getattr(stages, name)(cfg)
    return voc, root / "run", cfg, summaries


def test_train_attention_outputs(pipeline):
    _, run, _, s = pipeline
    summary = s["train_attention"]
    assert summary["iterations"] == 2 and summary["num_images"] == 6
    out = run / "attention"
    for name in ("model.safetensors", "checkpoint.pt", "metrics.jsonl", "config.yaml",
                 "summary.json"):
        assert (out / name).is_file(), name
    records = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["lr"] for r in records] == pytest.approx([1e-4, 1e-4])  # step at iteration 1
    assert json.loads((out / "summary.json").read_text())["weights"] == summary["weights"]


def test_attention_maps_store_the_ground_truth_classes_at_image_size(pipeline):
    voc, run, _, s = pipeline
    ids = read_split(voc, "train_aug")
    assert s["attention_maps"] | {"seconds": 0} == s["attention_maps"] | {
        "total": 6, "written": 6, "skipped": 0, "seconds": 0
    }
    for image_id in ids:
        classes, maps = load_maps(run / "maps" / f"{image_id}.npz")
        gt = labels_from_mask(load_label(voc / "SegmentationClassAug" / f"{image_id}.png"))
        assert classes.tolist() == gt.nonzero()[0].tolist()
        assert maps.shape == (len(classes), 40, 48)
        assert 0.0 <= maps.min() and maps.max() <= 1.0
        for c in classes:
            assert (run / "maps" / f"{image_id}_{c}.png").is_file()
    assert len(list((run / "maps" / "overlays").glob("*.png"))) == 2


def test_batch_jobs_skip_finished_outputs(pipeline):
    _, run, cfg, _ = pipeline
    again = stages.attention_maps(cfg)
    assert (again["written"], again["skipped"]) == (0, 6)
    (run / "proxy_gt" / "2007_000003.png").unlink()
    again = stages.proxy_gt(cfg)
    assert (again["written"], again["skipped"]) == (1, 5)


def test_proxy_labels_follow_algorithm_1(pipeline):
    voc, run, _, s = pipeline
    assert s["proxy_gt"]["written"] == 6
    assert abs(sum(s["proxy_gt"]["class_pixels"].values()) - 1) < 1e-3
    saliency = SaliencyFolder(voc / "Saliency")
    for image_id in read_split(voc, "train_aug"):
        classes, maps = load_maps(run / "maps" / f"{image_id}.npz")
        attention, labels = dense_maps(classes, maps)
        expected = proxy_ground_truth(attention, saliency.load(image_id, size=(40, 48)), labels)
        written = load_label(run / "proxy_gt" / f"{image_id}.png")
        np.testing.assert_array_equal(written, expected.numpy())
        assert set(np.unique(written).tolist()) <= {0} | {c + 1 for c in classes.tolist()}
    assert len(list((run / "proxy_gt" / "overlays").glob("*.png"))) == 2


def test_segmentation_and_evaluation(pipeline):
    voc, run, _, s = pipeline
    assert (run / "segmentation" / "model.safetensors").is_file()
    summary = s["evaluate"]
    assert summary["num_images"] == 3 and len(summary["iou"]) == 21
    # the reported mIoU is the one of the written predictions against the ground truth
    cm = ConfusionMatrix(21)
    for image_id in read_split(voc, "val"):
        pred = load_label(run / "evaluation" / "predictions" / f"{image_id}.png")
        gt = load_label(voc / "SegmentationClass" / f"{image_id}.png")
        cm.update(torch.from_numpy(pred.astype(np.int64)), torch.from_numpy(gt.astype(np.int64)))
    assert summary["miou"] == pytest.approx(cm.miou())
    assert "mIoU" in summary["table"]
    saved = json.loads((run / "evaluation" / "metrics.json").read_text())
    assert saved["miou"] == pytest.approx(summary["miou"])
    assert len(list((run / "evaluation" / "overlays").glob("*.png"))) == 1


def test_missing_saliency_map_names_the_file(pipeline, tmp_path):
    voc, run, cfg, _ = pipeline
    sal = tmp_path / "sal"
    sal.mkdir()
    for p in (voc / "Saliency").glob("*.png"):
        if p.stem != "2007_000002":
            (sal / p.name).write_bytes(p.read_bytes())
    cfg = dict(cfg, data=dict(cfg["data"], saliency_dir=str(sal)),
               proxy=dict(cfg["proxy"], out_dir=str(tmp_path / "proxy"), overlays=0))
    with pytest.raises(FileNotFoundError, match="2007_000002.png"):
        stages.proxy_gt(cfg)


def test_built_in_saliency_when_no_folder(pipeline, tmp_path):
    _, _, cfg, _ = pipeline
    cfg = dict(cfg, data=dict(cfg["data"], saliency_dir=None),
               proxy=dict(cfg["proxy"], out_dir=str(tmp_path / "proxy"), overlays=0))
    assert stages.proxy_gt(cfg)["written"] == 6


def test_overlays_for_chosen_images(pipeline, tmp_path):
    _, _, cfg, _ = pipeline
    proxy = dict(cfg["proxy"], overlay_ids=["2007_000004"], out_dir=str(tmp_path / "p"))
    stages.proxy_gt(dict(cfg, proxy=proxy))
    assert [p.name for p in (tmp_path / "p" / "overlays").iterdir()] == ["2007_000004.png"]
    proxy["overlay_ids"] = [2007000004]  # an unquoted id read by YAML as a number
    with pytest.raises(ValueError, match="quote"):
        stages.proxy_gt(dict(cfg, proxy=proxy))


def test_predicted_labels_mode(pipeline, tmp_path):
    _, _, cfg, _ = pipeline
    cfg = dict(cfg, maps=dict(cfg["maps"], labels="predicted", out_dir=str(tmp_path / "m"),
                              save_png=False, overlays=0))
    assert stages.attention_maps(cfg)["written"] == 6
    classes, maps = load_maps(tmp_path / "m" / "2007_000000.npz")
    assert len(classes) >= 1 and maps.shape[1:] == (40, 48)  # at least the top-1 class


def test_clear_errors(pipeline, tmp_path):
    voc, _, cfg, _ = pipeline
    with pytest.raises(ValueError, match="data.root is required"):
        stages.train_attention({})
    with pytest.raises(FileNotFoundError, match="nowhere"):
        stages.train_attention(dict(cfg, data=dict(cfg["data"], root=str(tmp_path / "nowhere"))))
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        stages.attention_maps(dict(cfg, work_dir=str(tmp_path / "empty")))
    bad_model = dict(cfg["attention"], model=dict(cfg["attention"]["model"], wings=3))
    with pytest.raises(ValueError, match="attention.model"):
        stages.train_attention(dict(cfg, attention=bad_model))


def test_maps_of_one_branch(pipeline, tmp_path):
    voc, _, cfg, _ = pipeline
    one = dict(cfg, maps=dict(cfg["maps"], branch="b", out_dir=str(tmp_path / "b"), overlays=0,
                              save_png=False))  # fmt: skip
    assert stages.attention_maps(one)["written"] == 6
    run = json.loads((tmp_path / "b" / "run.json").read_text())
    assert run["config"]["maps"]["branch"] == "b"
    one_a = dict(one, maps=dict(one["maps"], branch="a", out_dir=str(tmp_path / "a")))
    assert stages.attention_maps(one_a)["written"] == 6
    fused_dir = Path(cfg["work_dir"]) / "maps"
    names = sorted(p.name for p in fused_dir.glob("*.npz"))
    a, b, fused = ([load_maps(d / n)[1] for n in names] for d in (tmp_path / "a", tmp_path / "b",
                                                                   fused_dir))  # fmt: skip
    # the fused maps are the maximum of the two branches' (resizing and rounding keep the order)
    assert all((x <= f).all() and (y <= f).all() for x, y, f in zip(a, b, fused))
    assert any(not np.array_equal(x, y) for x, y in zip(a, b))
    cam_model = dict(cfg["attention"]["model"], erase_mode="cam")
    with pytest.raises(ValueError, match="maps.branch"):
        stages.attention_maps(dict(one, attention=dict(cfg["attention"], model=cam_model)))


def test_multi_scale_flip_and_crf_evaluation(pipeline, tmp_path):
    pytest.importorskip("pydensecrf")
    _, _, cfg, s = pipeline
    ev = dict(cfg["evaluate"], scales=[0.5, 1.0], flip=True, crf=True, overlays=0,
              save_predictions=False, out_dir=str(tmp_path / "ev"))
    summary = stages.evaluate(dict(cfg, evaluate=ev))
    assert summary["crf"] is True and summary["scales"] == [0.5, 1.0]
    assert 0.0 <= summary["miou"] <= 1.0
    assert (tmp_path / "ev" / "metrics.json").is_file()


def test_every_recipe_builds_its_models():
    from seenet.config import load_config
    from seenet.pipeline._batch import build_model

    recipes = sorted((Path(__file__).parents[1] / "examples" / "voc" / "configs").glob("*.yaml"))
    seen = set()
    for path in recipes:
        cfg = load_config(path)
        for stage, classes in (("attention", 20), ("segmentation", 21)):
            key = json.dumps(cfg[stage]["model"], sort_keys=True)
            if key in seen:
                continue
            seen.add(key)
            with torch.device("meta"):  # shapes only: no memory, no ImageNet download
                model = build_model(cfg[stage]["model"], stage, classes, pretrained=False)
            assert callable(model.param_groups), path.name
            if stage == "attention":
                assert model.erase_mode == cfg["attention"]["model"]["erase_mode"]
    assert len(seen) == 5  # three erasing modes, two DeepLab backbones
