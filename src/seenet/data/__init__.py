"""Data: PASCAL VOC 2012 + SBD in their standard layouts, and the paper's transforms.

- :mod:`seenet.data.voc`: split lists, image/label/saliency readers, :class:`VOCImageLabels`
  (images with image-level labels) and :class:`VOCSegmentation` (images with label maps).
- :mod:`seenet.data.transforms`: the attention and segmentation training transforms.
- :mod:`seenet.data.sbd`: SBD ``.mat`` files to ``SegmentationClassAug`` PNGs (needs SciPy,
  the ``voc`` extra).
- :mod:`seenet.data.sod`: salient-object data sets (images plus object masks: MSRA-B, DUTS,
  ECSSD) and their transforms, for the saliency network.
- :mod:`seenet.data.synthetic` and :mod:`seenet.data.synthetic_sod`: synthetic VOC-style and
  salient-object data sets.
"""

from __future__ import annotations

from .sod import SaliencyEvalTransform, SaliencyTrainTransform, SalientObjectDataset, load_mask
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
    "SaliencyEvalTransform",
    "SaliencyFolder",
    "SaliencyTrainTransform",
    "SalientObjectDataset",
    "VOCImageLabels",
    "VOCSegmentation",
    "labels_from_mask",
    "labels_from_xml",
    "load_image",
    "load_label",
    "load_mask",
    "read_split",
    "save_label",
]
