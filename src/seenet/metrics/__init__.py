"""Metrics: segmentation, attention maps, pseudo labels and saliency.

:class:`ConfusionMatrix` gives IoU and mean IoU as VOC evaluates them (:mod:`.segmentation`);
:class:`AttentionSweep` and :class:`LabelScore` score attention maps and pseudo labels as weakly
supervised segmentation papers report them (:mod:`.attention`); :class:`SaliencyMeter` gives MAE,
the maximum F-measure and the S-measure as ``pysodmetrics`` computes them (:mod:`.saliency`).

Example:
    >>> import torch
    >>> cm = ConfusionMatrix(num_classes=3)
    >>> cm.update(torch.tensor([0, 1, 1, 2]), torch.tensor([0, 1, 2, 255]))
    >>> round(cm.miou(), 4)
    0.5
"""

from __future__ import annotations

from .attention import THRESHOLDS, AttentionSweep, LabelScore
from .saliency import SaliencyMeter, f_measure_curve, mae, s_measure
from .segmentation import ConfusionMatrix

__all__ = [
    "ConfusionMatrix",
    "AttentionSweep",
    "LabelScore",
    "THRESHOLDS",
    "SaliencyMeter",
    "f_measure_curve",
    "mae",
    "s_measure",
]
