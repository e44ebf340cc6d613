"""Fault injection: a broken run never ends with exit 0, and nothing good is lost or reused stale.

Each case asserts the exit status, the message, and that what was good before is still there.
The cases that kill real processes at many points are marked ``slow``; ``make test`` runs the fast
subset and a few kill points (``pytest -m slow tests/faults`` runs them all).
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from seenet._io import atomic_write, load_state_dict_file
from seenet.cli import main
from seenet.data.maps import load_maps
from tiny_voc import make_tiny_voc, tiny_config

ENV = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")


def _recipe(tmp: Path, voc: Path, name: str = "run", **attention_train) -> Path:
    cfg = tiny_config(voc, tmp / name)
    cfg["attention"]["train"].update(attention_train)
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny VOC tree, a trained attention network and its maps (copied by each test)."""
    root = tmp_path_factory.mktemp("faults")
    voc = make_tiny_voc(root)
    recipe = _recipe(root, voc)
    assert main(["train-attention", str(recipe)]) == 0
    assert main(["attention-maps", str(recipe)]) == 0
    return root


@pytest.fixture
def run(trained, tmp_path):
    """A private copy of the trained run: ``(root, recipe)``."""
    root = tmp_path / "copy"
    shutil.copytree(trained, root)
    voc = root / "VOC2012"
    recipe = _recipe(root, voc)
    return root, recipe


def _no_temporary_files(folder: Path) -> bool:
    return not list(folder.rglob(".*.tmp"))


def _err(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return err


# --------------------------------------------------------------------------- non-finite results


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("attention.train.lr=.nan", r"attention.train.lr must be a finite number > 0, got nan"),
        ("attention.train.lr=.inf", r"attention.train.lr must be a finite number > 0, got inf"),
        ("attention.train.lr=0", r"attention.train.lr must be a finite number > 0"),
        ("attention.train.momentum=5", r"attention.train.momentum must be in \[0, 1\)"),
        ("segmentation.train.weight_decay=-1", r"segmentation.train.weight_decay must be >= 0"),
        ("proxy.ignore_index=3", r"proxy.ignore_index \(3\) clashes with a class id"),
        ("segmentation.transforms.ignore_index=300", r"must be an integer in 0..255"),
        ("attention.train.clip_grad_norm=-1", r"clip_grad_norm must be a finite number > 0"),
        ("device=gpu", r"device must be 'auto', 'cpu', 'cuda' or 'cuda:N'"),
    ],
)
def test_bad_configs_are_refused_before_anything_runs(tmp_path, capsys, override, message):
    voc = make_tiny_voc(tmp_path)
    recipe = _recipe(tmp_path, voc)
    assert main(["train-attention", str(recipe), override, "attention.train.iterations=1"]) == 1
    assert __import__("re").search(message, _err(capsys))
    assert not (tmp_path / "run").exists()


def test_weights_that_turn_non_finite_are_never_saved(tmp_path):
    """The loss stays finite but the step writes NaN weights: the run fails, naming the
    iteration, and the last good checkpoint stays."""
    from seenet.engine import TrainSettings, fit

    data = [{"x": torch.randn(3), "y": torch.tensor(1.0)} for _ in range(8)]

    class Keyed(torch.utils.data.Dataset):
        def __len__(self):
            return len(data)

        def __getitem__(self, key):
            return data[key[0]]

    model = torch.nn.Linear(3, 1)
    steps = {"n": 0}
    model.weight.register_hook(lambda g: g * math.nan if steps["n"] >= 3 else g)

    def loss(m, b):
        steps["n"] += 1
        return torch.nn.functional.mse_loss(m(b["x"]).squeeze(1), b["y"])

    settings = TrainSettings(iterations=6, batch_size=2, lr=0.1, checkpoint_every=1)
    with pytest.raises(FloatingPointError, match=r"non-finite weights after iteration 3"):
        fit(model, Keyed(), loss, settings, tmp_path, progress=False)
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert state["iteration"] == 2
    assert all(torch.isfinite(v).all() for v in state["model"].values())
    assert not (tmp_path / "model.safetensors").exists()


def test_a_non_finite_checkpoint_blocks_resume_and_says_why(run, capsys):
    root, recipe = run
    ckpt = root / "run" / "attention" / "checkpoint.pt"
    state = torch.load(ckpt, weights_only=True)
    key = next(k for k, v in state["model"].items() if v.is_floating_point())
    state["model"][key] = torch.full_like(state["model"][key], math.nan)
    torch.save(state, ckpt)
    assert main(["train-attention", str(recipe), "--resume", "attention.train.iterations=4"]) == 1
    assert f"holds non-finite values in {key}" in _err(capsys)


