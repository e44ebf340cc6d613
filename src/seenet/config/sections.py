"""The configuration's sections: one dataclass per section, fields with their meaning and checks.

:class:`Config` is the whole configuration; the classes below are its sections. Every field is a
:func:`seenet._schema.option`: its default (the paper's value), a one-line help (the command
line's ``--help`` prints it) and, where it has one, a range check.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Optional, Union

from .._schema import Section, coerce, fraction, non_negative, option, positive_int
from ..engine.settings import TrainSettings

__all__ = [
    "Config",
    "DataConfig",
    "StageTrain",
    "AttentionTransforms",
    "AttentionConfig",
    "MapsConfig",
    "ProxyConfig",
    "SegmentationTransforms",
    "SegmentationConfig",
    "EvaluateConfig",
    "EvaluateMapsConfig",
    "EvaluateLabelsConfig",
    "CamConfig",
    "SaliencyDataConfig",
    "SaliencyTransforms",
    "SaliencyConfig",
    "SaliencyMapsConfig",
    "EvaluateSaliencyConfig",
    "OPEN_SECTIONS",
]

def eval_path(section: Any, dotted: str) -> Any:
    """The sub-section at a dotted path, e.g. ``eval_path(cfg, "segmentation.transforms")``."""
    for part in dotted.split("."):
        section = getattr(section, part)
    return section


#: The sections whose keys are free (passed to a constructor); only ``name`` and ``pretrained``
#: are checked.
OPEN_SECTIONS = ("attention.model", "segmentation.model", "cam.model", "saliency.model")


def _scale_range(value: Any, key: str) -> None:
    if len(value) != 2 or not 0 < value[0] <= value[1]:
        raise ValueError(f"{key} must be [low, high] with 0 < low <= high, got {value}")


def _optional_positive_int(value: Any, key: str) -> None:
    if value is not None:
        positive_int(value, key)


def _scales(value: Any, key: str) -> None:
    if not value or any(s <= 0 for s in value):
        raise ValueError(f"{key} must be a non-empty list of positive numbers, got {value}")


def _device(value: Any, key: str) -> None:
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", value):
        raise ValueError(f"{key} must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {value!r}")


def _ignore_index(value: Any, key: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 255:
        raise ValueError(f"{key} must be an integer in 0..255, got {value!r}")


# -------------------------------------------------------------------------------------- sections


@dataclass
class DataConfig(Section):
    """``data``: where the VOC-format data set lives (:mod:`seenet.data.voc`).

    Folders are relative to ``root`` unless absolute.
    """

    root: Optional[str] = option(
        None, "the VOC2012 folder (JPEGImages, SegmentationClassAug, ImageSets/Segmentation); "
        "required"
    )
    train_split: str = option(
        "train_aug", "training split: ImageSets/Segmentation/{name}.txt, or a list file"
    )
    val_split: str = option("val", "validation split")
    image_dir: str = option("JPEGImages", "image folder")
    image_suffix: str = option(".jpg", "image file ending")
    label_dir: str = option(
        "SegmentationClassAug", "masks giving the image-level labels of the training images"
    )
    eval_label_dir: str = option("SegmentationClass", "ground truth for evaluation")
    annotation_dir: str = option("Annotations", "XML annotations (labels_from: xml)")
    labels_from: str = option("masks", "image-level labels from the masks or the XML files",
                              choices=("masks", "xml"))
    saliency_dir: Optional[str] = option(
        None, "folder of 8-bit saliency PNGs named like the images (the paper uses DSS); null: "
        "the built-in frequency-tuned saliency (weaker)"
    )
    num_classes: int = option(20, "foreground classes (background not counted)",
                              check=positive_int)
    num_workers: int = option(4, "data-loading processes per stage", check=non_negative)


@dataclass
class StageTrain(TrainSettings):
    """``*.train``: the engine's :class:`~seenet.engine.TrainSettings` plus the output folder."""

    out_dir: Optional[str] = option(None, "output folder (null: {work_dir}/<stage>)")


@dataclass
class AttentionTransforms(Section):
    """``attention.transforms``: the augmentation of the attention network (as ResNet's)."""

    scale_range: list = option([256, 480], "shorter side resized to a random length in [a, b]",
                               item=int, check=_scale_range)
    crop_size: int = option(224, "random square crop", check=positive_int)
    flip: bool = option(True, "random horizontal flip")


