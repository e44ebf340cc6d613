"""Fused Triton kernels for the mask-and-flip step (GPU backend of ``seenet::self_erase``).

Same contract as :mod:`seenet.ops._reference` (``forward``/``backward`` with identical signatures,
outputs, dtypes and saved tensors, so either backend's saved tensors work with either backward):

- ``_image_stats_kernel`` (one program per image): per-image maximum of the erasing map and the
  "has information" flag (all values finite and maximum > 0), in float32.
- ``_forward_kernel``: one pass over the features. Each program loads a tile of pixels of the
  erasing map once, turns it into the ternary mask ``t`` and the background mask ``b`` (in
  registers), then streams a chunk of channels: it reads ``f`` once and writes
  ``x_b = relu(f) * t``, ``x_c = relu(f) * b`` and the 1-byte ``sign = f > 0``. The programs of the
  first channel chunk also store ``t`` (int8) and ``b`` (bool) for backward.
- ``_backward_kernel``: ``grad_f = (g_b * t + g_c * b) * sign`` in one pass; either gradient may be
  absent (a compile-time flag drops its load).

Every tensor is loaded in its own dtype (float32, float16 or bfloat16), arithmetic is done in
float32 and the result is rounded once to the output dtype, so the forward is exact (the products
are by -1, 0 or 1) and the backward rounds once, like the reference. (float64 features and
gradients are computed in float64; the erasing map is always rounded to float32 first.)

Layouts: a tensor is addressed as ``n * s_n + c * s_c + p * s_p`` with ``p = i * w + j`` the
flattened pixel, which covers contiguous and channels-last tensors (and expanded gradients) with no
copy. A tensor whose height and width strides cannot be merged (a transposed view, say) is copied to
a contiguous one first; an output of such a layout is computed in a contiguous buffer and copied.

Block sizes come from a small shape heuristic (:func:`_block_sizes`), not autotuning, so the same
code runs under Triton's CPU interpreter (``TRITON_INTERPRET=1``, which must be set before this
module is imported).
"""

from __future__ import annotations

import contextlib
from typing import NamedTuple

import torch
import triton
import triton.language as tl

__all__ = ["forward", "backward"]

# Bytes of one input tile (BLOCK_C x BLOCK_P elements) of the features or a gradient.
_TILE_BYTES = 8192
# Channel blocks handled by one program (at most): the per-pixel masks are computed once per
# program and reused across them. Programs loop only when there are more than _MIN_PROGRAMS tiles,
# so small tensors still spread over the whole device.
_CHANNEL_ITERS = 4
_MIN_PROGRAMS = 2048
_NUM_WARPS = 4


# --------------------------------------------------------------------------------------------
# Kernels
# --------------------------------------------------------------------------------------------


@triton.jit
def _round_to(x, DTYPE: tl.constexpr):
    """Round float32 ``x`` to ``DTYPE`` to nearest-even, as PyTorch does.

    bfloat16 is rounded with integer arithmetic: the interpreter's own float32 -> bfloat16 cast
    truncates, and this keeps the interpreter and the GPU bit-identical with the reference (and
    :func:`_to_f32` likewise widens bfloat16 by its bits).
    """
    if DTYPE == tl.bfloat16:
        u = x.to(tl.uint32, bitcast=True)
        u = tl.where(x != x, 0x7FC00000, u)  # canonical NaN
        u = u + 0x7FFF + ((u >> 16) & 1)
        return (u >> 16).to(tl.uint16).to(tl.bfloat16, bitcast=True)
    else:
        return x.to(DTYPE)


@triton.jit
def _to_f32(x):
    """Widen a loaded tile to float32 (bfloat16 by its bits: exact, subnormals included).

    float64 stays float64, so float64 tensors are computed without loss.
    """
    if x.dtype == tl.bfloat16:
        return (x.to(tl.uint16, bitcast=True).to(tl.uint32) << 16).to(tl.float32, bitcast=True)
    elif x.dtype == tl.float64:
        return x
    else:
        return x.to(tl.float32)