def test_batch_jobs_refuse_non_finite_weights(run, capsys):
    root, recipe = run
    weights = root / "run" / "attention" / "model.safetensors"
    state = load_state_dict_file(weights)
    key = next(k for k, v in state.items() if v.is_floating_point())
    state[key] = torch.full_like(state[key], math.inf)
    from seenet._io import save_state_dict_file

    save_state_dict_file(state, weights)
    before = sorted(p.name for p in (root / "run" / "maps").iterdir())
    assert main(["attention-maps", str(recipe), "--overwrite"]) == 1
    assert "holds non-finite values" in _err(capsys)
    assert sorted(p.name for p in (root / "run" / "maps").iterdir()) == before


# --------------------------------------------------------------------------- no silent overwrite


def test_a_second_training_run_needs_resume_or_overwrite(run, capsys):
    root, recipe = run
    ckpt = root / "run" / "attention" / "checkpoint.pt"
    before = ckpt.read_bytes()
    assert main(["train-attention", str(recipe)]) == 1
    err = _err(capsys)
    assert "--resume" in err and "--overwrite" in err
    assert ckpt.read_bytes() == before
    assert main(["train-attention", str(recipe), "--overwrite"]) == 0
    assert ckpt.is_file()


def test_resume_with_another_configuration_lists_the_keys_before_writing(run, capsys):
    root, recipe = run
    config = root / "run" / "attention" / "config.yaml"
    before = config.read_bytes()
    assert main(["train-attention", str(recipe), "--resume", "attention.train.lr=0.5",
                 "attention.train.iterations=4"]) == 1
    err = _err(capsys)
    assert "attention.train.lr: 0.001 -> 0.5" in err
    assert config.read_bytes() == before


def test_resume_with_fewer_iterations_is_an_error(run, capsys):
    root, recipe = run
    assert main(["train-attention", str(recipe), "--resume",
                 "attention.train.iterations=1"]) == 1
    assert "iterations (1) is below the checkpoint's iteration (2)" in _err(capsys)


def test_resuming_a_finished_run_prints_strict_json(run, capsys):
    root, recipe = run
    with pytest.warns(RuntimeWarning, match="final_loss"):
        assert main(["train-attention", str(recipe), "--resume", "--json"]) == 0
    out = capsys.readouterr().out
    summary = json.loads(out)  # strict: a bare NaN would not parse as standard JSON
    assert summary["final_loss"] is None and "NaN" not in out


# --------------------------------------------------------------------------- stale outputs


