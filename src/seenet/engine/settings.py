"""Optimisation settings of a training run, the learning-rate schedules and the optimiser.

:class:`TrainSettings` is the ``train`` section of the training stages' configuration: a typed
dataclass (:mod:`seenet._schema`) whose fields carry their meaning and checks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Optional

import torch
import torch.nn as nn

from .._schema import Section, non_negative, option, positive, positive_int

__all__ = ["TrainSettings", "lr_factor", "build_optimizer"]


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
