"""Turn raw configuration values (YAML scalars, environment strings) into typed values.

Each function raises ``ConversionError`` whose message is the part of a user-facing error that
follows the key, e.g. ``expected an integer, got 'abc'``; the caller adds where the value came
from. ``None`` (an empty YAML value such as ``api_key:``) converts to the type's zero value, as
the Go agent's getters do.
"""

from __future__ import annotations

import datetime
import json
import re
from typing import Any

_SHOWN_VALUE_LIMIT = 80

_TRUE_WORDS = frozenset({"true", "yes", "on", "1"})
_FALSE_WORDS = frozenset({"false", "no", "off", "0"})

_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_FLOAT = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")

# Go's time.ParseDuration units. "ms" is listed before "m" and "s" so it wins the alternation.
_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "\u00b5s": 1e-6,  # micro sign
    "\u03bcs": 1e-6,  # Greek small letter mu
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")

# Datadog's log_file_max_size style: binary multiples, the trailing "b" optional.
_SIZE = re.compile(r"(\d+(?:\.\d+)?|\.\d+)\s*([kmgt]?)b?")
_SIZE_MULTIPLIERS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


class ConversionError(ValueError):
    """A value of the wrong shape; the message reads ``expected ..., got ...``."""


def shown(value: Any) -> str:
    """The value as an error message shows it: its repr, on one line, cut when long."""
    text = repr(value)
    if len(text) > _SHOWN_VALUE_LIMIT:
        text = text[: _SHOWN_VALUE_LIMIT - 3] + "..."
    return text


def kind_of(value: Any) -> str:
    """A user-facing name for the type of a parsed YAML value, with its article."""
    kinds: list[tuple[type | tuple[type, ...], str]] = [
        (bool, "a boolean"),  # before int: bool is a subclass of int
        (int, "an integer"),
        (float, "a number"),
        (str, "a string"),
        ((list, tuple), "a list"),
        (dict, "a mapping"),
        ((set, frozenset), "a set"),
        (bytes, "binary data"),
        ((datetime.date, datetime.datetime), "a date"),
    ]
    if value is None:
        return "nothing"
    for types, name in kinds:
        if isinstance(value, types):
            return name
    return f"a {type(value).__name__}"


def _fail(expected: str, value: Any) -> ConversionError:
    return ConversionError(f"expected {expected}, got {shown(value)}")


def to_bool(value: Any) -> bool:
    """Real booleans, or true/false/yes/no/on/off/1/0 in any case."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return value == 1
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
    raise _fail("a boolean (true or false)", value)


def to_int(value: Any) -> int:
    """Integers, whole floats and decimal integer strings; booleans are refused."""
    if value is None:
        return 0
    if isinstance(value, bool):
        raise _fail("an integer", value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"[+-]?\d+", text):
            try:
                return int(text)
            except ValueError:  # more digits than Python's int-from-string limit
                pass
    raise _fail("an integer", value)


def to_float(value: Any) -> float:
    """Numbers and decimal number strings; booleans are refused."""
    if value is None:
        return 0.0
    if isinstance(value, bool):
        raise _fail("a number", value)
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        # float() alone would also take "nan", "inf" and "1_000", which no user means.
        if _FLOAT.fullmatch(text):
            return float(text)
    raise _fail("a number", value)


def to_str(value: Any) -> str:
    """Strings as they are; numbers and booleans spelled as in YAML; dates in ISO format."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, datetime.date):
        # An unquoted 2024-01-31 is a date to YAML but a string to the user who wrote it.
        return value.isoformat()
    raise _fail("a string", value)


def to_list(value: Any) -> list[Any]:
    """Lists as they are; a string is split on whitespace (how ``DD_TAGS="a:1 b:2"`` reads)."""
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    if isinstance(value, str):
        return value.split()
    raise _fail("a list", value)


def to_dict(value: Any) -> dict[str, Any]:
    """Mappings as they are; a string must be a JSON object (how an env var spells one)."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            return parsed
        raise _fail("a JSON object", value)
    raise _fail("a mapping", value)


def to_duration(value: Any) -> float:
    """Seconds, from a number of seconds or a Go duration string ("500ms", "1h30m").

    A string holding a bare number also counts as seconds; Go's cast would read it as
    nanoseconds, which is never what a user writing ``check_interval: "20"`` wants.
    """
    if value is None:
        return 0.0
    if isinstance(value, bool):
        raise _duration_error(value)
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        if _DECIMAL.fullmatch(text):
            return float(text)
        seconds = _parse_go_duration(text)
        if seconds is not None:
            return seconds
    raise _duration_error(value)


def _duration_error(value: Any) -> ConversionError:
    return _fail("a duration such as 10s, 500ms or 1h30m", value)


def _parse_go_duration(text: str) -> float | None:
    sign = 1.0
    if text[:1] in ("+", "-"):
        sign = -1.0 if text[0] == "-" else 1.0
        text = text[1:]
    if not text:
        return None
    total = 0.0
    position = 0
    while position < len(text):
        match = _DURATION_PART.match(text, position)
        if match is None:
            return None
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        position = match.end()
    return sign * total


def to_size(value: Any) -> int:
    """Bytes, from an integer or a string such as "10Mb", "512KB", "1GB" or "100" (k = 1024)."""
    if value is None:
        return 0
    if isinstance(value, bool):
        raise _size_error(value)
    if isinstance(value, int) and value >= 0:
        return value
    if isinstance(value, float) and value >= 0 and value.is_integer():
        return int(value)
    if isinstance(value, str):
        match = _SIZE.fullmatch(value.strip().lower())
        if match is not None:
            return int(float(match.group(1)) * _SIZE_MULTIPLIERS[match.group(2)])
    raise _size_error(value)


def _size_error(value: Any) -> ConversionError:
    return _fail("a size in bytes such as 10MB, 512KB or 100", value)