@dataclass
class AttentionConfig(Section):
    """``attention``: the self-erasing attention network and its training (paper §3, §5.1)."""

    model: dict = option(
        {"name": "seenet_vgg16", "pretrained": True, "erase_mode": "seenet"},
        "name (a registered model, or SeeNet), pretrained (true, false or a weights file) and "
        "any SeeNet keyword (erase_mode, backbone, hidden_channels, delta_high, ...)",
    )
    transforms: AttentionTransforms = option(AttentionTransforms(), "augmentation")
    train: StageTrain = option(
        StageTrain(iterations=25000, batch_size=16, lr=1e-3, weight_decay=2e-4, schedule="step",
                   lr_steps=[15000]),
        "optimisation",
    )


@dataclass
class MapsConfig(Section):
    """``maps``: class attention maps of every image of a split (paper §5.1 inference)."""

    split: Optional[str] = option(None, "split (null: data.train_split)")
    weights: Optional[str] = option(
        None, "attention weights (null: {work_dir}/attention/model.safetensors)"
    )
    input_size: Optional[int] = option(224, "images resized to this square size for the "
                                       "network (null: original size)",
                                       check=_optional_positive_int)
    flip: bool = option(True, "horizontal test-time flip")
    scales: list = option([1.0], "image scales whose maps are averaged (IRN: 1.0, 0.5, 1.5, 2.0)",
                          item=float, check=_scales)
    labels: str = option("gt", "classes of the maps: ground-truth image labels, or S_A's "
                         "predictions", choices=("gt", "predicted"))
    branch: str = option("fused", "S_A and S_B fused (the paper), or S_A or S_B alone",
                         choices=("fused", "a", "b"))
    save_png: bool = option(False, "also write {image}_{class}.png per class")
    overlays: int = option(0, "PNG overlays for the first N images", check=non_negative)
    overlay_ids: list = option([], "overlays for these image ids instead", item=str)
    out_dir: Optional[str] = option(None, "output folder (null: {work_dir}/maps)")


@dataclass
class ProxyConfig(Section):
    """``proxy``: proxy ground truth from stored maps and saliency (paper Algorithm 1)."""

    split: Optional[str] = option(None, "split (null: data.train_split)")
    maps_dir: Optional[str] = option(None, "stored maps (null: the maps stage's output)")
    w: float = option(1.0, "weight of the attention in the harmonic mean (paper: 1)",
                      check=non_negative)
    saliency_threshold: Optional[float] = option(
        None, "saliency below it counts as 0 (a departure; null: off)", check=fraction
    )
    conflict_threshold: Optional[float] = option(
        None, "pixels whose two best classes both exceed it are ignored (null: off)",
        check=fraction,
    )
    ignore_index: int = option(255, "label of ignored pixels", check=_ignore_index)
    overlays: int = option(0, "PNG overlays for the first N images", check=non_negative)
    overlay_ids: list = option([], "overlays for these image ids instead", item=str)
    out_dir: Optional[str] = option(None, "output folder (null: {work_dir}/proxy_gt)")


@dataclass
class SegmentationTransforms(Section):
    """``segmentation.transforms``: DeepLab's augmentation."""

    scale_range: list = option([0.5, 1.5], "random rescaling factor in [a, b]", item=float,
                               check=_scale_range)
    crop_size: int = option(321, "random square crop (padded with ignore_index)",
                            check=positive_int)
    flip: bool = option(True, "random horizontal flip")
    ignore_index: int = option(255, "label ignored by the loss, also the padding label",
                               check=_ignore_index)


@dataclass
class SegmentationConfig(Section):
    """``segmentation``: DeepLab-LargeFOV trained on the proxy labels (DeepLab's defaults)."""

    model: dict = option(
        {"name": "deeplab_largefov_vgg16", "pretrained": True},
        "name (a registered model, or DeepLabLargeFOV), pretrained, and any constructor keyword",
    )
    label_dir: Optional[str] = option(
        None, "training labels (null: the proxy stage's output; SegmentationClassAug gives the "
        "fully supervised upper bound)"
    )
    transforms: SegmentationTransforms = option(SegmentationTransforms(), "augmentation")
    train: StageTrain = option(
        StageTrain(iterations=20000, batch_size=10, lr=1e-3, weight_decay=5e-4, schedule="poly"),
        "optimisation",
    )


@dataclass
class EvaluateConfig(Section):
    """``evaluate``: per-class IoU and mIoU of the segmentation network (VOC protocol)."""

    split: Optional[str] = option(None, "split (null: data.val_split)")
    weights: Optional[str] = option(
        None, "segmentation weights (null: {work_dir}/segmentation/model.safetensors)"
    )
    label_dir: Optional[str] = option(None, "ground truth (null: data.eval_label_dir)")
    scales: list = option([1.0], "test scales (the paper's multi-scale test: 0.5 ... 1.5)",
                          item=float, check=_scales)
    flip: bool = option(False, "horizontal test-time flip")
    crf: bool = option(False, "dense CRF with DeepLab's parameters (needs the crf extra)")
    save_predictions: bool = option(False, "write VOC-palette PNGs to out_dir/predictions")
    overlays: int = option(0, "PNG overlays for the first N images", check=non_negative)
    overlay_ids: list = option([], "overlays for these image ids instead", item=str)
    out_dir: Optional[str] = option(None, "output folder (null: {work_dir}/evaluation)")


