"""Pipeline configuration: paper defaults, YAML files, ``key=value`` overrides, validation.

One configuration drives the whole pipeline: a recipe is a single YAML file whose sections
(``data``, ``attention``, ``maps``, ``proxy``, ``segmentation``, ``evaluate``) are read by the stage
that needs them, so ``seenet train-attention recipe.yaml`` and ``seenet evaluate recipe.yaml`` use
the same file. :data:`DEFAULTS` holds the paper's hyper-parameters (SPEC section 1); a YAML file
(read with :func:`yaml.safe_load`) is merged onto them, then dotted overrides such as
``attention.train.lr=0.01`` are applied, and the result is validated: an unknown key, a value of the
wrong type or out of range raises :class:`ValueError` naming the dotted key.

The ``model`` sub-sections are open: every key other than ``name`` and ``pretrained`` is passed to
the model's constructor (``backbone``, ``erase_mode``, ``hidden_channels``, ...).

Example:
    >>> cfg = load_config(overrides=["data.root=/data/VOC2012", "attention.train.lr=1e-2"])
    >>> cfg["attention"]["train"]["lr"], cfg["attention"]["train"]["batch_size"]
    (0.01, 16)
    >>> load_config(overrides=["attention.train.lrr=1"])
    Traceback (most recent call last):
    ...
    ValueError: unknown configuration key 'attention.train.lrr' (did you mean 'attention.train.lr'?)
"""

from __future__ import annotations

import copy
import difflib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from ._io import atomic_write

