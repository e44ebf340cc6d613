"""Scores of attention maps and pseudo labels, as weakly supervised segmentation papers report them.

:class:`AttentionSweep` scores class attention maps as a segmentation at every threshold of a
sweep (a pixel takes the class of its largest map where that map is at least ``t``, else
background) and reports the best threshold; :class:`LabelScore` scores label maps (proxy or pseudo
labels) whose 255 means "not labelled". Both report the VOC mean IoU (through
:class:`~seenet.metrics.ConfusionMatrix`), the mean precision and recall, and the shares of error
that SEAM's evaluation script computes (false positives and false negatives per class, relative to
the union), so that ``miou + false_positive + false_negative = 1``.

Example:
    >>> import torch
    >>> sweep = AttentionSweep(num_classes=3, thresholds=(0.3, 0.6))
    >>> target = torch.tensor([[0, 2, 2, 255]])
    >>> maps = torch.tensor([[[0.1, 0.5, 0.9, 0.9]]])  # the map of class index 1 (label id 2)
    >>> sweep.update([1], maps, target)
    >>> out = sweep.result()
    >>> out["miou"], out["threshold"], out["curve"]
    (1.0, 0.3, {'0.30': 1.0, '0.60': 0.5})
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from .._validation import as_label_tensor, as_tensor, check_fraction
from .segmentation import ConfusionMatrix

__all__ = ["THRESHOLDS", "AttentionSweep", "LabelScore"]

#: The attention-threshold sweep: 0.05, 0.10, ..., 0.95.
THRESHOLDS: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(1, 20))

# uint8 maps become uint8 * float32(1 / 255) in float32, exactly as seenet.data.maps.load_maps does
_INV_255 = float(np.float32(1.0 / 255.0))




def _as_labels(x: object, name: str) -> torch.Tensor:
    t = as_label_tensor(as_tensor(x, name, detach=True), name)
    if t.ndim != 2:
        raise ValueError(f"{name} must have shape (H, W), got {tuple(t.shape)}")
    return t


def _check_ids(t: torch.Tensor, name: str, k: int, ignore_index: int, ignore_word: str) -> None:
    """Raise unless every value of ``t`` is a class id in ``[0, k)`` or ``ignore_index``."""
    bad = (t != ignore_index) & ((t < 0) | (t >= k))
    if bool(bad.any()):
        raise ValueError(
            f"{name} must hold ids in [0, {k}) or {ignore_index} ({ignore_word}), got "
            f"{int(t[bad][0])}"
        )


def _check_num_classes(num_classes: object, ignore_index: object) -> tuple[int, int]:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(
            f"num_classes must be an int >= 2 (background included), got {num_classes!r}"
        )
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
        raise ValueError(f"ignore_index must be an int, got {ignore_index!r}")
    if 0 <= ignore_index < num_classes:
        raise ValueError(
            f"ignore_index must not be a class id (0..{num_classes - 1}), got {ignore_index}"
        )
    return num_classes, ignore_index


def _none_if_nan(v: float) -> float | None:
    return None if math.isnan(v) else v


def _scores(matrix: ConfusionMatrix) -> dict[str, Any]:
    """mIoU, per-class IoU, precision, recall and SEAM's error shares of one confusion matrix.

    Every mean is over the classes whose union (truth or prediction) is non-empty, the classes
    of the VOC mean IoU; precision (TP/P) is averaged over those with P > 0 and recall (TP/T)
    over those with T > 0, where the ratio is defined.
    """
    m = matrix.matrix.double().cpu()
    tp = m.diagonal()
    truth = m.sum(1)  # T: pixels of the class in the ground truth
    pred = m.sum(0)  # P: pixels predicted as the class
    union = truth + pred - tp
    valid = union > 0
    iou = matrix.iou().cpu()

    def mean(values: torch.Tensor, where: torch.Tensor) -> float | None:
        return float(values[where].mean()) if bool(where.any()) else None

    u = union.clamp(min=1)
    return {
        "miou": mean(iou, valid),
        "per_class": {name: _none_if_nan(v) for name, v in zip(matrix.class_names, iou.tolist())},
        "precision": mean(tp / pred.clamp(min=1), valid & (pred > 0)),
        "recall": mean(tp / truth.clamp(min=1), valid & (truth > 0)),
        "false_positive": mean((pred - tp) / u, valid),
        "false_negative": mean((truth - tp) / u, valid),
    }


def _check_thresholds(thresholds: object) -> tuple[float, ...]:
    if isinstance(thresholds, (str, bytes)) or not isinstance(thresholds, Sequence):
        raise ValueError(f"thresholds must be a sequence of numbers in [0, 1], got {thresholds!r}")
    ts = tuple(check_fraction(t, "each threshold") for t in thresholds)
    if not ts:
        raise ValueError("thresholds must not be empty")
    keys = [f"{t:.2f}" for t in ts]
    if len(set(keys)) != len(keys):
        raise ValueError(
            f"thresholds must be distinct at two decimals (the curve's keys), got {list(ts)}"
        )
    return ts


class AttentionSweep:
    """Attention maps scored as a segmentation at every threshold of a sweep, the best reported.

    At a threshold ``t`` a pixel takes the label id ``c + 1`` of its largest map (the first on ties)
    where that map is at least ``t``, else background (0); this is the scoring of ``seenet
    evaluate-maps`` and of the demo. (SEAM's evaluation script puts a constant background map ``t``
    in front of the class maps and takes the argmax, which marks a pixel only where its map exceeds
    ``t`` strictly: the two differ on pixels whose map equals ``t``.) Maps are compared in float32;
    uint8 maps, as :func:`seenet.data.maps.save_maps` stores them, are first converted exactly as
    :func:`seenet.data.maps.load_maps` does (``uint8 * float32(1 / 255)``).

    Besides the confusion matrices it accumulates how much of the truth the maps mark, at each
    threshold: ``object_coverage``, the fraction of the true object pixels (any class) marked as
    an object (any class), and ``background_coverage``, the fraction of the true background pixels
    marked as an object; and ``context_share``, the fraction of the maps' total mass (the sum of
    the given maps over the pixels, unthresholded) that lies on true background pixels. Pixels
    whose target is ``ignore_index`` count nowhere.

    :meth:`result` reports, at the best threshold (the highest mean IoU; ties go to the lower
    threshold): the VOC mean IoU (over the classes whose union is non-empty), the IoU per class,
    the mean precision TP/P (over those classes with P > 0) and recall TP/T (with T > 0), the mean
    false-positive share (P − TP)/(T + P − TP) and false-negative share (T − TP)/(T + P − TP) of
    SEAM's evaluation script (over the mean-IoU classes, so that ``miou + false_positive +
    false_negative = 1``), and the coverages; with the whole curve of mean IoU. Undefined values
    (no true object pixel for a coverage, no mass for the context share) are ``None``.

    Args:
        num_classes: Label ids, background included (VOC: 21).
        thresholds: The values of ``t``, in [0, 1] and distinct at two decimals.
        ignore_index: Target value of pixels that are not evaluated (VOC: 255).
        class_names: Names of the ``num_classes`` labels (default: VOC's for 21, else
            ``class 0``, ...).

    Attributes:
        confusion: int64 ``(T, K, K)`` confusion matrices (rows truth, columns prediction), one
            per threshold.
        marked: int64 ``(T, 2)``: true object pixels and true background pixels marked as an
            object, per threshold.
        totals: int64 ``(2,)``: true object pixels and true background pixels.
        mass: float64 ``(2,)``: the maps' mass on true background pixels, and in all.

    Example:
        >>> sweep = AttentionSweep(num_classes=3, thresholds=(0.5,))
        >>> target = np.array([[0, 0, 1, 1]])
        >>> maps = np.array([[[0.0, 0.6, 0.8, 0.2]]], np.float32)  # class index 0 -> label id 1
        >>> sweep.update(np.array([0]), maps, target)
        >>> r = sweep.result()
        >>> r["object_coverage"], r["background_coverage"], round(r["context_share"], 4)
        (0.5, 0.5, 0.375)
    """

    def __init__(
        self,
        num_classes: int = 21,
        thresholds: Sequence[float] = THRESHOLDS,
        ignore_index: int = 255,
        class_names: Sequence[str] | None = None,
    ) -> None:
        self.num_classes, self.ignore_index = _check_num_classes(num_classes, ignore_index)
        self.thresholds = _check_thresholds(thresholds)
        # validates class_names; also the matrix holder for result()
        self._template = ConfusionMatrix(num_classes, ignore_index, class_names)
        self.class_names = self._template.class_names
        t, k = len(self.thresholds), num_classes
        self.confusion = torch.zeros((t, k, k), dtype=torch.int64)
        self.marked = torch.zeros((t, 2), dtype=torch.int64)
        self.totals = torch.zeros(2, dtype=torch.int64)
        self.mass = torch.zeros(2, dtype=torch.float64)

    # ------------------------------------------------------------------ accumulation
    def _maps(self, maps: object, n: int, shape: tuple[int, ...]) -> torch.Tensor:
        m = as_tensor(maps, "maps", detach=True)
        if m.ndim != 3 or m.shape[0] != n or tuple(m.shape[1:]) != shape:
            raise ValueError(
                f"maps must have shape (L, H, W) = ({n}, {shape[0]}, {shape[1]}): one map per "
                f"class, the size of target; got {tuple(m.shape)}"
            )
        if m.dtype == torch.uint8:
            return m.to(torch.float32) * _INV_255
        if not m.is_floating_point():
            raise ValueError(f"maps must be floating point in [0, 1] or uint8, got {m.dtype}")
        m = m.to(torch.float32)
        if m.numel():
            lo, hi = torch.aminmax(m)
            if not (float(lo) >= 0.0 and float(hi) <= 1.0):  # also catches NaN
                raise ValueError(
                    f"maps must be in [0, 1] (or uint8), got values in [{float(lo):.6g}, "
                    f"{float(hi):.6g}]"
                )
        return m

    def update(self, classes: object, maps: object, target: object) -> None:
        """Count one image.

        Args:
            classes: Foreground class indices ``c`` of the maps (label id ``c + 1``), distinct,
                e.g. the classes of the image-level label.
            maps: Their maps: floating point in [0, 1], or uint8 0–255 as stored.
            target: True label ids: 0 background, ``c + 1`` the classes, ``ignore_index``
                not evaluated.

        Raises:
            ValueError: On mismatched shapes, repeated or out-of-range classes, map values
                outside [0, 1], or target ids outside ``[0, num_classes)`` that are not ignored.

        Shape:
            - classes: (L,)
            - maps: (L, H, W)
            - target: (H, W)
        """
        target = _as_labels(target, "target")
        k = self.num_classes
        _check_ids(target, "target", k, self.ignore_index, "ignored")
        cls = as_tensor(
            np.asarray(classes) if isinstance(classes, (list, tuple)) else classes, "classes",
            detach=True,
        )
        if cls.ndim != 1 or (cls.numel() and (cls.is_floating_point() or cls.dtype == torch.bool)):
            raise ValueError(
                f"classes must be a 1-D array of ints, got {cls.dtype} {tuple(cls.shape)}"
            )
        cls = cls.long().to(target.device)
        if cls.numel() and (
            int(cls.min()) < 0 or int(cls.max()) + 1 >= k or len(torch.unique(cls)) != len(cls)
        ):
            raise ValueError(
                f"classes must be distinct class indices in [0, {k - 1}) (label id c + 1), "
                f"got {cls.tolist()}"
            )
        m = self._maps(maps, cls.numel(), tuple(target.shape)).to(target.device)

        keep = target != self.ignore_index
        obj = keep & (target > 0)
        bg = target == 0
        t_col = torch.tensor(self.thresholds, dtype=torch.float32, device=target.device)[:, None]
        tgt = target[keep]
        if cls.numel():
            best, arg = m.max(0)  # the first maximal map on ties
            ids = (cls + 1)[arg]
            passed = best[keep][None] >= t_col  # (T, P)
            pred = torch.where(passed, ids[keep][None], torch.zeros_like(ids[keep])[None])
            total_map = m.sum(0, dtype=torch.float64)
            mass = torch.stack([total_map[bg].sum(), total_map[keep].sum()])
        else:
            passed = torch.zeros(
                (len(self.thresholds), tgt.numel()), dtype=torch.bool, device=target.device
            )
            pred = torch.zeros(passed.shape, dtype=torch.int64, device=target.device)
            mass = torch.zeros(2, dtype=torch.float64, device=target.device)
        nt = len(self.thresholds)
        level = torch.arange(nt, device=target.device)[:, None] * (k * k)
        counts = torch.bincount((level + tgt[None] * k + pred).flatten(), minlength=nt * k * k)
        is_obj, is_bg = (tgt > 0)[None], (tgt == 0)[None]
        marked = torch.stack([(passed & is_obj).sum(1), (passed & is_bg).sum(1)], 1)
        self._to(target.device)
        self.confusion += counts.reshape(nt, k, k)
        self.marked += marked
        self.totals += torch.stack([obj.sum(), bg.sum()])
        self.mass += mass

    def _to(self, device: torch.device) -> None:
        if self.confusion.device != device:
            for name, t in self.counts().items():
                setattr(self, name, t.to(device))

    def reset(self) -> None:
        """Set all counts to zero."""
        for t in self.counts().values():
            t.zero_()

    def counts(self) -> dict[str, torch.Tensor]:
        """The accumulated counts, the live tensors (not copies), by attribute name.

        Summing them over processes gives the counts of all the images; in place, e.g.::

            for t in sweep.counts().values():
                dist.all_reduce(t)

        (or :meth:`all_reduce`, which also moves them to a device the backend accepts).
        """
        return {
            "confusion": self.confusion,
            "marked": self.marked,
            "totals": self.totals,
            "mass": self.mass,
        }

    def all_reduce(self, device: torch.device | str | None = None) -> None:
        """Sum the counts over the processes of ``torch.distributed``'s default group, in place.

        Does nothing when ``torch.distributed`` is not initialised.

        Args:
            device: Where to reduce (e.g. the process's GPU for ``nccl``); default where the
                counts are. The counts stay where they were.
        """
        _all_reduce(self.counts(), device)

    def merge(self, other: AttentionSweep) -> AttentionSweep:
        """Add another sweep's counts (e.g. of other images), in place.

        Args:
            other: A sweep with the same classes, thresholds and ignore index.

        Returns:
            ``self``.
        """
        if not isinstance(other, AttentionSweep):
            raise ValueError(f"other must be an AttentionSweep, got {type(other).__name__}")
        if (other.num_classes, other.thresholds, other.ignore_index) != (
            self.num_classes,
            self.thresholds,
            self.ignore_index,
        ):
            raise ValueError(
                "other must have the same num_classes, thresholds and ignore_index: got "
                f"{(other.num_classes, other.thresholds, other.ignore_index)}, expected "
                f"{(self.num_classes, self.thresholds, self.ignore_index)}"
            )
        for name, t in self.counts().items():
            t += getattr(other, name).to(t.device)
        return self

    # ------------------------------------------------------------------ results
    def matrix(self, threshold: float) -> ConfusionMatrix:
        """The confusion matrix at one of the sweep's thresholds (a copy)."""
        if threshold not in self.thresholds:
            raise ValueError(f"threshold must be one of {list(self.thresholds)}, got {threshold!r}")
        cm = ConfusionMatrix(self.num_classes, self.ignore_index, self.class_names)
        cm.matrix = self.confusion[self.thresholds.index(threshold)].cpu().clone()
        return cm

    def result(self) -> dict[str, Any]:
        """The scores at the best threshold, and the curve.

        Returns:
            ``{"miou", "threshold", "curve": {"0.05": miou, ...}, "per_class": {name: iou or
            None}, "precision", "recall", "false_positive", "false_negative",
            "object_coverage", "background_coverage", "context_share"}``, fractions in [0, 1].

        Raises:
            ValueError: If no pixel has been counted.
        """
        if int(self.confusion[0].sum()) == 0:
            raise ValueError("AttentionSweep.result() needs at least one counted pixel")
        matrices = [self.matrix(t) for t in self.thresholds]
        curve = [m.miou() for m in matrices]
        i = max(range(len(curve)), key=lambda j: (curve[j], -self.thresholds[j]))
        scores = _scores(matrices[i])
        out: dict[str, Any] = {
            "miou": scores.pop("miou"),
            "threshold": self.thresholds[i],
            "curve": {f"{t:.2f}": v for t, v in zip(self.thresholds, curve)},
            **scores,
        }
        marked, totals = self.marked[i].double().cpu(), self.totals.double().cpu()
        out["object_coverage"] = float(marked[0] / totals[0]) if totals[0] > 0 else None
        out["background_coverage"] = float(marked[1] / totals[1]) if totals[1] > 0 else None
        mass = self.mass.cpu()
        out["context_share"] = float(mass[0] / mass[1]) if mass[1] > 0 else None
        return out

    def __repr__(self) -> str:
        return (
            f"AttentionSweep(num_classes={self.num_classes}, thresholds={len(self.thresholds)}, "
            f"ignore_index={self.ignore_index}, pixels={int(self.confusion[0].sum())})"
        )


class LabelScore:
    """Label maps (proxy labels, pseudo labels, predictions) scored against the truth.

    A label value of ``ignore_index`` (255) means "not labelled". For :meth:`result`'s
    ``miou`` such pixels count as background, as ``seenet evaluate-labels`` scores proxy
    labels (an unlabelled pixel is not an object); ``miou_labelled`` scores the labelled pixels
    alone, and ``labelled_fraction`` is the fraction of the evaluated pixels (target not
    ``ignore_index``) that are labelled. Precision, recall and the error shares are defined as
    in :class:`AttentionSweep`, on the labels with unlabelled pixels as background.

    Args:
        num_classes: Label ids, background included (VOC: 21).
        ignore_index: Target value of pixels that are not evaluated, and label value of pixels
            that are not labelled (VOC: 255).
        class_names: Names of the ``num_classes`` labels (default: VOC's for 21).

    Attributes:
        confusion: int64 ``(K, K)``, unlabelled pixels counted as background.
        confusion_labelled: int64 ``(K, K)``, labelled pixels only.
        pixels: int64 ``(2,)``: evaluated pixels, and those of them labelled.

    Example:
        >>> score = LabelScore(num_classes=3)
        >>> score.update(np.array([[0, 1, 255, 255]]), np.array([[0, 1, 1, 0]]))
        >>> r = score.result()
        >>> round(r["miou"], 4), r["miou_labelled"], r["labelled_fraction"]
        (0.5833, 1.0, 0.5)
    """

    def __init__(
        self,
        num_classes: int = 21,
        ignore_index: int = 255,
        class_names: Sequence[str] | None = None,
    ) -> None:
        self.num_classes, self.ignore_index = _check_num_classes(num_classes, ignore_index)
        self.class_names = ConfusionMatrix(num_classes, ignore_index, class_names).class_names
        k = num_classes
        self.confusion = torch.zeros((k, k), dtype=torch.int64)
        self.confusion_labelled = torch.zeros((k, k), dtype=torch.int64)
        self.pixels = torch.zeros(2, dtype=torch.int64)

    def update(self, label: object, target: object) -> None:
        """Count one label map.

        Args:
            label: Label ids, ``ignore_index`` where not labelled.
            target: True label ids, ``ignore_index`` where not evaluated.

        Raises:
            ValueError: On mismatched shapes or ids outside ``[0, num_classes)`` other than
                ``ignore_index``.

        Shape:
            - label: (H, W)
            - target: (H, W)
        """
        label, target = _as_labels(label, "label"), _as_labels(target, "target")
        if label.shape != target.shape:
            raise ValueError(
                f"label and target must have the same shape, got {tuple(label.shape)} and "
                f"{tuple(target.shape)}"
            )
        k, ignore = self.num_classes, self.ignore_index
        _check_ids(target, "target", k, ignore, "ignored")
        _check_ids(label, "label", k, ignore, "not labelled")
        label = label.to(target.device)
        keep = target != ignore
        tgt, lab = target[keep], label[keep]
        labelled = lab != ignore
        pred = torch.where(labelled, lab, torch.zeros_like(lab))
        both = torch.bincount(
            (labelled.long() * (k * k) + tgt * k + pred), minlength=2 * k * k
        ).reshape(2, k, k)
        if self.confusion.device != target.device:
            for name, t in self.counts().items():
                setattr(self, name, t.to(target.device))
        self.confusion += both.sum(0)
        self.confusion_labelled += both[1]
        self.pixels += torch.stack([keep.sum(), labelled.sum()])

    def reset(self) -> None:
        """Set all counts to zero."""
        for t in self.counts().values():
            t.zero_()

    def counts(self) -> dict[str, torch.Tensor]:
        """The accumulated counts, the live tensors (see :meth:`AttentionSweep.counts`)."""
        return {
            "confusion": self.confusion,
            "confusion_labelled": self.confusion_labelled,
            "pixels": self.pixels,
        }

    def all_reduce(self, device: torch.device | str | None = None) -> None:
        """Sum the counts over the processes (see :meth:`AttentionSweep.all_reduce`)."""
        _all_reduce(self.counts(), device)

    def merge(self, other: LabelScore) -> LabelScore:
        """Add another score's counts, in place; returns ``self``."""
        if not isinstance(other, LabelScore):
            raise ValueError(f"other must be a LabelScore, got {type(other).__name__}")
        if (other.num_classes, other.ignore_index) != (self.num_classes, self.ignore_index):
            raise ValueError(
                f"other must have num_classes={self.num_classes} and ignore_index="
                f"{self.ignore_index}, got {other.num_classes} and {other.ignore_index}"
            )
        for name, t in self.counts().items():
            t += getattr(other, name).to(t.device)
        return self

    def result(self) -> dict[str, Any]:
        """The scores.

        Returns:
            ``{"miou", "per_class", "precision", "recall", "false_positive", "false_negative",
            "labelled_fraction", "miou_labelled"}``; ``miou_labelled`` is ``None`` when no pixel
            is labelled.

        Raises:
            ValueError: If no pixel has been counted.
        """
        evaluated, labelled = (int(v) for v in self.pixels)
        if evaluated == 0:
            raise ValueError("LabelScore.result() needs at least one counted pixel")
        cm = ConfusionMatrix(self.num_classes, self.ignore_index, self.class_names)
        cm.matrix = self.confusion.cpu().clone()
        out = _scores(cm)
        cm.matrix = self.confusion_labelled.cpu().clone()
        out["labelled_fraction"] = labelled / evaluated
        out["miou_labelled"] = _none_if_nan(cm.miou())
        return out

    def __repr__(self) -> str:
        return (
            f"LabelScore(num_classes={self.num_classes}, ignore_index={self.ignore_index}, "
            f"pixels={int(self.pixels[0])})"
        )


def _all_reduce(counts: dict[str, torch.Tensor], device: torch.device | str | None) -> None:
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return
    for t in counts.values():
        x = t.to(device) if device is not None else t
        dist.all_reduce(x)
        if x is not t:
            t.copy_(x)
