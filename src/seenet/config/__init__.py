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
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from .._io import atomic_write
from .._schema import Section
from .sections import (
    OPEN_SECTIONS,
    AttentionConfig,
    CamConfig,
    Config,
    DataConfig,
    EvaluateConfig,
    EvaluateLabelsConfig,
    EvaluateMapsConfig,
    EvaluateSaliencyConfig,
    MapsConfig,
    ProxyConfig,
    SaliencyConfig,
    SaliencyMapsConfig,
    SegmentationConfig,
    StageTrain,
)

__all__ = [
    "Config",
    "DataConfig",
    "AttentionConfig",
    "MapsConfig",
    "ProxyConfig",
    "SegmentationConfig",
    "EvaluateConfig",
    "EvaluateMapsConfig",
    "EvaluateLabelsConfig",
    "CamConfig",
    "SaliencyConfig",
    "SaliencyMapsConfig",
    "EvaluateSaliencyConfig",
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