@triton.jit
def _image_stats_kernel(a_ptr, stats_ptr, HW, a_sn, a_sp, BLOCK: tl.constexpr):
    """Per image: ``stats[n] = (max over pixels, 1.0 if all finite and max > 0 else 0.0)``."""
    n = tl.program_id(0).to(tl.int64)
    offs = tl.arange(0, BLOCK)
    run_max = tl.full([BLOCK], float("-inf"), tl.float32)
    bad = tl.zeros([BLOCK], tl.int32)
    for p0 in range(0, HW, BLOCK):
        p = p0 + offs
        m = p < HW
        a = _to_f32(tl.load(a_ptr + n * a_sn + p * a_sp, mask=m, other=0.0)).to(tl.float32)
        nonfinite = (a != a) | (tl.abs(a) == float("inf"))
        bad = tl.maximum(bad, (nonfinite & m).to(tl.int32))
        run_max = tl.maximum(run_max, tl.where(m, a, float("-inf")))
    mx = tl.max(run_max, axis=0)
    info = (tl.max(bad, axis=0) == 0) & (mx > 0.0)
    tl.store(stats_ptr + 2 * n, mx)
    tl.store(stats_ptr + 2 * n + 1, info.to(tl.float32))


@triton.jit
def _forward_kernel(
    f_ptr, a_ptr, stats_ptr, xb_ptr, xc_ptr, sign_ptr, t_ptr, b_ptr,
    C, HW, c_per_prog,
    f_sn, f_sc, f_sp,
    o_sn, o_sc, o_sp,
    a_sn, a_sp,
    delta_high, delta_low, delta_bg,
    ZERO_BG: tl.constexpr,
    BLOCK_C: tl.constexpr,
    BLOCK_P: tl.constexpr,
):
    """Masks for a tile of pixels, then ``x_b``, ``x_c`` and ``sign`` for a chunk of channels."""
    pid_p = tl.program_id(0)
    pid_c = tl.program_id(1)
    n = tl.program_id(2).to(tl.int64)

    p = pid_p * BLOCK_P + tl.arange(0, BLOCK_P)
    pm = p < HW
    a = _to_f32(tl.load(a_ptr + n * a_sn + p * a_sp, mask=pm, other=0.0)).to(tl.float32)
    mx = tl.load(stats_ptr + 2 * n)
    info = tl.load(stats_ptr + 2 * n + 1) > 0.5

    # Mask arithmetic in float32, exactly as the reference does it.
    t = tl.where(a < delta_low * mx, -1.0, 1.0)
    if ZERO_BG:
        t = tl.maximum(t, 0.0)
    t = tl.where(a >= delta_high * mx, 0.0, t)
    t = tl.where(info, t, 1.0)
    b = tl.where(info, tl.where(a < delta_bg * mx, 1.0, 0.0), 0.0)
    if pid_c == 0:
        tl.store(t_ptr + n * HW + p, t.to(tl.int8), mask=pm)
        tl.store(b_ptr + n * HW + p, b.to(tl.uint8), mask=pm)

    t2 = t[None, :]
    b2 = b[None, :]
    c_offs = tl.arange(0, BLOCK_C)
    c_start = pid_c * c_per_prog
    for c0 in range(0, c_per_prog, BLOCK_C):
        c = c_start + c0 + c_offs
        m = (c < C)[:, None] & pm[None, :]
        f = _to_f32(
            tl.load(f_ptr + n * f_sn + c[:, None] * f_sc + p[None, :] * f_sp, mask=m, other=0.0)
        )
        r = tl.where(f < 0.0, 0.0, f)  # relu that keeps NaN, like torch.relu
        out = n * o_sn + c[:, None] * o_sc + p[None, :] * o_sp
        tl.store(xb_ptr + out, _round_to(r * t2, xb_ptr.dtype.element_ty), mask=m)
        tl.store(xc_ptr + out, _round_to(r * b2, xc_ptr.dtype.element_ty), mask=m)
        tl.store(sign_ptr + out, (f > 0.0).to(tl.uint8), mask=m)


