"""Metrics: segmentation (:mod:`.segmentation`) and saliency (:mod:`.saliency`).

Segmentation: a confusion matrix with IoU and mean IoU as VOC evaluates them. Saliency: MAE, the
maximum F-measure and the S-measure as ``pysodmetrics`` computes them.

Example:
    >>> import torch
    >>> cm = ConfusionMatrix(num_classes=3)
    >>> cm.update(torch.tensor([0, 1, 1, 2]), torch.tensor([0, 1, 2, 255]))
    >>> round(cm.miou(), 4)
    0.5
"""

from __future__ import annotations

from .saliency import SaliencyMeter, f_measure_curve, mae, s_measure
from .segmentation import ConfusionMatrix

__all__ = ["ConfusionMatrix", "SaliencyMeter", "f_measure_curve", "mae", "s_measure"]
