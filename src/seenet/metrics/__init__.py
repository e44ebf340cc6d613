"""Metrics: segmentation (confusion matrix, IoU, mean IoU as VOC evaluates them).

Example:
    >>> import torch
    >>> cm = ConfusionMatrix(num_classes=3)
    >>> cm.update(torch.tensor([0, 1, 1, 2]), torch.tensor([0, 1, 2, 255]))
    >>> round(cm.miou(), 4)
    0.5
"""

from __future__ import annotations

from .segmentation import ConfusionMatrix

__all__ = ["ConfusionMatrix"]
