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
import dataclasses
import json
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch
import torch.nn as nn

from .._io import atomic_write, save_state_dict_file
from .._schema import Section, non_negative, option, positive, positive_int
from .checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from .distributed import DistInfo, all_gather_objects, all_reduce_mean, barrier, init_distributed
from .sampler import ResumableDistributedSampler

__all__ = ["TrainSettings", "fit", "lr_factor", "build_optimizer"]

LossFn = Callable[[nn.Module, dict[str, Any]], torch.Tensor]


def _check_clip(value: Any, key: str) -> None:
    if value is not None:
        positive(value, key)


def _check_momentum(value: Any, key: str) -> None:
    if not (isinstance(value, (int, float)) and 0 <= value < 1):
        raise ValueError(f"{key} must be in [0, 1), got {value!r}")


def _check_steps(value: Any, key: str) -> None:
    if any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in value):
        raise ValueError(f"{key} must be non-negative integers, got {value}")
    if list(value) != sorted(value):
        raise ValueError(f"{key} must be increasing, got {value}")


@dataclass
class TrainSettings(Section):
    """Optimisation settings of one training run: the ``train`` section of a training stage.

    ``batch_size`` is the global batch of one optimisation step: it is split over the processes
    and the ``accumulate`` micro-steps, so the same recipe gives the same optimisation on one GPU or
    eight.

    ``clip_grad_norm`` (``None``: off, the paper's setting) rescales the gradients of each step so
    that their global L2 norm is at most this value (``torch.nn.utils.clip_grad_norm_``, after
    accumulation and, with AMP, after unscaling).

    ``channels_last`` stores the model's weights in the channels-last memory format, which makes
    PyTorch's convolutions pick their faster NHWC kernels (on a 2-core CPU a SeeNet step on
    EfficientNet-Lite0 takes about 20 % less time with two threads, 35 % less with one). Results
    differ from the default layout only by the order of floating-point sums.

    Example:
        >>> TrainSettings(iterations=10, batch_size=2).merge({"lr": "1e-2"}).lr
        0.01
    """

    iterations: int = option(None, "SGD iterations", check=positive_int)
    batch_size: int = option(None, "global batch (all processes and accumulation steps)",
                             check=positive_int)
    lr: float = option(1e-3, "base learning rate (the models' param_groups scale it per group)",
                       check=positive)
    momentum: float = option(0.9, "SGD momentum, in [0, 1)", check=_check_momentum)
    weight_decay: float = option(0.0, "weight decay of the multi-dimensional weights",
                                 check=non_negative)
    schedule: str = option("step", "learning-rate schedule",
                           choices=("step", "poly", "constant"))
    lr_steps: list = option([], "iterations at which the step schedule multiplies by lr_gamma",
                            item=int, check=_check_steps)
    lr_gamma: float = option(0.1, "factor of each lr step", check=positive)
    poly_power: float = option(0.9, "power of the poly schedule", check=non_negative)
    accumulate: int = option(1, "gradient-accumulation steps per iteration", check=positive_int)
    clip_grad_norm: Optional[float] = option(
        None, "cap on the gradients' global L2 norm (null: no clipping, as the paper)",
        check=_check_clip,
    )
    amp: bool = option(False, "mixed precision (float16 on CUDA, bfloat16 on CPU)")
    channels_last: bool = option(False, "weights in the channels-last memory format (faster "
                                 "convolutions; sums in another order)")
    deterministic: bool = option(True, "deterministic algorithms on GPUs (CPU kernels are "
                                 "deterministic already)")
    checkpoint_every: int = option(1000, "iterations between checkpoints", check=positive_int)
    log_every: int = option(20, "iterations between metrics.jsonl lines", check=positive_int)
    resume: bool = option(False, "continue from the last checkpoint in the output folder")
    seed: int = option(0, "seed of the order and augmentation (the top-level seed)",
                       config=False)
    num_workers: int = option(0, "data-loading processes (data.num_workers)", config=False)
    extra: dict = option({}, "free-form settings of the caller", config=False)

    def __post_init__(self) -> None:
        if self.iterations is None or self.batch_size is None:
            raise TypeError("TrainSettings needs iterations and batch_size")
        self.check()

    def check(self, prefix: str = "") -> None:
        """Check every value (see :meth:`Section.check`) and that accumulation divides the batch.

        Raises:
            ValueError: Naming the dotted key.
        """
        super().check(prefix)
        dot = f"{prefix}." if prefix else ""
        if self.batch_size % self.accumulate:
            raise ValueError(
                f"{dot}batch_size ({self.batch_size}) must be divisible by {dot}accumulate "
                f"({self.accumulate})"
            )

    @classmethod
    def from_config(
        cls, section: Mapping[str, Any], seed: int = 0, num_workers: int = 0
    ) -> TrainSettings:
        """Build from a ``*.train`` config section (keys that are not settings are ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        items = section.items() if not isinstance(section, Section) else section.items()
        kwargs = {k: v for k, v in items if k in names}
        return cls(**{**kwargs, "seed": seed, "num_workers": num_workers})


def lr_factor(iteration: int, settings: TrainSettings) -> float:
    """Learning-rate multiplier after ``iteration`` completed steps.

    ``"step"``: ``lr_gamma`` to the number of ``lr_steps`` reached (Caffe's multistep);
    ``"poly"``: ``(1 - iteration / iterations) ** poly_power`` (DeepLab); ``"constant"``: 1.

    Example:
        >>> s = TrainSettings(iterations=25000, batch_size=16, lr_steps=[15000])
        >>> lr_factor(14999, s), lr_factor(15000, s)
        (1.0, 0.1)
        >>> s = TrainSettings(iterations=100, batch_size=1, schedule="poly")
        >>> round(lr_factor(50, s), 4)
        0.5359
    """
    if settings.schedule == "step":
        return settings.lr_gamma ** sum(iteration >= s for s in settings.lr_steps)
    if settings.schedule == "poly":
        return max(0.0, 1.0 - iteration / settings.iterations) ** settings.poly_power
    if settings.schedule == "constant":
        return 1.0
    raise ValueError(f"schedule must be 'step', 'poly' or 'constant', got {settings.schedule!r}")


def build_optimizer(model: nn.Module, settings: TrainSettings) -> torch.optim.SGD:
    """SGD with momentum over ``model.param_groups(lr, weight_decay)`` when the model has it.

    Models without ``param_groups`` train every parameter at ``lr`` with ``weight_decay``.
    """
    groups_fn = getattr(model, "param_groups", None)
    if callable(groups_fn):
        groups = list(groups_fn(settings.lr, settings.weight_decay))
    else:
        groups = [
            {
                "params": [p for p in model.parameters() if p.requires_grad],
                "lr": settings.lr,
                "weight_decay": settings.weight_decay,
            }
        ]
    return torch.optim.SGD(
        groups, lr=settings.lr, momentum=settings.momentum, weight_decay=settings.weight_decay
    )


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
) -> dict[str, Any]:
    """Train ``model`` for ``settings.iterations`` SGD steps.

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

    Returns:
        Summary: ``iterations``, ``final_loss`` (mean over the last logging window), ``seconds``,
        ``images_per_second``, ``weights``, ``checkpoint``, ``out_dir``, ``resumed_from``,
        ``rank``, ``world_size``.

    Raises:
        FloatingPointError: If the loss becomes NaN or infinite (naming the iteration).
    """
    from tqdm.auto import tqdm

    settings.check()
    info: DistInfo = init_distributed(device)
    dev = info.device
    out = Path(out_dir)
    ckpt_path = out / "checkpoint.pt"
    weights_path = out / "model.safetensors"
    if info.is_main:
        out.mkdir(parents=True, exist_ok=True)

    # CPU kernels are deterministic already; on GPUs ask for deterministic algorithms (warning
    # where none exists) and no cuDNN autotuning.
    deterministic_gpu = settings.deterministic and dev.type == "cuda"
    previous_deterministic = torch.are_deterministic_algorithms_enabled()
    if deterministic_gpu:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    # dropout and other in-model randomness differ per process, deterministically
    torch.manual_seed(settings.seed * 1000 + info.rank + 1)

    model.to(dev)
    if settings.channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(model, settings)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda it: lr_factor(it, settings)
    )
    use_amp = bool(settings.amp)
    amp_dtype = torch.float16 if dev.type == "cuda" else torch.bfloat16
    scaler = torch.amp.GradScaler(dev.type, enabled=use_amp and dev.type == "cuda")

    start = 0
    resumed_from = None
    if settings.resume and ckpt_path.is_file():
        state = load_checkpoint(ckpt_path)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if "scaler" in state and state["scaler"]:
            scaler.load_state_dict(state["scaler"])
        start = int(state["iteration"])
        resumed_from = start
        rng = state.get("rng") or []
        if len(rng) == info.world_size:
            set_rng_state(rng[info.rank])
        else:
            torch.manual_seed(settings.seed * 1000 + info.rank + 1 + start)

    train_model: nn.Module = model
    if info.distributed:
        train_model = nn.parallel.DistributedDataParallel(
            model,
            device_ids=[dev.index] if dev.type == "cuda" else None,
            find_unused_parameters=find_unused_parameters,
        )

    sampler = ResumableDistributedSampler(
        len(dataset),  # type: ignore[arg-type]
        settings.batch_size,
        seed=settings.seed,
        rank=info.rank,
        world_size=info.world_size,
        accumulate=settings.accumulate,
        start_iteration=start,
    )
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=settings.num_workers,
        collate_fn=collate_fn,
        pin_memory=dev.type == "cuda",
        persistent_workers=False,
        # its own generator: creating the iterator must not draw from the global RNG
        generator=torch.Generator().manual_seed(settings.seed),
    )
    log = _MetricsLog(out / "metrics.jsonl", start, info.is_main)

    def checkpoint(iteration: int) -> None:
        rngs = all_gather_objects(rng_state(), info)
        if info.is_main:
            save_checkpoint(
                ckpt_path,
                {
                    "iteration": iteration,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "scaler": scaler.state_dict() if scaler.is_enabled() else {},
                    "rng": rngs,
                    "world_size": info.world_size,
                },
            )
        barrier(info)

    bar = tqdm(
        total=settings.iterations,
        initial=start,
        desc=desc,
        disable=not (progress and info.is_main),
        dynamic_ncols=True,
    )
    t0 = time.perf_counter()
    window_t0, window_losses, window_images = t0, [], 0
    last_logged_loss = float("nan")
    images_done = 0
    data_iter = iter(loader)
    model.train()
    try:
        for iteration in range(start, settings.iterations):
            step_loss = torch.zeros((), device=dev)
            step_images = 0
            for micro in range(settings.accumulate):
                batch = _to_device(next(data_iter), dev)
                step_images += _batch_size_of(batch)
                sync = (
                    train_model.no_sync()
                    if info.distributed and micro < settings.accumulate - 1
                    else contextlib.nullcontext()
                )
                with sync:
                    with torch.autocast(dev.type, dtype=amp_dtype, enabled=use_amp):
                        loss = loss_fn(train_model, batch) / settings.accumulate
                    scaler.scale(loss).backward()
                step_loss += loss.detach().float()
            if settings.clip_grad_norm is not None:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), settings.clip_grad_norm)
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()
            done = iteration + 1
            loss_value = float(step_loss)
            if not math.isfinite(loss_value):
                raise FloatingPointError(f"the loss is {loss_value} at iteration {done}")
            step_images *= info.world_size
            images_done += step_images
            window_images += step_images
            window_losses.append(loss_value)
            lr = optimizer.param_groups[0]["lr"]
            bar.update(1)
            if done % settings.log_every == 0 or done == settings.iterations:
                mean_loss = float(
                    all_reduce_mean(
                        torch.tensor(sum(window_losses) / len(window_losses), device=dev), info
                    )
                )
                now = time.perf_counter()
                speed = window_images / max(now - window_t0, 1e-9)
                last_logged_loss = mean_loss
                log.write(
                    {
                        "iteration": done,
                        "loss": mean_loss,
                        "lr": lr,
                        "images_per_second": speed,
                        "seconds": now - t0,
                    }
                )
                bar.set_postfix(loss=f"{mean_loss:.4f}", lr=f"{lr:.2e}", img_s=f"{speed:.1f}")
                window_t0, window_losses, window_images = now, [], 0
            if done % settings.checkpoint_every == 0 or done == settings.iterations:
                checkpoint(done)
            if on_iteration is not None:
                on_iteration(done, loss_value)
    finally:
        bar.close()
        if deterministic_gpu and not previous_deterministic:
            torch.use_deterministic_algorithms(False)
        del data_iter

    seconds = time.perf_counter() - t0
    if info.is_main:
        save_state_dict_file(model.state_dict(), weights_path)
    barrier(info)
    return {
        "iterations": settings.iterations,
        "final_loss": last_logged_loss,
        "seconds": seconds,
        "images_per_second": images_done / seconds if seconds > 0 and images_done else 0.0,
        "weights": str(weights_path),
        "checkpoint": str(ckpt_path),
        "out_dir": str(out),
        "resumed_from": resumed_from,
        "rank": info.rank,
        "world_size": info.world_size,
    }
