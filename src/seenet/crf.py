"""Fully connected CRF post-processing (Krähenbühl & Koltun), with DeepLab-LargeFOV's settings.

Needs ``pydensecrf`` from the ``pydensecrf2`` distribution: ``pip install "seenet[crf]"``.

The defaults are those of DeepLab-LargeFOV (SPEC item 12), which the paper uses unchanged:
10 mean-field iterations, a Gaussian (smoothness) kernel with ``sxy=3`` and weight 3, and a
bilateral (appearance) kernel with ``sxy=121``, ``srgb=5`` and weight 4.

:func:`refine_saliency` runs the same CRF on a saliency map (two labels, background and salient),
as DSS refines its maps at inference.
"""

from __future__ import annotations

from typing import Any, TypeVar

import numpy as np
import torch

__all__ = ["dense_crf", "refine_saliency"]

ProbT = TypeVar("ProbT", torch.Tensor, np.ndarray)

_INSTALL_HINT = (
    "seenet.crf.dense_crf needs pydensecrf (from the 'pydensecrf2' distribution); install it with "
    "`pip install \"seenet[crf]\"` or `pip install pydensecrf2`"
)


def _import_densecrf() -> Any:
    try:
        import pydensecrf.densecrf as dcrf
    except ImportError as e:
        raise ImportError(_INSTALL_HINT) from e
    return dcrf


def _number(value: object, name: str, allow_zero: bool = False) -> float:
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and value < float("inf")
    if not ok or not (value >= 0 if allow_zero else value > 0):
        kind = "a non-negative" if allow_zero else "a positive"
        raise ValueError(f"{name} must be {kind} finite number, got {value!r}")
    return float(value)


def dense_crf(
    image: np.ndarray | torch.Tensor,
    probs: ProbT,
    iterations: int = 10,
    gaussian_sxy: float = 3.0,
    gaussian_compat: float = 3.0,
    bilateral_sxy: float = 121.0,
    bilateral_srgb: float = 5.0,
    bilateral_compat: float = 4.0,
) -> ProbT:
    """Refine class probabilities with a fully connected CRF (DeepLab-LargeFOV's defaults).

    The unary term is ``-log(probs)``; the pairwise terms are a Gaussian kernel on positions
    (smoothness) and a bilateral kernel on positions and colours (appearance), with Potts
    compatibilities weighted by ``gaussian_compat`` and ``bilateral_compat``.

    Args:
        image: The RGB image, uint8 ``(H, W, 3)`` (numpy array or tensor). A non-contiguous
            or read-only array is copied.
        probs: Class probabilities ``(K, H, W)`` that sum to 1 over ``K`` (e.g. the output of
            :func:`seenet.segment` for one image).
        iterations: Mean-field iterations (10).
        gaussian_sxy: Spatial standard deviation of the Gaussian kernel, pixels (3).
        gaussian_compat: Weight of the Gaussian kernel (3); 0 leaves the kernel out.
        bilateral_sxy: Spatial standard deviation of the bilateral kernel, pixels (121).
        bilateral_srgb: Colour standard deviation of the bilateral kernel (5).
        bilateral_compat: Weight of the bilateral kernel (4); 0 leaves the kernel out.

    Returns:
        Refined probabilities ``(K, H, W)``, float32, of the same kind as ``probs`` (a tensor on
        ``probs``'s device, or a numpy array).

    Raises:
        ImportError: If pydensecrf is not installed (the message names the ``crf`` extra).
        ValueError: On a wrong image dtype or shape, sizes that do not match, probabilities that
            are negative, not finite or do not sum to 1, or parameters out of range.

    Example:
        >>> image = np.zeros((8, 8, 3), np.uint8)
        >>> image[:, 4:] = 255
        >>> probs = np.full((2, 8, 8), 0.5, np.float32)
        >>> probs[0, :, :4] += 0.1
        >>> probs[1, :, :4] -= 0.1
        >>> refined = dense_crf(image, probs)
        >>> refined.shape, bool(np.allclose(refined.sum(0), 1, atol=1e-4))
        ((2, 8, 8), True)
    """
    dcrf = _import_densecrf()
    as_tensor = isinstance(probs, torch.Tensor)
    device = probs.device if isinstance(probs, torch.Tensor) else None

    img = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"image must be uint8 of shape (H, W, 3), got {img.dtype} {img.shape}")
    if not (img.flags.c_contiguous and img.flags.writeable):
        img = np.array(img, order="C")  # pydensecrf needs a writable C-contiguous buffer

    p = probs.detach().cpu().numpy() if isinstance(probs, torch.Tensor) else np.asarray(probs)
    if p.ndim != 3 or not np.issubdtype(p.dtype, np.floating):
        raise ValueError(
            f"probs must be floating point of shape (K, H, W), got {p.dtype} {p.shape}"
        )
    k, h, w = p.shape
    if (h, w) != img.shape[:2]:
        raise ValueError(
            f"probs and image must have the same size: probs {p.shape} (K, H, W), "
            f"image {img.shape} (H, W, 3)"
        )
    if k < 1 or h == 0 or w == 0:
        raise ValueError(f"probs must be non-empty, got shape {p.shape}")
    if not np.isfinite(p).all() or p.min() < 0:
        raise ValueError("probs must be finite and non-negative")
    total = p.sum(axis=0, dtype=np.float64)
    if np.abs(total - 1.0).max() > 1e-3:
        raise ValueError(
            "probs must sum to 1 over classes (axis 0); got sums in "
            f"[{total.min():.4g}, {total.max():.4g}] (apply softmax first)"
        )
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 0:
        raise ValueError(f"iterations must be a non-negative int, got {iterations!r}")
    params = {
        name: _number(value, name, allow_zero=name.endswith("compat"))
        for name, value in (
            ("gaussian_sxy", gaussian_sxy),
            ("gaussian_compat", gaussian_compat),
            ("bilateral_sxy", bilateral_sxy),
            ("bilateral_srgb", bilateral_srgb),
            ("bilateral_compat", bilateral_compat),
        )
    }

    unary = -np.log(np.maximum(p.reshape(k, -1), 1e-8)).astype(np.float32)
    crf = dcrf.DenseCRF2D(w, h, k)
    crf.setUnaryEnergy(np.ascontiguousarray(unary))
    if params["gaussian_compat"] > 0:
        crf.addPairwiseGaussian(sxy=params["gaussian_sxy"], compat=params["gaussian_compat"])
    if params["bilateral_compat"] > 0:
        crf.addPairwiseBilateral(
            sxy=params["bilateral_sxy"],
            srgb=params["bilateral_srgb"],
            rgbim=img,
            compat=params["bilateral_compat"],
        )
    q = np.array(crf.inference(iterations), dtype=np.float32).reshape(k, h, w)
    if as_tensor:
        return torch.from_numpy(q).to(device)
    return q