__all__ = [
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

# Training settings both stages share (the paper fixes neither; these are the engine's defaults).
_TRAIN_COMMON: dict[str, Any] = {
    "lr_gamma": 0.1,
    "poly_power": 0.9,
    "accumulate": 1,
    "clip_grad_norm": None,
    "amp": False,
    "channels_last": False,
    "deterministic": True,
    "checkpoint_every": 1000,
    "log_every": 20,
    "resume": False,
    "out_dir": None,
}

#: Paper hyper-parameters (SPEC section 1) for PASCAL VOC 2012 + SBD. ``null`` output paths are
#: derived from ``work_dir`` by the stages (see :mod:`seenet.stages`).
DEFAULTS: dict[str, Any] = {
    "work_dir": "runs/seenet_vgg16",
    "seed": 0,
    "device": "auto",
    "data": {
        "root": None,
        "train_split": "train_aug",
        "val_split": "val",
        "image_dir": "JPEGImages",
        "image_suffix": ".jpg",
        "label_dir": "SegmentationClassAug",
        "eval_label_dir": "SegmentationClass",
        "annotation_dir": "Annotations",
        "labels_from": "masks",
        "saliency_dir": None,
        "num_classes": 20,
        "num_workers": 4,
    },
    "attention": {
        "model": {"name": "seenet_vgg16", "pretrained": True, "erase_mode": "seenet"},
        "transforms": {"scale_range": [256, 480], "crop_size": 224, "flip": True},
        "train": {
            "batch_size": 16,
            "iterations": 25000,
            "lr": 1e-3,
            "momentum": 0.9,
            "weight_decay": 2e-4,
            "schedule": "step",
            "lr_steps": [15000],
            **_TRAIN_COMMON,
        },
    },
    "maps": {
        "split": None,
        "weights": None,
        "input_size": 224,
        "flip": True,
        "labels": "gt",
        "save_png": False,
        "overlays": 0,
        "overlay_ids": [],
        "out_dir": None,
    },
    "proxy": {
        "split": None,
        "maps_dir": None,
        "w": 1.0,
        "saliency_threshold": None,
        "conflict_threshold": None,
        "ignore_index": 255,
        "overlays": 0,
        "overlay_ids": [],
        "out_dir": None,
    },
    "segmentation": {
        "model": {"name": "deeplab_largefov_vgg16", "pretrained": True},
        "label_dir": None,
        "transforms": {
            "scale_range": [0.5, 1.5],
            "crop_size": 321,
            "flip": True,
            "ignore_index": 255,
        },
        "train": {
            "batch_size": 10,
            "iterations": 20000,
            "lr": 1e-3,
            "momentum": 0.9,
            "weight_decay": 5e-4,
            "schedule": "poly",
            "lr_steps": [],
            **_TRAIN_COMMON,
        },
    },
    "evaluate": {
        "split": None,
        "weights": None,
        "label_dir": None,
        "scales": [1.0],
        "flip": False,
        "crf": False,
        "save_predictions": False,
        "overlays": 0,
        "overlay_ids": [],
        "out_dir": None,
    },
}

#: Sections whose keys are free (passed to a constructor); only their listed keys are checked.
OPEN_SECTIONS = ("attention.model", "segmentation.model")

_CHOICES = {
    "data.labels_from": ("masks", "xml"),
    "maps.labels": ("gt", "predicted"),
    "attention.train.schedule": ("step", "poly", "constant"),
    "segmentation.train.schedule": ("step", "poly", "constant"),
}
_POSITIVE_INT = (
    "attention.train.batch_size",
    "attention.train.iterations",
    "attention.train.accumulate",
    "attention.train.checkpoint_every",
    "attention.train.log_every",
    "attention.transforms.crop_size",
    "segmentation.train.batch_size",
    "segmentation.train.iterations",
    "segmentation.train.accumulate",
    "segmentation.train.checkpoint_every",
    "segmentation.train.log_every",
    "segmentation.transforms.crop_size",
    "data.num_classes",
)
_NON_NEGATIVE = (
    "data.num_workers",
    "attention.train.lr",
    "attention.train.momentum",
    "attention.train.weight_decay",
    "segmentation.train.lr",
    "segmentation.train.momentum",
    "segmentation.train.weight_decay",
    "maps.overlays",
    "proxy.overlays",
    "evaluate.overlays",
    "proxy.w",
)
_FRACTION_OR_NONE = ("proxy.saliency_threshold", "proxy.conflict_threshold")
_NULLABLE_PATHS = (
    "data.root",
    "data.saliency_dir",
    "attention.train.out_dir",
    "segmentation.train.out_dir",
    "maps.split",
    "maps.weights",
    "maps.out_dir",
    "proxy.split",
    "proxy.maps_dir",
    "proxy.out_dir",
    "segmentation.label_dir",
    "evaluate.split",
    "evaluate.weights",
    "evaluate.label_dir",
    "evaluate.out_dir",
)


def _is_open(prefix: str) -> bool:
    return prefix in OPEN_SECTIONS


def _coerce(value: Any, default: Any, key: str) -> Any:
    """Convert ``value`` to the type of ``default`` where that is unambiguous."""
    if default is None or value is None:
        return value
    if key.endswith("model.pretrained"):
        # true/false, or the path of a local weights file
        if isinstance(value, bool):
            return value
        if isinstance(value, str):
            low = value.lower()
            if low in ("true", "false", "yes", "no"):
                return low in ("true", "yes")
            return value
        raise ValueError(f"{key} must be true, false or a file path, got {value!r}")
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        raise ValueError(f"{key} must be true or false, got {value!r}")
    if isinstance(default, int):
        if isinstance(value, bool):
            raise ValueError(f"{key} must be an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                pass
            else:
                if number.is_integer():
                    return int(number)
        raise ValueError(f"{key} must be an integer, got {value!r}")
    if isinstance(default, float):
        if isinstance(value, bool):
            raise ValueError(f"{key} must be a number, got {value!r}")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ValueError(f"{key} must be a number, got {value!r}")
    if isinstance(default, list):
        if isinstance(value, tuple):
            value = list(value)
        if isinstance(value, str) and not default:  # "a,b,c" for a list of names
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            raise ValueError(f"{key} must be a list, got {value!r}")
        if default:
            return [_coerce(v, default[0], f"{key}[{i}]") for i, v in enumerate(value)]
        return value
    if isinstance(default, str):
        if isinstance(value, (dict, list)):
            raise ValueError(f"{key} must be a string, got {value!r}")
        return value if isinstance(value, (str, bool)) else str(value)
    return value


def _looks_numeric(text: str) -> bool:
    if "_" in text:  # float() accepts 1_000, YAML ids like 2007_000032 are not numbers
        return False
    try:
        float(text)
    except ValueError:
        return False
    return True


def _unknown(key: str, options: Iterable[str]) -> ValueError:
    options = list(options)
    leaf = key.rsplit(".", 1)
    prefix = leaf[0] + "." if len(leaf) == 2 else ""
    close = difflib.get_close_matches(leaf[-1], options, n=1)
    hint = f" (did you mean '{prefix}{close[0]}'?)" if close else ""
    return ValueError(f"unknown configuration key '{key}'{hint}")


def merge_config(
    base: Mapping[str, Any], update: Mapping[str, Any], prefix: str = ""
) -> dict[str, Any]:
    """Deep-merge ``update`` onto a copy of ``base``, rejecting unknown keys.

    Values are converted to the type of the default where unambiguous (``"1e-3"`` becomes
    ``0.001`` for a float key, as YAML 1.1 reads ``1e-3`` as a string).

    Args:
        base: The defaults (not modified).
        update: Values to apply; nested mappings merge key by key.
        prefix: Dotted path of ``base`` inside the whole configuration (for messages).

    Returns:
        The merged configuration.

    Raises:
        ValueError: For a key ``base`` does not have (outside the open ``model`` sections) or a
            value of the wrong type.

    Example:
        >>> merge_config({"a": {"b": 1.0, "c": 2}}, {"a": {"b": "1e-3"}})
        {'a': {'b': 0.001, 'c': 2}}
    """
    if not isinstance(update, Mapping):
        where = prefix or "the configuration"
        raise ValueError(f"{where} must be a mapping, got {type(update).__name__}")
    out = copy.deepcopy(dict(base))
    for key, value in update.items():
        if not isinstance(key, str):
            raise ValueError(f"configuration keys must be strings, got {key!r} in {prefix!r}")
        dotted = f"{prefix}.{key}" if prefix else key
        if key not in out:
            if _is_open(prefix):
                out[key] = copy.deepcopy(value)
                continue
            raise _unknown(dotted, out.keys())
        default = out[key]
        if isinstance(default, dict):
            if value is None:
                continue
            out[key] = merge_config(default, value, dotted)
        else:
            out[key] = _coerce(value, default, dotted)
    return out


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


def apply_overrides(cfg: Mapping[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply ``key=value`` overrides, in order, to ``cfg``.

    Example:
        >>> apply_overrides(DEFAULTS, ["seed=3"])["seed"]
        3
    """
    out = copy.deepcopy(dict(cfg))
    for text in overrides:
        key, value = parse_override(text)
        out = merge_config(out, _nest(key, value))
    return out


def get_key(cfg: Mapping[str, Any], key: str) -> Any:
    """Read a dotted key.

    Example:
        >>> get_key(DEFAULTS, "attention.train.batch_size")
        16
    """
    node: Any = cfg
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise ValueError(f"unknown configuration key '{key}'")
        node = node[part]
    return node


def validate_config(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Check types, choices and ranges; raise ``ValueError`` naming the dotted key.

    Args:
        cfg: A full configuration (defaults merged in).

    Returns:
        ``cfg``, as a ``dict``.

    Example:
        >>> validate_config(apply_overrides(DEFAULTS, ["proxy.w=-1"]))
        Traceback (most recent call last):
        ...
        ValueError: proxy.w must be >= 0, got -1.0
    """
    cfg = dict(cfg)
    for key, choices in _CHOICES.items():
        value = get_key(cfg, key)
        if value not in choices:
            options = ", ".join(repr(c) for c in choices)
            raise ValueError(f"{key} must be one of {options}, got {value!r}")
    for key in _POSITIVE_INT:
        value = get_key(cfg, key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{key} must be a positive integer, got {value!r}")
    for key in _NON_NEGATIVE:
        value = get_key(cfg, key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"{key} must be >= 0, got {value!r}")
    for key in _FRACTION_OR_NONE:
        value = get_key(cfg, key)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1
        ):
            raise ValueError(f"{key} must be null or a number in [0, 1], got {value!r}")
    for key in _NULLABLE_PATHS:
        value = get_key(cfg, key)
        if value is not None and not isinstance(value, (str, os.PathLike)):
            raise ValueError(f"{key} must be null or a path, got {value!r}")
    if not isinstance(cfg.get("work_dir"), (str, os.PathLike)):
        raise ValueError(f"work_dir must be a path, got {cfg.get('work_dir')!r}")
    if not isinstance(cfg.get("device"), str):
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {cfg['device']!r}")
    for stage in ("attention", "segmentation"):
        train = cfg[stage]["train"]
        if train["batch_size"] % train["accumulate"]:
            raise ValueError(
                f"{stage}.train.batch_size ({train['batch_size']}) must be divisible by "
                f"{stage}.train.accumulate ({train['accumulate']})"
            )
        steps = train["lr_steps"]
        if any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in steps):
            raise ValueError(f"{stage}.train.lr_steps must be non-negative integers, got {steps}")
        if list(steps) != sorted(steps):
            raise ValueError(f"{stage}.train.lr_steps must be increasing, got {steps}")
        model = cfg[stage]["model"]
        if not isinstance(model.get("name"), str) or not model["name"]:
            raise ValueError(f"{stage}.model.name must be a model name, got {model.get('name')!r}")
        pretrained = model.get("pretrained", False)
        if not isinstance(pretrained, (bool, str)):
            raise ValueError(
                f"{stage}.model.pretrained must be true, false or a path, got {pretrained!r}"
            )
    for key in ("attention.transforms.scale_range", "segmentation.transforms.scale_range"):
        low_high = get_key(cfg, key)
        if len(low_high) != 2 or not 0 < low_high[0] <= low_high[1]:
            raise ValueError(f"{key} must be [low, high] with 0 < low <= high, got {low_high}")
    size = cfg["maps"]["input_size"]
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
        raise ValueError(f"maps.input_size must be null or a positive integer, got {size!r}")
    scales = cfg["evaluate"]["scales"]
    if not scales or any(not isinstance(s, (int, float)) or s <= 0 for s in scales):
        raise ValueError(
            f"evaluate.scales must be a non-empty list of positive numbers, got {scales}"
        )
    return cfg


def resolve_config(
    cfg: Mapping[str, Any] | None = None, overrides: Iterable[str] = ()
) -> dict[str, Any]:
    """Merge a (possibly partial) configuration dict onto :data:`DEFAULTS` and validate it.

    This is what every stage function does with the dict it is given.

    Example:
        >>> resolve_config({"seed": 1})["attention"]["train"]["iterations"]
        25000
    """
    merged = merge_config(DEFAULTS, cfg or {})
    return validate_config(apply_overrides(merged, overrides))


def load_config(
    path: str | os.PathLike | None = None, overrides: Iterable[str] = ()
) -> dict[str, Any]:
    """Load a YAML recipe (``yaml.safe_load``), merge it onto the defaults, apply overrides.

    Args:
        path: A YAML file, or ``None`` for the defaults alone.
        overrides: ``key=value`` strings, dotted keys, values read as YAML.

    Returns:
        The validated configuration.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: For malformed YAML, unknown keys or invalid values.
    """
    data: Any = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"configuration file not found: {path}")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            raise ValueError(f"{path}: not valid YAML: {e}") from None
        if not isinstance(data, Mapping):
            raise ValueError(f"{path}: the top level must be a mapping, got {type(data).__name__}")
        try:
            return resolve_config(data, overrides)
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None
    return resolve_config(data, overrides)


def dump_config(cfg: Mapping[str, Any], path: str | os.PathLike) -> None:
    """Write ``cfg`` as YAML, atomically (the resolved configuration of a run)."""
    text = yaml.safe_dump(_plain(cfg), sort_keys=False)
    with atomic_write(path, "w") as f:
        f.write(text)


def _plain(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return obj
