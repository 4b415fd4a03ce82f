"""Plain mappings (parsed YAML, a checkpoint's JSON) into typed dataclasses: avlabel's one converter.

`from_mapping` builds a dataclass (recursively, for fields that are dataclasses) and
`convert_fields` converts only the keys a mapping holds; the model config
(`avlabel.models.config`) and the training config (`avlabel.train.config`) both use them,
so every config file and checkpoint is read by the same rules:

* an unknown key is an error suggesting the closest known one (``unknown config key
  'optim.lrr'; did you mean 'optim.lr'?``);
* a value of the wrong type is an error naming its dotted path (``data.frames: expected int, got
  float 2.5``); ``True`` is not a number;
* conversions are lossless only: int -> float, list -> tuple, and a numeric string -> float,
  because PyYAML follows YAML 1.1, which reads ``1e-3`` (no dot) as a string. Floats must be finite.

Value ranges and cross-field rules stay with each config class. This module imports nothing
beyond the standard library.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import math
import types
import typing
from typing import Any, Literal, TypeVar

from avlabel.errors import AvlabelError

T = TypeVar("T")


def from_mapping(cls: type[T], raw: Any, path: str = "") -> T:
    """An instance of dataclass ``cls`` from mapping ``raw``; missing keys take the field defaults.

    Args:
        cls: the dataclass.
        raw: its plain mapping.
        path: the dotted path of ``raw`` in the whole config ("" for the root), used in messages.

    Raises:
        AvlabelError: not a mapping, an unknown or missing key, or a value of the wrong type.
    """
    hints = typing.get_type_hints(cls)
    values = convert_fields(cls, raw, path)
    for spec in dataclasses.fields(cls):
        if spec.name in values or _has_default(spec):
            continue
        if dataclasses.is_dataclass(hints[spec.name]):  # a section whose keys all have defaults
            values[spec.name] = from_mapping(hints[spec.name], {}, join(path, spec.name))
            continue
        raise AvlabelError(f"missing required config key {join(path, spec.name)!r}")
    return cls(**values)


def convert_fields(cls: type, raw: Any, path: str = "") -> dict[str, Any]:
    """The keys of ``raw`` converted to the types of ``cls``'s fields (keys it lacks stay absent)."""
    if not isinstance(raw, dict):
        raise AvlabelError(f"{path or 'config'}: expected a mapping of keys, got {describe(raw)}")
    hints = typing.get_type_hints(cls)
    names = [spec.name for spec in dataclasses.fields(cls)]
    for key in raw:
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f"; did you mean {join(path, close[0])!r}?" if close else f"; known keys: {', '.join(names)}"
            raise AvlabelError(f"unknown config key {join(path, str(key))!r}{hint}")
    return {key: convert(hints[key], value, join(path, key)) for key, value in raw.items()}


def convert(hint: Any, value: Any, dotted: str) -> Any:
    """``value`` checked against type ``hint`` (and converted where lossless), or an error naming ``dotted``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return from_mapping(hint, value, dotted)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [arg for arg in args if arg is not type(None)]
        if len(options) == 1 and typing.get_origin(options[0]) is not None:
            return convert(options[0], value, dotted)  # a list or choice, or null: its message names the bad item
        for option in options:
            try:
                return convert(option, value, dotted)
            except AvlabelError:
                continue
        raise AvlabelError(f"{dotted}: expected {type_name(hint)}, got {describe(value)}")
    if origin is Literal:
        if value not in args:
            raise AvlabelError(f"{dotted}: expected one of {', '.join(map(str, args))}, got {describe(value)}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise AvlabelError(f"{dotted}: expected a list, got {describe(value)}")
        items = [convert(args[0], item, f"{dotted}[{index}]") for index, item in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin is dict:
        if not isinstance(value, dict):
            raise AvlabelError(f"{dotted}: expected a mapping, got {describe(value)}")
        return {str(key): item for key, item in value.items()}
    if hint is Any:
        return value
    if hint is float:
        return _to_float(value, dotted)
    # bool is an int subclass: True is not a number.
    if (hint is int and isinstance(value, bool)) or not isinstance(value, hint):
        raise AvlabelError(f"{dotted}: expected {type_name(hint)}, got {describe(value)}")
    return value


def to_plain(value: Any) -> Any:
    """A dataclass (or value) as plain dicts and lists, ready for YAML/JSON and `from_mapping`."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {spec.name: to_plain(getattr(value, spec.name)) for spec in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [to_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: to_plain(item) for key, item in value.items()}
    return value


def join(prefix: str, name: str) -> str:
    """``prefix.name`` (just ``name`` at the root)."""
    return f"{prefix}.{name}" if prefix else name


def describe(value: Any) -> str:
    """``int 3``, ``str 'x'`` or ``null``: a value as error messages show it."""
    return f"{type(value).__name__} {value!r}" if value is not None else "null"


def type_name(hint: Any) -> str:
    """A type hint as a user reads it: ``int or null``, ``one of M, W``."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join("null" if arg is type(None) else type_name(arg) for arg in typing.get_args(hint))
    if origin is Literal:
        return "one of " + ", ".join(map(str, typing.get_args(hint)))
    if origin is not None:
        return str(hint).replace("typing.", "")
    return getattr(hint, "__name__", str(hint))


def _to_float(value: Any, dotted: str) -> float:
    number = value
    if isinstance(value, str):
        with contextlib.suppress(ValueError):  # not a number: reported below as the string it is
            number = float(value)
    if isinstance(number, bool) or not isinstance(number, (int, float)):
        raise AvlabelError(f"{dotted}: expected float, got {describe(value)}")
    if not math.isfinite(number):
        raise AvlabelError(f"{dotted}: must be a finite number, got {value!r}")
    return float(number)


def _has_default(spec: dataclasses.Field) -> bool:
    return spec.default is not dataclasses.MISSING or spec.default_factory is not dataclasses.MISSING
