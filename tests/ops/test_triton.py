"""Triton kernels of ``seenet::self_erase`` against the reference, through Triton's CPU interpreter.

These run only in their own invocation, with the interpreter switched on before the kernel module
is imported (``make triton-test``)::

    TRITON_INTERPRET=1 python -m pytest -m triton_interpret tests

The kernels load every dtype, compute in float32 and round once, so they agree with the reference
bit for bit: every comparison below is exact (``rtol=atol=0``, NaN equal to NaN).
"""

from __future__ import annotations

import os

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

pytestmark = [
    pytest.mark.triton_interpret,
    pytest.mark.skipif(
        os.environ.get("TRITON_INTERPRET") != "1",
        reason="needs TRITON_INTERPRET=1 set before Triton is imported (make triton-test)",
    ),
]

triton = pytest.importorskip("triton")
tl = pytest.importorskip("triton.language")

from seenet.functional import self_erase  # noqa: E402
from seenet.ops import _reference as ref  # noqa: E402
from seenet.ops import _triton as tri  # noqa: E402
from seenet.ops._self_erase import self_erase_backward_op, self_erase_op  # noqa: E402

DTYPES = [torch.float32, torch.float16, torch.bfloat16]
# Odd sizes, size-1 dimensions, an image of more than one float32 block (2100 > 2048 elements).
SHAPES = [(1, 1, 1, 1), (2, 3, 5, 7), (3, 5, 1, 9), (2, 17, 4, 3), (1, 70, 6, 5)]
DELTAS = (0.7, 0.05, 0.375)


def _exact(actual, expected):
    assert actual.dtype == expected.dtype
    assert actual.shape == expected.shape
    torch.testing.assert_close(actual, expected, rtol=0, atol=0, equal_nan=True)


def _inputs(shape, dtype, layout=torch.contiguous_format):
    n, c, h, w = shape
    f = torch.randn(shape).to(dtype).to(memory_format=layout)
    # Ties with the thresholds included: quantised attention hits delta * max exactly.
    a = torch.randint(0, 21, (n, 1, h, w)).float() / 20
    a.view(n, -1)[:, 0] = 1.0  # every image has information
    return f, a.to(memory_format=layout)


def _check_forward(f, a, zero_background, deltas=DELTAS, rectify=True):
    got = tri.forward(f, a, *deltas, zero_background, rectify)
    want = ref.forward(f, a, *deltas, zero_background, rectify)
    for g, w in zip(got, want):
        _exact(g, w)
    return got


