"""Saliency metrics: agreement with pysodmetrics, hand-computed values, accumulation, inputs."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from seenet.metrics.saliency import (
    SaliencyMeter,
    binarize_ground_truth,
    f_measure_curve,
    mae,
    normalize_prediction,
    quantize_prediction,
    s_measure,
)

sod = pytest.importorskip("py_sod_metrics")


def reference(preds_u8, gts_u8, normalize=True):
    """pysodmetrics' MAE, max F (both F-measure classes) and S-measure over a list of maps."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Fmeasure's deprecation notice
        fm, sm, em = sod.Fmeasure(), sod.Smeasure(), sod.MAE()
    fm2 = sod.FmeasureV2(
        metric_handlers={"fm": sod.FmeasureHandler(with_dynamic=True, with_adaptive=False)}
    )
    for p, g in zip(preds_u8, gts_u8):
        if normalize:
            args = (p, g)
        else:
            args = (p / 255, g > 128)
        for metric in (fm, sm, em, fm2):
            metric.step(*args, normalize=normalize)
    curve = fm.get_results()["fm"]["curve"]
    curve2 = fm2.get_results()["fm"]["dynamic"]
    return {
        "mae": float(em.get_results()["mae"]),
        "max_f": float(curve.max()),
        "s_measure": float(sm.get_results()["sm"]),
        "max_f_v2": float(curve2.max()),
        "curve": curve[::-1],  # pysodmetrics orders thresholds 255 .. 0
    }


def ellipse(h, w, cy, cx, ry, rx):
    yy, xx = np.mgrid[0:h, 0:w]
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1


def structured_cases(rng):
    """Predictions that look like a detector's: blurred, noisy, shifted versions of the mask."""
    cases = []
    for h, w in ((23, 31), (40, 40), (17, 64)):
        gt = ellipse(h, w, h * rng.uniform(0.3, 0.7), w * rng.uniform(0.3, 0.7), h / 4, w / 5)
        shifted = np.roll(gt, (1, 2), axis=(0, 1)).astype(np.float64)
        pred = np.clip(0.8 * shifted + 0.25 * rng.random((h, w)), 0, 1)
        cases.append((pred, gt))
    # one more with two objects and a faint false positive
    gt = ellipse(30, 30, 8, 8, 5, 5) | ellipse(30, 30, 20, 22, 6, 4)
    pred = 0.9 * gt + 0.3 * ellipse(30, 30, 25, 5, 3, 3)
    cases.append((np.clip(pred, 0, 1), gt))
    return cases


def random_cases(rng):
    cases = []
    for h, w in ((8, 8), (13, 21), (32, 5)):
        pred = rng.random((h, w))
        gt = rng.random((h, w)) < rng.uniform(0.2, 0.6)
        cases.append((pred, gt))
    return cases


def check_against_reference(cases, normalize=True):
    meter = SaliencyMeter(normalize=normalize)
    for pred, gt in cases:
        meter.update(pred, gt)
    preds_u8 = [np.round(p * 255).astype(np.uint8) for p, _ in cases]
    gts_u8 = [g.astype(np.uint8) * 255 for _, g in cases]
    ref = reference(preds_u8, gts_u8, normalize)
    got = meter.results()
    for key in ("mae", "max_f", "s_measure"):
        assert got[key] == pytest.approx(ref[key], abs=1e-6), key
    assert got["max_f"] == pytest.approx(ref["max_f_v2"], abs=1e-6)
    np.testing.assert_allclose(meter.f_curve(), ref["curve"], atol=1e-6)
    # the same maps given as uint8 predictions and 0-255 masks
    again = SaliencyMeter(normalize=normalize)
    for p, g in zip(preds_u8, gts_u8):
        again.update(p, g)
    for key in ("mae", "max_f", "s_measure"):
        assert again.results()[key] == pytest.approx(got[key], abs=1e-12), key


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_pysodmetrics_on_random_maps(seed):
    check_against_reference(random_cases(np.random.default_rng(seed)))


