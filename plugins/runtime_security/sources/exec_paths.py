"""Executable paths of processes too short-lived for /proc: a fanotify group reporting
FAN_OPEN_EXEC (with pid, directory handle and name) on the filesystems holding executables.

execve opens the binary, then its ELF interpreter; both are reported, and the fanotify event
is queued before the process connector's exec message is sent, so draining this group when
the exec message is handled finds the path. Interpreters (ld-linux, ld-musl) are skipped, and
discarded: the kernel stops reporting their opens, half of this group's events otherwise.
"""

from __future__ import annotations

import os
from collections import OrderedDict

from .fanotify_backend import FAN_OPEN_EXEC, Fanotify

ROOTS = ("/", "/usr", "/opt", "/tmp", "/home", "/var", "/root", "/snap")
MAX_PIDS = 4096


def _is_interpreter(path: str) -> bool:
    name = os.path.basename(path)
    return name.startswith(("ld-linux", "ld-musl", "ld64.so", "ld.so"))


class ExecPaths:
    def __init__(self, fanotify: Fanotify | None, status: str) -> None:
        self.fanotify = fanotify
        self.status = status
        self.recovered = 0
        self._paths: OrderedDict[int, str] = OrderedDict()

    @classmethod
    def open(cls) -> ExecPaths:
        """Never raises: a refusal leaves the fallback off and says why in ``status``."""
        roots, seen = [], set()
        for root in ROOTS:
            try:
                dev = os.stat(root).st_dev
            except OSError:
                continue
            if dev not in seen:
                seen.add(dev)
                roots.append(root)
        fan = Fanotify(roots, mask=FAN_OPEN_EXEC)
        try:
            fan.open()
        except OSError as exc:
            return cls(None, f"off: {exc.strerror}")
        return cls(fan, "on")

    def drain(self) -> None:
        fan = self.fanotify
        if fan is None:
            return
        for raw in fan.read():
            if not raw.mask & FAN_OPEN_EXEC:
                continue
            if _is_interpreter(raw.path):
                fan.discard(raw.path, FAN_OPEN_EXEC)
                continue
            self._paths[raw.pid] = raw.path
            self._paths.move_to_end(raw.pid)
        while len(self._paths) > MAX_PIDS:
            self._paths.popitem(last=False)

    def take(self, pid: int) -> str:
        """The last executable ``pid`` opened for exec ('' if unknown)."""
        self.drain()
        path = self._paths.pop(pid, "")
        if path:
            self.recovered += 1
        return path

    def close(self) -> None:
        if self.fanotify is not None:
            self.fanotify.close()
            self.fanotify = None
