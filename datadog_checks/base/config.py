"""Configuration helpers shared by checks."""

from __future__ import annotations

from typing import Any

_TRUE_WORDS = frozenset({"yes", "true", "1", "y", "on"})


def is_affirmative(value: Any) -> bool:
    """``True`` for ``"yes"``, ``"true"``, ``"1"``, ``"y"``, ``"on"`` (any case); other strings
    are false; anything that is not a string is judged by its truth value."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        return value.lower() in _TRUE_WORDS
    return bool(value)


_is_affirmative = is_affirmative
