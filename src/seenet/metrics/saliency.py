r"""Salient-object detection metrics as the field computes them: MAE, max F-measure, S-measure.

The definitions, and every detail of the arithmetic, follow ``pysodmetrics`` (``py_sod_metrics``,
the evaluation code most salient-object papers use), so that numbers agree with it to 1e-6:

* A prediction is an 8-bit map (``pysodmetrics`` reads the detectors' PNGs). A float prediction in
  [0, 1] is first quantised as :func:`seenet.saliency.save_saliency` writes it,
  ``round(255 * p)``; a ``uint8`` one is used as it is. Then, with ``normalize=True`` (the
  default, as ``pysodmetrics``' ``step(..., normalize=True)`` and the MATLAB benchmark code's
  ``mapminmax``), each map is divided by 255 and stretched to span [0, 1] (a constant map is only
  divided by 255); ``normalize=False`` keeps ``q / 255``.
* The ground truth is binary: ``bool`` as it is; integers with values above 1 (0–255 masks) are
  object where ``> 128`` (``pysodmetrics``' threshold); integer or float masks with values in
  [0, 1] are object where ``>= 0.5``.
* **MAE**: the mean over images of :math:`\frac{1}{HW}\sum|P - G|`.
* **F-measure** with :math:`\beta^2 = 0.3`: for each of the 256 thresholds
  :math:`t = 0, \dots, 255` the normalised map is quantised again, ``floor(255 * P)``, and
  binarised at :math:`\ge t`; :math:`F_\beta = (1 + \beta^2) P R / (\beta^2 P + R)` (0 where the
  numerator is 0). **max F** is the maximum over thresholds of the F-measure *averaged over
  images* (not the mean of per-image maxima).
* **S-measure** (Fan et al., ICCV 2017) with :math:`\alpha = 0.5`: :math:`\alpha S_o + (1 -
  \alpha) S_r`, the object-aware and region-aware structural similarities, clipped at 0;
  :math:`1 - \bar P` for an empty ground truth and :math:`\bar P` for a full one. One departure:
  where the foreground centroid lies on the last row or column, ``pysodmetrics`` averages an empty
  quadrant and returns NaN; here a quadrant of zero area adds nothing.

Example:
    >>> import numpy as np
    >>> gt = np.array([[0, 1], [1, 1]], dtype=bool)
    >>> pred = np.array([[0.0, 1.0], [1.0, 0.5]])
    >>> meter = SaliencyMeter()
    >>> meter.update(pred, gt)
    >>> {k: round(v, 4) for k, v in meter.results().items()}
    {'mae': 0.1245, 'max_f': 1.0, 's_measure': 0.8686}
"""

from __future__ import annotations

import numpy as np
import torch

from .._validation import as_array, check_fraction

__all__ = [
    "SaliencyMeter",
    "binarize_ground_truth",
    "f_measure_curve",
    "mae",
    "normalize_prediction",
    "quantize_prediction",
    "s_measure",
]

_EPS = np.spacing(1)  # pysodmetrics' (and MATLAB's) eps
_LEVELS = 256




def quantize_prediction(pred: torch.Tensor | np.ndarray) -> np.ndarray:
    """A prediction as the 8-bit map a detector writes.

    Args:
        pred: Floats in [0, 1] (quantised as ``round(255 * p)``, as
            :func:`seenet.saliency.save_saliency` writes them), or ``uint8`` values 0–255
            (returned as they are).

    Returns:
        A ``uint8`` array of the same shape.

    Raises:
        ValueError: For another dtype, or floats that are not finite or outside [0, 1].

    Example:
        >>> quantize_prediction(np.array([0.0, 0.5, 0.999, 1.0])).tolist()
        [0, 128, 255, 255]
    """
    arr = as_array(pred, "pred")
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype.kind != "f":
        raise ValueError(
            f"pred must be float in [0, 1] or uint8 in [0, 255], got dtype {arr.dtype}"
        )
    arr = arr.astype(np.float64)
    if arr.size and not (np.isfinite(arr).all() and arr.min() >= 0.0 and arr.max() <= 1.0):
        raise ValueError("pred must be finite and in [0, 1] (or uint8 in [0, 255])")
    return np.round(arr * 255.0).astype(np.uint8)


