"""Fixtures for the runtime security source tests: an event collector that waits for a
matching event, a directory to watch, a cross-process lock around the audit tests (audit is
one kernel-wide state) and the audit state snapshot every audit test must leave unchanged."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from pathlib import Path

import pytest
from rs_support import Collector, audit_state


@pytest.fixture
def collector() -> Collector:
    return Collector()


@pytest.fixture
def watched(tmp_path: Path) -> Path:
    """An empty directory for a file source to watch."""
    path = tmp_path / "watched"
    path.mkdir()
    return path


@pytest.fixture
def audit_guard() -> Iterator[tuple[tuple[int, int, int], list[bytes]]]:
    """Serialise audit tests across processes and check the kernel's audit state (enabled,
    pid, backlog limit, the rule list read with AUDIT_LIST_RULES) is what it was."""
    with open("/tmp/rs-audit-tests.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            before = audit_state()
        except OSError as exc:
            pytest.skip(f"the kernel refuses the audit netlink here: {exc}")
        yield before
        assert audit_state() == before
