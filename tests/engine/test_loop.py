from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from seenet._io import load_state_dict_file
from seenet.engine import TrainSettings, fit, load_checkpoint, lr_factor

_spec_path = Path(__file__).with_name("tiny_training.py")
import importlib.util  # noqa: E402

_spec = importlib.util.spec_from_file_location("seenet_tests_tiny_training", _spec_path)
tiny = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tiny)


def _settings(**kw):
    base = dict(iterations=8, batch_size=4, lr=0.01, checkpoint_every=3, log_every=1)
    base.update(kw)
    return TrainSettings(**base)


def _records(out):
    return [json.loads(line) for line in (Path(out) / "metrics.jsonl").read_text().splitlines()]


def test_schedules_follow_the_paper():
    step = TrainSettings(iterations=25000, batch_size=16, lr_steps=[15000], lr_gamma=0.1)
    assert [lr_factor(i, step) for i in (0, 14999, 15000, 24999)] == [1, 1, 0.1, 0.1]
    poly = TrainSettings(iterations=20000, batch_size=10, schedule="poly", poly_power=0.9)
    for i in (0, 1234, 19999):
        assert lr_factor(i, poly) == pytest.approx((1 - i / 20000) ** 0.9)


def test_fit_logs_lr_of_each_step_and_uses_param_groups(tmp_path):
    model = tiny.make()
    settings = _settings(schedule="step", lr_steps=[3, 6], lr_gamma=0.5)
    summary = fit(model, tiny.KeyedData(), tiny.mse, settings, tmp_path, progress=False)
    records = _records(tmp_path)
    assert [r["iteration"] for r in records] == list(range(1, 9))
    # lr logged after step i is the one the next step uses: factor(i)
    assert [r["lr"] for r in records] == pytest.approx(
        [0.01 * 0.5 ** ((i >= 3) + (i >= 6)) for i in range(1, 9)]
    )
    ckpt = load_checkpoint(tmp_path / "checkpoint.pt")
    assert ckpt["iteration"] == 8
    groups = ckpt["optimizer"]["param_groups"]
    assert [g["initial_lr"] for g in groups] == pytest.approx([0.01, 0.1])
    assert summary["final_loss"] == pytest.approx(records[-1]["loss"])
    weights = load_state_dict_file(summary["weights"])
    for k, v in model.state_dict().items():
        assert torch.equal(weights[k], v)


def test_training_reduces_the_loss(tmp_path):
    model = tiny.make()
    fit(model, tiny.KeyedData(), tiny.mse, _settings(iterations=60, lr=0.005), tmp_path,
        progress=False)
    losses = [r["loss"] for r in _records(tmp_path)]
    assert sum(losses[-10:]) < 0.5 * sum(losses[:10])


class _Crash(RuntimeError):
    pass


def test_interrupted_run_resumes_to_identical_weights(tmp_path):
    data = tiny.KeyedData()
    reference = tiny.make(dropout=0.3)  # dropout: the torch RNG state must be restored too
    fit(reference, data, tiny.mse, _settings(), tmp_path / "ref", progress=False)

    def crash_at_5(iteration, loss):
        if iteration == 5:
            raise _Crash

    interrupted = tiny.make(dropout=0.3)
    with pytest.raises(_Crash):
        fit(interrupted, data, tiny.mse, _settings(), tmp_path / "run", progress=False,
            on_iteration=crash_at_5)
    assert load_checkpoint(tmp_path / "run" / "checkpoint.pt")["iteration"] == 3
    torch.manual_seed(999)  # a fresh process would not share the RNG state
    resumed = tiny.make(dropout=0.3, seed=1)  # weights come from the checkpoint
    summary = fit(resumed, data, tiny.mse, _settings(resume=True), tmp_path / "run",
                  progress=False)
    assert summary["resumed_from"] == 3
    for k, v in reference.state_dict().items():
        assert torch.equal(resumed.state_dict()[k], v), k
    # the log has each iteration once, and the same losses as the uninterrupted run
    ref_log, run_log = _records(tmp_path / "ref"), _records(tmp_path / "run")
    assert [r["iteration"] for r in run_log] == list(range(1, 9))
    assert [r["loss"] for r in run_log] == [r["loss"] for r in ref_log]
    # resuming a finished run changes nothing
    again = tiny.make(dropout=0.3, seed=2)
    fit(again, data, tiny.mse, _settings(resume=True), tmp_path / "run", progress=False)
    for k, v in reference.state_dict().items():
        assert torch.equal(again.state_dict()[k], v)