def _thresholds(value: Any, key: str) -> None:
    if not value or any(not 0 <= t <= 1 for t in value) or list(value) != sorted(set(value)):
        raise ValueError(f"{key} must be increasing numbers in [0, 1], got {value}")


@dataclass
class EvaluateMapsConfig(Section):
    """``evaluate_maps``: attention maps scored as papers report them, along a threshold sweep."""

    split: str = option("train", "images scored (VOC train: the 1,464 images papers report)")
    maps_dir: Optional[str] = option(None, "stored maps (null: the attention-maps output)")
    label_dir: Optional[str] = option(None, "ground truth (null: data.eval_label_dir)")
    thresholds: list = option([round(0.05 * i, 2) for i in range(1, 20)],
                              "background thresholds t of the sweep", item=float,
                              check=_thresholds)
    out_dir: Optional[str] = option(None, "output folder (null: {work_dir}/evaluate_maps)")


@dataclass
class EvaluateLabelsConfig(Section):
    """``evaluate_labels``: proxy or pseudo labels scored against the ground truth."""

    split: str = option("train", "images scored")
    labels_dir: Optional[str] = option(None, "label PNGs scored (null: the proxy-gt output); "
                                       "255 counts as not labelled")
    label_dir: Optional[str] = option(None, "ground truth (null: data.eval_label_dir)")
    out_dir: Optional[str] = option(None, "output folder (null: {work_dir}/evaluate_labels)")


@dataclass
class CamConfig(Section):
    """``cam``: stored maps from any image classifier (plain CAM, Grad-CAM, torchcam, ...)."""

    model: dict = option({}, "the classifier as a model section (name, pretrained, keywords; "
                         "empty: attention.model)")
    weights: Optional[str] = option(None, "the classifier's trained weights (null: "
                                    "{work_dir}/attention/model.safetensors)")
    method: str = option("gradcam", "cam, gradcam, torchcam:<Name> (e.g. torchcam:GradCAMpp, "
                         "torchcam:LayerCAM) or pytorch_grad_cam:<Name> (the cam extra)")
    target_layer: Optional[str] = option(None, "dotted module whose output is explained (null: "
                                         "the classifier's last feature level)")
    split: Optional[str] = option(None, "split (null: data.train_split)")
    input_size: Optional[int] = option(224, "images resized to this square size (null: "
                                       "original size)", check=_optional_positive_int)
    flip: bool = option(True, "horizontal test-time flip")
    scales: list = option([1.0], "image scales whose maps are averaged", item=float,
                          check=_scales)
    save_png: bool = option(False, "also write {image}_{class}.png per class")
    out_dir: Optional[str] = option(None, "output folder (null: {work_dir}/cam_maps)")


@dataclass
class SaliencyDataConfig(Section):
    """``saliency.data``: a salient-object data set (MSRA-B, DUTS-TR, ECSSD, ...) in its layout."""

    root: Optional[str] = option(None, "the data set's folder (required to train)")
    image_dir: str = option("images", "image folder (relative to root)")
    mask_dir: str = option("masks", "binary mask PNGs named like the images (>= 128: object)")
    image_suffix: str = option(".jpg", "image file ending")
    mask_suffix: str = option(".png", "mask file ending")
    split: Optional[str] = option(None, "list file of ids (null: every image)")


@dataclass
class SaliencyTransforms(Section):
    """``saliency.transforms``: the saliency network's augmentation."""

    crop_size: int = option(224, "random square crop (padded with background)",
                            check=positive_int)
    scale_range: list = option([0.75, 1.25], "random rescaling factor in [a, b]", item=float,
                               check=_scale_range)
    flip: bool = option(True, "random horizontal flip")


@dataclass
class SaliencyConfig(Section):
    """``saliency``: a class-agnostic saliency network, the background prior (a choice of ours)."""

    data: SaliencyDataConfig = option(SaliencyDataConfig(), "its training data")
    model: dict = option({"name": "saliency_resnet50", "pretrained": True},
                         "name (a registered model, or SaliencyNet), pretrained, and keywords")
    transforms: SaliencyTransforms = option(SaliencyTransforms(), "augmentation")
    train: StageTrain = option(
        StageTrain(iterations=8000, batch_size=16, lr=1e-3, weight_decay=5e-4, schedule="poly"),
        "optimisation (ours: the paper takes DSS maps)",
    )


