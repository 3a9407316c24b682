"""Typed values as plain JSON data and back: the journal's steps and inputs, the ledgers' fills.

``encode`` turns a frozen dataclass (or any of its parts) into JSON data: Decimals become exact
strings, a numpy array a list of its numbers (a window of candles, ``candles.Columns``, becomes its
columns). ``decode_as(cls, data)`` reads it back through the class's type hints, so a decoded value is equal
to the one encoded; a class that reads itself back (``decoded``, as ``Columns`` does) is read by it. A union
of dataclasses is decoded as the member whose fields match the keys present (``Accepted | Rejected |
Unknown``). Nothing here imports numpy: an array exists only where something loaded it, so a journal
without candles (``status``, ``history``) is read without it.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from decimal import Decimal
from functools import cache
from typing import Any, Callable

_PLAIN = (str, int, bool, type(None))


@cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


def encode(value: Any) -> Any:
    """A value as plain JSON data; Decimals become exact strings, floats must be finite."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is float:
        if not math.isfinite(value):
            raise ValueError(f"a journaled number must be finite, got {value}")
        return value
    if kind is Decimal:
        return format(value, "f")
    if hasattr(kind, "__dataclass_fields__"):
        return {name: encode(getattr(value, name)) for name in _field_names(kind)}
    if kind in (tuple, list):
        return [encode(v) for v in value]
    if kind is dict:
        return {k: encode(v) for k, v in value.items()}
    if hasattr(kind, "tolist"):  # a numpy array: its numbers as Python's
        return value.tolist()
    return value


def encode_changes(value: Any) -> dict[str, Any]:
    """A dataclass's fields that differ from their defaults (a record's inputs, kept short)."""
    out = {}
    for f in dataclasses.fields(value):
        v = getattr(value, f.name)
        if f.default is dataclasses.MISSING or not (v is f.default or type(v) is type(f.default) and v == f.default):
            out[f.name] = encode(v)
    return out


def _identity(raw: Any) -> Any:
    return raw


@cache
def _decoder(kind: Any) -> Callable[[Any], Any]:
    """A function that reads ``kind`` back from its JSON data (built once per type)."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = tuple(a for a in typing.get_args(kind) if a is not type(None))
        if len(options) == 1:
            inner = _decoder(options[0])
            return lambda raw: None if raw is None else inner(raw)
        return lambda raw: None if raw is None else _decoder(_member(options, raw))(raw)
    if kind is Decimal:
        return Decimal
    if kind is float:
        return float
    if hasattr(kind, "decoded"):
        return kind.decoded
    if origin is tuple:
        args = typing.get_args(kind)
        if len(args) == 2 and args[1] is Ellipsis:
            item = _decoder(args[0])
            return lambda raw: tuple(item(v) for v in raw)
        parts = tuple(_decoder(a) for a in args)
        return lambda raw: tuple(d(v) for d, v in zip(parts, raw))
    if dataclasses.is_dataclass(kind):
        hints = typing.get_type_hints(kind)
        fields = tuple((f.name, _decoder(hints[f.name])) for f in dataclasses.fields(kind))
        return lambda raw: kind(**{name: d(raw[name]) for name, d in fields if name in raw})
    return _identity


def _member(options: tuple[Any, ...], raw: Any) -> Any:
    """The dataclass of a union whose fields fit ``raw``'s keys."""
    for cls in options:
        if dataclasses.is_dataclass(cls) and isinstance(raw, dict):
            names = set(_field_names(cls))
            required = {f.name for f in dataclasses.fields(cls)
                        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
            if required <= raw.keys() <= names:
                return cls
    return options[0]


def decode_as(cls: type, data: dict[str, Any]) -> Any:
    """The ``cls`` that ``encode`` (or ``encode_changes``) turned into ``data``."""
    return _decoder(cls)(data)