def normalize_prediction(pred: torch.Tensor | np.ndarray, normalize: bool = True) -> np.ndarray:
    """A prediction as ``pysodmetrics`` evaluates it: float64 in [0, 1].

    Args:
        pred: See :func:`quantize_prediction`.
        normalize: Stretch the map to span [0, 1] after dividing by 255 (``pysodmetrics``'
            default); a constant map is only divided.

    Returns:
        A float64 array of the same shape.

    Example:
        >>> normalize_prediction(np.array([102, 153, 255], np.uint8)).round(4).tolist()
        [0.0, 0.3333, 1.0]
        >>> normalize_prediction(np.array([51, 102, 153], np.uint8), normalize=False).tolist()
        [0.2, 0.4, 0.6]
    """
    p = quantize_prediction(pred) / 255
    if normalize and p.size and p.max() != p.min():
        p = (p - p.min()) / (p.max() - p.min())
    return p


def binarize_ground_truth(gt: torch.Tensor | np.ndarray) -> np.ndarray:
    """A ground-truth mask as a boolean array.

    Args:
        gt: ``bool``; integers: 0–255 masks (values above 1 present) are object where ``> 128``,
            as ``pysodmetrics`` reads them, 0/1 masks where 1; floats in [0, 1]: where ``>= 0.5``.

    Returns:
        A ``bool`` array of the same shape.

    Raises:
        ValueError: For negative values, floats above 1 or integers above 255.

    Example:
        >>> binarize_ground_truth(np.array([0, 128, 129, 255], np.uint8)).tolist()
        [False, False, True, True]
        >>> binarize_ground_truth(np.array([0, 1], np.uint8)).tolist()
        [False, True]
    """
    arr = as_array(gt, "gt")
    if arr.dtype == np.bool_:
        return arr
    if arr.dtype.kind not in "uif":
        raise ValueError(f"gt must be bool, integer or float, got dtype {arr.dtype}")
    if not arr.size:
        return arr.astype(bool)
    lo, hi = arr.min(), arr.max()
    if arr.dtype.kind == "f":
        if not (np.isfinite(arr).all() and lo >= 0 and hi <= 1):
            raise ValueError("a float gt must be finite and in [0, 1]")
        return arr >= 0.5
    if lo < 0 or hi > 255:
        raise ValueError(f"an integer gt must be in [0, 255], got values in [{lo}, {hi}]")
    return arr > 128 if hi > 1 else arr >= 1


def _pair(pred: object, gt: object, normalize: bool) -> tuple[np.ndarray, np.ndarray]:
    p = normalize_prediction(pred, normalize)  # type: ignore[arg-type]
    g = binarize_ground_truth(gt)  # type: ignore[arg-type]
    if p.ndim != 2 or p.shape != g.shape:
        raise ValueError(
            f"pred and gt must be (H, W) maps of the same shape, got {p.shape} and {g.shape}"
        )
    return p, g


def _mae(p: np.ndarray, g: np.ndarray) -> float:
    return float(np.mean(np.abs(p - g)))


def _f_curve(p: np.ndarray, g: np.ndarray, beta2: float) -> np.ndarray:
    q = (p * 255).astype(np.uint8)
    fg = np.bincount(q[g], minlength=_LEVELS)
    bg = np.bincount(q[~g], minlength=_LEVELS)
    # pixels >= t, for t = 0 .. 255
    tp = np.cumsum(fg[::-1])[::-1]
    positives = tp + np.cumsum(bg[::-1])[::-1]
    positives[positives == 0] = 1
    precision = tp / positives
    recall = tp / max(np.count_nonzero(g), 1)
    numerator = (1 + beta2) * precision * recall
    denominator = np.where(numerator == 0, 1, beta2 * precision + recall)
    return numerator / denominator


def _s_object(x: np.ndarray) -> float:
    mean = np.mean(x)
    std = np.std(x, ddof=1) if x.size > 1 else 0
    return 2 * mean / (np.power(mean, 2) + 1 + std + _EPS)


def _ssim(p: np.ndarray, g: np.ndarray) -> float:
    n = p.size
    x, y = np.mean(p), np.mean(g)
    sigma_x = np.sum((p - x) ** 2) / (n - 1 + _EPS)
    sigma_y = np.sum((g - y) ** 2) / (n - 1 + _EPS)
    sigma_xy = np.sum((p - x) * (g - y)) / (n - 1 + _EPS)
    a = 4 * x * y * sigma_xy
    b = (x**2 + y**2) * (sigma_x + sigma_y)
    if a != 0:
        return a / (b + _EPS)
    return 1.0 if b == 0 else 0.0