@pytest.mark.parametrize("seed", [0, 1])
def test_matches_pysodmetrics_on_structured_maps(seed):
    check_against_reference(structured_cases(np.random.default_rng(seed)))


def test_matches_pysodmetrics_without_normalization():
    rng = np.random.default_rng(5)
    check_against_reference(structured_cases(rng) + random_cases(rng), normalize=False)


def test_matches_pysodmetrics_on_edge_cases():
    h, w = 12, 10
    gt_empty = np.zeros((h, w), bool)
    gt_full = np.ones((h, w), bool)
    gt_pixel = np.zeros((h, w), bool)
    gt_pixel[4, 3] = True
    rng = np.random.default_rng(3)
    cases = [
        (rng.random((h, w)) * 0.3, gt_empty),  # no object
        (rng.random((h, w)), gt_full),  # all object
        (np.full((h, w), 0.5), gt_pixel),  # a constant map (not stretched)
        (np.zeros((h, w)), gt_pixel),  # an all-zero map: no positives at t >= 1
        (gt_pixel.astype(float), gt_pixel),  # a perfect map of a one-pixel object
    ]
    check_against_reference(cases)


# ------------------------------------------------------------------------------------------------
# hand-computed values


def test_mae_and_f_curve_by_hand():
    # 0.4 and 0.6 are 102 / 255 and 153 / 255 exactly; the map spans [0, 1] already
    pred = np.array([[0.0, 0.4], [1.0, 0.6]])
    gt = np.array([[0, 1], [1, 0]], np.uint8)
    # |0 - 0| + |0.4 - 1| + |1 - 1| + |0.6 - 0| = 1.2 over 4 pixels
    assert mae(pred, gt) == pytest.approx(0.3, abs=1e-12)
    curve = f_measure_curve(pred, gt)
    # t = 0: all 4 pixels positive, P = 2/4, R = 1: F = 1.3 * 0.5 / (0.3 * 0.5 + 1)
    assert curve[0] == pytest.approx(0.65 / 1.15)
    # t = 1..102: {0.4, 1.0, 0.6} positive, P = 2/3, R = 1: F = 1.3 * 2/3 / (0.2 + 1)
    np.testing.assert_allclose(curve[1:103], (1.3 * 2 / 3) / 1.2)
    # t = 103..153: {1.0, 0.6}, P = 1/2, R = 1/2: F = 1.3 * 0.25 / (0.15 + 0.5) = 0.5
    np.testing.assert_allclose(curve[103:154], 0.5)
    # t = 154..255: {1.0}, P = 1, R = 1/2: F = 1.3 * 0.5 / (0.3 + 0.5) = 0.8125
    np.testing.assert_allclose(curve[154:], 0.8125)
    meter = SaliencyMeter()
    meter.update(pred, gt)
    assert meter.results()["max_f"] == pytest.approx(0.8125)


def test_max_f_is_the_maximum_of_the_mean_curve():
    # image X is best at thresholds 1..102, image Y at 154..255; each alone reaches F = 1
    x_pred, x_gt = np.array([[0.4, 1.0, 0.0]]), np.array([[True, True, False]])
    y_pred, y_gt = np.array([[1.0, 0.6, 0.0]]), np.array([[True, False, False]])
    assert f_measure_curve(x_pred, x_gt).max() == 1.0 and f_measure_curve(y_pred, y_gt).max() == 1.0
    meter = SaliencyMeter()
    meter.update(x_pred, x_gt)
    meter.update(y_pred, y_gt)
    # mean curve: t = 0: (1.3 * 2/3 / 1.2 + 1.3 / 3 / 1.1) / 2; t = 1..102: (1 + 0.65 / 1.15) / 2;
    # t = 103..153: (0.8125 + 0.65 / 1.15) / 2; t = 154..255: (0.8125 + 1) / 2 = 0.90625
    curve = meter.f_curve()
    assert curve[0] == pytest.approx((1.3 * 2 / 3 / 1.2 + 1.3 / 3 / 1.1) / 2)
    np.testing.assert_allclose(curve[1:103], (1 + 0.65 / 1.15) / 2)
    np.testing.assert_allclose(curve[103:154], (0.8125 + 0.65 / 1.15) / 2)
    np.testing.assert_allclose(curve[154:], 0.90625)
    assert meter.results()["max_f"] == pytest.approx(0.90625)  # not the mean of maxima, 1.0


