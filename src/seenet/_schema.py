"""Typed configuration sections: dataclasses whose fields carry their help, type and checks.

A configuration section is a dataclass deriving from :class:`Section` whose fields are declared
with :func:`option`: the field's default, a one-line help text, and optionally its range check or
its choices. From that one declaration a section

- merges a (nested) mapping onto itself (:meth:`Section.merge`): unknown keys raise a
  ``ValueError`` with a "did you mean" hint, values are converted to the field's type where that
  is unambiguous (``"1e-3"`` becomes ``0.001`` for a float, as YAML 1.1 reads ``1e-3`` as a
  string);
- checks every value's range and choices (:meth:`Section.check`), naming the dotted key;
- describes itself for help texts (:meth:`Section.describe`) and turns into plain data
  (:meth:`Section.to_dict`).

Sections read like mappings as well (``section["lr"]``) so that code written against the plain
dictionaries of earlier versions keeps working.

Example:
    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class Train(Section):
    ...     lr: float = option(1e-3, "learning rate", check=positive)
    ...     steps: list = option([10], "steps", item=int)
    >>> Train().merge({"lr": "1e-2", "steps": [5.0]})
    Train(lr=0.01, steps=[5])
    >>> Train().merge({"lrr": 1}, "train")
    Traceback (most recent call last):
    ...
    ValueError: unknown configuration key 'train.lrr' (did you mean 'train.lr'?)
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import math
import os
import typing
from collections.abc import Iterator, Mapping
from typing import Any, Callable, Union

__all__ = [
    "Section",
    "option",
    "positive",
    "positive_int",
    "non_negative",
    "fraction",
    "unknown_key",
    "coerce",
]

Check = Callable[[Any, str], None]


def option(
    default: Any,
    help: str,
    *,
    check: Check | None = None,
    choices: tuple[Any, ...] | None = None,
    item: type | None = None,
    config: bool = True,
) -> Any:
    """A section field: its default, help text, and optional check, choices or list item type.

    Args:
        default: The default (lists and dicts are copied for each instance).
        help: One line describing the key (the command-line help shows it).
        check: ``check(value, dotted_key)`` raising ``ValueError`` for a bad value.
        choices: The allowed values.
        item: The type of a list's items (``int``, ``float`` or ``str``).
        config: ``False`` for a field that is not a configuration key (set by the code).
    """
    meta = {"help": help, "check": check, "choices": choices, "item": item, "config": config}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    if isinstance(default, Section):
        return dataclasses.field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


# --------------------------------------------------------------------------------------- checks


def positive(value: Any, key: str) -> None:
    """A finite number > 0."""
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(f"{key} must be a finite number > 0, got {value!r}")


def positive_int(value: Any, key: str) -> None:
    """An integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{key} must be a positive integer, got {value!r}")


def non_negative(value: Any, key: str) -> None:
    """A finite number >= 0."""
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
        raise ValueError(f"{key} must be >= 0, got {value!r}")


def fraction(value: Any, key: str) -> None:
    """``None`` or a number in [0, 1]."""
    if value is not None and not (isinstance(value, (int, float)) and 0 <= value <= 1):
        raise ValueError(f"{key} must be null or a number in [0, 1], got {value!r}")


# ------------------------------------------------------------------------------------- coercion


def unknown_key(key: str, options: Any) -> ValueError:
    """The error for an unknown dotted ``key``, with the closest of ``options`` as a hint."""
    leaf = key.rsplit(".", 1)
    prefix = leaf[0] + "." if len(leaf) == 2 else ""
    close = difflib.get_close_matches(leaf[-1], list(options), n=1)
    hint = f" (did you mean '{prefix}{close[0]}'?)" if close else ""
    return ValueError(f"unknown configuration key '{key}'{hint}")


def _integer(value: Any, key: str) -> int:
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


def _number(value: Any, key: str) -> float:
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


