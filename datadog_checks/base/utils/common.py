"""Text and number helpers, with upstream's names and behaviour."""

from __future__ import annotations

import re
from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal
from typing import Any


def ensure_bytes(value: Any) -> Any:
    """Encode ``str`` as UTF-8; anything else is returned unchanged."""
    if isinstance(value, str):
        return value.encode("utf-8")
    return value


def ensure_unicode(value: Any) -> Any:
    """Decode ``bytes`` as UTF-8; anything else is returned unchanged."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return value


to_native_string = ensure_unicode
to_string = ensure_unicode


def round_value(value: float, precision: int = 0, rounding_method: str = ROUND_HALF_UP) -> float:
    """Round half up (not Python's banker's rounding), as upstream does."""
    return float(Decimal(str(value)).quantize(Decimal(10) ** -precision, rounding=rounding_method))


def compute_percent(part: float, total: float) -> float:
    """``part`` as a percentage of ``total``; 0 when ``total`` is 0."""
    if total:
        return part / total * 100
    return 0


def pattern_filter(
    items: Iterable[Any],
    whitelist: Iterable[str] | None = None,
    blacklist: Iterable[str] | None = None,
    key: Any = None,
) -> list[Any]:
    """Keep the items matching a whitelist regex and no blacklist regex."""
    key = key or (lambda item: item)
    kept = list(items)
    if whitelist:
        allowed = [re.compile(p) for p in whitelist]
        kept = [i for i in kept if any(p.search(key(i)) for p in allowed)]
    if blacklist:
        denied = [re.compile(p) for p in blacklist]
        kept = [i for i in kept if not any(p.search(key(i)) for p in denied)]
    return kept
