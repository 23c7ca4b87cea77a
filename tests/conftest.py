"""Shared fixtures."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from twisted.internet.testing import MemoryReactorClock


@pytest.fixture
def reactor() -> MemoryReactorClock:
    return MemoryReactorClock()


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[[str, str], str]:
    def write(text: str, name: str = "security-agent.yaml") -> str:
        path = tmp_path / name
        path.write_text(text)
        return str(path)

    return write
