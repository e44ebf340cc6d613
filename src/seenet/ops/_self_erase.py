"""Registration of ``seenet::self_erase`` as a PyTorch custom op with fake kernels and autograd.

The forward op returns five tensors: ``x_b`` and ``x_c`` (the inputs of branches S_B and S_C) and
the tensors saved for backward, a 1-byte sign mask of the features and the two small per-pixel
masks. No float copy of the features is kept. The backward is its own op,
``seenet::self_erase_backward``, so both run eagerly and under ``torch.compile(fullgraph=True)``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ._dispatch import backend_module

__all__ = ["self_erase_op"]


@torch.library.custom_op("seenet::self_erase", mutates_args=())
def self_erase_op(
    features: Tensor,
    attention: Tensor,
    delta_high: float,
    delta_low: float,
    delta_bg: float,
    zero_background: bool,
    rectify: bool,
    backend: str,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """``(x_b, x_c, sign, tmask, bmask)``; ``backend`` is ``"reference"`` or ``"triton"``."""
    return backend_module(backend).forward(
        features, attention, delta_high, delta_low, delta_bg, zero_background, rectify
    )


@self_erase_op.register_fake
def _(features, attention, delta_high, delta_low, delta_bg, zero_background, rectify, backend):
    n, _, h, w = attention.shape
    return (
        torch.empty_like(features),
        torch.empty_like(features),
        torch.empty_like(features, dtype=torch.bool),
        attention.new_empty((n, 1, h, w), dtype=torch.int8),
        attention.new_empty((n, 1, h, w), dtype=torch.bool),
    )


@torch.library.custom_op("seenet::self_erase_backward", mutates_args=())
def self_erase_backward_op(
    grad_b: Tensor | None,
    grad_c: Tensor | None,
    sign: Tensor,
    tmask: Tensor,
    bmask: Tensor,
    backend: str,
) -> Tensor:
    """Gradient of the features, ``(g_b * t + g_c * b) * sign``."""
    return backend_module(backend).backward(grad_b, grad_c, sign, tmask, bmask)


@self_erase_backward_op.register_fake
def _(grad_b, grad_c, sign, tmask, bmask, backend):
    ref = grad_b if grad_b is not None else grad_c
    return torch.empty_like(ref)


def _setup_context(ctx: Any, inputs: tuple, output: tuple) -> None:
    *_, backend = inputs
    _, _, sign, tmask, bmask = output
    ctx.save_for_backward(sign, tmask, bmask)
    ctx.backend = backend


def _backward(ctx: Any, grad_b, grad_c, *_unused):
    sign, tmask, bmask = ctx.saved_tensors
    if grad_b is None and grad_c is None:
        grad = None
    else:
        grad = self_erase_backward_op(grad_b, grad_c, sign, tmask, bmask, ctx.backend)
    return grad, None, None, None, None, None, None, None


self_erase_op.register_autograd(_backward, setup_context=_setup_context)
