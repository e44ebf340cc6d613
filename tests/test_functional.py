"""The erasing ops against obvious references written from the paper's equations (SPEC 1.1-1.5)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import seenet
from seenet.functional import c_relu, class_agnostic_attention, self_erase, ternary_mask

# --------------------------------------------------------------------------------------------------
# Literal references: per-image, per-pixel loops over Python floats, straight from the equations.


def ref_erasing_map(cams, labels, normalize="max"):
    n, k, h, w = cams.shape
    out = np.zeros((n, 1, h, w))
    for i in range(n):
        for c in range(k):
            if not labels[i, c]:
                continue
            a = np.maximum(cams[i, c].astype(np.float64), 0.0)
            hi, lo = a.max(), a.min()
            if normalize == "max":
                norm = a / hi if hi > 0 else np.zeros_like(a)
            else:
                norm = (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
            out[i, 0] = np.maximum(out[i, 0], norm)
    return out


def ref_zones(m, dh, dl, dbg):
    """Ternary T and background B of one image map m (h, w), thresholds relative to its maximum."""
    mx = float(np.max(m))
    finite = bool(np.all(np.isfinite(m)))
    t = np.ones(m.shape, dtype=np.int64)
    b = np.zeros(m.shape, dtype=np.int64)
    if not finite or not mx > 0:
        return t, b  # no information
    for idx in np.ndindex(m.shape):
        v = float(m[idx])
        if v >= np.float32(dh) * np.float32(mx):
            t[idx] = 0
        elif v < np.float32(dl) * np.float32(mx):
            t[idx] = -1
        b[idx] = 1 if v < np.float32(dbg) * np.float32(mx) else 0
    return t, b


def ref_self_erase(f, m, dh=0.7, dl=0.05, dbg=None, background="flip", rectify=True):
    dbg = (dh + dl) / 2 if dbg is None else dbg
    n, c, h, w = f.shape
    xb = np.zeros(f.shape)
    xc = np.zeros(f.shape)
    for i in range(n):
        t, b = ref_zones(m[i, 0], dh, dl, dbg)
        if background == "zero":
            t = np.where(t < 0, 0, t)
        for ch in range(c):
            for y in range(h):
                for x in range(w):
                    v = float(f[i, ch, y, x])
                    r = max(v, 0.0) if rectify else v
                    xb[i, ch, y, x] = r * t[y, x]
                    xc[i, ch, y, x] = r * b[y, x]
    return xb, xc


def ref_grad(f, m, gb, gc, dh=0.7, dl=0.05, dbg=None, background="flip", rectify=True):
    """d/dF of sum(gb * x_b + gc * x_c) = (gb*T + gc*B) * [F > 0] (no [F > 0] without rectify)."""
    dbg = (dh + dl) / 2 if dbg is None else dbg
    out = np.zeros(f.shape)
    for i in range(f.shape[0]):
        t, b = ref_zones(m[i, 0], dh, dl, dbg)
        if background == "zero":
            t = np.where(t < 0, 0, t)
        out[i] = (gb[i] * t + gc[i] * b) * ((f[i] > 0) if rectify else 1)
    return out


SHAPES = [(1, 1, 1, 1), (2, 3, 5, 7), (3, 4, 6, 6), (1, 5, 9, 3)]


def _noncontig(x):
    """Same values, non-contiguous storage (a transposed copy transposed back)."""
    y = x.transpose(-1, -2).contiguous().transpose(-1, -2)
    assert not y.is_contiguous() or min(x.shape[-2:]) == 1
    return y


# --------------------------------------------------------------------------------------------------
# class_agnostic_attention


@pytest.mark.parametrize("normalize", ["max", "minmax"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_erasing_map_matches_reference(normalize, dtype):
    cams = torch.randn(3, 4, 5, 6, dtype=dtype) * 3
    labels = torch.tensor([[1, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]])
    got = class_agnostic_attention(cams, labels, normalize=normalize)
    want = ref_erasing_map(cams.numpy(), labels.numpy(), normalize)
    assert got.shape == (3, 1, 5, 6) and got.dtype == dtype
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=1e-7)
    assert got.min() >= 0 and got.max() <= 1
    assert torch.all(got[2] == 0)  # no labels: no information


def test_erasing_map_is_detached_and_ignores_unlabelled_nan():
    cams = torch.randn(2, 3, 4, 4, requires_grad=True)
    got = class_agnostic_attention(cams, torch.eye(2, 3))
    assert not got.requires_grad
    poisoned = cams.detach().clone()
    poisoned[:, 2] = float("nan")  # class 2 is never labelled
    assert torch.isfinite(class_agnostic_attention(poisoned, torch.eye(2, 3))).all()
    poisoned[0, 0, 0, 0] = float("nan")  # a labelled class: the image carries no information
    assert not torch.isfinite(class_agnostic_attention(poisoned, torch.eye(2, 3))[0]).all()


def test_erasing_map_each_class_normalised_separately():
    cams = torch.zeros(1, 2, 1, 2)
    cams[0, 0, 0] = torch.tensor([1.0, 0.5])
    cams[0, 1, 0] = torch.tensor([10.0, 40.0])
    got = class_agnostic_attention(cams, torch.ones(1, 2))
    assert got.flatten().tolist() == [1.0, 1.0]


# --------------------------------------------------------------------------------------------------
# ternary_mask


@pytest.mark.parametrize("shape", SHAPES)
def test_ternary_matches_reference(shape):
    n, _, h, w = shape
    m = torch.rand(n, 1, h, w)
    got = ternary_mask(m, 0.6, 0.1)
    assert got.dtype == torch.int8 and got.shape == (n, 1, h, w)
    for i in range(n):
        t, _ = ref_zones(m[i, 0].numpy(), 0.6, 0.1, 0.35)
        np.testing.assert_array_equal(got[i, 0].numpy(), t)


def test_ternary_boundaries_are_inclusive_high_exclusive_low():
    m = torch.tensor([[[[1.0, 0.7, 0.6999, 0.05, 0.0499, 0.0]]]])
    assert ternary_mask(m).flatten().tolist() == [0, 0, 1, 1, -1, -1]


def test_ternary_no_information_per_image():
    m = torch.rand(4, 1, 3, 3)
    m[1] = 0
    m[2, 0, 1, 1] = float("nan")
    m[3, 0, 0, 0] = float("inf")
    t = ternary_mask(m)
    assert (t[1:] == 1).all()
    assert (t[0] == 0).any()  # the first image keeps its zones


@given(
    values=st.lists(st.floats(0, 1, width=32), min_size=6, max_size=6),
    high=st.floats(0, 1),
    low=st.floats(0, 1),
    exponent=st.integers(-20, 20),
)
def test_property_zones_partition_and_scale_invariance(values, high, low, exponent):
    high, low = max(high, low), min(high, low)
    m = torch.tensor(values).view(1, 1, 2, 3)
    t = ternary_mask(m, high, low)
    # every pixel lands in exactly one zone
    zones = torch.stack([t == 0, t == 1, t == -1])
    assert (zones.sum(0) == 1).all()
    # a positive scale of the map changes no mask (powers of two scale exactly in floating point)
    assert torch.equal(ternary_mask(m * 2.0**exponent, high, low), t)
    f = torch.randn(1, 2, 2, 3)
    for a, b in zip(self_erase(f, m, high, low), self_erase(f, m * 2.0**exponent, high, low)):
        assert torch.equal(a, b)


# --------------------------------------------------------------------------------------------------
# c_relu


@given(
    x=st.lists(st.floats(-100, 100, width=32), min_size=8, max_size=8),
    t=st.lists(st.sampled_from([-1, 0, 1]), min_size=8, max_size=8),
)
def test_property_c_relu_zones(x, t):
    xs = torch.tensor(x).view(1, 2, 2, 2)
    ts = torch.tensor(t, dtype=torch.int8).view(1, 2, 2, 2)
    y = c_relu(xs, ts)
    relu = torch.relu(xs)
    assert torch.equal(y[ts == 1], relu[ts == 1])
    assert (y[ts == 0] == 0).all()
    assert torch.equal(y[ts == -1], -relu[ts == -1])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_c_relu_broadcast_and_dtype(dtype):
    x = torch.randn(2, 3, 4, 5, dtype=dtype)
    mask = torch.randint(-1, 2, (2, 1, 4, 5), dtype=torch.int8)
    y = c_relu(x, mask)
    assert y.dtype == dtype
    torch.testing.assert_close(y, torch.clamp(x, min=0) * mask.to(dtype))


def test_c_relu_gradcheck():
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    mask = torch.randint(-1, 2, (2, 1, 4, 4)).double()
    assert torch.autograd.gradcheck(lambda v: c_relu(v, mask), (x,))


# --------------------------------------------------------------------------------------------------
# self_erase: forward, backward, dtypes, layouts


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("background", ["flip", "zero"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("contiguous", [True, False])
@pytest.mark.parametrize("rectify", [True, False], ids=["crelu", "linear"])
def test_self_erase_forward_backward(shape, background, dtype, contiguous, rectify):
    f = torch.randn(*shape, dtype=dtype)
    m = torch.rand(shape[0], 1, *shape[2:], dtype=dtype)
    if contiguous is False:
        f, m = _noncontig(f), _noncontig(m)
    f.requires_grad_()
    x_b, x_c = self_erase(f, m, 0.7, 0.05, None, background, rectify=rectify)
    want_b, want_c = ref_self_erase(
        f.detach().numpy(), m.numpy(), background=background, rectify=rectify
    )
    np.testing.assert_array_equal(x_b.detach().numpy(), want_b)
    np.testing.assert_array_equal(x_c.detach().numpy(), want_c)
    assert x_b.dtype == dtype and x_c.dtype == dtype
    gb, gc = torch.randn_like(x_b), torch.randn_like(x_c)
    torch.autograd.backward((x_b, x_c), (gb, gc))
    want = ref_grad(
        f.detach().numpy(), m.numpy(), gb.numpy(), gc.numpy(), background=background,
        rectify=rectify,
    )
    np.testing.assert_allclose(f.grad.numpy(), want, rtol=1e-6, atol=1e-6)


def test_self_erase_large_tensor_matches_reference():
    f = torch.randn(2, 300, 33, 35, requires_grad=True)
    m = torch.rand(2, 1, 33, 35)
    x_b, x_c = self_erase(f, m)
    t = ternary_mask(m).float()
    b = (m < 0.375 * m.amax(dim=(2, 3), keepdim=True)).float()
    torch.testing.assert_close(x_b, torch.relu(f) * t, rtol=0, atol=0)
    torch.testing.assert_close(x_c, torch.relu(f) * b, rtol=0, atol=0)
    gb, gc = torch.randn_like(x_b), torch.randn_like(x_c)
    torch.autograd.backward((x_b, x_c), (gb, gc))
    torch.testing.assert_close(f.grad, (gb * t + gc * b) * (f > 0), rtol=1e-6, atol=1e-6)


def test_self_erase_delta_bg_and_zero_background():
    f = torch.ones(1, 1, 1, 5)
    m = torch.tensor([[[[1.0, 0.5, 0.2, 0.04, 0.0]]]])
    x_b, x_c = self_erase(f, m)  # delta_bg = 0.375
    assert x_b.flatten().tolist() == [0, 1, 1, -1, -1]
    assert x_c.flatten().tolist() == [0, 0, 1, 1, 1]
    x_b, x_c = self_erase(f, m, delta_bg=0.05, background="zero")
    assert x_b.flatten().tolist() == [0, 1, 1, 0, 0]
    assert x_c.flatten().tolist() == [0, 0, 0, 1, 1]


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_self_erase_low_precision_keeps_dtype(dtype):
    f = torch.randn(2, 3, 4, 4).to(dtype).requires_grad_()
    m = torch.rand(2, 1, 4, 4)  # float32 map with low-precision features
    x_b, x_c = self_erase(f, m)
    assert x_b.dtype == dtype and x_c.dtype == dtype
    t = ternary_mask(m).to(dtype)
    torch.testing.assert_close(x_b, torch.relu(f) * t, rtol=0, atol=0)
    (x_b.float().sum() + x_c.float().sum()).backward()
    assert f.grad.dtype == dtype


def test_self_erase_no_information_image_is_plain_relu():
    f = torch.randn(3, 2, 4, 4)
    m = torch.rand(3, 1, 4, 4)
    m[0] = 0
    m[1, 0, 2, 2] = float("nan")
    x_b, x_c = self_erase(f, m)
    for i in (0, 1):
        assert torch.equal(x_b[i], torch.relu(f[i]))
        assert (x_c[i] == 0).all()
    assert not torch.equal(x_b[2], torch.relu(f[2]))


def test_self_erase_channels_last():
    f = torch.randn(2, 6, 5, 5).to(memory_format=torch.channels_last).requires_grad_()
    m = torch.rand(2, 1, 5, 5)
    x_b, x_c = self_erase(f, m)
    want_b, want_c = ref_self_erase(f.detach().numpy(), m.numpy())
    np.testing.assert_array_equal(x_b.detach().numpy(), want_b)
    (x_b.sum() + 2 * x_c.sum()).backward()
    want = ref_grad(f.detach().numpy(), m.numpy(), np.ones(f.shape), 2 * np.ones(f.shape))
    np.testing.assert_allclose(f.grad.numpy(), want)


def test_self_erase_attention_gets_no_gradient_and_one_output_backward():
    f = torch.randn(2, 3, 4, 4, requires_grad=True)
    m = torch.rand(2, 1, 4, 4, requires_grad=True)
    x_b, x_c = self_erase(f, m)
    x_b.sum().backward()  # only one of the two outputs used
    t = ternary_mask(m.detach()).float()
    torch.testing.assert_close(f.grad, t * (f > 0))
    assert m.grad is None
    f.grad = None
    _, x_c = self_erase(f, m)
    x_c.sum().backward()
    b = (m < 0.375 * m.amax(dim=(2, 3), keepdim=True)).float()
    torch.testing.assert_close(f.grad, b * (f > 0))


def test_self_erase_gradcheck_float64():
    f = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    # keep away from the kink of the ReLU
    f = torch.where(f.abs() < 1e-3, torch.full_like(f, 0.5), f).requires_grad_()
    m = torch.rand(2, 1, 4, 5, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: self_erase(x, m), (f,))
    assert torch.autograd.gradcheck(lambda x: self_erase(x, m, background="zero"), (f,))


def test_self_erase_saves_one_byte_per_feature_element():
    f = torch.randn(2, 8, 6, 6, requires_grad=True)
    m = torch.rand(2, 1, 6, 6)
    saved = []

    def pack(t):
        saved.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        self_erase(f, m)
    big = [t for t in saved if t.numel() == f.numel()]
    assert len(big) == 1 and big[0].element_size() == 1
    small = sum(t.numel() * t.element_size() for t in saved if t.numel() != f.numel())
    assert small <= 2 * m.numel()


def test_module_wrappers_equal_functionals():
    x = torch.randn(2, 3, 4, 4)
    m = torch.rand(2, 1, 4, 4)
    t = seenet.TernaryMask(0.6, 0.1)(m)
    assert torch.equal(t, ternary_mask(m, 0.6, 0.1))
    assert torch.equal(seenet.CReLU()(x, t), c_relu(x, t))
    assert "delta_high=0.6" in repr(seenet.TernaryMask(0.6, 0.1))


# --------------------------------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: self_erase(torch.randn(2, 3, 4), torch.rand(2, 1, 4, 4)), "features"),
        (lambda: self_erase(torch.randn(2, 3, 4, 4), torch.rand(2, 2, 4, 4)), "attention"),
        (lambda: self_erase(torch.randn(2, 3, 4, 4), torch.rand(3, 1, 4, 4)), "batch size"),
        (lambda: self_erase(torch.randn(2, 3, 4, 4), torch.rand(2, 1, 4, 5)), "spatial size"),
        (lambda: self_erase(torch.randn(1, 1, 2, 2), torch.rand(1, 1, 2, 2), 0.1, 0.5),
         "delta_low"),
        (lambda: self_erase(torch.randn(1, 1, 2, 2), torch.rand(1, 1, 2, 2), 1.5), "delta_high"),
        (lambda: self_erase(torch.randn(1, 1, 2, 2), torch.rand(1, 1, 2, 2), delta_bg=-0.1),
         "delta_bg"),
        (lambda: self_erase(torch.randn(1, 1, 2, 2), torch.rand(1, 1, 2, 2), background="x"),
         "background"),
        (lambda: self_erase(torch.randn(1, 1, 2, 2), torch.rand(1, 1, 2, 2), backend="cuda"),
         "backend"),
        (lambda: self_erase(torch.ones(1, 1, 2, 2, dtype=torch.long), torch.rand(1, 1, 2, 2)),
         "floating-point"),
        (lambda: ternary_mask(torch.rand(1, 2, 2, 2)), "attention"),
        (lambda: ternary_mask(torch.rand(1, 1, 0, 2)), "non-empty"),
        (lambda: ternary_mask(torch.rand(1, 1, 2, 2), 0.7, math.nan), "delta_low"),
        (lambda: class_agnostic_attention(torch.rand(2, 3, 4, 4), torch.ones(2, 4)), "labels"),
        (lambda: class_agnostic_attention(torch.rand(2, 3, 4), torch.ones(2, 3)), "cams"),
        (lambda: class_agnostic_attention(torch.rand(2, 3, 4, 4), torch.ones(2, 3), "l2"),
         "normalize"),
        (lambda: c_relu(torch.randn(2, 3, 4, 4), torch.ones(3, 1, 4, 4)), "broadcast"),
        (lambda: seenet.TernaryMask(0.2, 0.3), "delta_low"),
    ],
)
def test_bad_input_raises_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()