def _s_measure(p: np.ndarray, g: np.ndarray, alpha: float) -> float:
    y = np.mean(g)
    if y == 0:
        return float(1 - np.mean(p))
    if y == 1:
        return float(np.mean(p))
    obj = _s_object(p[g]) * y + _s_object((1 - p)[~g]) * (1 - y)
    h, w = g.shape
    area = h * w
    cy, cx = np.argwhere(g).mean(axis=0).round()
    cy, cx = int(cy) + 1, int(cx) + 1  # as MATLAB's 1:X ranges include X
    weights = (cx * cy / area, cy * (w - cx) / area, (h - cy) * cx / area)
    weights = (*weights, 1 - weights[0] - weights[1] - weights[2])
    quadrants = (
        (slice(0, cy), slice(0, cx)),
        (slice(0, cy), slice(cx, w)),
        (slice(cy, h), slice(0, cx)),
        (slice(cy, h), slice(cx, w)),
    )
    region = 0.0
    for weight, (rows, cols) in zip(weights, quadrants):
        if p[rows, cols].size:  # pysodmetrics gives NaN for an empty quadrant
            region += _ssim(p[rows, cols], g[rows, cols]) * weight
    return float(np.maximum(0, obj * alpha + region * (1 - alpha)))




def _check_beta2(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"beta2 must be a positive number, got {value!r}")
    return float(value)


def mae(
    pred: torch.Tensor | np.ndarray, gt: torch.Tensor | np.ndarray, normalize: bool = True
) -> float:
    """Mean absolute error of one map (see the module's notes on inputs).

    Args:
        pred: (H, W) prediction, float in [0, 1] or ``uint8``.
        gt: (H, W) ground truth.
        normalize: Stretch the prediction to [0, 1] first (``pysodmetrics``' default).

    Returns:
        The MAE in [0, 1].

    Example:
        >>> mae(np.array([[0.0, 1.0]]), np.array([[0, 0]], np.uint8))
        0.5
    """
    return _mae(*_pair(pred, gt, normalize))


def f_measure_curve(
    pred: torch.Tensor | np.ndarray,
    gt: torch.Tensor | np.ndarray,
    beta2: float = 0.3,
    normalize: bool = True,
) -> np.ndarray:
    r"""F-measure of one map at the 256 thresholds ``t = 0, ..., 255`` (``>= t`` is object).

    Args:
        pred: (H, W) prediction, float in [0, 1] or ``uint8``.
        gt: (H, W) ground truth.
        beta2: :math:`\beta^2` (0.3, which weighs precision more than recall).
        normalize: Stretch the prediction to [0, 1] first (``pysodmetrics``' default).

    Returns:
        float64 (256,), index ``t`` for threshold ``t``.

    Example:
        >>> curve = f_measure_curve(np.array([[0.2, 0.8]]), np.array([[False, True]]))
        >>> round(float(curve[0]), 4), float(curve[255])  # all object, then the 0.8 pixel only
        (0.5652, 1.0)
    """
    p, g = _pair(pred, gt, normalize)
    return _f_curve(p, g, _check_beta2(beta2))


def s_measure(
    pred: torch.Tensor | np.ndarray,
    gt: torch.Tensor | np.ndarray,
    alpha: float = 0.5,
    normalize: bool = True,
) -> float:
    """S-measure (structure measure, Fan et al. 2017) of one map.

    Args:
        pred: (H, W) prediction, float in [0, 1] or ``uint8``.
        gt: (H, W) ground truth.
        alpha: Weight of the object-aware term (0.5).
        normalize: Stretch the prediction to [0, 1] first (``pysodmetrics``' default).

    Returns:
        The S-measure in [0, 1].

    Example:
        >>> gt = np.zeros((4, 4), bool)
        >>> gt[1:3, 1:3] = True
        >>> round(s_measure(gt.astype(np.float32), gt), 6)  # a perfect map
        1.0
    """
    return _s_measure(*_pair(pred, gt, normalize), check_fraction(alpha, "alpha"))


