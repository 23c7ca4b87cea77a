"""Durations in policies (``every: 10s``, ``ttl: 5m``): ``500ms``, ``10s``, ``5m``, ``1h30m``;
an integer is nanoseconds, as Datadog's policy format reads it."""

from __future__ import annotations

import re
from typing import Any

_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


class DurationError(ValueError):
    pass


def parse_duration(value: Any) -> float:
    """Seconds; ``DurationError`` names the bad value."""
    if isinstance(value, bool):
        raise DurationError(f"expected a duration such as 10s, got {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise DurationError(f"expected a positive duration, got {value!r}")
        return float(value) / 1e9
    text = str(value).strip()
    pos, total = 0, 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise DurationError(f"expected a duration such as 10s, 5m or 1h30m, got {text!r}")
    return total
