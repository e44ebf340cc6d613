"""Fused Triton kernels for the mask-and-flip step (GPU backend of ``seenet::self_erase``).

Same contract as :mod:`seenet.ops._reference` (``forward``/``backward`` with identical signatures,
outputs, dtypes and saved tensors, so either backend's saved tensors work with either backward):

- ``_image_stats_kernel`` (one small program per image): the per-image maximum of the erasing map
  and the "has information" flag (all values finite and maximum > 0), in float32.
- ``_forward_kernel``: one pass over the features. A program owns a block of one image; each
  element reads ``f`` once and its pixel's map value (a cached gather: the map is ``C`` times
  smaller), forms the ternary mask ``t`` and the background mask ``b`` in registers from the
  image's thresholds, and writes ``x_b = relu(f) * t``, ``x_c = relu(f) * b`` and the 1-byte
  ``sign = relu(f) != 0``. The elements of channel 0 also store ``t`` (int8) and ``b`` (bool) for
  backward, so the per-pixel masks come out of the same pass.
- ``_backward_kernel``: ``grad_f = (g_b * t + g_c * b) * sign`` in one pass; either gradient may be
  absent (a compile-time flag drops its load).

Every tensor is loaded in its own dtype (float32, float16 or bfloat16), arithmetic is done in
float32 and the result is rounded once to the output dtype, so the forward is exact (the products
are by -1, 0 or 1) and the backward rounds once, like the reference. (float64 features and
gradients are computed in float64; the erasing map is always rounded to float32 first.)

Layouts: each image of the big tensors is walked as a flat array in memory order, contiguous
(NCHW) or channels-last (NHWC), in rows of 16 bytes, so loads and stores are coalesced and
vectorised whatever ``h * w`` is; the pixel of an element is ``r % (h*w)`` (NCHW) or ``r // C``
(NHWC), by a multiply-high with a precomputed magic number rather than an integer division. The
outputs keep the layout of the features (``torch.empty_like``). An input in another layout (a
strided or transposed view, an expanded gradient) is copied to the layout of the output first; an
output whose layout is neither is computed in a contiguous buffer and copied.

The block size comes from the size of the tensor (no autotuning), so the same launch runs under
Triton's CPU interpreter (``TRITON_INTERPRET=1``, which must be set before this module is
imported).
"""

from __future__ import annotations

import contextlib

import torch
import triton
import triton.language as tl

__all__ = ["forward", "backward"]

# Bytes of features (or of one gradient) handled by one program: 4 warps then move 16 bytes per
# thread per tensor in each of four vectorised accesses.
_BLOCK_BYTES = 8192
_NUM_WARPS = 4
# Largest block of the per-image reduction.
_STATS_BLOCK = 1024
# Images per launch (CUDA limits the second grid dimension to 65535).
_MAX_IMAGES = 65535


# --------------------------------------------------------------------------------------------
# Kernels
# --------------------------------------------------------------------------------------------


@triton.jit
def _round_for(x, ptr):
    """Round float32 ``x`` to the element type of ``ptr``, to nearest-even, as PyTorch does.

    bfloat16 is rounded with integer arithmetic: the interpreter's own float32 -> bfloat16 cast
    truncates, and this keeps the interpreter and the GPU bit-identical with the reference (and
    :func:`_to_f32` likewise widens bfloat16 by its bits).
    """
    if ptr.dtype.element_ty == tl.bfloat16:
        u = x.to(tl.uint32, bitcast=True)
        u = tl.where(x != x, 0x7FC00000, u)  # canonical NaN
        u = u + 0x7FFF + ((u >> 16) & 1)
        return (u >> 16).to(tl.uint16).to(tl.bfloat16, bitcast=True)
    else:
        return x.to(ptr.dtype.element_ty)


