"""Checks of common value shapes, each failing with a ``ConfigError`` that names the origin."""

from __future__ import annotations

from collections.abc import Sequence

from host.config.config import Config
from host.config.conversions import shown

_HIGHEST_PORT = 65535


def get_port(config: Config, key: str, *, allow_zero: bool = False) -> int:
    """The TCP port at ``key``; ``allow_zero`` accepts 0 for the keys where it means "off".

    A bad value fails as, e.g.,
    ``/etc/sa/security-agent.yaml:3: security_agent.cmd_port: expected a port number between
    1 and 65535, got 70000``.
    """
    port = config.get_int(key)
    lowest = 0 if allow_zero else 1
    if not lowest <= port <= _HIGHEST_PORT:
        raise config.value_error(
            key, f"expected a port number between {lowest} and {_HIGHEST_PORT}, got {port}"
        )
    return port


def get_choice(config: Config, key: str, choices: Sequence[str]) -> str:
    """The string at ``key``, which must be one of ``choices`` (compared case-insensitively).

    Returns the matching member of ``choices``; e.g. ``get_choice(config, "log_level",
    ("trace", "debug", "info", "warn", "error", "critical", "off"))``.
    """
    value = config.get_str(key)
    for choice in choices:
        if value.strip().lower() == choice.lower():
            return choice
    listed = ", ".join(choices)
    raise config.value_error(key, f"expected one of {listed}, got {shown(value)}")
