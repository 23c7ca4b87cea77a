"""Fixtures for the configuration tests: writing config files, and reading one as nobody."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from host.config import ConfigError

NOBODY = 65534


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], str]:
    """write(name, yaml_text) -> path of a file under tmp_path (dedented, dirs created)."""

    def write_file(name: str, text: str) -> str:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        return str(path)

    return write_file


def _run_in_child(directory: Path, action: Callable[[], object]) -> str:
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report one line through the pipe, never return into pytest
        try:
            os.close(read_fd)
            try:
                # chdir first, as root: the action opens relative paths, so nobody needs no
                # access to tmp_path's 0700 parents, only to `directory` itself.
                os.chdir(directory)
                if os.geteuid() == 0:
                    os.setgroups([])
                    os.setgid(NOBODY)
                    os.setuid(NOBODY)
            except OSError as error:
                result = f"SKIP: cannot switch to uid {NOBODY}: {error}"
            else:
                try:
                    action()
                    result = "no error"
                except ConfigError as error:
                    result = f"ConfigError: {error}"
                except BaseException as error:
                    result = f"{type(error).__name__}: {error}"
            with os.fdopen(write_fd, "wb") as pipe:
                pipe.write(result.encode())
        finally:
            os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        output = pipe.read().decode()
    os.waitpid(pid, 0)
    return output


@pytest.fixture
def run_as_nobody() -> Callable[[Path, Callable[[], object]], str]:
    """run(directory, action) -> "ConfigError: <message>", "no error" or "<Type>: <message>".

    The action runs in a forked child, in ``directory``, as uid/gid 65534: the tests run as
    root, for whom a mode-0000 file is readable, so permission denied needs another user.
    """

    def run(directory: Path, action: Callable[[], object]) -> str:
        directory.chmod(0o755)
        output = _run_in_child(directory, action)
        if output.startswith("SKIP: "):
            print(output)
            pytest.skip(output.removeprefix("SKIP: "))
        return output

    return run