@triton.jit
def _narrow_exact(x, ptr):
    """Cast ``x``, known to be representable in the element type of ``ptr``, to that type.

    The forward's products (by -1, 0 or 1 of a value read in that type) are such values, so no
    rounding is needed; bfloat16 keeps the top half of the bits (two instructions, and exact
    under the interpreter too, whose own cast mishandles subnormals).
    """
    if ptr.dtype.element_ty == tl.bfloat16:
        u = x.to(tl.uint32, bitcast=True)
        return (u >> 16).to(tl.uint16).to(tl.bfloat16, bitcast=True)
    else:
        return x.to(ptr.dtype.element_ty)


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
def _image_stats_kernel(a_ptr, stats_ptr, HW, BLOCK: tl.constexpr):
    """Per image: ``stats[n] = (max over pixels, 1.0 if all finite and max > 0 else 0.0)``."""
    n = tl.program_id(0).to(tl.int64)
    offs = tl.arange(0, BLOCK)
    run_max = tl.full([BLOCK], float("-inf"), tl.float32)
    bad = tl.zeros([BLOCK], tl.int32)
    for p0 in range(0, HW, BLOCK):
        p = p0 + offs
        m = p < HW
        a = _to_f32(tl.load(a_ptr + n * HW + p, mask=m, other=0.0)).to(tl.float32)
        nonfinite = (a != a) | (tl.abs(a) == float("inf"))
        bad = tl.maximum(bad, (nonfinite & m).to(tl.int32))
        run_max = tl.maximum(run_max, tl.where(m, a, float("-inf")))
    mx = tl.max(run_max, axis=0)
    info = (tl.max(bad, axis=0) == 0) & (mx > 0.0)
    tl.store(stats_ptr + 2 * n, mx)
    tl.store(stats_ptr + 2 * n + 1, info.to(tl.float32))


@triton.jit
def _divmod(x, d, magic, shift):
    """``(x // d, x % d)`` for ``0 <= x < 2**31`` by a multiply-high (see :func:`_magic`)."""
    xu = x.to(tl.uint32)
    hi = tl.umulhi(xu, magic.to(tl.uint32, bitcast=True))
    q = ((hi + xu) >> shift.to(tl.uint32)).to(tl.int32)
    return q, x - q * d


