"""Data: PASCAL VOC 2012 + SBD in their standard layouts, and the paper's transforms.

- :mod:`seenet.data.voc`: split lists, image/label/saliency readers, :class:`VOCImageLabels`
  (images with image-level labels) and :class:`VOCSegmentation` (images with label maps).
- :mod:`seenet.data.transforms`: the attention and segmentation training transforms.
- :mod:`seenet.data.sbd`: SBD ``.mat`` files to ``SegmentationClassAug`` PNGs (needs SciPy,
  the ``voc`` extra).
"""

from __future__ import annotations

from .transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    AttentionTrainTransform,
    SegmentationTrainTransform,
    resize_image,
    to_tensor,
)
from .voc import (
    LabelFolder,
    SaliencyFolder,
    VOCImageLabels,
    VOCSegmentation,
    labels_from_mask,
    labels_from_xml,
    load_image,
    load_label,
    read_split,
    save_label,
)

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "AttentionTrainTransform",
    "SegmentationTrainTransform",
    "resize_image",
    "to_tensor",
    "LabelFolder",
    "SaliencyFolder",
    "VOCImageLabels",
    "VOCSegmentation",
    "labels_from_mask",
    "labels_from_xml",
    "load_image",
    "load_label",
    "read_split",
    "save_label",
]
