"""Helpers for checks that key state on configuration values."""

from __future__ import annotations

from typing import Any


def freeze(value: Any) -> Any:
    """A hashable, order-insensitive copy of nested dicts, lists and sets."""
    if isinstance(value, dict):
        return frozenset((key, freeze(item)) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return tuple(freeze(item) for item in value)
    if isinstance(value, (set, frozenset)):
        return frozenset(freeze(item) for item in value)
    return value


def hash_mutable(value: Any) -> int:
    """``hash()`` for dicts and lists (e.g. an instance, to cache per configuration)."""
    return hash(freeze(value))
