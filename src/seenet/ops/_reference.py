"""Reference implementation of the mask-and-flip step (vectorised PyTorch).

This is the ground truth every other backend is tested against. The mask arithmetic is done in
float32 whatever the dtype of the attention map, so all backends agree bit for bit on the masks.

Per image ``n`` with erasing map ``a`` and per-image maximum ``mx``:

- no information (``info`` false) when ``a`` has a non-finite value or ``mx <= 0``;
- ternary mask ``t``: 0 where ``a >= delta_high * mx``, -1 where ``a < delta_low * mx``, 1 otherwise
  (with ``zero_background`` the -1 becomes 0); all ones without information;
- background mask ``b``: ``a < delta_bg * mx``; all zeros without information;
- ``x_b = relu(f) * t``, ``x_c = relu(f) * b``, and the 1-byte ``sign = relu(f) != 0`` (``f > 0``,
  NaN counting as positive) saved for backward; with ``rectify`` false the masks multiply ``f``
  itself (``x_b = f * t``, ``x_c = f * b``) and ``sign`` is all true;
- backward: ``grad_f = (g_b * t + g_c * b) * sign``.
"""

from __future__ import annotations

import torch

__all__ = ["image_max", "ternary", "background", "forward", "backward"]

def image_max(attention: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Float32 map, its per-image maximum and the per-image "has information" flag.

    Returns:
        ``(a, mx, info)`` of shapes ``(N,1,h,w)``, ``(N,1,1,1)``, ``(N,1,1,1)`` (``info`` is bool).
    """
    a = attention.float()
    mx = a.amax(dim=(2, 3), keepdim=True)
    info = torch.isfinite(a).all(dim=3, keepdim=True).all(dim=2, keepdim=True) & (mx > 0)
    return a, mx, info


def ternary(
    a: torch.Tensor,
    mx: torch.Tensor,
    info: torch.Tensor,
    delta_high: float,
    delta_low: float,
    zero_background: bool = False,
) -> torch.Tensor:
    """Ternary mask (int8 in {-1, 0, 1}) from the outputs of :func:`image_max`."""
    one = torch.ones((), dtype=torch.int8, device=a.device)
    low = torch.zeros_like(one) if zero_background else -one
    t = torch.where(a < delta_low * mx, low, one)
    t = torch.where(a >= delta_high * mx, torch.zeros_like(one), t)
    return torch.where(info, t, one)


def background(
    a: torch.Tensor, mx: torch.Tensor, info: torch.Tensor, delta_bg: float
) -> torch.Tensor:
    """Background-zone mask (bool) from the outputs of :func:`image_max`."""
    return (a < delta_bg * mx) & info


def forward(
    features: torch.Tensor,
    attention: torch.Tensor,
    delta_high: float,
    delta_low: float,
    delta_bg: float,
    zero_background: bool,
    rectify: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Compute ``(x_b, x_c, sign, tmask, bmask)``; see the module docstring."""
    a, mx, info = image_max(attention)
    tmask = ternary(a, mx, info, delta_high, delta_low, zero_background)
    bmask = background(a, mx, info, delta_bg)
    # Three full-size passes and a cheap cast; every full-size op is single-dtype (the small masks
    # are cast to the features' dtype first), which keeps them on PyTorch's vectorised kernels.
    if rectify:
        x_b = torch.relu(features)
        sign = x_b.bool()  # relu(f) != 0: f > 0 (NaN counts as positive, as in the Triton kernel)
    else:
        x_b = features.clone(memory_format=torch.preserve_format)
        sign = torch.ones_like(features, dtype=torch.bool)
    x_c = x_b * bmask.to(features.dtype)
    x_b.mul_(tmask.to(features.dtype))
    return x_b, x_c, sign, tmask, bmask


def backward(
    grad_b: torch.Tensor | None,
    grad_c: torch.Tensor | None,
    sign: torch.Tensor,
    tmask: torch.Tensor,
    bmask: torch.Tensor,
) -> torch.Tensor:
    """Gradient with respect to the features: ``(g_b * t + g_c * b) * sign``.

    At least one of ``grad_b`` and ``grad_c`` must be given.
    """
    ref = grad_b if grad_b is not None else grad_c
    if ref is None:
        raise ValueError("at least one of grad_b and grad_c must be given")
    dtype = ref.dtype
    if grad_b is not None:
        g = grad_b * tmask.to(dtype)
        if grad_c is not None:
            g.addcmul_(grad_c, bmask.to(dtype))
    else:
        g = grad_c * bmask.to(dtype)
    # A bool tensor seen as uint8 multiplies on a much faster kernel than the bool itself.
    return g.mul_(sign.view(torch.uint8))