@pytest.mark.parametrize("zero_background", [False, True], ids=["flip", "zero"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_forward_matches_reference(dtype, shape, zero_background):
    f, a = _inputs(shape, dtype)
    x_b, x_c, sign, tmask, bmask = _check_forward(f, a, zero_background)
    assert sign.dtype == torch.bool and tmask.dtype == torch.int8 and bmask.dtype == torch.bool
    assert tmask.shape == bmask.shape == (shape[0], 1, shape[2], shape[3])


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_forward_without_rectify_matches_reference(dtype):
    f, a = _inputs((2, 5, 3, 7), dtype)
    x_b, x_c, sign, tmask, _ = _check_forward(f, a, False, rectify=False)
    assert bool(sign.all())
    assert torch.equal(x_b, f * tmask.to(dtype))


def test_forward_small_example_by_hand():
    f = torch.tensor([[[[1.0, -2.0, 3.0, 4.0, 5.0]]]])
    m = torch.tensor([[[[1.0, 0.5, 0.2, 0.0, 0.7]]]])
    x_b, x_c, sign, tmask, bmask = tri.forward(f, m, 0.7, 0.05, 0.375, False)
    assert tmask.flatten().tolist() == [0, 1, 1, -1, 0]
    assert bmask.flatten().tolist() == [False, False, True, True, False]
    assert x_b.flatten().tolist() == [0.0, 0.0, 3.0, -4.0, 0.0]
    assert x_c.flatten().tolist() == [0.0, 0.0, 3.0, 4.0, 0.0]
    assert sign.flatten().tolist() == [True, False, True, True, True]
    x_b0, *_ = tri.forward(f, m, 0.7, 0.05, 0.375, True)
    assert x_b0.flatten().tolist() == [0.0, 0.0, 3.0, 0.0, 0.0]


@pytest.mark.parametrize("grads", ["both", "b", "c"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_backward_matches_reference(dtype, grads):
    shape = (2, 5, 3, 7)
    f, a = _inputs(shape, dtype)
    _, _, sign, tmask, bmask = ref.forward(f, a, *DELTAS, False)
    g_b = torch.randn(shape).to(dtype) if grads in ("both", "b") else None
    g_c = torch.randn(shape).to(dtype) if grads in ("both", "c") else None
    _exact(tri.backward(g_b, g_c, sign, tmask, bmask), ref.backward(g_b, g_c, sign, tmask, bmask))


@pytest.mark.parametrize(
    "f_dtype, a_dtype",
    [
        (torch.float64, torch.float64),
        (torch.float16, torch.bfloat16),
        (torch.float32, torch.float16),
    ],
    ids=str,
)
def test_other_dtype_combinations(f_dtype, a_dtype):
    # float64 features stay exact; the map is always rounded to float32 first.
    f = torch.randn(2, 3, 4, 5, dtype=torch.float64).to(f_dtype)
    a = (torch.rand(2, 1, 4, 5, dtype=torch.float64) * 3).to(a_dtype)
    _, _, sign, tmask, bmask = _check_forward(f, a, False)
    g_b, g_c = torch.randn_like(f), torch.randn_like(f)
    _exact(tri.backward(g_b, g_c, sign, tmask, bmask), ref.backward(g_b, g_c, sign, tmask, bmask))


def test_backward_needs_a_gradient():
    sign = torch.ones(1, 2, 3, 3, dtype=torch.bool)
    t, b = torch.ones(1, 1, 3, 3, dtype=torch.int8), torch.ones(1, 1, 3, 3, dtype=torch.bool)
    with pytest.raises(ValueError, match="grad_b"):
        tri.backward(None, None, sign, t, b)


def test_saved_tensors_are_interchangeable_between_backends():
    f, a = _inputs((2, 4, 3, 5), torch.float32)
    g_b, g_c = torch.randn_like(f), torch.randn_like(f)
    saved_tri = tri.forward(f, a, *DELTAS, False)[2:]
    saved_ref = ref.forward(f, a, *DELTAS, False)[2:]
    want = ref.backward(g_b, g_c, *saved_ref)
    _exact(tri.backward(g_b, g_c, *saved_ref), want)
    _exact(ref.backward(g_b, g_c, *saved_tri), want)


@pytest.mark.parametrize("zero_background", [False, True], ids=["flip", "zero"])
def test_images_without_information(zero_background):
    n, c, h, w = 6, 3, 4, 5
    f = torch.randn(n, c, h, w)
    a = torch.rand(n, 1, h, w)
    a[0, 0, 0, :3] = torch.tensor([1.0, 0.5, 0.0])  # image 0 has all three zones
    a[1] = 0.0  # all zero
    a[2, 0, 1, 2] = float("nan")  # one NaN
    a[3, 0, 0, 0] = float("inf")  # one inf
    a[4] = -a[4]  # maximum below zero
    a[5] = float("nan")  # all NaN
    x_b, x_c, sign, tmask, bmask = _check_forward(f, a, zero_background)
    # Image 0 carries information: its masks take all their values somewhere.
    assert set(tmask[0].unique().tolist()) == ({0, 1} if zero_background else {-1, 0, 1})
    # The others: ternary mask all ones (C-ReLU = ReLU), background mask all zeros.
    assert (tmask[1:] == 1).all() and not bmask[1:].any()
    _exact(x_b[1:], torch.relu(f[1:]))
    _exact(x_c[1:], torch.zeros_like(f[1:]))
    g = torch.randn_like(f)
    grad = tri.backward(g, g, sign, tmask, bmask)
    _exact(grad[1:], g[1:] * (f[1:] > 0))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_channels_last(dtype):
    shape = (2, 6, 3, 5)
    f, a = _inputs(shape, dtype, torch.channels_last)
    x_b, x_c, sign, tmask, bmask = _check_forward(f, a, False)
    for out in (x_b, x_c, sign):
        assert out.is_contiguous(memory_format=torch.channels_last)
    g_b = torch.randn(shape).to(dtype).to(memory_format=torch.channels_last)
    g_c = torch.randn(shape).to(dtype)  # mixed layouts
    grad = tri.backward(g_b, g_c, sign, tmask, bmask)
    _exact(grad, ref.backward(g_b, g_c, sign, tmask, bmask))
    assert grad.is_contiguous(memory_format=torch.channels_last)


def test_layout_that_needs_a_copy():
    # Height and width strides that cannot be merged into one pixel stride.
    f = torch.randn(2, 3, 7, 5).transpose(2, 3)
    a = torch.rand(2, 1, 7, 5).transpose(2, 3)
    x_b, *_ = _check_forward(f, a, False)
    assert x_b.stride() == torch.empty_like(f).stride()  # what the fake kernel promises


def test_expanded_and_sliced_gradients():
    f, a = _inputs((2, 4, 3, 5), torch.float32)
    _, _, sign, tmask, bmask = tri.forward(f, a, *DELTAS, False)
    g_b = torch.ones(()).expand(f.shape)  # from x_b.sum().backward(): all strides zero
    g_c = torch.randn(2, 8, 3, 5)[:, ::2]  # channel stride 2
    _exact(tri.backward(g_b, g_c, sign, tmask, bmask), ref.backward(g_b, g_c, sign, tmask, bmask))


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_bfloat16_rounding_is_round_to_nearest_even():
    # Both zones active everywhere (t = b = sign = 1): the kernel must round g_b + g_c once, to
    # nearest even, like PyTorch, including overflow to inf, NaN and subnormals.
    n = 257
    base = torch.randn(n) * torch.logspace(-38, 38, n)
    g_b = base.to(torch.bfloat16)
    g_c = (base * 0.3 + torch.randn(n)).to(torch.bfloat16)
    g_b[:4] = torch.tensor([3.3e38, float("nan"), 1e-39, 1.0])
    g_c[:4] = torch.tensor([3.3e38, 1.0, 1.5e-39, 2.0**-8])
    shape = (1, 1, 1, n)
    sign = torch.ones(shape, dtype=torch.bool)
    t, b = torch.ones(shape, dtype=torch.int8), torch.ones(shape, dtype=torch.bool)
    got = tri.backward(g_b.view(shape), g_c.view(shape), sign, t, b)
    want = (g_b.float() + g_c.float()).to(torch.bfloat16).view(shape)
    _exact(got, want)
    assert got.view(-1)[0] == float("inf") and got.view(-1)[1].isnan()


def test_empty_tensors():
    for shape in [(0, 3, 4, 4), (2, 3, 0, 4), (2, 3, 4, 0)]:
        n, c, h, w = shape
        x_b, x_c, sign, tmask, bmask = tri.forward(
            torch.randn(shape), torch.rand(n, 1, h, w), *DELTAS, False
        )
        assert x_b.shape == x_c.shape == sign.shape == shape
        assert tmask.shape == bmask.shape == (n, 1, h, w)
    # No channels: the per-pixel masks are still computed.
    f, a = torch.randn(2, 0, 3, 3), torch.rand(2, 1, 3, 3)
    _check_forward(f, a, False)


def test_bfloat16_subnormal_features():
    f = torch.tensor([1e-39, -1e-39, 2.5e-39, 9e-41, 1.0, 3e38]).to(torch.bfloat16)
    a = torch.tensor([0.1, 0.5, 0.01, 0.2, 1.0, 0.3])
    _check_forward(f.view(1, 1, 2, 3), a.view(1, 1, 2, 3), False)


@pytest.mark.parametrize("chunks", [False, True], ids=["one-launch", "image-chunks"])
@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "nhwc"])
def test_many_programs(monkeypatch, channels_last, chunks):
    # 16-element blocks: channels and pixels straddle program boundaries. With chunks, the images
    # go in launches of two (as batches of more than 65535 images do).
    monkeypatch.setattr(tri, "_BLOCK_BYTES", 64)
    if chunks:
        monkeypatch.setattr(tri, "_MAX_IMAGES", 2)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    f, a = _inputs((5, 7, 5, 3), torch.float32, layout)
    assert tri._launch_args(7 * 5 * 3, 4) == (7, 16, 4)  # 105 elements per image
    _, _, sign, tmask, bmask = _check_forward(f, a, False)
    g_b, g_c = torch.randn_like(f), torch.randn_like(f)
    _exact(tri.backward(g_b, g_c, sign, tmask, bmask), ref.backward(g_b, g_c, sign, tmask, bmask))


@settings(max_examples=25)
@given(
    n=st.integers(1, 3),
    c=st.integers(1, 9),
    h=st.integers(1, 6),
    w=st.integers(1, 6),
    dtype=st.sampled_from(DTYPES),
    channels_last=st.booleans(),
    zero_background=st.booleans(),
    deltas=st.tuples(st.floats(0.0, 1.0), st.floats(0.0, 1.0), st.floats(0.0, 1.0)),
    seed=st.integers(0, 2**16),
)
def test_any_shape_matches_reference(
    n, c, h, w, dtype, channels_last, zero_background, deltas, seed
):
    torch.manual_seed(seed)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    f, a = _inputs((n, c, h, w), dtype, layout)
    high, low = max(deltas[:2]), min(deltas[:2])
    _, _, sign, tmask, bmask = _check_forward(f, a, zero_background, (high, low, deltas[2]))
    g_b, g_c = torch.randn_like(f), torch.randn_like(f)
    _exact(tri.backward(g_b, g_c, sign, tmask, bmask), ref.backward(g_b, g_c, sign, tmask, bmask))


@pytest.mark.parametrize("background", ["flip", "zero"])
def test_self_erase_with_triton_backend_matches_reference_backend(background):
    f = torch.randn(2, 4, 5, 3)
    m = torch.rand(2, 1, 5, 3)
    m[1] = 0.0
    w_b, w_c = torch.randn_like(f), torch.randn_like(f)
    results = {}
    for backend in ("triton", "reference"):
        x = f.clone().requires_grad_()
        x_b, x_c = self_erase(x, m, background=background, backend=backend)
        ((x_b * w_b).sum() + (x_c * w_c).sum()).backward()
        results[backend] = (x_b.detach(), x_c.detach(), x.grad)
    for got, want in zip(results["triton"], results["reference"]):
        _exact(got, want)


def test_self_erase_with_one_branch_used():
    f = torch.randn(2, 3, 4, 4)
    m = torch.rand(2, 1, 4, 4)
    for use in (0, 1):  # only x_b, then only x_c: the other gradient is None
        grads = []
        for backend in ("triton", "reference"):
            x = f.clone().requires_grad_()
            out = self_erase(x, m, backend=backend)[use]
            (out * torch.arange(out.numel()).view_as(out)).sum().backward()
            grads.append(x.grad)
        _exact(*grads)


def test_backend_env_var_selects_triton(monkeypatch):
    calls = []
    real = tri.forward

    def spy(*args):
        calls.append(args[0].shape)
        return real(*args)

    monkeypatch.setattr(tri, "forward", spy)
    monkeypatch.setenv("SEENET_BACKEND", "triton")
    self_erase(torch.randn(1, 2, 3, 3), torch.rand(1, 1, 3, 3))
    assert calls == [torch.Size([1, 2, 3, 3])]


@pytest.mark.parametrize("channels_last", [False, True])
def test_opcheck_triton_backend(channels_last):
    f = torch.randn(2, 3, 4, 5)
    if channels_last:
        f = f.to(memory_format=torch.channels_last)
    f.requires_grad_()
    m = torch.rand(2, 1, 4, 5)
    torch.library.opcheck(self_erase_op, (f, m, 0.7, 0.05, 0.375, False, True, "triton"))
    _, _, sign, tmask, bmask = tri.forward(f.detach(), m, *DELTAS, False)
    g = torch.randn(f.shape)
    torch.library.opcheck(self_erase_backward_op, (g, None, sign, tmask, bmask, "triton"))


def test_compile_fullgraph_triton_backend():
    def step(x, m):
        x_b, x_c = self_erase(x, m, backend="triton")
        return (x_b * x_b).sum() + x_c.sum()

    f = torch.randn(2, 3, 4, 4, requires_grad=True)
    m = torch.rand(2, 1, 4, 4)
    m[0] = float("nan")
    loss = torch.compile(step, fullgraph=True, backend="aot_eager")(f, m)
    loss.backward()
    got = f.grad.clone()
    f.grad = None
    want = step(f, m)
    want.backward()
    _exact(loss.detach(), want.detach())
    _exact(got, f.grad)


@triton.jit
def _divmod_kernel(x_ptr, q_ptr, r_ptr, d, magic, shift, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    q, r = tri._divmod(tl.load(x_ptr + offs), d, magic, shift)
    tl.store(q_ptr + offs, q)
    tl.store(r_ptr + offs, r)


_divmod_kernel = triton.jit(_divmod_kernel.fn, do_not_specialize=["magic", "shift"])


@pytest.mark.parametrize("d", [1, 2, 3, 7, 196, 784, 1681, 2048, 65535, 2**31 - 1])
def test_magic_number_division(d):
    x = torch.cat([
        torch.tensor([0, 1, d - 1, d, d + 1, 2**31 - 1, 2**31 - 2, (2**31 - 1) // d * d]),
        torch.randint(0, 2**31 - 1, (56,)),
    ]).clamp(0, 2**31 - 1).to(torch.int32)
    q, r = torch.empty_like(x), torch.empty_like(x)
    _divmod_kernel[(1,)](x, q, r, d, *tri._magic(d), BLOCK=64)
    assert torch.equal(q, x // d) and torch.equal(r, x % d)


def test_block_size():
    for numel in (1, 7, 100, 2**12, 16 * 2048 * 784):
        for size in (1, 2, 4, 8):
            block = tri._block_size(numel, size)
            assert block & (block - 1) == 0 and block >= 16
            assert block * size <= max(tri._BLOCK_BYTES, 16 * size)
            assert block >= min(numel, tri._BLOCK_BYTES // size)  # one program when it fits