def test_gradient_accumulation_matches_the_full_batch(tmp_path):
    data = tiny.KeyedData()
    full, accumulated = tiny.make(), tiny.make()
    fit(full, data, tiny.mse, _settings(), tmp_path / "a", progress=False)
    fit(accumulated, data, tiny.mse, _settings(accumulate=2), tmp_path / "b", progress=False)
    for k, v in full.state_dict().items():
        torch.testing.assert_close(accumulated.state_dict()[k], v, rtol=1e-5, atol=1e-6)


def _step_gradients(model, start, lrs=(0.01, 0.1)):
    """The gradient each parameter took in one plain SGD step (momentum 0, no weight decay)."""
    lr_of = [lrs[0]] * len(list(model.body.parameters())) + [lrs[1]] * 2
    return [(s - p.detach()) / lr for s, p, lr in zip(start, model.parameters(), lr_of)]


def _norm(tensors):
    return torch.linalg.vector_norm(torch.cat([t.flatten() for t in tensors]))


@pytest.mark.parametrize("amp", [False, True])
def test_clip_grad_norm_rescales_the_step_to_the_norm(tmp_path, amp):
    data = tiny.KeyedData()
    one_step = dict(iterations=1, momentum=0.0, weight_decay=0.0, amp=amp)
    free = tiny.make()
    start = [p.detach().clone() for p in free.parameters()]
    fit(free, data, tiny.mse, _settings(**one_step), tmp_path / "a", progress=False)
    g_free = _step_gradients(free, start)
    cap = float(_norm(g_free)) / 4  # well below the gradient's norm: clipping is active
    clipped = tiny.make()
    fit(clipped, data, tiny.mse, _settings(clip_grad_norm=cap, **one_step), tmp_path / "b",
        progress=False)
    g_clip = _step_gradients(clipped, start)
    assert float(_norm(g_clip)) == pytest.approx(cap, rel=1e-3)
    for a, b in zip(g_free, g_clip):  # the same direction, a quarter of the length
        torch.testing.assert_close(b, a / 4, rtol=1e-3, atol=1e-4 * cap)
    # a cap above the norm changes nothing
    loose = tiny.make()
    fit(loose, data, tiny.mse, _settings(clip_grad_norm=cap * 8, **one_step), tmp_path / "c",
        progress=False)
    for a, b in zip(free.parameters(), loose.parameters()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("bad", [0, -1.0, "1"])
def test_clip_grad_norm_must_be_positive(bad):
    with pytest.raises(ValueError, match="clip_grad_norm"):
        _settings(clip_grad_norm=bad)


def test_workers_do_not_change_the_result(tmp_path):
    data = tiny.KeyedData()
    a, b = tiny.make(), tiny.make()
    fit(a, data, tiny.mse, _settings(iterations=3), tmp_path / "a", progress=False)
    fit(b, data, tiny.mse, _settings(iterations=3, num_workers=2), tmp_path / "b",
        progress=False)
    for k, v in a.state_dict().items():
        assert torch.equal(b.state_dict()[k], v)


def test_amp_on_cpu_trains(tmp_path):
    model = tiny.make()
    summary = fit(model, tiny.KeyedData(), tiny.mse, _settings(iterations=3, amp=True), tmp_path,
                  progress=False)
    assert summary["final_loss"] == summary["final_loss"]  # finite, not NaN


def test_nan_loss_is_an_error_naming_the_iteration(tmp_path):
    def nan_loss(model, batch):
        return tiny.mse(model, batch) * float("nan")

    with pytest.raises(FloatingPointError, match="iteration 1"):
        fit(tiny.make(), tiny.KeyedData(), nan_loss, _settings(), tmp_path, progress=False)


def test_corrupt_checkpoint_names_the_file(tmp_path):
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="checkpoint.pt"):
        fit(tiny.make(), tiny.KeyedData(), tiny.mse, _settings(resume=True), tmp_path,
            progress=False)


def test_two_processes_train_in_step(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(Path(__file__).parents[2] / "src"))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(_spec_path), str(tmp_path)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    rank0 = load_state_dict_file(tmp_path / "rank0.safetensors")
    rank1 = load_state_dict_file(tmp_path / "rank1.safetensors")
    for k in rank0:
        assert torch.equal(rank0[k], rank1[k]), k
    # the two processes split each global batch: same result as one process with the whole batch
    single = tiny.make()
    settings = TrainSettings(iterations=6, batch_size=4, lr=0.01, checkpoint_every=3, log_every=2)
    fit(single, tiny.KeyedData(), tiny.mse, settings, tmp_path / "single", progress=False)
    for k, v in single.state_dict().items():
        torch.testing.assert_close(rank0[k], v, rtol=1e-5, atol=1e-6)
    assert load_checkpoint(tmp_path / "checkpoint.pt")["world_size"] == 2
