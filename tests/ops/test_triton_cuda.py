"""Triton kernels of ``seenet::self_erase`` on a CUDA device: parity, opcheck, torch.compile.

Skipped without a GPU (the ``cuda`` marker). The same parity is proven on CPU tensors through
Triton's interpreter in ``test_triton.py``. Comparisons are exact: the kernels compute in float32
and round once, like the reference.
"""

from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.cuda

pytest.importorskip("triton")

from seenet.functional import self_erase  # noqa: E402
from seenet.ops import _reference as ref  # noqa: E402
from seenet.ops import _triton as tri  # noqa: E402
from seenet.ops import resolve_backend  # noqa: E402
from seenet.ops._self_erase import self_erase_backward_op, self_erase_op  # noqa: E402

DEVICE = "cuda"
DTYPES = [torch.float32, torch.float16, torch.bfloat16]
# Odd sizes, then the benchmark's VGG16 conv5 shape and a cut-down large one.
SHAPES = [(1, 1, 1, 1), (3, 5, 1, 9), (2, 17, 4, 3), (3, 300, 7, 5)]
LARGE_SHAPES = [(16, 512, 14, 14), (2, 2048, 28, 28)]
DELTAS = (0.7, 0.05, 0.375)


def _exact(actual, expected):
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    torch.testing.assert_close(actual, expected, rtol=0, atol=0, equal_nan=True)


def _inputs(shape, dtype, layout=torch.contiguous_format):
    n, c, h, w = shape
    g = torch.Generator().manual_seed(sum(shape))
    f = torch.randn(shape, generator=g).to(DEVICE, dtype).to(memory_format=layout)
    a = torch.randint(0, 21, (n, 1, h, w), generator=g).float() / 20  # ties with thresholds
    a.view(n, -1)[:, 0] = 1.0
    return f, a.to(DEVICE).to(memory_format=layout)


def _check(f, a, zero_background):
    got = tri.forward(f, a, *DELTAS, zero_background)
    want = ref.forward(f, a, *DELTAS, zero_background)
    for g, w in zip(got, want):
        _exact(g, w)
    _, _, sign, tmask, bmask = got
    g_b, g_c = torch.randn_like(f), torch.randn_like(f)
    for pair in ((g_b, g_c), (g_b, None), (None, g_c)):
        _exact(tri.backward(*pair, sign, tmask, bmask), ref.backward(*pair, sign, tmask, bmask))


@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "nhwc"])
@pytest.mark.parametrize("zero_background", [False, True], ids=["flip", "zero"])
@pytest.mark.parametrize("shape", SHAPES + LARGE_SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_parity_with_reference(dtype, shape, zero_background, channels_last):
    layout = torch.channels_last if channels_last else torch.contiguous_format
    f, a = _inputs(shape, dtype, layout)
    _check(f, a, zero_background)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_images_without_information(dtype):
    f, a = _inputs((5, 7, 6, 5), dtype)
    a[1] = 0.0
    a[2, 0, 3, 1] = float("nan")
    a[3, 0, 0, 0] = float("inf")
    a[4] = -1.0
    _check(f, a, False)
    _, _, _, tmask, bmask = tri.forward(f, a, *DELTAS, False)
    assert (tmask[1:] == 1).all() and not bmask[1:].any()


def test_auto_backend_picks_triton_for_cuda_tensors(monkeypatch):
    monkeypatch.delenv("SEENET_BACKEND", raising=False)
    assert resolve_backend("auto", torch.zeros(1, device=DEVICE)) == "triton"
    monkeypatch.setenv("SEENET_BACKEND", "reference")
    assert resolve_backend("auto", torch.zeros(1, device=DEVICE)) == "reference"


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "nhwc"])
def test_opcheck(dtype, channels_last):
    layout = torch.channels_last if channels_last else torch.contiguous_format
    f, a = _inputs((2, 6, 5, 7), dtype, layout)
    for zero_background in (False, True):
        torch.library.opcheck(
            self_erase_op,
            (f.clone().requires_grad_(), a, *DELTAS, zero_background, True, "triton"),
        )
    _, _, sign, tmask, bmask = tri.forward(f, a, *DELTAS, False)
    g = torch.randn_like(f)
    for pair in ((g, g), (g, None), (None, g)):
        torch.library.opcheck(self_erase_backward_op, (*pair, sign, tmask, bmask, "triton"))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_compile_fullgraph(dtype):
    def step(x, m):
        x_b, x_c = self_erase(x, m)  # "auto": Triton for CUDA tensors
        return (x_b.float() * 2).sum() + x_c.float().square().sum()

    f, m = _inputs((2, 8, 5, 6), dtype)
    m[1] = 0.0
    x = f.clone().requires_grad_()
    loss = torch.compile(step, fullgraph=True, backend="aot_eager")(x, m)
    loss.backward()
    y = f.clone().requires_grad_()
    want = step(y, m)
    want.backward()
    _exact(loss.detach(), want.detach())
    _exact(x.grad, y.grad)
