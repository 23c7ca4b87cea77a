"""Argument checks with the messages CPython's ``PyArg_ParseTuple`` gives rtloader's modules.

rtloader's builtins are C functions; checks (and their tests) see the interpreter's own
``TypeError`` texts, e.g. ``argument 2 must be str, not int``. These helpers reproduce them
so a check behaves the same here as under the Datadog Agent.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from typing import Any


def _type_name(value: Any) -> str:
    return "None" if value is None else type(value).__name__


def no_keywords(function: str, kwargs: Mapping[str, Any]) -> None:
    if kwargs:
        raise TypeError(f"{function}() takes no keyword arguments")


def parse(args: Sequence[Any], spec: str, function: str | None = None) -> list[Any]:
    """Check ``args`` against a ``PyArg_ParseTuple`` format (``O s i d f L``, ``|`` optional).

    Returns the converted values, ``None`` for optional ones not given.
    """
    required, _, optional = spec.partition("|")
    codes = required + optional
    given = len(args)
    who = f"{function}()" if function else "function"
    if given < len(required) or given > len(codes):
        if not optional:
            bound = "exactly"
            count = len(required)
        elif given < len(required):
            bound, count = "at least", len(required)
        else:
            bound, count = "at most", len(codes)
        plural = "" if count == 1 else "s"
        raise TypeError(f"{who} takes {bound} {count} argument{plural} ({given} given)")
    values: list[Any] = []
    for position, code in enumerate(codes, start=1):
        if position > given:
            values.append(None)
            continue
        values.append(convert(code, args[position - 1], position, function))
    return values


def convert(code: str, value: Any, position: int, function: str | None = None) -> Any:
    prefix = f"{function}() " if function else ""
    if code == "O":
        return value
    if code == "s":
        if not isinstance(value, str):
            raise TypeError(f"{prefix}argument {position} must be str, not {_type_name(value)}")
        if "\0" in value:
            raise ValueError("embedded null character")
        return value
    if code in ("i", "L"):
        if isinstance(value, float):
            raise TypeError("'float' object cannot be interpreted as an integer")
        try:
            return operator.index(value)
        except TypeError:
            raise TypeError(
                f"'{_type_name(value)}' object cannot be interpreted as an integer"
            ) from None
    if code in ("d", "f"):
        if isinstance(value, (int, float)):
            return float(value)
        if hasattr(value, "__float__") or hasattr(value, "__index__"):
            return float(value)
        raise TypeError(f"{prefix}argument {position} must be real number, not {_type_name(value)}")
    raise ValueError(f"unknown format code {code!r}")


def is_sequence(value: Any) -> bool:
    """``PySequence_Check``: lists, tuples, strings… but not mappings or sets."""
    if isinstance(value, (dict, set, frozenset)) or value is None:
        return False
    return isinstance(value, Sequence) or (
        hasattr(type(value), "__getitem__") and not isinstance(value, Mapping)
    )


def string_tags(tags: Any) -> list[str]:
    """rtloader's tag conversion: a sequence is required, non-string items are skipped."""
    if not is_sequence(tags):
        raise TypeError("tags must be a sequence")
    return [tag for tag in tags if isinstance(tag, str)]