@triton.jit
def _locate(
    pid, C, HW, magic, shift,
    BLOCK: tl.constexpr, VEC: tl.constexpr, CHANNELS_LAST: tl.constexpr,
):
    """Indices of a block inside one image's plane, their validity, pixel and channel-0 flag.

    The block is shaped ``(BLOCK // VEC, VEC)`` with rows of 16 bytes of features: every tensor,
    the 1-byte ones included, then gets the same register layout (no shuffles through shared
    memory) and the feature loads and stores stay 16-byte wide.
    """
    rows = tl.arange(0, BLOCK // VEC)[:, None] * VEC + tl.arange(0, VEC)[None, :]
    r = pid * BLOCK + rows  # memory order inside the image: c*HW + p or p*C + c
    valid = r < C * HW
    if CHANNELS_LAST:
        p, c = _divmod(r, C, magic, shift)
        first = c == 0
    else:
        _, p = _divmod(r, HW, magic, shift)
        first = r < HW
    return r, valid, p, first


@triton.jit(do_not_specialize=["magic", "shift"])
def _forward_kernel(
    f_ptr, a_ptr, stats_ptr, xb_ptr, xc_ptr, sign_ptr, t_ptr, b_ptr,
    C, HW, plane, magic, shift,
    delta_high, delta_low, delta_bg,
    ZERO_BG: tl.constexpr,
    RECTIFY: tl.constexpr,
    CHANNELS_LAST: tl.constexpr,
    BLOCK: tl.constexpr,
    VEC: tl.constexpr,
):
    """``x_b``, ``x_c``, ``sign`` for a block of one image; ``t``, ``b`` where the channel is 0."""
    pid = tl.program_id(0)
    n = tl.program_id(1).to(tl.int64)
    r, valid, p, first = _locate(pid, C, HW, magic, shift, BLOCK, VEC, CHANNELS_LAST)
    base = n * plane  # plane = C * HW, passed so that its divisibility is known

    # Per-image thresholds, then the mask arithmetic in float32, exactly as the reference does it.
    mx = tl.load(stats_ptr + 2 * n)
    info = tl.load(stats_ptr + 2 * n + 1) > 0.5
    high, low, bg = delta_high * mx, delta_low * mx, delta_bg * mx
    a = _to_f32(tl.load(a_ptr + n * HW + p, mask=valid, other=0.0)).to(tl.float32)
    t = tl.where(a < low, -1.0, 1.0)
    if ZERO_BG:
        t = tl.maximum(t, 0.0)
    t = tl.where(a >= high, 0.0, t)
    t = tl.where(info, t, 1.0)
    b = tl.where(info, tl.where(a < bg, 1.0, 0.0), 0.0)

    f = _to_f32(tl.load(f_ptr + base + r, mask=valid, other=0.0))
    if RECTIFY:
        v = tl.where(f < 0.0, 0.0, f)  # keeps NaN, like torch.relu
        # relu(f) != 0: f > 0, with NaN counting as positive, as in the reference
        s = (v != 0.0).to(tl.uint8)
    else:
        v = f
        s = tl.full(f.shape, 1, tl.uint8)
    tl.store(xb_ptr + base + r, _narrow_exact(v * t, xb_ptr), mask=valid)
    tl.store(xc_ptr + base + r, _narrow_exact(v * b, xc_ptr), mask=valid)
    tl.store(sign_ptr + base + r, s, mask=valid)
    # The per-pixel masks, from the elements of channel 0 (NCHW: the first blocks only).
    if CHANNELS_LAST or pid * BLOCK < HW:
        tl.store(t_ptr + n * HW + p, t.to(tl.int8), mask=valid & first)
        tl.store(b_ptr + n * HW + p, b.to(tl.uint8), mask=valid & first)


@triton.jit(do_not_specialize=["magic", "shift"])
def _backward_kernel(
    gb_ptr, gc_ptr, sign_ptr, t_ptr, b_ptr, out_ptr,
    C, HW, plane, magic, shift,
    HAS_GB: tl.constexpr,
    HAS_GC: tl.constexpr,
    CHANNELS_LAST: tl.constexpr,
    BLOCK: tl.constexpr,
    VEC: tl.constexpr,
):
    """``grad_f = (g_b * t + g_c * b) * sign`` for a block of one image."""
    n = tl.program_id(1).to(tl.int64)
    r, valid, p, first = _locate(
        tl.program_id(0), C, HW, magic, shift, BLOCK, VEC, CHANNELS_LAST
    )
    base = n * plane
    s = tl.load(sign_ptr + base + r, mask=valid, other=0)
    acc = tl.zeros([BLOCK // VEC, VEC], tl.float32)
    if HAS_GB:
        t = tl.load(t_ptr + n * HW + p, mask=valid, other=0).to(tl.float32)
        acc += _to_f32(tl.load(gb_ptr + base + r, mask=valid, other=0.0)) * t
    if HAS_GC:
        b = tl.load(b_ptr + n * HW + p, mask=valid, other=0).to(tl.float32)
        acc += _to_f32(tl.load(gc_ptr + base + r, mask=valid, other=0.0)) * b
    # A product, not a select, so non-finite gradients behave as in the reference.
    acc = acc * (s != 0).to(tl.float32)
    tl.store(out_ptr + base + r, _round_for(acc, out_ptr), mask=valid)


# --------------------------------------------------------------------------------------------
# Launch helpers
# --------------------------------------------------------------------------------------------


def _block_size(numel: int, element_size: int) -> int:
    """Elements per program: ``_BLOCK_BYTES`` of features, fewer for small images (at least 16).

    Example:
        >>> _block_size(16 * 2048 * 28 * 28, 4), _block_size(16 * 2048 * 28 * 28, 2)
        (2048, 4096)
        >>> _block_size(105, 4)
        128
    """
    return max(16, min(_BLOCK_BYTES // element_size, triton.next_power_of_2(max(numel, 1))))


def _layout(x: torch.Tensor) -> torch.memory_format | None:
    """The flat layout the kernels can walk ``x`` in, or ``None``."""
    if x.is_contiguous():
        return torch.contiguous_format
    if x.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return None


def _as_bytes(x: torch.Tensor) -> torch.Tensor:
    """Bool tensors go to the kernels as uint8 (same storage)."""
    return x.view(torch.uint8) if x.dtype == torch.bool else x


def _pixels(x: torch.Tensor) -> torch.Tensor:
    """A per-pixel ``(N, 1, h, w)`` tensor as a contiguous ``(N, h*w)`` one (a view when it can)."""
    return x.reshape(x.shape[0], x.shape[2] * x.shape[3]).contiguous()


def _device_guard(x: torch.Tensor) -> contextlib.AbstractContextManager:
    return torch.cuda.device(x.device) if x.is_cuda else contextlib.nullcontext()


def _launch_args(plane: int, element_size: int) -> tuple[int, int, int]:
    """Blocks per image, block size and row length for images of ``plane`` elements."""
    if plane >= 2**31 - _BLOCK_BYTES:
        raise ValueError(f"an image of the features must have < 2**31 elements, got {plane}")
    block = _block_size(plane, element_size)
    return triton.cdiv(plane, block), block, max(1, 16 // element_size)


def _magic(divisor: int) -> tuple[int, int]:
    """Multiplier and shift that turn ``x // divisor`` into a multiply-high, add and shift.

    For ``0 <= x < 2**31``: ``x // d == (umulhi(x, m) + x) >> s`` with ``s = ceil(log2(d))`` and
    ``m = 2**32 * (2**s - d) // d + 1`` (the unsigned 32-bit divider PyTorch uses for indexing on
    CUDA). ``m`` is returned as the signed 32-bit integer with the same bits.

    Example:
        >>> m, s = _magic(196)
        >>> x = 123456
        >>> (((x * (m % 2**32)) >> 32) + x) >> s == x // 196
        True
    """
    shift = (divisor - 1).bit_length()
    magic = ((1 << 32) * ((1 << shift) - divisor)) // divisor + 1
    return (magic - (1 << 32) if magic >= 1 << 31 else magic), shift


def _image_chunks(n: int) -> list[tuple[int, int]]:
    """Image ranges of at most ``_MAX_IMAGES`` (the grid's second dimension is limited)."""
    return [(i, min(n, i + _MAX_IMAGES)) for i in range(0, n, _MAX_IMAGES)]


def _rows(x: torch.Tensor, i0: int, i1: int) -> torch.Tensor:
    return x if i0 == 0 and i1 == x.shape[0] else x[i0:i1]


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
    rectify: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Fused forward: ``(x_b, x_c, sign, tmask, bmask)``, as :func:`seenet.ops._reference.forward`.

    Args:
        features: Backbone features (float32, float16 or bfloat16; float64 works too).
        attention: Erasing map, any float dtype.
        delta_high: Attention-zone threshold, a fraction of the per-image maximum.
        delta_low: Background-zone threshold of the ternary mask.
        delta_bg: Background threshold of the S_C mask.
        zero_background: Zero the background zone of ``x_b`` instead of flipping its sign.
        rectify: Multiply ``relu(f)`` (true, C-ReLU) or ``f`` itself (false; ``sign`` all true).

    Returns:
        ``x_b`` and ``x_c`` (features' dtype and layout), ``sign`` (bool, features' layout),
        ``tmask`` (int8) and ``bmask`` (bool), both contiguous.

    Raises:
        ValueError: If one image of the features has ``2**31`` elements or more.

    Shape:
        - features: :math:`(N, C, h, w)`; attention: :math:`(N, 1, h, w)`
        - x_b, x_c, sign: :math:`(N, C, h, w)`; tmask, bmask: :math:`(N, 1, h, w)`
    """
    n, c, h, w = features.shape
    x_b = torch.empty_like(features)
    x_c = torch.empty_like(features)
    sign = torch.empty_like(features, dtype=torch.bool)
    tmask = torch.empty((n, 1, h, w), dtype=torch.int8, device=features.device)
    bmask = torch.empty((n, 1, h, w), dtype=torch.bool, device=features.device)
    if n * h * w == 0:
        return x_b, x_c, sign, tmask, bmask
    if c == 0:  # no channels: the per-pixel masks alone, from a one-channel stand-in
        one = torch.zeros((n, 1, h, w), dtype=features.dtype, device=features.device)
        _, _, _, tmask, bmask = forward(
            one, attention, delta_high, delta_low, delta_bg, zero_background, rectify
        )
        return x_b, x_c, sign, tmask, bmask

    layout = _layout(x_b)
    xb_buf, xc_buf, sign_buf = x_b, x_c, sign
    if layout is None:  # empty_like kept an unusual dense layout: compute contiguous, copy back
        layout = torch.contiguous_format
        xb_buf = torch.empty(x_b.shape, dtype=x_b.dtype, device=x_b.device)
        xc_buf = torch.empty_like(xb_buf)
        sign_buf = torch.empty_like(xb_buf, dtype=torch.bool)
    f = features.contiguous(memory_format=layout)
    a = _pixels(attention)
    stats = torch.empty((n, 2), dtype=torch.float32, device=features.device)
    blocks, block, vec = _launch_args(c * h * w, f.element_size())
    args = (f, a, stats, xb_buf, xc_buf, _as_bytes(sign_buf), tmask, _as_bytes(bmask))

    with _device_guard(features):
        _image_stats_kernel[(n,)](
            a, stats, h * w,
            BLOCK=min(max(triton.next_power_of_2(h * w), 16), _STATS_BLOCK),
        )
        channels_last = layout == torch.channels_last
        for i0, i1 in _image_chunks(n):
            _forward_kernel[(blocks, i1 - i0)](
                *(_rows(x, i0, i1) for x in args),
                c, h * w, c * h * w, *_magic(c if channels_last else h * w),
                float(delta_high), float(delta_low), float(delta_bg),
                ZERO_BG=bool(zero_background),
                RECTIFY=bool(rectify),
                CHANNELS_LAST=channels_last,
                BLOCK=block,
                VEC=vec,
                num_warps=_NUM_WARPS,
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
    out = torch.empty_like(ref)
    if out.numel() == 0:
        return out

    layout = _layout(out)
    out_buf = out
    if layout is None:
        layout = torch.contiguous_format
        out_buf = torch.empty(out.shape, dtype=out.dtype, device=out.device)
    s = sign.contiguous(memory_format=layout)
    # An absent gradient is never loaded; the sign mask stands in for its pointer.
    gb = grad_b.contiguous(memory_format=layout) if grad_b is not None else s
    gc = grad_c.contiguous(memory_format=layout) if grad_c is not None else s
    blocks, block, vec = _launch_args(c * h * w, ref.element_size())
    args = (
        _as_bytes(gb), _as_bytes(gc), _as_bytes(s), _pixels(tmask), _as_bytes(_pixels(bmask)),
        out_buf,
    )

    channels_last = layout == torch.channels_last
    with _device_guard(sign):
        for i0, i1 in _image_chunks(n):
            _backward_kernel[(blocks, i1 - i0)](
                *(_rows(x, i0, i1) for x in args),
                c, h * w, c * h * w, *_magic(c if channels_last else h * w),
                HAS_GB=grad_b is not None,
                HAS_GC=grad_c is not None,
                CHANNELS_LAST=channels_last,
                BLOCK=block,
                VEC=vec,
                num_warps=_NUM_WARPS,
            )
    if out_buf is not out:
        out.copy_(out_buf)
    return out