@triton.jit
def _backward_kernel(
    gb_ptr, gc_ptr, sign_ptr, t_ptr, b_ptr, out_ptr,
    C, HW, c_per_prog,
    gb_sn, gb_sc, gb_sp,
    gc_sn, gc_sc, gc_sp,
    s_sn, s_sc, s_sp,
    o_sn, o_sc, o_sp,
    m_sn, m_sp,
    HAS_GB: tl.constexpr,
    HAS_GC: tl.constexpr,
    BLOCK_C: tl.constexpr,
    BLOCK_P: tl.constexpr,
):
    """``grad_f = (g_b * t + g_c * b) * sign`` for a tile of pixels and a chunk of channels."""
    pid_p = tl.program_id(0)
    pid_c = tl.program_id(1)
    n = tl.program_id(2).to(tl.int64)

    p = pid_p * BLOCK_P + tl.arange(0, BLOCK_P)
    pm = p < HW
    t2 = tl.load(t_ptr + n * m_sn + p * m_sp, mask=pm, other=0).to(tl.float32)[None, :]
    b2 = tl.load(b_ptr + n * m_sn + p * m_sp, mask=pm, other=0).to(tl.float32)[None, :]

    c_offs = tl.arange(0, BLOCK_C)
    c_start = pid_c * c_per_prog
    for c0 in range(0, c_per_prog, BLOCK_C):
        c = c_start + c0 + c_offs
        m = (c < C)[:, None] & pm[None, :]
        s = tl.load(sign_ptr + n * s_sn + c[:, None] * s_sc + p[None, :] * s_sp, mask=m, other=0)
        acc = tl.zeros([BLOCK_C, BLOCK_P], tl.float32)
        if HAS_GB:
            gb = tl.load(
                gb_ptr + n * gb_sn + c[:, None] * gb_sc + p[None, :] * gb_sp, mask=m, other=0.0
            )
            acc += _to_f32(gb) * t2
        if HAS_GC:
            gc = tl.load(
                gc_ptr + n * gc_sn + c[:, None] * gc_sc + p[None, :] * gc_sp, mask=m, other=0.0
            )
            acc += _to_f32(gc) * b2
        # A product, not a select, so non-finite gradients behave as in the reference.
        acc = acc * (s != 0).to(tl.float32)
        out = n * o_sn + c[:, None] * o_sc + p[None, :] * o_sp
        tl.store(out_ptr + out, _round_to(acc, out_ptr.dtype.element_ty), mask=m)


# --------------------------------------------------------------------------------------------
# Launch helpers
# --------------------------------------------------------------------------------------------


class _Blocks(NamedTuple):
    block_c: int
    block_p: int
    c_per_prog: int
    num_warps: int


def _pow2_block(size: int, lo: int, hi: int) -> int:
    """Power of two in ``[lo, hi]`` (at most ``size`` rounded up) leaving the least padding."""
    cap = triton.next_power_of_2(max(size, 1))
    if cap <= lo:
        return cap
    candidates = [1 << k for k in range(lo.bit_length() - 1, min(hi, cap).bit_length())]
    # Least padded size first, then the larger block.
    return min(candidates, key=lambda b: (triton.cdiv(size, b) * b, -b))