def test_maps_of_other_weights_are_not_reported_as_done(run, capsys):
    root, recipe = run
    maps = root / "run" / "maps"
    old = {p.name: load_maps(p)[1] for p in maps.glob("*.npz")}
    assert main(["train-attention", str(recipe), "--overwrite", "seed=1"]) == 0
    assert main(["attention-maps", str(recipe)]) == 1
    err = _err(capsys)
    assert "inputs.weights" in err and "--overwrite" in err
    assert main(["attention-maps", str(recipe), "--overwrite", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["written"] == 6 and summary["skipped"] == 0
    new = {p.name: load_maps(p)[1] for p in maps.glob("*.npz")}
    assert new.keys() == old.keys() and any(not np.array_equal(new[k], old[k]) for k in old)


def test_proxy_labels_of_other_maps_are_not_reused(run, capsys):
    root, recipe = run
    assert main(["proxy-gt", str(recipe)]) == 0
    assert main(["attention-maps", str(recipe), "--overwrite", "maps.flip=false"]) == 0
    assert main(["proxy-gt", str(recipe)]) == 1
    assert "inputs.maps" in _err(capsys)
    assert main(["proxy-gt", str(recipe), "--overwrite"]) == 0


def test_unchanged_rerun_skips_everything(run, capsys):
    _, recipe = run
    assert main(["attention-maps", str(recipe), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["skipped"] == 6


# --------------------------------------------------------------------------- corrupt files


def test_corrupt_checkpoint_and_weights_are_named(run, capsys):
    root, recipe = run
    ckpt = root / "run" / "attention" / "checkpoint.pt"
    ckpt.write_bytes(ckpt.read_bytes()[:1000])
    assert main(["train-attention", str(recipe), "--resume", "attention.train.iterations=4"]) == 1
    err = _err(capsys)
    assert f"cannot read checkpoint {ckpt}: the file is truncated or corrupt" in err
    weights = root / "run" / "attention" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:500])
    assert main(["attention-maps", str(recipe), "--overwrite"]) == 1
    err = _err(capsys)
    assert f"cannot read weights {weights}: not a complete safetensors file" in err
    assert "weights_only=False" not in err


def test_weights_of_another_model_name_the_keys(run, capsys):
    _, recipe = run
    assert main(["attention-maps", str(recipe), "attention.model.hidden_channels=4",
                 "--overwrite"]) == 1
    assert "does not fit the model" in _err(capsys)


# --------------------------------------------------------------------------- write failures


def test_a_full_disk_loses_nothing_written_before(run, capsys, monkeypatch):
    root, recipe = run
    maps = root / "run" / "maps"
    shutil.rmtree(maps)
    real = np.savez_compressed
    calls = {"n": 0}

    def fail_on_the_third(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(28, "No space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr(np, "savez_compressed", fail_on_the_third)
    assert main(["attention-maps", str(recipe)]) == 1
    assert "No space left on device" in _err(capsys)
    written = sorted(p.name for p in maps.glob("*.npz"))
    assert len(written) == 2 and _no_temporary_files(maps)
    for name in written:
        load_maps(maps / name)  # complete files
    monkeypatch.setattr(np, "savez_compressed", real)
    assert main(["attention-maps", str(recipe), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["skipped"] == 2 and summary["written"] == 4


# --------------------------------------------------------------------------- kills


def _kill_and_resume(recipe: Path, maps: Path, delays: list[float]) -> None:
    for delay in delays:
        proc = subprocess.Popen(
            [sys.executable, "-m", "seenet.cli", "attention-maps", str(recipe)],
            env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    done = subprocess.run([sys.executable, "-m", "seenet.cli", "attention-maps", str(recipe)],
                          env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def _kill_points(trained_run: tuple[Path, Path], count: int) -> None:
    """Kill ``attention-maps`` at ``count`` random moments, resume, compare with one clean run."""
    root, recipe = trained_run
    maps, reference = root / "run" / "maps", root / "reference"
    shutil.rmtree(maps)
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-m", "seenet.cli", "attention-maps", str(recipe)],
                   env=ENV, capture_output=True, timeout=300, check=True)
    duration = time.monotonic() - t0
    maps.rename(reference)
    rng = random.Random(0)
    _kill_and_resume(recipe, maps, [rng.uniform(0.3, 1.0) * duration for _ in range(count)])
    names = sorted(p.name for p in reference.iterdir() if p.suffix in (".npz", ".png"))
    assert sorted(p.name for p in maps.iterdir() if p.suffix in (".npz", ".png")) == names
    for name in names:
        if name.endswith(".npz"):
            (c1, m1), (c2, m2) = load_maps(maps / name), load_maps(reference / name)
            assert np.array_equal(c1, c2) and np.array_equal(m1, m2), name
        else:
            assert (maps / name).read_bytes() == (reference / name).read_bytes(), name
    assert _no_temporary_files(maps)


def test_killed_attention_maps_resume_to_the_same_files(run):
    _kill_points(run, 3)


@pytest.mark.slow
def test_killed_attention_maps_at_twenty_points(run):
    _kill_points(run, 20)


def test_killed_writes_leave_no_temporary_files(tmp_path):
    """An orphan of an interrupted atomic write is removed when the stage starts again."""
    from seenet.pipeline._manifest import remove_orphans

    (tmp_path / ".a.npz.abc123.tmp").write_bytes(b"half")
    with atomic_write(tmp_path / "b.npz") as f:
        f.write(b"whole")
    assert remove_orphans(tmp_path) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.npz"]


# --------------------------------------------------------------------------- inputs


@pytest.mark.parametrize(
    ("images", "labels", "message"),
    [
        (torch.randn(1, 3, 32, 32), torch.tensor([[2.0, 0, 0]]), "multi-hot"),
        (torch.randn(1, 3, 32, 32), torch.tensor([[-1.0, 0, 0]]), "multi-hot"),
        (torch.randn(1, 3, 32, 32), torch.tensor([[math.nan, 0, 0]]), "multi-hot"),
        (torch.randn(1, 1, 32, 32), torch.tensor([[1.0, 0, 0]]), r"\(N, 3, H, W\)"),
        (torch.randint(0, 255, (1, 3, 32, 32)), torch.tensor([[1.0, 0, 0]]), "floating-point"),
        (torch.randn(1, 3, 8, 8), torch.tensor([[1.0, 0, 0]]), "at least 16x16 pixels"),
    ],
)
def test_seenet_checks_its_inputs(images, labels, message):
    import seenet

    model = seenet.SeeNet("vgg16", num_classes=3, hidden_channels=4, num_convs=1)
    with pytest.raises(ValueError, match=message):
        model(images, labels)
    out = model(torch.randn(1, 3, 32, 32), torch.tensor([[1.0, 0, 0]]))
    with pytest.raises(ValueError, match="multi-hot"):
        model.loss(out, torch.tensor([[2.0, 0, 0]]))


def test_empty_erasing_map_is_a_value_error():
    from seenet.functional import class_agnostic_attention

    with pytest.raises(ValueError, match="non-empty spatial size"):
        class_agnostic_attention(torch.zeros(1, 2, 0, 4), torch.ones(1, 2))


def test_a_binary_config_file_is_named(tmp_path, capsys):
    path = tmp_path / "weights.yaml"
    path.write_bytes(bytes(range(256)) * 4)
    assert main(["train-attention", str(path)]) == 1
    assert f"{path}: not a text (UTF-8) YAML file" in _err(capsys)


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600)])
def test_outputs_follow_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        with atomic_write(tmp_path / "a.txt", "w") as f:
            f.write("x")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == mode
