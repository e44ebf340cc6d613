"""The demo and the ablation on the tiny preset: every stage runs and writes what it promises."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from seenet.ablate import parse_option, run_ablation
from seenet.data.maps import load_maps, save_maps
from seenet.data.synthetic import make_synthetic_voc
from seenet.data.voc import load_label, read_split, save_label
from seenet.demo import floor_miou, run_demo
from seenet.metrics import THRESHOLDS, AttentionSweep, LabelScore

ENV = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")


def _seenet(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "seenet.cli", *args], env=ENV,
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


# ----------------------------------------------------------------------------- scoring


def _previous_attention_miou(maps_dir: Path, root: Path, ids: list[str]) -> dict:
    """The scoring the demo used before seenet.metrics had it (kept as the reference)."""
    import torch

    from seenet.metrics import ConfusionMatrix

    matrices = [ConfusionMatrix(21) for _ in THRESHOLDS]
    t_col = torch.tensor(THRESHOLDS, dtype=torch.float32)[:, None, None]
    for image_id in ids:
        target = torch.from_numpy(load_label(root / "SegmentationClassAug" / f"{image_id}.png")
                                  .astype(np.int64))  # fmt: skip
        classes, maps = load_maps(maps_dir / f"{image_id}.npz")
        m = torch.from_numpy(maps)
        best, arg = m.max(0)
        labels = torch.from_numpy(classes + 1)[arg]
        preds = torch.where(best[None] >= t_col, labels[None], torch.zeros_like(labels)[None])
        for matrix, pred in zip(matrices, preds):
            matrix.update(pred, target)
    curve = {t: m.miou() for t, m in zip(THRESHOLDS, matrices)}
    best_t = max(THRESHOLDS, key=lambda t: (curve[t], -t))
    return {"miou": curve[best_t], "threshold": best_t}


def test_the_demo_scores_are_the_same_as_before(tmp_path):
    root = tmp_path / "data"
    make_synthetic_voc(root, num_train=4, num_val=2, size=32, seed=4)
    rng = np.random.default_rng(0)
    ids = read_split(root, "train_aug")
    sweep, score = AttentionSweep(21), LabelScore(21)
    for image_id in ids:
        target = load_label(root / "SegmentationClassAug" / f"{image_id}.png")
        classes = np.array(sorted({0, 6} | {int(c) - 1 for c in np.unique(target) if c}))
        save_maps(tmp_path / "maps" / f"{image_id}.npz", classes,
                  rng.random((len(classes), 32, 32)).astype(np.float32))  # fmt: skip
        c, m = load_maps(tmp_path / "maps" / f"{image_id}.npz")
        sweep.update(c, m, target)
        label = rng.integers(0, 21, (32, 32))
        label[rng.random((32, 32)) < 0.2] = 255
        save_label(tmp_path / "labels" / f"{image_id}.png", label)
        score.update(label, target)
    old = _previous_attention_miou(tmp_path / "maps", root, ids)
    new = sweep.result()
    assert new["miou"] == old["miou"] and new["threshold"] == old["threshold"]
    assert 0.0 < floor_miou(root, "val") < 0.5


def test_refuses_a_foreign_non_empty_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not empty"):
        run_demo(tmp_path, "tiny")
    assert (tmp_path / "notes.txt").read_text() == "keep me"
    with pytest.raises(ValueError, match="preset"):
        run_demo(tmp_path / "new", "huge")
    with pytest.raises(ValueError, match="unknown demo settings"):
        run_demo(tmp_path / "new", "tiny", attention_iters=3)


def test_without_pydensecrf_the_demo_names_no_crf(tmp_path, monkeypatch, hide_package):
    import argparse

    from seenet.cli import demo as demo_cli

    hide_package("pydensecrf")
    with pytest.raises(ImportError, match=r"seenet\[crf\].*--no-crf"):
        run_demo(tmp_path / "demo", "tiny")
    with pytest.raises(ImportError, match="--no-crf"):  # either CRF needs it
        run_demo(tmp_path / "demo", "tiny", saliency_crf=False)
    with pytest.raises(ImportError, match="saliency_crf=false"):
        run_ablation(tmp_path / "ablation", modes=["cam"], seeds=[0], preset="tiny")
    assert not (tmp_path / "ablation").exists()
    assert not (tmp_path / "demo").exists()  # before any work
    # --no-crf turns the setting off
    seen = {}
    monkeypatch.setattr("seenet.demo.run_demo", lambda *a, **k: seen.update(k) or 1 / 0)
    parser = argparse.ArgumentParser()
    demo_cli.add_arguments(parser)
    with pytest.raises(ZeroDivisionError):
        demo_cli.run(parser.parse_args(["--no-crf", "--preset", "tiny"]))
    assert seen["saliency_crf"] is False and seen["seg_crf"] is False


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
    result = _seenet("demo", "--out", str(out), "--preset", "tiny", "--threads", "1", "--jobs", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "[demo 6/6" in result.stderr  # progress lines
    assert "side by side (2 processes)" in result.stderr and "'seenet' (done)" in result.stderr
    assert "report:" in result.stdout and "all-background floor" in result.stdout

    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {"attention", "proxy_gt", "segmentation", "saliency"}
    assert set(metrics["attention"]) == set(metrics["proxy_gt"]) == {"cam", "seenet"}
    for mode in ("cam", "seenet"):
        assert set(metrics["attention"][mode]) == {"miou", "threshold"}
        assert metrics["attention"][mode]["threshold"] in THRESHOLDS
        assert set(metrics["proxy_gt"][mode]) == {"miou", "miou_frequency_tuned"}
        assert all(0.0 < v < 1.0 for v in metrics["proxy_gt"][mode].values())
    assert set(metrics["segmentation"]) == {"miou", "cam_miou", "floor_miou", "miou_crf",
                                            "cam_miou_crf"}  # fmt: skip
    assert "segmentation (val), DeepLab's CRF" in result.stdout
    assert metrics["segmentation"]["floor_miou"] == pytest.approx(floor_miou(out / "data", "val"))
    assert set(metrics["saliency"]) == {"trained", "frequency_tuned"}
    assert all(set(v) == {"mae", "max_f"} for v in metrics["saliency"].values())

    report = (out / "report.md").read_text()
    assert "| attention maps, best threshold t" in report and "## Saliency" in report
    assert "trained saliency network, CRF-refined |" in report
    assert "| the same, scored after DeepLab's CRF (as the paper reports) |" in report
    for mode in ("cam", "seenet"):
        crf_scores = json.loads((out / "runs" / mode / "evaluation_crf" / "run.json").read_text())
        assert crf_scores["config"]["crf"] is True
    provenance = json.loads((out / "data" / "Saliency" / "run.json").read_text())
    assert provenance["config"]["crf"] is True
    for name, panels in (("training_images", 7), ("validation_images", 4)):
        figure = out / "figures" / f"{name}.png"
        assert f"](figures/{name}.png)" in report
        image = Image.open(figure)
        assert image.width > (panels - 1) * image.height / 2  # panels in a row, 2 rows
        assert np.asarray(image.convert("L")).std() > 10  # not blank
    data = out / "data"
    ids = read_split(data, "train_aug")
    for mode in ("cam", "seenet"):
        assert len(list((out / "runs" / mode / "maps").glob("*.npz"))) == len(ids)
        assert len(list((out / "runs" / mode / "proxy_gt").glob("*.png"))) == len(ids)
        assert (out / "runs" / mode / "segmentation" / "model.safetensors").is_file()
    assert len(list((data / "Saliency").glob("*.png"))) == len(ids) + len(read_split(data, "val"))


def test_ablation_writes_its_tables_and_continues(tmp_path):
    lines = []
    result = run_ablation(tmp_path, ["cam", "seenet"], [3], "tiny", log=lines.append)
    assert [(r["mode"], r["seed"]) for r in result["runs"]] == [("cam", 3), ("seenet", 3)]
    for run in result["runs"]:
        assert {"attention", "proxy_gt", "context_share", "object_coverage",
                "background_coverage"} <= set(run)  # fmt: skip
        assert 0.0 <= run["context_share"] <= 1.0
        assert set(run["proxy_gt"]) == {"miou", "miou_frequency_tuned"}
    assert set(result["summary"]) == {"cam", "seenet"}
    assert result["summary"]["cam"]["proxy_gt_frequency_tuned_miou_mean"] == pytest.approx(
        result["runs"][0]["proxy_gt"]["miou_frequency_tuned"])
    saved = json.loads((tmp_path / "ablation.json").read_text())
    assert saved["summary"] == result["summary"]
    md = (tmp_path / "ablation.md").read_text()
    assert "| CAM |" in md and "| SeeNet (setting 3) |" in md and "curves.png" in md
    assert (tmp_path / "curves.png").is_file()
    # a second run with the same arguments reuses every finished run
    again = run_ablation(tmp_path, ["cam", "seenet"], [3], "tiny", log=lines.append)
    assert again["runs"] == result["runs"]
    # the branches of a finished ablation: scored without training again
    trained = (tmp_path / "seed3" / "seenet" / "attention" / "model.safetensors").stat().st_mtime_ns
    with_b = run_ablation(tmp_path, ["cam", "seenet"], [3], "tiny", branches=True)
    assert (tmp_path / "seed3" / "seenet" / "attention" / "model.safetensors").stat(
    ).st_mtime_ns == trained  # fmt: skip
    cam_run, seenet_run = with_b["runs"]
    assert "branches" not in cam_run and set(seenet_run["branches"]) == {"a", "b"}
    for scores in seenet_run["branches"].values():
        assert 0.0 <= scores["miou"] <= 1.0 and 0.0 <= scores["context_share"] <= 1.0
    assert seenet_run["attention"] == result["runs"][1]["attention"]  # the fused maps unchanged
    assert with_b["summary"]["seenet"]["branch_a_miou_mean"] == seenet_run["branches"]["a"]["miou"]
    assert "branch_a_miou_mean" not in with_b["summary"]["cam"]
    assert "S_B alone" in (tmp_path / "ablation.md").read_text()
    with pytest.raises(ValueError, match="other settings"):
        run_ablation(tmp_path, ["cam", "seenet"], [3], "tiny", attention_lr=0.5)


def test_ablation_options():
    assert parse_option("share_bc=true") == ("attention_options", {"share_bc": True})
    assert parse_option("seg_iterations=10") == ("seg_iterations", 10)
    with pytest.raises(ValueError, match="key=value"):
        parse_option("share_bc")


def test_ablate_command_with_two_jobs(tmp_path):
    out = tmp_path / "ablation"
    args = ("ablate", "--out", str(out), "--modes", "cam,seenet", "--seeds", "3,4", "--preset",
            "tiny", "--threads", "1", "--jobs", "2", "--branches")  # fmt: skip
    result = _seenet(*args)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "seed 4: seenet (started)" in result.stderr and "(done)" in result.stderr
    saved = json.loads((out / "ablation.json").read_text())
    assert [(r["mode"], r["seed"]) for r in saved["runs"]] == [
        ("cam", 3), ("seenet", 3), ("cam", 4), ("seenet", 4)]  # fmt: skip
    assert all(("branches" in r) == (r["mode"] == "seenet") for r in saved["runs"])
    assert "cam" in result.stdout and "seenet" in result.stdout
    bad = _seenet("ablate", "--out", str(out), "--jobs", "0")
    assert bad.returncode == 2 and "--jobs" in bad.stderr


def test_ablation_starts_every_seed_s_data_then_the_longest_runs(tmp_path, monkeypatch):
    import seenet.ablate as ablate

    seen = []

    def capture(tasks, *args, **kwargs):
        seen.extend(task.key for task in tasks)
        raise KeyboardInterrupt

    monkeypatch.setattr(ablate, "run_tasks", capture)
    with pytest.raises(KeyboardInterrupt):
        run_ablation(tmp_path, modes=["cam", "seenet", "acol"], seeds=[0, 1], preset="tiny")
    assert seen == ["data0", "data1", "seenet0", "seenet1", "acol0", "acol1", "cam0", "cam1"]