def test_s_measure_by_hand():
    gt = np.array([[0, 1], [0, 1]], bool)
    pred = np.array([[0, 255], [0, 51]], np.uint8)  # stretched: [[0, 1], [0, 0.2]]
    # object term: foreground [1, 0.2]: mean 0.6, std (ddof 1) sqrt(0.32)
    fg = 2 * 0.6 / (0.6**2 + 1 + np.sqrt(0.32))
    bg = 2 * 1.0 / (1.0**2 + 1 + 0.0)  # background of 1 - pred: [1, 1]
    s_object = 0.5 * fg + 0.5 * bg
    # region term: centroid (row 0.5 -> 0, col 1) + 1 = (1, 2): the top row and the bottom row,
    # each of weight 1/2; the right quadrants have zero area
    ssim_top = 1.0  # pred [0, 1] vs gt [0, 1]
    # bottom: pred [0, 0.2], gt [0, 1]: means 0.1 and 0.5, variances 0.02 and 0.5, covariance 0.1
    ssim_bottom = (4 * 0.1 * 0.5 * 0.1) / ((0.1**2 + 0.5**2) * (0.02 + 0.5))
    s_region = 0.5 * ssim_top + 0.5 * ssim_bottom
    expected = 0.5 * s_object + 0.5 * s_region
    assert expected == pytest.approx(0.692771, abs=1e-6)
    assert s_measure(pred, gt) == pytest.approx(expected, abs=1e-9)
    # pysodmetrics averages the empty right quadrants here and returns NaN
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = sod.Smeasure()
        ref.step(pred, gt.astype(np.uint8) * 255)
    assert np.isnan(ref.get_results()["sm"])


def test_s_measure_empty_and_full_ground_truth_by_hand():
    pred = np.array([[0, 51], [102, 255]], np.uint8)  # stretched: 0, 0.2, 0.4, 1.0 (mean 0.4)
    assert s_measure(pred, np.zeros((2, 2), bool)) == pytest.approx(1 - 0.4)
    assert s_measure(pred, np.ones((2, 2), bool)) == pytest.approx(0.4)
    assert s_measure(pred, np.ones((2, 2), bool), normalize=False) == pytest.approx(0.4)


# ------------------------------------------------------------------------------------------------
# accumulation and inputs


def test_meter_is_the_mean_of_the_functional_forms():
    cases = structured_cases(np.random.default_rng(7))
    meter = SaliencyMeter()
    for p, g in cases:
        meter.update(torch.from_numpy(p), torch.from_numpy(g))  # float64 tensors
    res = meter.results()
    assert res["mae"] == pytest.approx(np.mean([mae(p, g) for p, g in cases]))
    assert res["s_measure"] == pytest.approx(np.mean([s_measure(p, g) for p, g in cases]))
    curves = np.mean([f_measure_curve(p, g) for p, g in cases], axis=0)
    assert res["max_f"] == pytest.approx(curves.max())
    assert meter.num_images == len(cases)


