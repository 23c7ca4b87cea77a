"""Fixtures for the configuration tests: writing config files, and reading one as nobody."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from support import run_in_child_as_nobody


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], str]:
    """write(name, yaml_text) -> path of a file under tmp_path (dedented, dirs created)."""

    def write_file(name: str, text: str) -> str:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        return str(path)

    return write_file


def _discard(action: Callable[[], object]) -> None:
    action()


@pytest.fixture
def run_as_nobody() -> Callable[[Path, Callable[[], object]], str]:
    """run(directory, action) -> "ConfigError: <message>", "no error" or "<Type>: <message>".

    The action runs in a forked child, in ``directory``, as uid/gid 65534: the tests run as
    root, for whom a mode-0000 file is readable, so permission denied needs another user.
    """

    def run(directory: Path, action: Callable[[], object]) -> str:
        directory.chmod(0o755)
        output = run_in_child_as_nobody(directory, lambda: _discard(action))
        if output.startswith("SKIP: "):
            print(output)
            pytest.skip(output.removeprefix("SKIP: "))
        return output

    return run
