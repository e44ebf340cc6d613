from __future__ import annotations

import json
import os
import subprocess
import sys

import torch
import yaml

from seenet import stages
from seenet._io import save_state_dict_file
from seenet.models.deeplab import DeepLabLargeFOV
from tiny_voc import tiny_config

ENV = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")


def _torchrun(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "seenet.cli", *args]
    return subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=240)


def test_pipeline_commands_under_torchrun(tiny_voc, tmp_path):
    # (training under torchrun: tests/engine/test_loop.py::test_two_processes_train_in_step)
    cfg = tiny_config(tiny_voc, tmp_path / "run")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(cfg))
    stages.train_attention(cfg)

    # the batch job splits the images between the two processes and counts them all
    done = _torchrun("attention-maps", str(recipe), "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)  # printed once, by rank 0
    assert (summary["written"], summary["total"]) == (6, 6)
    assert len(list((tmp_path / "run" / "maps").glob("*.npz"))) == 6

    # evaluation merges the confusion matrices: same mIoU as one process
    torch.manual_seed(0)
    model = DeepLabLargeFOV(num_classes=21, backbone="mobilenetv3_small_050", hidden_channels=8)
    weights = tmp_path / "deeplab.safetensors"
    save_state_dict_file(model.state_dict(), weights)
    single = stages.evaluate(dict(cfg, evaluate={"weights": str(weights),
                                                 "out_dir": str(tmp_path / "e1")}))
    done = _torchrun("evaluate", str(recipe), f"evaluate.weights={weights}",
                     f"evaluate.out_dir={tmp_path / 'e2'}", "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    distributed = json.loads(done.stdout)
    assert distributed["num_images"] == single["num_images"] == 3
    assert abs(distributed["miou"] - single["miou"]) < 1e-12
    assert distributed["iou"] == single["iou"]
