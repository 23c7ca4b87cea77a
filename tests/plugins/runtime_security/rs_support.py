"""Helpers for the runtime security source tests (imported by name; conftest only holds
fixtures, because every test folder's conftest is a module named `conftest`)."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator

from plugins.runtime_security.sources.audit_netlink import AuditControl


class Collector:
    """A thread-safe callback that keeps events and lets a test wait for one."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        self._cond = threading.Condition()

    def __call__(self, event: dict) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def wait_for(self, predicate: Callable[[dict], bool], timeout: float = 5.0) -> dict:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for event in self.events:
                    if predicate(event):
                        return event
                left = deadline - time.monotonic()
                if left <= 0:
                    kinds = sorted({e["type"] for e in self.events})
                    raise AssertionError(
                        f"no matching event among {len(self.events)} (types: {kinds})"
                    )
                self._cond.wait(left)

    def matching(self, predicate: Callable[[dict], bool]) -> list[dict]:
        with self._cond:
            return [e for e in self.events if predicate(e)]


def run_child(action: Callable[[], None]) -> int:
    """Fork a child that runs ``action`` and exits; returns its pid after reaping it."""
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            action()
        except BaseException:
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "child action failed"
    return pid


@contextlib.contextmanager
def held_child(action: Callable[[], None]) -> Iterator[int]:
    """Fork a child that runs ``action`` then waits until the block ends, so its /proc entry
    is still there while the test checks the process context of its events."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(write_end)
        code = 0
        try:
            action()
        except BaseException:
            code = 1
        os.read(read_end, 1)
        os._exit(code)
    os.close(read_end)
    try:
        yield pid
    finally:
        os.close(write_end)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "child action failed"


def audit_state() -> tuple[tuple[int, int, int], list[bytes]]:
    control = AuditControl()
    try:
        status = control.get_status()
        return (status.enabled, status.pid, status.backlog_limit), sorted(control.list_rules())
    finally:
        control.close()


def kernel_marks() -> list[dict[str, int]]:
    """The fanotify marks this process holds: one dict of the hex fields per fdinfo line."""
    marks = []
    for fd in os.listdir("/proc/self/fdinfo"):
        try:
            with open(f"/proc/self/fdinfo/{fd}") as f:
                lines = [line for line in f if line.startswith("fanotify ")]
        except OSError:
            continue
        for line in lines:
            fields = dict(p.split(":", 1) for p in line.split()[1:] if ":" in p)
            marks.append({k: int(v, 16) for k, v in fields.items() if k != "fhandle-type"})
    return marks


def ignored_on(path) -> int:
    """The ignored mask our groups hold on the inode of ``path`` (0: none)."""
    ino = os.stat(path).st_ino
    return sum(m.get("ignored_mask", 0) for m in kernel_marks() if m.get("ino") == ino)


def fake_proc(root, pid: int, cgroup: str) -> None:
    """A /proc/<pid> entry under ``root`` for ProcessCache(proc=root): an ``app`` process run
    by root in ``cgroup``."""
    entry = root / str(pid)
    entry.mkdir(parents=True)
    (entry / "status").write_text("Name:\tapp\nPPid:\t1\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\n")
    (entry / "cmdline").write_bytes(b"/app\0")
    (entry / "cgroup").write_text(f"0::{cgroup}\n")
    os.symlink("/usr/bin/true", entry / "exe")