class SaliencyMeter:
    r"""Accumulates MAE, the F-measure curve and S-measure over images; mergeable across ranks.

    Args:
        beta2: :math:`\beta^2` of the F-measure (0.3).
        alpha: Weight of the object-aware term of the S-measure (0.5).
        normalize: Stretch each prediction to [0, 1] first (``pysodmetrics``' default).

    Attributes:
        totals: float64 (3 + 256,) sums: number of images, MAE, S-measure, then the F-measure at
            each threshold. Summing it over processes (``torch.distributed.all_reduce``) or with
            :meth:`merge` combines meters.

    Example:
        >>> meter = SaliencyMeter()
        >>> gt = np.zeros((2, 4, 4), bool)
        >>> gt[:, 1:3, 1:3] = True
        >>> meter.update(torch.from_numpy(gt).float(), gt)  # a batch of two perfect maps
        >>> meter.num_images, {k: round(v, 6) for k, v in meter.results().items()}
        (2, {'mae': 0.0, 'max_f': 1.0, 's_measure': 1.0})
    """

    def __init__(self, beta2: float = 0.3, alpha: float = 0.5, normalize: bool = True) -> None:
        if not isinstance(normalize, bool):
            raise ValueError(f"normalize must be a bool, got {normalize!r}")
        self.beta2 = _check_beta2(beta2)
        self.alpha = check_fraction(alpha, "alpha")
        self.normalize = normalize
        self.totals = torch.zeros(3 + _LEVELS, dtype=torch.float64)

    @property
    def num_images(self) -> int:
        """How many maps were added."""
        return int(self.totals[0])

    def update(self, pred: torch.Tensor | np.ndarray, gt: torch.Tensor | np.ndarray) -> None:
        """Add one map (H, W) or a batch (N, H, W) (or (N, 1, H, W)).

        Args:
            pred: Predictions, float in [0, 1] or ``uint8`` (see the module's notes).
            gt: Ground truth of the same shape: ``bool``, 0/1 or 0–255.

        Raises:
            ValueError: If shapes differ or values are out of range.
        """
        p_all = as_array(pred, "pred")
        g_all = as_array(gt, "gt")
        if p_all.shape != g_all.shape:
            raise ValueError(
                f"pred and gt must have the same shape, got {p_all.shape} and {g_all.shape}"
            )
        if p_all.ndim == 4 and p_all.shape[1] == 1:
            p_all, g_all = p_all[:, 0], g_all[:, 0]
        if p_all.ndim == 2:
            p_all, g_all = p_all[None], g_all[None]
        if p_all.ndim != 3:
            raise ValueError(
                f"pred must have shape (H, W), (N, H, W) or (N, 1, H, W), got {p_all.shape}"
            )
        rows = []
        for p_one, g_one in zip(p_all, g_all):
            p, g = _pair(p_one, g_one, self.normalize)
            row = np.empty(3 + _LEVELS)
            row[0], row[1], row[2] = 1.0, _mae(p, g), _s_measure(p, g, self.alpha)
            row[3:] = _f_curve(p, g, self.beta2)
            rows.append(row)
        for row in rows:  # only once every map of the batch passed its checks
            self.totals += torch.from_numpy(row)

    def f_curve(self) -> np.ndarray:
        """The F-measure averaged over images at thresholds 0..255 (NaN before any update)."""
        n = float(self.totals[0])
        if not n:
            return np.full(_LEVELS, np.nan)
        return self.totals[3:].numpy() / n

    def results(self) -> dict[str, float]:
        """``{"mae", "max_f", "s_measure"}`` over the maps added so far (NaN before any).

        ``max_f`` is the maximum over thresholds of the mean F-measure curve.
        """
        n = float(self.totals[0])
        if not n:
            return {"mae": float("nan"), "max_f": float("nan"), "s_measure": float("nan")}
        return {
            "mae": float(self.totals[1]) / n,
            "max_f": float(np.max(self.totals[3:].numpy() / n)),
            "s_measure": float(self.totals[2]) / n,
        }

    def reset(self) -> None:
        """Forget every map."""
        self.totals.zero_()

    def merge(self, other: SaliencyMeter) -> SaliencyMeter:
        """Add another meter's maps (e.g. from another process), in place.

        Args:
            other: A meter with the same ``beta2``, ``alpha`` and ``normalize``.

        Returns:
            ``self``.

        Example:
            >>> a, b = SaliencyMeter(), SaliencyMeter()
            >>> a.update(np.array([[0.0, 1.0]]), np.array([[0, 1]]))
            >>> b.update(np.array([[1.0, 0.0]]), np.array([[0, 1]]))
            >>> a.merge(b).num_images, a.results()["mae"]
            (2, 0.5)
        """
        if not isinstance(other, SaliencyMeter):
            raise ValueError(f"other must be a SaliencyMeter, got {type(other).__name__}")
        mine = (self.beta2, self.alpha, self.normalize)
        theirs = (other.beta2, other.alpha, other.normalize)
        if mine != theirs:
            raise ValueError(f"other must have (beta2, alpha, normalize) = {mine}, got {theirs}")
        self.totals += other.totals.to(self.totals.device, self.totals.dtype)
        return self

    def __repr__(self) -> str:
        return (
            f"SaliencyMeter(beta2={self.beta2}, alpha={self.alpha}, normalize={self.normalize}, "
            f"images={self.num_images})"
        )
