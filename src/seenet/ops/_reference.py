"""Reference implementation of the mask-and-flip step (vectorised PyTorch).

This is the ground truth every other backend is tested against. The mask arithmetic is done in
float32 whatever the dtype of the attention map, so all backends agree bit for bit on the masks.

Per image ``n`` with erasing map ``a`` and per-image maximum ``mx``:

- no information (``info`` false) when ``a`` has a non-finite value or ``mx <= 0``;
- ternary mask ``t``: 0 where ``a >= delta_high * mx``, -1 where ``a < delta_low * mx``, 1 otherwise
  (with ``zero_background`` the -1 becomes 0); all ones without information;
- background mask ``b``: ``a < delta_bg * mx``; all zeros without information;
- ``x_b = relu(f) * t``, ``x_c = relu(f) * b``, and the 1-byte ``sign = f > 0`` saved for backward;
- backward: ``grad_f = (g_b * t + g_c * b) * sign``.
"""

from __future__ import annotations

import torch

__all__ = ["image_max", "ternary", "background", "forward", "backward"]

# Elements per block of the cache-blocked CPU forward/backward: a block of every full-size tensor
# involved stays in the L2 cache while the few elementwise passes run over it.
_CPU_BLOCK_ELEMS = 1 << 18


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


def _blocks(n: int, c: int, hw: int) -> list[tuple[int, int, int]]:
    """Split an (n, c, hw) tensor into (image, channel-start, channel-stop) blocks of ~L2 size."""
    per = max(1, _CPU_BLOCK_ELEMS // max(hw, 1))
    return [(i, c0, min(c0 + per, c)) for i in range(n) for c0 in range(0, c, per)]


def _use_blocks(features: torch.Tensor) -> bool:
    return (
        features.device.type == "cpu"
        and features.is_contiguous()
        and features.numel() >= 4 * _CPU_BLOCK_ELEMS
    )


def forward(
    features: torch.Tensor,
    attention: torch.Tensor,
    delta_high: float,
    delta_low: float,
    delta_bg: float,
    zero_background: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Compute ``(x_b, x_c, sign, tmask, bmask)``; see the module docstring."""
    a, mx, info = image_max(attention)
    tmask = ternary(a, mx, info, delta_high, delta_low, zero_background)
    bmask = background(a, mx, info, delta_bg)
    # the small per-pixel masks in the features' dtype keep every full-size op single-dtype
    t = tmask.to(features.dtype)
    b = bmask.to(features.dtype)
    if not _use_blocks(features):
        sign = features > 0
        x_b = torch.relu(features)
        x_c = x_b * b
        x_b.mul_(t)
        return x_b, x_c, sign, tmask, bmask

    # Cache-blocked path for large contiguous CPU tensors: each block is read from memory once and
    # all four passes run on it while it is in cache.
    n, c, h, w = features.shape
    x_b = torch.empty_like(features)
    x_c = torch.empty_like(features)
    sign = torch.empty(features.shape, dtype=torch.bool)
    t, b = t.view(n, 1, h * w), b.view(n, 1, h * w)
    f3 = features.view(n, c, h * w)
    xb3, xc3, s3 = x_b.view(n, c, h * w), x_c.view(n, c, h * w), sign.view(n, c, h * w)
    for i, c0, c1 in _blocks(n, c, h * w):
        fb = f3[i, c0:c1]
        xb = xb3[i, c0:c1]
        torch.gt(fb, 0, out=s3[i, c0:c1])
        torch.clamp_min(fb, 0, out=xb)
        torch.mul(xb, b[i], out=xc3[i, c0:c1])
        xb.mul_(t[i])
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
    t = tmask.to(dtype)
    b = bmask.to(dtype)
    if not (_use_blocks(ref) and sign.is_contiguous()
            and (grad_b is None or grad_b.is_contiguous())
            and (grad_c is None or grad_c.is_contiguous())):
        if grad_b is not None:
            g = grad_b * t
            if grad_c is not None:
                g.addcmul_(grad_c, b)
        else:
            g = grad_c * b
        return g.mul_(sign)

    n, c, h, w = ref.shape
    out = torch.empty_like(ref)
    o3, s3 = out.view(n, c, h * w), sign.view(n, c, h * w)
    t3, b3 = t.view(n, 1, h * w), b.view(n, 1, h * w)
    gb3 = grad_b.view(n, c, h * w) if grad_b is not None else None
    gc3 = grad_c.view(n, c, h * w) if grad_c is not None else None
    for i, c0, c1 in _blocks(n, c, h * w):
        ob = o3[i, c0:c1]
        if gb3 is not None:
            torch.mul(gb3[i, c0:c1], t3[i], out=ob)
            if gc3 is not None:
                ob.addcmul_(gc3[i, c0:c1], b3[i])
        else:
            torch.mul(gc3[i, c0:c1], b3[i], out=ob)
        ob.mul_(s3[i, c0:c1])
    return out