def _block_sizes(
    c: int, hw: int, channels_fast: bool, element_size: int = 4, n: int = 1
) -> _Blocks:
    """Tile shape for the features of an image: ``BLOCK_C`` channels x ``BLOCK_P`` pixels.

    The memory-contiguous dimension (pixels for NCHW, channels for channels-last) gets a block of
    32 to 256 elements chosen to waste the least padding; the other dimension fills the tile up to
    ``_TILE_BYTES`` of input. When the tensor has more than ``_MIN_PROGRAMS`` tiles, each program
    loops over up to ``_CHANNEL_ITERS`` channel blocks.

    Args:
        c: Channels.
        hw: Pixels per image (``h * w``).
        channels_fast: Whether channels are the contiguous dimension (channels-last).
        element_size: Bytes per element of the features.
        n: Images.

    Returns:
        ``(block_c, block_p, c_per_prog, num_warps)``.

    Example:
        >>> _block_sizes(2048, 28 * 28, channels_fast=False, n=16)
        _Blocks(block_c=64, block_p=32, c_per_prog=256, num_warps=4)
        >>> _block_sizes(3, 5 * 7, channels_fast=False)
        _Blocks(block_c=4, block_p=64, c_per_prog=4, num_warps=4)
    """
    tile = max(_TILE_BYTES // element_size, 1)
    if channels_fast:
        block_c = _pow2_block(c, 32, 256)
        block_p = min(triton.next_power_of_2(max(hw, 1)), max(tile // block_c, 1))
    else:
        block_p = _pow2_block(hw, 32, 256)
        block_c = min(triton.next_power_of_2(max(c, 1)), max(tile // block_p, 1))
    c_blocks = triton.cdiv(max(c, 1), block_c)
    tiles = max(n, 1) * c_blocks * triton.cdiv(max(hw, 1), block_p)
    iters = max(1, min(_CHANNEL_ITERS, c_blocks, tiles // _MIN_PROGRAMS))
    return _Blocks(block_c, block_p, iters * block_c, _NUM_WARPS)


def _pixel_strides(x: torch.Tensor) -> tuple[int, int, int] | None:
    """``(s_n, s_c, s_p)`` so that ``x[n, c, i, j]`` sits at ``n*s_n + c*s_c + (i*w + j)*s_p``.

    ``None`` when the height and width strides cannot be merged into one pixel stride.
    """
    _, _, h, w = x.shape
    s_n, s_c, s_h, s_w = x.stride()
    if h == 1:
        return s_n, s_c, s_w
    if w == 1:
        return s_n, s_c, s_h
    if s_h == w * s_w:
        return s_n, s_c, s_w
    return None


def _readable(x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int]]:
    """``x`` (or a contiguous copy when its pixel strides cannot be merged) and its strides."""
    strides = _pixel_strides(x)
    if strides is None:
        x = x.contiguous()
        strides = _pixel_strides(x)
        assert strides is not None
    return x, strides


def _writable(out: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int]]:
    """A buffer the kernels can write for ``out``: ``out`` itself, or a contiguous stand-in."""
    strides = _pixel_strides(out)
    if strides is None:
        buf = torch.empty(out.shape, dtype=out.dtype, device=out.device)
        return buf, _pixel_strides(buf)  # type: ignore[return-value]
    return out, strides


def _as_bytes(x: torch.Tensor) -> torch.Tensor:
    """Bool tensors go to the kernels as uint8 (same storage)."""
    return x.view(torch.uint8) if x.dtype == torch.bool else x


def _device_guard(x: torch.Tensor) -> contextlib.AbstractContextManager:
    return torch.cuda.device(x.device) if x.is_cuda else contextlib.nullcontext()


def _grid(c: int, hw: int, n: int, blocks: _Blocks) -> tuple[int, int, int]:
    return (triton.cdiv(hw, blocks.block_p), max(triton.cdiv(c, blocks.c_per_prog), 1), n)


def _channels_fast(strides: tuple[int, int, int], c: int) -> bool:
    _, s_c, s_p = strides
    return c > 1 and s_c == 1 and s_p != 1


# --------------------------------------------------------------------------------------------
# The backend contract
# --------------------------------------------------------------------------------------------


def forward(
    features: torch.Tensor,
    attention: torch.Tensor,
    delta_high: float,
    delta_low: float,
    delta_bg: float,
    zero_background: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Fused forward: ``(x_b, x_c, sign, tmask, bmask)``, as :func:`seenet.ops._reference.forward`.

    Args:
        features: Backbone features (float32, float16 or bfloat16).
        attention: Erasing map, any float dtype.
        delta_high: Attention-zone threshold, a fraction of the per-image maximum.
        delta_low: Background-zone threshold of the ternary mask.
        delta_bg: Background threshold of the S_C mask.
        zero_background: Zero the background zone of ``x_b`` instead of flipping its sign.

    Returns:
        ``x_b`` and ``x_c`` (features' dtype and layout), ``sign`` (bool, features' layout),
        ``tmask`` (int8) and ``bmask`` (bool), both contiguous.

    Shape:
        - features: :math:`(N, C, h, w)`; attention: :math:`(N, 1, h, w)`
        - x_b, x_c, sign: :math:`(N, C, h, w)`; tmask, bmask: :math:`(N, 1, h, w)`
    """
    n, c, h, w = features.shape
    hw = h * w
    x_b = torch.empty_like(features)
    x_c = torch.empty_like(features)
    sign = torch.empty_like(features, dtype=torch.bool)
    tmask = torch.empty((n, 1, h, w), dtype=torch.int8, device=features.device)
    bmask = torch.empty((n, 1, h, w), dtype=torch.bool, device=features.device)
    if n * hw == 0:
        return x_b, x_c, sign, tmask, bmask

    f, f_strides = _readable(features)
    a, a_strides = _readable(attention)
    xb_buf, o_strides = _writable(x_b)
    xc_buf = x_c if xb_buf is x_b else torch.empty_like(xb_buf)
    sign_buf = sign if xb_buf is x_b else torch.empty_like(xb_buf, dtype=torch.bool)
    stats = torch.empty((n, 2), dtype=torch.float32, device=features.device)
    blocks = _block_sizes(c, hw, _channels_fast(f_strides, c), features.element_size(), n)

    with _device_guard(features):
        _image_stats_kernel[(n,)](
            a, stats, hw, a_strides[0], a_strides[2],
            BLOCK=min(max(triton.next_power_of_2(hw), 16), 1024),
        )
        _forward_kernel[_grid(c, hw, n, blocks)](
            f, a, stats, xb_buf, xc_buf, _as_bytes(sign_buf), tmask, _as_bytes(bmask),
            c, hw, blocks.c_per_prog,
            *f_strides, *o_strides, a_strides[0], a_strides[2],
            float(delta_high), float(delta_low), float(delta_bg),
            ZERO_BG=bool(zero_background),
            BLOCK_C=blocks.block_c,
            BLOCK_P=blocks.block_p,
            num_warps=blocks.num_warps,
        )
    if xb_buf is not x_b:
        x_b.copy_(xb_buf)
        x_c.copy_(xc_buf)
        sign.copy_(sign_buf)
    return x_b, x_c, sign, tmask, bmask


def backward(
    grad_b: torch.Tensor | None,
    grad_c: torch.Tensor | None,
    sign: torch.Tensor,
    tmask: torch.Tensor,
    bmask: torch.Tensor,
) -> torch.Tensor:
    """Fused backward: ``(grad_b * t + grad_c * b) * sign``, as the reference's ``backward``.

    Args:
        grad_b: Gradient of ``x_b`` or ``None``.
        grad_c: Gradient of ``x_c`` or ``None``.
        sign: Saved ``features > 0`` (bool).
        tmask: Saved ternary mask (int8).
        bmask: Saved background mask (bool).

    Returns:
        The gradient of the features, in the dtype (and layout) of ``grad_b`` if given, else of
        ``grad_c``; computed in float32 and rounded once.

    Raises:
        ValueError: If both gradients are ``None``.
    """
    ref = grad_b if grad_b is not None else grad_c
    if ref is None:
        raise ValueError("at least one of grad_b and grad_c must be given")
    n, c, h, w = sign.shape
    hw = h * w
    out = torch.empty_like(ref)
    if out.numel() == 0:
        return out

    s, s_strides = _readable(sign)
    t, m_strides = _readable(tmask)
    b, b_strides = _readable(bmask)
    if b_strides != m_strides:
        t, b = t.contiguous(), b.contiguous()
        m_strides = _pixel_strides(t)  # type: ignore[assignment]
    # An absent gradient is never loaded; the sign mask stands in for its pointer.
    gb, gb_strides = _readable(grad_b) if grad_b is not None else (s, (0, 0, 0))
    gc, gc_strides = _readable(grad_c) if grad_c is not None else (s, (0, 0, 0))
    out_buf, o_strides = _writable(out)
    fast = _channels_fast(gb_strides if grad_b is not None else gc_strides, c)
    blocks = _block_sizes(c, hw, fast, ref.element_size(), n)

    with _device_guard(sign):
        _backward_kernel[_grid(c, hw, n, blocks)](
            _as_bytes(gb), _as_bytes(gc), _as_bytes(s), t, _as_bytes(b), out_buf,
            c, hw, blocks.c_per_prog,
            *gb_strides, *gc_strides, *s_strides, *o_strides, m_strides[0], m_strides[2],
            HAS_GB=grad_b is not None,
            HAS_GC=grad_c is not None,
            BLOCK_C=blocks.block_c,
            BLOCK_P=blocks.block_p,
            num_warps=blocks.num_warps,
        )
    if out_buf is not out:
        out.copy_(out_buf)
    return out
