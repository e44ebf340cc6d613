"""The training loop shared by the attention and the segmentation networks.

:func:`fit` runs SGD with momentum over the model's ``param_groups(lr, weight_decay)`` (new layers
at 10x, as the paper's Caffe recipes), a step or poly learning-rate schedule, optional mixed
precision and gradient accumulation, DistributedDataParallel under ``torchrun``, checkpoints every N
iterations and exact resumption, a progress bar, a JSON-lines metrics log and a final summary.

Example:
    >>> import tempfile, torch
    >>> data = [{"x": torch.randn(3), "y": torch.tensor(1.0)} for _ in range(8)]
    >>> class Keyed(torch.utils.data.Dataset):
    ...     def __len__(self): return len(data)
    ...     def __getitem__(self, key): return data[key[0]]
    >>> model = torch.nn.Linear(3, 1)
    >>> loss = lambda m, b: torch.nn.functional.mse_loss(m(b["x"]).squeeze(1), b["y"])
    >>> settings = TrainSettings(iterations=4, batch_size=2, lr=0.1, checkpoint_every=2)
    >>> summary = fit(model, Keyed(), loss, settings, tempfile.mkdtemp(), progress=False)
    >>> summary["iterations"]
    4
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from .._io import atomic_write, bars_off, save_state_dict_file
from .checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from .distributed import DistInfo, all_gather_objects, all_reduce_mean, barrier, init_distributed
from .sampler import ResumableDistributedSampler
from .settings import TrainSettings, build_optimizer, lr_factor

__all__ = ["fit", "TrainSettings", "lr_factor", "build_optimizer"]

LossFn = Callable[[nn.Module, dict[str, Any]], torch.Tensor]


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {k: _to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)) and batch and isinstance(batch[0], torch.Tensor):
        return type(batch)(_to_device(v, device) for v in batch)
    return batch


def _batch_size_of(batch: Any) -> int:
    if isinstance(batch, Mapping):
        for value in batch.values():
            if isinstance(value, torch.Tensor):
                return int(value.shape[0])
    return 0


class _MetricsLog:
    """JSON-lines metrics, appended line by line; on resume, lines past the checkpoint are cut."""

    def __init__(self, path: Path, start: int, enabled: bool) -> None:
        self.path = path
        self.enabled = enabled
        if not enabled:
            return
        kept: list[str] = []
        if start > 0 and path.is_file():
            for line in path.read_text().splitlines():
                try:
                    if json.loads(line).get("iteration", 0) <= start:
                        kept.append(line)
                except json.JSONDecodeError:
                    break
        with atomic_write(path, "w") as f:
            f.write("".join(line + "\n" for line in kept))

    def write(self, record: dict[str, Any]) -> None:
        if self.enabled:
            with open(self.path, "a") as f:
                f.write(json.dumps(record) + "\n")


def _non_finite(model: nn.Module) -> list[str]:
    """Names of the parameters and buffers holding NaN or infinity (one reduction each)."""
    tensors = list(model.named_parameters()) + list(model.named_buffers())
    return [n for n, t in tensors if t.is_floating_point() and not bool(torch.isfinite(t).all())]


class _Run:
    """One training run, step by step: setup, restore, step, log, checkpoint, finish."""

    def __init__(
        self,
        model: nn.Module,
        dataset: torch.utils.data.Dataset,
        settings: TrainSettings,
        out_dir: str | os.PathLike,
        device: str | torch.device,
        collate_fn: Callable[[list[Any]], Any] | None,
        find_unused_parameters: bool,
    ) -> None:
        settings.check()
        self.settings, self.model = settings, model
        self.info: DistInfo = init_distributed(device)
        self.dev = self.info.device
        self.out = Path(out_dir)
        self.ckpt_path = self.out / "checkpoint.pt"
        self.weights_path = self.out / "model.safetensors"
        if self.info.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
        # CPU kernels are deterministic already; on GPUs ask for deterministic algorithms
        # (warning where none exists) and no cuDNN autotuning.
        self.deterministic_gpu = settings.deterministic and self.dev.type == "cuda"
        self.previous_deterministic = torch.are_deterministic_algorithms_enabled()
        if self.deterministic_gpu:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.benchmark = False
        # dropout and other in-model randomness differ per process, deterministically
        torch.manual_seed(settings.seed * 1000 + self.info.rank + 1)
        model.to(self.dev)
        if settings.channels_last:
            model.to(memory_format=torch.channels_last)
        self.optimizer = build_optimizer(model, settings)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda it: lr_factor(it, settings)
        )
        self.use_amp = bool(settings.amp)
        self.amp_dtype = torch.float16 if self.dev.type == "cuda" else torch.bfloat16
        self.scaler = torch.amp.GradScaler(
            self.dev.type, enabled=self.use_amp and self.dev.type == "cuda"
        )
        self.start = 0
        self.resumed_from: int | None = None
        self.restore()
        self.train_model: nn.Module = model
        if self.info.distributed:
            self.train_model = nn.parallel.DistributedDataParallel(
                model,
                device_ids=[self.dev.index] if self.dev.type == "cuda" else None,
                find_unused_parameters=find_unused_parameters,
            )
        sampler = ResumableDistributedSampler(
            len(dataset),  # type: ignore[arg-type]
            settings.batch_size,
            seed=settings.seed,
            rank=self.info.rank,
            world_size=self.info.world_size,
            accumulate=settings.accumulate,
            start_iteration=self.start,
        )
        loader = torch.utils.data.DataLoader(
            dataset,
            batch_sampler=sampler,
            num_workers=settings.num_workers,
            collate_fn=collate_fn,
            pin_memory=self.dev.type == "cuda",
            persistent_workers=False,
            # its own generator: creating the iterator must not draw from the global RNG
            generator=torch.Generator().manual_seed(settings.seed),
        )
        self.data = iter(loader)
        self.log_file = _MetricsLog(self.out / "metrics.jsonl", self.start, self.info.is_main)
        self.t0 = time.perf_counter()
        self.window_t0, self.window_losses, self.window_images = self.t0, [], 0
        self.images_done = 0
        self.last_logged_loss = float("nan")

    def restore(self) -> None:
        """Continue from ``checkpoint.pt`` when resuming (weights, optimiser, schedule, RNG)."""
        settings = self.settings
        if not (settings.resume and self.ckpt_path.is_file()):
            return
        state = load_checkpoint(self.ckpt_path)
        start = int(state["iteration"])
        if start > settings.iterations:
            raise ValueError(
                f"iterations ({settings.iterations}) is below the checkpoint's iteration "
                f"({start}) in {self.ckpt_path}: raise iterations to continue, or train anew "
                "in another folder"
            )
        self.model.load_state_dict(state["model"])
        bad = _non_finite(self.model)
        if bad:
            raise FloatingPointError(
                f"{self.ckpt_path} (iteration {start}) holds non-finite values in "
                f"{', '.join(bad[:3])}{' ...' if len(bad) > 3 else ''}; it cannot be resumed"
            )
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if "scaler" in state and state["scaler"]:
            self.scaler.load_state_dict(state["scaler"])
        self.start = self.resumed_from = start
        rng = state.get("rng") or []
        if len(rng) == self.info.world_size:
            set_rng_state(rng[self.info.rank])
        else:
            torch.manual_seed(settings.seed * 1000 + self.info.rank + 1 + start)

    def step(self, loss_fn: LossFn, iteration: int) -> float:
        """One optimisation step (``accumulate`` micro-batches); returns its loss."""
        settings, info = self.settings, self.info
        step_loss = torch.zeros((), device=self.dev)
        step_images = 0
        for micro in range(settings.accumulate):
            batch = _to_device(next(self.data), self.dev)
            step_images += _batch_size_of(batch)
            sync = (
                self.train_model.no_sync()
                if info.distributed and micro < settings.accumulate - 1
                else contextlib.nullcontext()
            )
            with sync:
                with torch.autocast(self.dev.type, dtype=self.amp_dtype, enabled=self.use_amp):
                    loss = loss_fn(self.train_model, batch) / settings.accumulate
                self.scaler.scale(loss).backward()
            step_loss += loss.detach().float()
        if settings.clip_grad_norm is not None:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), settings.clip_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        value = float(step_loss)
        if not math.isfinite(value):
            raise FloatingPointError(f"the loss is {value} at iteration {iteration}")
        step_images *= info.world_size
        self.images_done += step_images
        self.window_images += step_images
        self.window_losses.append(value)
        return value

    def log(self, iteration: int, bar: Any) -> None:
        """Every ``log_every`` iterations: one ``metrics.jsonl`` line and the progress bar."""
        settings = self.settings
        lr = self.optimizer.param_groups[0]["lr"]
        bar.update(1)
        if iteration % settings.log_every and iteration != settings.iterations:
            return
        mean = sum(self.window_losses) / len(self.window_losses)
        mean = float(all_reduce_mean(torch.tensor(mean, device=self.dev), self.info))
        now = time.perf_counter()
        speed = self.window_images / max(now - self.window_t0, 1e-9)
        self.last_logged_loss = mean
        self.log_file.write({"iteration": iteration, "loss": mean, "lr": lr,
                             "images_per_second": speed, "seconds": now - self.t0})
        bar.set_postfix(loss=f"{mean:.4f}", lr=f"{lr:.2e}", img_s=f"{speed:.1f}")
        self.window_t0, self.window_losses, self.window_images = now, [], 0

    def check_finite(self, iteration: int) -> None:
        """Refuse non-finite weights, naming the iteration (the last good checkpoint stays).

        Raises:
            FloatingPointError: If a parameter or buffer holds NaN or infinity.
        """
        bad = _non_finite(self.model)
        if bad:
            kept = ""
            if self.ckpt_path.is_file():
                kept = f"; {self.ckpt_path} keeps the last good state"
            raise FloatingPointError(
                f"non-finite weights after iteration {iteration} ({', '.join(bad[:3])}"
                f"{' ...' if len(bad) > 3 else ''}){kept}"
            )

    def checkpoint(self, iteration: int) -> None:
        """Every ``checkpoint_every`` iterations and at the end: a checkpoint of finite weights."""
        settings, info = self.settings, self.info
        if iteration % settings.checkpoint_every and iteration != settings.iterations:
            return
        self.check_finite(iteration)
        rngs = all_gather_objects(rng_state(), info)
        if info.is_main:
            save_checkpoint(
                self.ckpt_path,
                {
                    "iteration": iteration,
                    "model": self.model.state_dict(),
                    "optimizer": self.optimizer.state_dict(),
                    "scheduler": self.scheduler.state_dict(),
                    "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else {},
                    "rng": rngs,
                    "world_size": info.world_size,
                },
            )
        barrier(info)

    def finish(self) -> dict[str, Any]:
        """Write ``model.safetensors`` (finite weights only) and return the summary."""
        info = self.info
        self.check_finite(self.settings.iterations)
        seconds = time.perf_counter() - self.t0
        if info.is_main:
            save_state_dict_file(self.model.state_dict(), self.weights_path)
        barrier(info)
        return {
            "iterations": self.settings.iterations,
            "final_loss": self.last_logged_loss,
            "seconds": seconds,
            "images_per_second": self.images_done / seconds
            if seconds > 0 and self.images_done else 0.0,
            "weights": str(self.weights_path),
            "checkpoint": str(self.ckpt_path),
            "out_dir": str(self.out),
            "resumed_from": self.resumed_from,
            "rank": info.rank,
            "world_size": info.world_size,
        }

    def close(self) -> None:
        """Undo the global settings of :meth:`__init__` and release the data loader."""
        if self.deterministic_gpu and not self.previous_deterministic:
            torch.use_deterministic_algorithms(False)
        del self.data


def fit(
    model: nn.Module,
    dataset: torch.utils.data.Dataset,
    loss_fn: LossFn,
    settings: TrainSettings,
    out_dir: str | os.PathLike,
    *,
    device: str | torch.device = "auto",
    collate_fn: Callable[[list[Any]], Any] | None = None,
    progress: bool = True,
    desc: str = "train",
    on_iteration: Callable[[int, float], None] | None = None,
    find_unused_parameters: bool = False,
    before_step: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Train ``model`` for ``settings.iterations`` SGD steps.

    The loop: set up (optimiser, schedule, sampler), restore from ``checkpoint.pt`` when resuming,
    then per iteration a step, a log line, and a checkpoint when one is due; the weights are
    checked to be finite before every checkpoint and before ``model.safetensors`` is written.

    Args:
        model: The model, freshly built (weights are taken from the checkpoint when resuming).
        dataset: A map-style dataset indexed by ``(index, sample_seed)`` keys (see
            :mod:`seenet.engine.sampler`).
        loss_fn: ``loss_fn(model, batch) -> scalar``; ``model`` is the (possibly
            DistributedDataParallel-wrapped) model, ``batch`` the collated samples on the device.
        settings: Optimisation settings.
        out_dir: Folder for ``checkpoint.pt``, ``model.safetensors`` and ``metrics.jsonl``.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or a device.
        collate_fn: Batch collation (default: PyTorch's).
        progress: Show a progress bar (on rank 0).
        desc: Progress-bar label.
        on_iteration: Called as ``on_iteration(iteration, loss)`` after every step (after the
            checkpoint of that step was written).
        find_unused_parameters: Passed to DistributedDataParallel.
        before_step: Called as ``before_step(iteration)`` before every step (1-based), also for
            the first step after resuming: schedules that live in the model (e.g.
            :meth:`seenet.SeeNet.set_iteration`).

    Returns:
        Summary: ``iterations``, ``final_loss`` (mean over the last logging window), ``seconds``,
        ``images_per_second``, ``weights``, ``checkpoint``, ``out_dir``, ``resumed_from``,
        ``rank``, ``world_size``.

    Raises:
        FloatingPointError: If the loss or the weights become NaN or infinite (naming the
            iteration; no checkpoint or weights file with such values is written).
        ValueError: If resuming with fewer ``iterations`` than the checkpoint holds.
    """
    from tqdm.auto import tqdm

    run = _Run(model, dataset, settings, out_dir, device, collate_fn, find_unused_parameters)
    bar = tqdm(total=settings.iterations, initial=run.start, desc=desc, dynamic_ncols=True,
               disable=not (progress and run.info.is_main) or bars_off())  # fmt: skip
    model.train()
    try:
        for iteration in range(run.start + 1, settings.iterations + 1):
            if before_step is not None:
                before_step(iteration)
            loss = run.step(loss_fn, iteration)
            run.log(iteration, bar)
            run.checkpoint(iteration)
            if on_iteration is not None:
                on_iteration(iteration, loss)
    finally:
        bar.close()
        run.close()
    return run.finish()
