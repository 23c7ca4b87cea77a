"""A stand-in for the host's ``_util`` module: runs the command with ``subprocess``."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence


class SubprocessOutputEmptyError(Exception):
    """The command wrote nothing on stdout and the caller asked for output."""


def subprocess_output(
    command: Sequence[str], raise_on_empty: bool = False, env: Mapping[str, str] | None = None
) -> tuple[str, str, int]:
    completed = subprocess.run(
        list(command), capture_output=True, env=dict(env) if env is not None else None, check=False
    )
    out = completed.stdout.decode("utf-8", "replace")
    if raise_on_empty and not out:
        raise SubprocessOutputEmptyError("get_subprocess_output expected output but had none.")
    return out, completed.stderr.decode("utf-8", "replace"), completed.returncode


get_subprocess_output = subprocess_output


class _UtilModule:
    SubprocessOutputEmptyError = SubprocessOutputEmptyError
    subprocess_output = staticmethod(subprocess_output)
    get_subprocess_output = staticmethod(subprocess_output)


_util = _UtilModule()