def refine_saliency(
    image: np.ndarray | torch.Tensor,
    saliency: ProbT,
    eps: float = 1e-4,
    **crf_kwargs: float,
) -> ProbT:
    """Refine a saliency map with the fully connected CRF of :func:`dense_crf` (two labels).

    The map is read as the probability of "salient", clipped to ``[eps, 1 - eps]`` (so that
    no pixel is fixed by its unary term alone), and the CRF runs on background and salient
    (``[1 - s, s]``). Its result is the refined probability of "salient": edges that follow the
    image's colour edges, as DSS refines its maps at inference. The refinement needs
    calibrated probabilities, such as a trained network's; on a map that is only a ranking
    (frequency-tuned saliency, whose objects are often near 0.5) it can remove objects.

    Args:
        image: The RGB image, uint8 ``(H, W, 3)``.
        saliency: Probabilities ``(H, W)`` in [0, 1] (numpy array or tensor).
        eps: Clipping margin, in (0, 0.5) (1e-4).
        **crf_kwargs: Other :func:`dense_crf` arguments (``iterations``, ``gaussian_sxy``, ...;
            DeepLab-LargeFOV's values by default).

    Returns:
        The refined map ``(H, W)``, float32 in [0, 1], of the same kind as ``saliency``.

    Raises:
        ImportError: If pydensecrf is not installed (the message names the ``crf`` extra).
        ValueError: If ``saliency`` is not an (H, W) map in [0, 1] of the image's size, or an
            argument is out of range.

    Example:
        >>> image = np.zeros((16, 16, 3), np.uint8)
        >>> image[4:12, 4:12] = 255  # a white square on black
        >>> blurred = np.zeros((16, 16), np.float32)
        >>> blurred[3:13, 3:13] = 0.7  # a map that spills over the square's edge
        >>> refined = refine_saliency(image, blurred)
        >>> bool(refined[8, 8] > 0.9), bool(refined[3, 3] < 0.5)
        (True, True)
    """
    as_tensor = isinstance(saliency, torch.Tensor)
    device = saliency.device if isinstance(saliency, torch.Tensor) else None
    s = saliency.detach().cpu().numpy() if isinstance(saliency, torch.Tensor) else np.asarray(
        saliency
    )
    if s.ndim != 2 or not np.issubdtype(s.dtype, np.floating):
        raise ValueError(
            f"saliency must be a floating-point (H, W) map, got {s.dtype} of shape {s.shape}"
        )
    if s.size and (not np.isfinite(s).all() or s.min() < 0 or s.max() > 1):
        raise ValueError("saliency must hold finite probabilities in [0, 1]")
    ok = not isinstance(eps, bool) and isinstance(eps, (int, float)) and 0 < eps < 0.5
    if not ok:
        raise ValueError(f"eps must be a number in (0, 0.5), got {eps!r}")
    s = np.clip(s.astype(np.float32), eps, 1.0 - eps)
    q = dense_crf(image, np.stack([1.0 - s, s]), **crf_kwargs)[1]
    q = np.clip(q, 0.0, 1.0)
    if as_tensor:
        return torch.from_numpy(q).to(device)
    return q
