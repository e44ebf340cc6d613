from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from seenet._io import load_state_dict_file
from seenet.cli import COMMANDS, main
from seenet.data.maps import save_maps
from tiny_voc import tiny_config

PIPELINE = ("train-attention", "attention-maps", "proxy-gt", "train-seg", "evaluate")
ENV = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")


def _recipe(voc: Path, work: Path, path: Path, **train) -> Path:
    cfg = tiny_config(voc, work)
    cfg["attention"]["train"].update(train)
    path.write_text(yaml.safe_dump(cfg))
    return path


def _seenet(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "seenet.cli", *args], env=ENV,
                          capture_output=True, text=True, timeout=timeout)


def test_help_of_every_pipeline_command(capsys):
    assert main(["--help"]) == 0
    top = capsys.readouterr().out
    for name in COMMANDS:
        assert name in top
    for name in PIPELINE:
        assert main([name, "--help"]) == 0
        text = capsys.readouterr().out
        assert f"usage: seenet {name}" in text and "key=value" in text
        assert "--print-config" in text
        assert ("--resume" in text) == name.startswith("train")


def test_usage_errors(capsys, tmp_path):
    assert main(["no-such-command"]) == 2
    assert main(["evaluate", str(tmp_path / "missing.yaml")]) == 1
    assert "missing.yaml" in capsys.readouterr().err
    assert main(["evaluate", "attention.train.lrr=1"]) == 1
    assert "did you mean 'attention.train.lr'" in capsys.readouterr().err
    assert main(["train-attention", "seed=1", "--print-config"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["seed"] == 1
    assert main(["evaluate", "--multi-scale", "--flip", "--crf", "--print-config"]) == 0
    resolved = yaml.safe_load(capsys.readouterr().out)["evaluate"]
    assert resolved["scales"] == [0.5, 0.75, 1.0, 1.25, 1.5]
    assert resolved["flip"] is True and resolved["crf"] is True


def test_the_pipeline_through_the_command_line(tiny_voc, tmp_path, capsys):
    recipe = _recipe(tiny_voc, tmp_path / "run", tmp_path / "recipe.yaml")
    outputs = {}
    for name in PIPELINE:
        done = _seenet(name, str(recipe))
        assert done.returncode == 0, f"{name}: {done.stderr[-3000:]}"
        outputs[name] = done.stdout
    run = tmp_path / "run"
    assert (run / "attention" / "model.safetensors").is_file()
    assert len(list((run / "maps").glob("*.npz"))) == 6
    assert len(list((run / "proxy_gt").glob("*.png"))) == 6
    assert (run / "segmentation" / "model.safetensors").is_file()
    metrics = json.loads((run / "evaluation" / "metrics.json").read_text())
    assert 0.0 <= metrics["miou"] <= 1.0
    assert "mIoU" in outputs["evaluate"] and "aeroplane" in outputs["evaluate"]
    assert "written: 6" in outputs["attention-maps"]
    assert main(["proxy-gt", str(recipe), "--json"]) == 0  # finished outputs are skipped
    assert json.loads(capsys.readouterr().out)["skipped"] == 6


def test_killed_training_resumes_to_the_same_weights(tiny_voc, tmp_path):
    settings = dict(iterations=14, checkpoint_every=2, lr_steps=[7])
    ref = _recipe(tiny_voc, tmp_path / "ref", tmp_path / "ref.yaml", **settings)
    done = _seenet("train-attention", str(ref))
    assert done.returncode == 0, done.stderr[-3000:]

    recipe = _recipe(tiny_voc, tmp_path / "run", tmp_path / "run.yaml", **settings)
    checkpoint = tmp_path / "run" / "attention" / "checkpoint.pt"
    proc = subprocess.Popen([sys.executable, "-m", "seenet.cli", "train-attention", str(recipe)],
                            env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        while not checkpoint.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)  # no clean shutdown: as a crash or a pre-empted job
    finally:
        proc.wait()
    assert not (tmp_path / "run" / "attention" / "model.safetensors").exists()

    done = _seenet("train-attention", str(recipe), "--resume", "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert summary["resumed_from"] is not None and 2 <= summary["resumed_from"] < 14
    expected = load_state_dict_file(tmp_path / "ref" / "attention" / "model.safetensors")
    got = load_state_dict_file(tmp_path / "run" / "attention" / "model.safetensors")
    assert expected.keys() == got.keys()
    for key in expected:
        assert (expected[key] == got[key]).all(), key
    log = (tmp_path / "run" / "attention" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["iteration"] for line in log] == list(range(1, 15))


@pytest.mark.parametrize("case", ["missing image", "corrupt image", "missing saliency map"])
def test_data_errors_name_the_file(case, tiny_voc, tmp_path, capsys):
    recipe = _recipe(tiny_voc, tmp_path / "run", tmp_path / "recipe.yaml")
    if case == "missing image":
        bad = tiny_voc / "JPEGImages" / "2007_000004.jpg"
        bad.unlink()
        # a data-loading worker raises it: the message still names the file, on one line
        args = ["train-attention", str(recipe), "data.num_workers=1",
                "attention.train.iterations=3", "attention.train.batch_size=6"]
    elif case == "corrupt image":
        bad = tiny_voc / "JPEGImages" / "2007_000001.jpg"
        bad.write_bytes(bad.read_bytes()[:200])
        args = ["train-attention", str(recipe), "attention.train.batch_size=6"]
    else:
        bad = tiny_voc / "Saliency" / "2007_000005.png"
        bad.unlink()
        maps = tmp_path / "run" / "maps"
        maps.mkdir(parents=True)
        for i in range(6):
            save_maps(maps / f"2007_{i:06d}.npz", [0], np.full((1, 40, 48), 0.5, np.float32))
        args = ["proxy-gt", str(recipe)]
    assert main(args) == 1
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if ": error: " in line]
    assert len(errors) == 1 and str(bad) in errors[0], err
    assert "Traceback" not in err