def _boolean(value: Any, key: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
        return value.lower() in ("true", "yes", "1")
    raise ValueError(f"{key} must be true or false, got {value!r}")


def _string(value: Any, key: str) -> str:
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise ValueError(f"{key} must be a string, got {value!r}")


_SCALARS: dict[Any, Callable[[Any, str], Any]] = {
    int: _integer,
    float: _number,
    bool: _boolean,
    str: _string,
}


def coerce(value: Any, kind: Any, key: str, item: type | None = None) -> Any:
    """Convert ``value`` to the annotated type ``kind`` where that is unambiguous.

    Handles ``int``, ``float``, ``bool``, ``str``, ``Optional[...]``, ``Union[bool, str]`` (a
    flag or a file path), ``list`` (items converted to ``item``; a comma-separated string is a
    list of strings) and ``dict``.

    Example:
        >>> coerce("1e-3", float, "lr"), coerce("a,b", list, "ids", item=str)
        (0.001, ['a', 'b'])
    """
    origin = typing.get_origin(kind)
    if origin is Union:
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        if value is None:
            if len(args) < len(typing.get_args(kind)):
                return None
            raise ValueError(f"{key} must not be null")
        if set(args) == {bool, str}:  # a flag or a path
            if isinstance(value, bool):
                return value
            if isinstance(value, (str, os.PathLike)):
                text = os.fspath(value)
                low = text.lower()
                return low in ("true", "yes") if low in ("true", "false", "yes", "no") else text
            raise ValueError(f"{key} must be true, false or a file path, got {value!r}")
        if args == [str]:
            if not isinstance(value, (str, os.PathLike)):
                raise ValueError(f"{key} must be null or a path, got {value!r}")
            return os.fspath(value)
        return coerce(value, args[0], key, item)
    if kind is list or origin is list:
        if isinstance(value, tuple):
            value = list(value)
        if isinstance(value, str) and item in (str, None):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            raise ValueError(f"{key} must be a list, got {value!r}")
        if item is None:
            return list(value)
        return [coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if kind is dict or origin is dict:
        if not isinstance(value, Mapping):
            raise ValueError(f"{key} must be a mapping, got {type(value).__name__}")
        return dict(value)
    if kind in _SCALARS:
        if value is None:
            raise ValueError(f"{key} must not be null")
        return _SCALARS[kind](value, key)
    if kind is Any:
        return value
    raise TypeError(f"{key}: unsupported field type {kind!r}")  # pragma: no cover


# -------------------------------------------------------------------------------------- Section


class Section:
    """Base of configuration dataclasses; see the module docstring.

    Fields whose type is itself a :class:`Section` nest; ``dict`` fields are open mappings merged
    key by key (the ``model`` sections, whose keys go to a constructor), except that an update
    naming another ``name`` replaces the mapping.
    """

    @classmethod
    def _hints(cls) -> dict[str, Any]:
        cached = cls.__dict__.get("_hints_cache")
        if cached is None:
            cached = typing.get_type_hints(cls)
            cls._hints_cache = cached  # type: ignore[attr-defined]
        return cached

    @classmethod
    def keys_of(cls) -> list[str]:
        """The configuration keys of this section (fields with ``config=True``)."""
        return [f.name for f in dataclasses.fields(cls) if f.metadata.get("config", True)]

    def __getitem__(self, key: str) -> Any:
        if key not in self.keys_of():
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys_of())

    def __contains__(self, key: object) -> bool:
        return key in self.keys_of()

    def keys(self) -> list[str]:
        """The configuration keys, in declaration order (mapping-style access)."""
        return self.keys_of()

    def items(self) -> list[tuple[str, Any]]:
        """``(key, value)`` pairs (mapping-style access)."""
        return [(k, getattr(self, k)) for k in self.keys_of()]

    def merge(self, update: Mapping[str, Any], prefix: str = "") -> Any:
        """A copy of this section with ``update`` merged in (types converted, keys checked).

        Raises:
            ValueError: For an unknown key (with a "did you mean" hint), a value of the wrong type,
                or a non-mapping ``update``.
        """
        if isinstance(update, Section):
            update = update.to_dict()
        if not isinstance(update, Mapping):
            where = prefix or "the configuration"
            raise ValueError(f"{where} must be a mapping, got {type(update).__name__}")
        hints = self._hints()
        fields = {f.name: f for f in dataclasses.fields(self) if f.metadata.get("config", True)}
        changes: dict[str, Any] = {}
        for key, value in update.items():
            if not isinstance(key, str):
                raise ValueError(f"configuration keys must be strings, got {key!r} in {prefix!r}")
            dotted = f"{prefix}.{key}" if prefix else key
            if key not in fields:
                raise unknown_key(dotted, fields)
            current = getattr(self, key)
            if isinstance(current, Section):
                if value is not None:
                    changes[key] = current.merge(value, dotted)
            elif isinstance(current, dict) and isinstance(value, Mapping):
                # a model section that names another model starts afresh: the keywords of the
                # old model (erase_mode, hidden_channels, ...) do not carry over
                renamed = "name" in value and value["name"] != current.get("name")
                base = {} if renamed else copy.deepcopy(current)
                changes[key] = {**base, **copy.deepcopy(dict(value))}
            elif isinstance(current, dict) and value is None:
                continue
            else:
                item = fields[key].metadata.get("item")
                changes[key] = coerce(value, hints[key], dotted, item)
        out = copy.deepcopy(self)
        for key, value in changes.items():
            object.__setattr__(out, key, value)
        return out

    def check(self, prefix: str = "") -> None:
        """Check every value's choices and range, nested sections included.

        Raises:
            ValueError: Naming the dotted key and the allowed values.
        """
        for f in dataclasses.fields(self):
            if not f.metadata.get("config", True):
                continue
            dotted = f"{prefix}.{f.name}" if prefix else f.name
            value = getattr(self, f.name)
            if isinstance(value, Section):
                value.check(dotted)
                continue
            choices = f.metadata.get("choices")
            if choices is not None and value not in choices:
                options = ", ".join(repr(c) for c in choices)
                raise ValueError(f"{dotted} must be one of {options}, got {value!r}")
            check = f.metadata.get("check")
            if check is not None:
                check(value, dotted)

    def to_dict(self) -> dict[str, Any]:
        """The configuration keys as plain nested data (YAML-safe)."""
        out: dict[str, Any] = {}
        for key in self.keys_of():
            value = getattr(self, key)
            out[key] = value.to_dict() if isinstance(value, Section) else _plain(value)
        return out

    def describe(self, prefix: str = "") -> list[tuple[str, str, Any]]:
        """``(dotted key, help, value)`` for every key, nested sections flattened."""
        rows: list[tuple[str, str, Any]] = []
        for f in dataclasses.fields(self):
            if not f.metadata.get("config", True):
                continue
            dotted = f"{prefix}.{f.name}" if prefix else f.name
            value = getattr(self, f.name)
            if isinstance(value, Section):
                rows += value.describe(dotted)
            else:
                rows.append((dotted, f.metadata.get("help", ""), _plain(value)))
        return rows


def _plain(obj: Any) -> Any:
    if isinstance(obj, Section):
        return obj.to_dict()
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return obj
