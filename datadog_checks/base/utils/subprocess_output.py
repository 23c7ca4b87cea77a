"""``get_subprocess_output``: run a command through the host's ``_util`` module."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from datadog_checks.base.agent import builtin


def _empty_error() -> type[Exception]:
    error: type[Exception] = builtin("_util").SubprocessOutputEmptyError
    return error


def __getattr__(name: str) -> Any:
    # The exception class is the host's when a host is there, so ``except`` clauses match it.
    if name == "SubprocessOutputEmptyError":
        return _empty_error()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def get_subprocess_output(
    command: Sequence[str] | str,
    log: logging.Logger | logging.LoggerAdapter | None = None,  # type: ignore[type-arg]
    raise_on_empty_output: bool = True,
    log_debug: bool = True,
    env: Mapping[str, str] | None = None,
) -> tuple[str, str, int]:
    """``(stdout, stderr, returncode)``; a string command is split on spaces."""
    args = command.split() if isinstance(command, str) else list(command)
    if log is not None and log_debug:
        log.debug("Running get_subprocess_output with cmd: %s", args)
    util = builtin("_util")
    if env is not None:
        out, err, rc = util.subprocess_output(args, raise_on_empty_output, dict(env))
    else:
        out, err, rc = util.subprocess_output(args, raise_on_empty_output)
    return out, err, rc