@dataclass
class SaliencyMapsConfig(Section):
    """``saliency_maps``: 8-bit saliency PNGs of the images of a split."""

    split: Optional[str] = option(None, "split (null: data.train_split)")
    weights: Optional[str] = option(None, "saliency weights (null: "
                                    "{work_dir}/saliency/model.safetensors)")
    input_size: Optional[int] = option(224, "images resized to this square size for the "
                                       "network (null: original size)",
                                       check=_optional_positive_int)
    crf: bool = option(False, "refine each map with a fully connected CRF, as DSS does at "
                       "inference (needs the crf extra)")
    out_dir: Optional[str] = option(None, "output folder (null: data.saliency_dir, where "
                                    "proxy-gt reads saliency)")


@dataclass
class EvaluateSaliencyConfig(Section):
    """``evaluate_saliency``: MAE, maximum F-measure and S-measure of saliency maps."""

    split: Optional[str] = option(None, "split (null: data.val_split)")
    saliency_dir: Optional[str] = option(None, "saliency PNGs (null: data.saliency_dir)")
    label_dir: Optional[str] = option(None, "masks: object where the label is a class "
                                      "(null: data.eval_label_dir)")
    out_dir: Optional[str] = option(None, "output folder (null: {work_dir}/evaluate_saliency)")


@dataclass
class Config(Section):
    """The whole pipeline configuration; every stage reads the sections it needs."""

    work_dir: str = option("runs/seenet_vgg16", "default parent of every stage's output folder")
    seed: int = option(0, "seed of new layers' weights, data order and augmentation")
    device: str = option("auto", "auto (a GPU when available; under torchrun the local rank's), "
                         "cpu, cuda or cuda:N", check=_device)
    data: DataConfig = option(DataConfig(), "the data set")
    attention: AttentionConfig = option(AttentionConfig(), "attention network")
    maps: MapsConfig = option(MapsConfig(), "attention maps")
    proxy: ProxyConfig = option(ProxyConfig(), "proxy ground truth")
    segmentation: SegmentationConfig = option(SegmentationConfig(), "segmentation network")
    evaluate: EvaluateConfig = option(EvaluateConfig(), "evaluation")
    evaluate_maps: EvaluateMapsConfig = option(EvaluateMapsConfig(), "attention-map scores")
    evaluate_labels: EvaluateLabelsConfig = option(EvaluateLabelsConfig(), "label scores")
    cam: CamConfig = option(CamConfig(), "maps from any classifier")
    saliency: SaliencyConfig = option(SaliencyConfig(), "saliency network")
    saliency_maps: SaliencyMapsConfig = option(SaliencyMapsConfig(), "saliency maps")
    evaluate_saliency: EvaluateSaliencyConfig = option(EvaluateSaliencyConfig(),
                                                       "saliency scores")

    def merge(self, update: Mapping[str, Any], prefix: str = "") -> Config:
        """Merge ``update`` (see :meth:`Section.merge`) and convert the model sections' flags."""
        merged = super().merge(update, prefix)
        for stage in OPEN_SECTIONS:
            section = getattr(merged, stage.split(".")[0])
            if "pretrained" in section.model:
                section.model["pretrained"] = coerce(
                    section.model["pretrained"], Union[bool, str], f"{stage}.pretrained"
                )
        return merged

    def check(self, prefix: str = "") -> None:
        """Check every key (:meth:`Section.check`) and the keys that depend on each other."""
        super().check(prefix)
        for stage in ("attention", "segmentation", "cam", "saliency"):
            model = getattr(self, stage).model
            if stage == "cam" and not model:
                continue  # the attention network's model
            if not isinstance(model.get("name"), str) or not model["name"]:
                raise ValueError(
                    f"{stage}.model.name must be a model name, got {model.get('name')!r}"
                )
            pretrained = model.get("pretrained", False)
            if not isinstance(pretrained, (bool, str)):
                raise ValueError(
                    f"{stage}.model.pretrained must be true, false or a path, got {pretrained!r}"
                )
        num_classes = self.data.num_classes
        for key in ("proxy.ignore_index", "segmentation.transforms.ignore_index"):
            section, leaf = key.rsplit(".", 1)
            value = getattr(eval_path(self, section), leaf)
            if value <= num_classes:
                raise ValueError(
                    f"{key} ({value}) clashes with a class id: labels are 0 (background) to "
                    f"{num_classes}; use a value in {num_classes + 1}..255 (VOC: 255)"
                )
