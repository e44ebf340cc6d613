"""Segmentation metrics: a confusion matrix with per-class IoU and mean IoU, as VOC evaluates.

Example:
    >>> import torch
    >>> cm = ConfusionMatrix(num_classes=3)
    >>> cm.update(torch.tensor([0, 1, 1, 2]), torch.tensor([0, 1, 2, 255]))
    >>> cm.iou()
    tensor([1.0000, 0.5000, 0.0000], dtype=torch.float64)
    >>> round(cm.miou(), 4)
    0.5
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .._classes import VOC_CLASSES
from .._validation import as_label_tensor

__all__ = ["ConfusionMatrix"]


class ConfusionMatrix:
    """Accumulated confusion matrix of label maps; IoU per class and mean IoU.

    Rows are ground-truth classes, columns predicted classes. Pixels whose target is
    ``ignore_index`` are not counted. The mean IoU averages over the classes whose union
    (ground truth or prediction) is non-empty, as VOC's evaluation does.

    Args:
        num_classes: Number of classes, background included (VOC: 21).
        ignore_index: Target value of pixels that are not evaluated (VOC: 255).
        class_names: Names for :meth:`table`; defaults to the VOC names when ``num_classes`` is
            21, else ``class 0``, ``class 1``, ...

    Attributes:
        matrix: int64 ``(num_classes, num_classes)`` counts.
    """

    def __init__(
        self,
        num_classes: int = 21,
        ignore_index: int = 255,
        class_names: Sequence[str] | None = None,
    ) -> None:
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
        if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
            raise ValueError(f"ignore_index must be an int, got {ignore_index!r}")
        if 0 <= ignore_index < num_classes:
            raise ValueError(
                f"ignore_index must not be a class id (0..{num_classes - 1}), got {ignore_index}"
            )
        if class_names is None:
            class_names = (
                VOC_CLASSES if num_classes == len(VOC_CLASSES)
                else tuple(f"class {i}" for i in range(num_classes))
            )  # fmt: skip
        if len(class_names) != num_classes:
            raise ValueError(
                f"class_names must have {num_classes} entries, got {len(class_names)}"
            )
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.class_names = tuple(class_names)
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64)

    def update(self, pred: torch.Tensor | np.ndarray, target: torch.Tensor | np.ndarray) -> None:
        """Count one or more label maps.

        Args:
            pred: Predicted class ids, any shape.
            target: Ground-truth class ids (or ``ignore_index``), the same shape.

        Raises:
            ValueError: If shapes differ, or an id outside ``[0, num_classes)`` appears where the
                target is not ignored.
        """
        pred = as_label_tensor(pred, "pred")
        target = as_label_tensor(target, "target")
        if pred.shape != target.shape:
            raise ValueError(
                f"pred and target must have the same shape, got {tuple(pred.shape)} and "
                f"{tuple(target.shape)}"
            )
        pred = pred.to(target.device).flatten()
        target = target.flatten()
        keep = target != self.ignore_index
        k = self.num_classes
        if not bool(keep.all()):
            pred, target = pred[keep], target[keep]
        if target.numel() == 0:
            return
        for name, t in (("target", target), ("pred", pred)):
            lo, hi = int(t.min()), int(t.max())
            if lo < 0 or hi >= k:
                raise ValueError(
                    f"{name} ids must be in [0, {k}) where the target is not {self.ignore_index}, "
                    f"got values in [{lo}, {hi}]"
                )
        counts = torch.bincount(target * k + pred, minlength=k * k).reshape(k, k)
        if self.matrix.device != counts.device:
            self.matrix = self.matrix.to(counts.device)
        self.matrix += counts

    def reset(self) -> None:
        """Set all counts to zero."""
        self.matrix.zero_()

    def merge(self, other: ConfusionMatrix) -> ConfusionMatrix:
        """Add another matrix's counts (e.g. from another process), in place.

        Args:
            other: A matrix with the same number of classes and ignore index.

        Returns:
            ``self``.

        Example:
            >>> a, b = ConfusionMatrix(2), ConfusionMatrix(2)
            >>> a.update(torch.tensor([0, 1]), torch.tensor([0, 1]))
            >>> b.update(torch.tensor([1]), torch.tensor([0]))
            >>> a.merge(b).matrix.tolist()
            [[1, 1], [0, 1]]
        """
        if not isinstance(other, ConfusionMatrix):
            raise ValueError(f"other must be a ConfusionMatrix, got {type(other).__name__}")
        if other.num_classes != self.num_classes or other.ignore_index != self.ignore_index:
            raise ValueError(
                f"other must have num_classes={self.num_classes} and "
                f"ignore_index={self.ignore_index}, got {other.num_classes} and "
                f"{other.ignore_index}"
            )
        self.matrix += other.matrix.to(self.matrix.device)
        return self

    def iou(self) -> torch.Tensor:
        """Intersection over union per class (float64); NaN where the union is empty."""
        m = self.matrix.double()
        inter = m.diagonal()
        union = m.sum(0) + m.sum(1) - inter
        return torch.where(union > 0, inter / union.clamp(min=1), torch.full_like(union, np.nan))

    def miou(self) -> float:
        """Mean IoU over classes with a non-empty union (NaN before any update)."""
        iou = self.iou()
        valid = ~torch.isnan(iou)
        return float(iou[valid].mean()) if bool(valid.any()) else float("nan")

    def accuracy(self) -> float:
        """Overall pixel accuracy (NaN before any update)."""
        total = int(self.matrix.sum())
        return float(self.matrix.diagonal().sum()) / total if total else float("nan")

    def table(self, digits: int = 1) -> str:
        """A readable per-class table of IoU (in %), then the mean IoU and pixel accuracy.

        Classes absent from both ground truth and prediction show ``-``.

        Example:
            >>> cm = ConfusionMatrix(num_classes=21)
            >>> cm.update(torch.tensor([0, 15, 15]), torch.tensor([0, 15, 0]))
            >>> print(cm.table())  # doctest: +NORMALIZE_WHITESPACE, +ELLIPSIS
            class        IoU (%)
            background      50.0
            aeroplane          -
            ...
            person          50.0
            ...
            tvmonitor          -
            mIoU            50.0
            pixel acc.      66.7
        """
        names = list(self.class_names) + ["mIoU", "pixel acc."]
        width = max(len(n) for n in names + ["class"]) + 2
        lines = [f"{'class':<{width}}{'IoU (%)':>8}"]

        def fmt(v: float) -> str:
            return "-" if v != v else f"{100 * v:.{digits}f}"

        for name, v in zip(self.class_names, self.iou().tolist()):
            lines.append(f"{name:<{width}}{fmt(v):>8}")
        lines.append(f"{'mIoU':<{width}}{fmt(self.miou()):>8}")
        lines.append(f"{'pixel acc.':<{width}}{fmt(self.accuracy()):>8}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    def __repr__(self) -> str:
        return (
            f"ConfusionMatrix(num_classes={self.num_classes}, ignore_index={self.ignore_index}, "
            f"pixels={int(self.matrix.sum())})"
        )
