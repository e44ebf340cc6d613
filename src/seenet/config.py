"""Pipeline configuration: one typed schema with the paper's defaults, YAML files and overrides.

One configuration drives the whole pipeline: a recipe is a single YAML file whose sections
(``data``, ``attention``, ``maps``, ``proxy``, ``segmentation``, ``evaluate``) are read by the stage
that needs them, so ``seenet train-attention recipe.yaml`` and ``seenet evaluate recipe.yaml`` use
the same file. Each section is a dataclass (:class:`Config` and the classes below) whose fields
hold the paper's hyper-parameters (SPEC section 1) as defaults, with their meaning: the command
line's ``--help`` prints them. A YAML file (read with :func:`yaml.safe_load`) is merged onto the
defaults, then dotted overrides such as ``attention.train.lr=0.01`` are applied, and the result is
checked: an unknown key, a value of the wrong type or out of range raises :class:`ValueError`
naming the dotted key.

The ``model`` sub-sections are open: every key other than ``name`` and ``pretrained`` is passed to
the model's constructor (``backbone``, ``erase_mode``, ``hidden_channels``, ...).

Sections read like mappings too (``cfg["attention"]["train"]["lr"]``).

Example:
    >>> cfg = load_config(overrides=["data.root=/data/VOC2012", "attention.train.lr=1e-2"])
    >>> cfg.attention.train.lr, cfg["attention"]["train"]["batch_size"]
    (0.01, 16)
    >>> load_config(overrides=["attention.train.lrr=1"])
    Traceback (most recent call last):
    ...
    ValueError: unknown configuration key 'attention.train.lrr' (did you mean 'attention.train.lr'?)
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

import yaml

from ._io import atomic_write
from ._schema import Section, coerce, fraction, non_negative, option, positive_int
from .engine.settings import TrainSettings

__all__ = [
    "Config",
    "DataConfig",
    "AttentionConfig",
    "MapsConfig",
    "ProxyConfig",
    "SegmentationConfig",
    "EvaluateConfig",
    "StageTrain",
    "DEFAULTS",
    "OPEN_SECTIONS",
    "load_config",
    "resolve_config",
    "merge_config",
    "parse_override",
    "apply_overrides",
    "validate_config",
    "dump_config",
    "get_key",
]


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
    labels: str = option("gt", "classes of the maps: ground-truth image labels, or S_A's "
                         "predictions", choices=("gt", "predicted"))
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
        for stage in ("attention", "segmentation"):
            model = getattr(self, stage).model
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
            value = get_key(self, key)
            if value <= num_classes:
                raise ValueError(
                    f"{key} ({value}) clashes with a class id: labels are 0 (background) to "
                    f"{num_classes}; use a value in {num_classes + 1}..255 (VOC: 255)"
                )


#: The sections whose keys are free (passed to a constructor); only ``name`` and ``pretrained``
#: are checked.
OPEN_SECTIONS = ("attention.model", "segmentation.model")

#: The defaults (the paper's hyper-parameters, SPEC section 1) as plain nested data.
DEFAULTS: dict[str, Any] = Config().to_dict()


# ------------------------------------------------------------------------------------ functions


def _as_config(cfg: Config | Mapping[str, Any] | None) -> Config:
    if isinstance(cfg, Config):
        return cfg
    return Config().merge(cfg or {})


def merge_config(base: Config | Mapping[str, Any], update: Mapping[str, Any]) -> Config:
    """Deep-merge ``update`` onto ``base`` (a :class:`Config` or a partial mapping).

    Values are converted to the type of their key where unambiguous (``"1e-3"`` becomes ``0.001``
    for a float key, as YAML 1.1 reads ``1e-3`` as a string).

    Raises:
        ValueError: For an unknown key (outside the open ``model`` sections) or a value of the
            wrong type.

    Example:
        >>> merge_config(DEFAULTS, {"attention": {"train": {"lr": "1e-3"}}}).attention.train.lr
        0.001
    """
    return _as_config(base).merge(update)


def _looks_numeric(text: str) -> bool:
    if "_" in text:  # float() accepts 1_000, YAML ids like 2007_000032 are not numbers
        return False
    try:
        float(text)
    except ValueError:
        return False
    return True


def parse_override(text: str) -> tuple[str, Any]:
    """Split ``"a.b=value"`` into the dotted key and the value read as YAML.

    Example:
        >>> parse_override("attention.train.lr_steps=[100, 200]")
        ('attention.train.lr_steps', [100, 200])
        >>> parse_override("data.saliency_dir=null")
        ('data.saliency_dir', None)
    """
    if "=" not in text:
        raise ValueError(f"override {text!r} must look like key=value (for example seed=1)")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ValueError(f"override {text!r} has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    if isinstance(value, str) and _looks_numeric(value) and value.strip().lower() not in (
        "nan", "inf", "-inf", "+inf", "infinity"
    ):
        value = float(value)  # YAML 1.1 reads 1e-3 as a string
    elif isinstance(value, (int, float)) and not isinstance(value, bool) and "_" in raw:
        value = raw.strip()  # YAML 1.1 reads 2007_000032 (an image id) as the int 2007000032
    return key, value


def _nest(key: str, value: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    node = out
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def apply_overrides(cfg: Config | Mapping[str, Any], overrides: Iterable[str]) -> Config:
    """Apply ``key=value`` overrides, in order, to ``cfg``.

    Example:
        >>> apply_overrides(DEFAULTS, ["seed=3"]).seed
        3
    """
    out = _as_config(cfg)
    for text in overrides:
        key, value = parse_override(text)
        out = out.merge(_nest(key, value))
    return out


def get_key(cfg: Config | Mapping[str, Any], key: str) -> Any:
    """Read a dotted key.

    Example:
        >>> get_key(DEFAULTS, "attention.train.batch_size")
        16
    """
    node: Any = cfg
    for part in key.split("."):
        try:
            node = node[part]
        except (KeyError, TypeError):
            raise ValueError(f"unknown configuration key '{key}'") from None
    return node


def validate_config(cfg: Config | Mapping[str, Any]) -> Config:
    """Check types, choices and ranges; raise ``ValueError`` naming the dotted key.

    Example:
        >>> validate_config(apply_overrides(DEFAULTS, ["proxy.w=-1"]))
        Traceback (most recent call last):
        ...
        ValueError: proxy.w must be >= 0, got -1.0
    """
    config = _as_config(cfg)
    config.check()
    return config


def resolve_config(
    cfg: Config | Mapping[str, Any] | None = None, overrides: Iterable[str] = ()
) -> Config:
    """Merge a (possibly partial) configuration onto the defaults and check it.

    This is what every stage function does with the configuration it is given.

    Example:
        >>> resolve_config({"seed": 1}).attention.train.iterations
        25000
    """
    return validate_config(apply_overrides(_as_config(cfg), overrides))


def load_config(
    path: str | os.PathLike | None = None, overrides: Iterable[str] = ()
) -> Config:
    """Load a YAML recipe (``yaml.safe_load``), merge it onto the defaults, apply overrides.

    Args:
        path: A YAML file, or ``None`` for the defaults alone.
        overrides: ``key=value`` strings, dotted keys, values read as YAML.

    Returns:
        The checked configuration.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: For a file that is not UTF-8 YAML, unknown keys or invalid values; the
            message names the file.
    """
    if path is None:
        return resolve_config({}, overrides)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"configuration file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not a text (UTF-8) YAML file ({e.reason})") from None
    except yaml.YAMLError as e:
        raise ValueError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(data, Mapping):
        raise ValueError(f"{path}: the top level must be a mapping, got {type(data).__name__}")
    try:
        return resolve_config(data, overrides)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None


def dump_config(cfg: Config | Mapping[str, Any], path: str | os.PathLike) -> None:
    """Write ``cfg`` as YAML, atomically (the resolved configuration of a run)."""
    data = cfg.to_dict() if isinstance(cfg, Section) else dict(cfg)
    with atomic_write(path, "w") as f:
        f.write(yaml.safe_dump(data, sort_keys=False))