def test_batches_merge_and_reset():
    rng = np.random.default_rng(11)
    preds = rng.random((4, 9, 7)).astype(np.float32)
    gts = rng.random((4, 9, 7)) < 0.4
    one = SaliencyMeter()
    for p, g in zip(preds, gts):
        one.update(p, g)
    batched = SaliencyMeter()
    batched.update(torch.from_numpy(preds)[:, None], torch.from_numpy(gts)[:, None])
    torch.testing.assert_close(batched.totals, one.totals)
    a, b = SaliencyMeter(), SaliencyMeter()
    a.update(preds[:1], gts[:1])
    b.update(preds[1:], gts[1:])
    assert a.merge(b) is a
    torch.testing.assert_close(a.totals, one.totals)
    with pytest.raises(ValueError, match=r"other must have \(beta2, alpha, normalize\)"):
        a.merge(SaliencyMeter(beta2=1.0))
    with pytest.raises(ValueError, match="must be a SaliencyMeter"):
        a.merge(object())  # type: ignore[arg-type]
    a.reset()
    assert a.num_images == 0
    assert all(np.isnan(v) for v in a.results().values())
    assert "images=4" in repr(one)


def test_input_conversions():
    assert quantize_prediction(np.array([0.0, 0.5, 1.0], np.float32)).tolist() == [0, 128, 255]
    assert quantize_prediction(torch.tensor([3, 250], dtype=torch.uint8)).tolist() == [3, 250]
    assert normalize_prediction(np.array([7, 7], np.uint8)).tolist() == [7 / 255, 7 / 255]
    # 0/1, 0-255, bool and float masks agree
    gts = [
        np.array([[0, 1]], np.uint8),
        np.array([[0, 255]], np.uint8),
        np.array([[False, True]]),
        np.array([[0.0, 1.0]], np.float32),
        torch.tensor([[0, 1]]),
    ]
    for g in gts:
        assert binarize_ground_truth(g).tolist() == [[False, True]]
    assert binarize_ground_truth(np.array([128, 129], np.uint8)).tolist() == [False, True]
    # half-precision predictions (as autocast gives them) are read too
    pred = torch.tensor([[0.0, 0.5], [1.0, 0.25]])
    for dtype in (torch.float16, torch.bfloat16):
        assert quantize_prediction(pred.to(dtype)).tolist() == [[0, 128], [255, 64]]


@pytest.mark.parametrize(
    "pred, gt, match",
    [
        (np.zeros((2, 2)), np.zeros((2, 3)), "same shape"),
        (np.full((2, 2), 1.5), np.zeros((2, 2)), r"finite and in \[0, 1\]"),
        (np.full((2, 2), np.nan), np.zeros((2, 2)), r"finite and in \[0, 1\]"),
        (np.zeros((2, 2), np.int64), np.zeros((2, 2)), "float in"),
        (np.zeros((2, 2)), np.full((2, 2), 300), r"integer gt must be in \[0, 255\]"),
        (np.zeros((2, 2)), np.full((2, 2), 2.0), r"float gt must be finite and in \[0, 1\]"),
        (np.zeros((2, 2, 2, 2)), np.zeros((2, 2, 2, 2)), r"\(H, W\), \(N, H, W\)"),
        ([[0.0]], np.zeros((1, 1)), "torch.Tensor or numpy array"),
    ],
)
def test_input_errors(pred, gt, match):
    meter = SaliencyMeter()
    with pytest.raises(ValueError, match=match):
        meter.update(pred, gt)
    assert meter.num_images == 0


def test_a_bad_map_in_a_batch_adds_nothing():
    meter = SaliencyMeter()
    preds = np.zeros((2, 3, 3))
    preds[1, 0, 0] = 2.0
    with pytest.raises(ValueError):
        meter.update(preds, np.zeros((2, 3, 3), bool))
    assert meter.num_images == 0


def test_argument_errors():
    with pytest.raises(ValueError, match="beta2"):
        SaliencyMeter(beta2=0)
    with pytest.raises(ValueError, match="alpha"):
        SaliencyMeter(alpha=1.5)
    with pytest.raises(ValueError, match="normalize"):
        SaliencyMeter(normalize=1)  # type: ignore[arg-type]
