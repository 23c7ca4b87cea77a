"""The process cache: what we know about every live process, seeded from /proc and kept
current by the process source's fork/exec/exit/uid/gid events.

Reading /proc dominates the cost of process events (about 100 µs per exec here), so the cache
reads as little as it can, as late as it can: a fork copies the parent's entry (same
credentials, cgroup, executable); an exec reads only the executable link and the command line
(which must be read before a short-lived process is gone); environment variables are read only
when asked for. Every event source looks processes up here, so a file or audit event gets the
same process context, ancestors included.

The cache is shared between source threads; each operation is a handful of dict operations
under one lock, cheap enough to not matter next to the /proc reads done outside it.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from plugins.workloadmeta.cgroups import container_from_path

MAX_ANCESTORS = 64
MAX_ENTRIES = 65536
# Processes remembered after their exit, for events read after the exit record: at 1,000
# exec/s this is about four seconds of history.
MAX_EXITED = 4096


@dataclass
class ProcessEntry:
    pid: int
    ppid: int = 0
    uid: int = 0
    gid: int = 0
    euid: int = 0
    egid: int = 0
    comm: str = ""
    path: str = ""
    argv: list[str] = field(default_factory=list)
    cgroup: str = ""
    container_id: str = ""
    envs: list[str] | None = None
    exec_time: float = 0.0
    snapshot: dict[str, Any] | None = None
    full: dict[str, Any] | None = None


def container_id_of(cgroup: str) -> str:
    """The 64-hex container id of a docker/containerd/cri-o/podman cgroup path, as the
    workload list reads it (the process events feed that list)."""
    ref = container_from_path(cgroup)
    return ref.id if ref is not None else ""


def _copy(entry: ProcessEntry) -> ProcessEntry:
    """A new version of ``entry`` (same fields, no cached dicts). Entries are replaced, never
    changed in place, since other threads may be reading the old one."""
    new = object.__new__(ProcessEntry)
    new.__dict__.update(entry.__dict__)
    new.snapshot = new.full = None
    return new


def is_unresolved(process: dict[str, Any]) -> bool:
    """Whether a ``process`` dict is the empty stand-in of a pid the cache knew nothing of
    (gone from /proc before any record of it was read). Only pid 0 and init have no parent;
    init and kernel threads always have a name."""
    return bool(process.get("pid")) and not process.get("ppid") and not process.get("comm")


def _cached_name(names: dict[int, str], ident: int, lookup: Callable[[int], Any]) -> str:
    """The name of a user or group id ("" when unknown), looked up once per id."""
    name = names.get(ident)
    if name is None:
        try:
            name = str(lookup(ident)[0])  # pw_name / gr_name: the first field of both
        except KeyError:
            name = ""
        names[ident] = name
    return name


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


class ProcessCache:
    """pid → ProcessEntry. ``process(pid)`` gives the SECL ``process`` dict with ancestors."""

    def __init__(self, proc: str = "/proc", with_envs: bool = False) -> None:
        self.proc = proc
        self.with_envs = with_envs
        self._entries: dict[int, ProcessEntry] = {}
        # Oldest first. An OrderedDict, since a plain dict's first key is slow to find once
        # thousands were deleted from its front (it walks over the holes).
        self._exited: OrderedDict[int, ProcessEntry] = OrderedDict()
        self._lock = threading.Lock()
        self._containers: dict[str, int] = {}  # container id -> live cached processes
        self._users: dict[int, str] = {}
        self._groups: dict[int, str] = {}
        self.proc_reads = 0
        self.exec_unresolved = 0
        # True while a process source keeps the cache current (set by ProcessSource): a miss
        # then means "fork not read yet" rather than "never seen", see ``process``.
        self.followed = False

    # -- filling ------------------------------------------------------------------------------

    def seed(self) -> int:
        """Load every process currently in /proc; returns how many were loaded."""
        count = 0
        for name in os.listdir(self.proc):
            if name.isdigit():
                entry = self._load(int(name))
                if entry is not None:
                    with self._lock:
                        self._put(entry.pid, entry)
                    count += 1
        return count

    def _load(self, pid: int) -> ProcessEntry | None:
        """Everything /proc says about one process (None if it is gone)."""
        base = f"{self.proc}/{pid}"
        self.proc_reads += 1
        try:
            status = _read(f"{base}/status").decode(errors="replace")
        except OSError:
            return None
        entry = ProcessEntry(pid=pid)
        for line in status.splitlines():
            key, _, value = line.partition(":")
            if key == "Name":
                entry.comm = value.strip()
            elif key == "PPid":
                entry.ppid = int(value)
            elif key == "Uid":
                ids = value.split()
                entry.uid, entry.euid = int(ids[0]), int(ids[1])
            elif key == "Gid":
                ids = value.split()
                entry.gid, entry.egid = int(ids[0]), int(ids[1])
        self._read_exec(entry)
        with contextlib.suppress(OSError):
            entry.cgroup = self._cgroup_path(_read(f"{base}/cgroup").decode(errors="replace"))
        entry.container_id = container_id_of(entry.cgroup)
        return entry

    def _read_exec(self, entry: ProcessEntry) -> None:
        base = f"{self.proc}/{entry.pid}"
        try:
            entry.path = os.readlink(f"{base}/exe")
        except OSError:
            entry.path = ""  # gone already (or a kernel thread): better empty than wrong
            self.exec_unresolved += 1
        try:
            raw = _read(f"{base}/cmdline")
        except OSError:
            raw = b""
        entry.argv = [a.decode(errors="replace") for a in raw.split(b"\0")[:-1]] if raw else []
        if self.with_envs:
            entry.envs = self._read_envs(entry.pid)

    @staticmethod
    def _cgroup_path(text: str) -> str:
        # cgroup v2 has one "0::/path" line; on v1 prefer the pids or memory hierarchy.
        paths = {}
        for line in text.splitlines():
            parts = line.split(":", 2)
            if len(parts) == 3:
                paths[parts[1]] = parts[2]
        for key in ("", "name=systemd", "pids", "memory"):
            if key in paths:
                return paths[key]
        return next(iter(paths.values()), "")

    def _read_envs(self, pid: int) -> list[str]:
        try:
            raw = _read(f"{self.proc}/{pid}/environ")
        except OSError:
            return []
        return [e.decode(errors="replace") for e in raw.split(b"\0") if e]

    # -- bookkeeping (callers hold the lock) ----------------------------------------------------

    def _put(self, pid: int, entry: ProcessEntry) -> None:
        old = self._entries.get(pid)
        if old is not None:
            self._count_container(old.container_id, -1)
        self._entries[pid] = entry
        self._count_container(entry.container_id, 1)

    def _drop(self, pid: int) -> ProcessEntry | None:
        entry = self._entries.pop(pid, None)
        if entry is not None:
            self._count_container(entry.container_id, -1)
        return entry

    def _count_container(self, container_id: str, delta: int) -> None:
        if container_id:
            left = self._containers.get(container_id, 0) + delta
            if left > 0:
                self._containers[container_id] = left
            else:
                self._containers.pop(container_id, None)

    def container_alive(self, container_id: str) -> bool:
        """Whether a cached live process runs in ``container_id``: once none does, values
        scoped to that container can go (the variables' ``forget_container``)."""
        with self._lock:
            return container_id in self._containers

    # -- updates from the process source ------------------------------------------------------

    def on_fork(self, parent: int, child: int, when: float) -> ProcessEntry:
        """The child starts as a copy of its parent (same credentials, cgroup, executable)."""
        with self._lock:
            base = self._entries.get(parent)
        if base is None:
            loaded = self._load(child)
            entry = loaded if loaded is not None else ProcessEntry(pid=child, ppid=parent)
        else:
            entry = ProcessEntry(
                pid=child,
                ppid=parent,
                uid=base.uid,
                gid=base.gid,
                euid=base.euid,
                egid=base.egid,
                comm=base.comm,
                path=base.path,
                argv=base.argv,
                cgroup=base.cgroup,
                container_id=base.container_id,
                envs=base.envs,
                exec_time=base.exec_time,
            )
            snap = base.snapshot
            if snap is not None:  # same image and credentials: only the ids differ
                entry.snapshot = {**snap, "pid": child, "tid": child, "ppid": parent}
        entry.ppid = parent
        with self._lock:
            self._put(child, entry)
        return entry

    def on_exec(
        self, pid: int, when: float, fallback_path: Callable[[int], str] | None = None
    ) -> ProcessEntry:
        """A new image: read its executable and argv now. When /proc is already gone,
        ``fallback_path(pid)`` may still know the executable (fanotify FAN_OPEN_EXEC); argv
        is then lost (empty) rather than guessed."""
        with self._lock:
            entry = self._entries.get(pid)
        if entry is None:
            loaded = self._load(pid)
            entry = loaded if loaded is not None else ProcessEntry(pid=pid)
        else:
            self.proc_reads += 1
            entry = _copy(entry)
            self._read_exec(entry)
        entry.exec_time = when
        if not entry.path:
            entry.argv = []
            if fallback_path is not None:
                entry.path = fallback_path(pid)
        # The kernel sets comm from the executable's file name, truncated to 15 bytes.
        entry.comm = os.path.basename(entry.path)[:15]
        with self._lock:
            self._put(pid, entry)
        return entry

    def on_ids(
        self, pid: int, uid: int | None, euid: int | None, gid: int | None, egid: int | None
    ) -> ProcessEntry:
        entry = self.entry(pid)
        with self._lock:
            entry = _copy(entry)
            if uid is not None and euid is not None:
                entry.uid, entry.euid = uid, euid
            if gid is not None and egid is not None:
                entry.gid, entry.egid = gid, egid
            self._put(pid, entry)
        return entry

    def on_exit(self, pid: int) -> ProcessEntry | None:
        with self._lock:
            entry = self._drop(pid)
            if entry is not None:
                exited = self._exited
                exited.pop(pid, None)
                exited[pid] = entry
                if len(exited) > MAX_EXITED:
                    exited.popitem(last=False)
            return entry

    # -- lookups ------------------------------------------------------------------------------

    def entry(self, pid: int) -> ProcessEntry:
        """The cached entry, loaded from /proc on a miss; for a process gone from /proc, its
        entry as it exited if the exit was seen lately, else an empty one (``is_unresolved``)."""
        with self._lock:
            entry = self._entries.get(pid)
        if entry is not None:
            return entry
        loaded = self._load(pid) if pid > 0 else None
        if loaded is None:
            with self._lock:
                exited = self._exited.get(pid)
            return exited if exited is not None else ProcessEntry(pid=pid)
        with self._lock:
            if pid not in self._entries:
                self._put(pid, loaded)
            full = len(self._entries) > MAX_ENTRIES
        if full:
            self._prune()
        return loaded

    def _prune(self) -> None:
        """Without the process source nobody reports exits: forget processes /proc no longer
        has, so lookups by other sources cannot grow the cache without bound."""
        with self._lock:
            pids = list(self._entries)
        gone = [pid for pid in pids if not os.path.exists(f"{self.proc}/{pid}")]
        with self._lock:
            for pid in gone:
                self._drop(pid)

    def __contains__(self, pid: int) -> bool:
        with self._lock:
            return pid in self._entries

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def pids(self) -> list[int]:
        """The pids the cache holds now, ascending (a copy: safe to iterate while sources
        keep updating the cache)."""
        with self._lock:
            return sorted(self._entries)

    def cached(self, pid: int) -> ProcessEntry | None:
        """The cached entry of ``pid``, or None; unlike :meth:`entry` it never reads /proc."""
        with self._lock:
            return self._entries.get(pid)

    def envs(self, pid: int) -> list[str]:
        """The environment of a live process, read now and cached on its entry."""
        entry = self.entry(pid)
        if entry.envs is None:
            entry.envs = self._read_envs(pid)
            entry.snapshot = entry.full = None
        return entry.envs

    def user_name(self, uid: int) -> str:
        return _cached_name(self._users, uid, pwd.getpwuid)

    def group_name(self, gid: int) -> str:
        return _cached_name(self._groups, gid, grp.getgrgid)

    def snapshot(self, entry: ProcessEntry) -> dict[str, Any]:
        """The SECL ``process`` dict of one entry, without ancestors. Built once per entry
        version and shared: consumers must treat it as read-only."""
        snap = entry.snapshot
        if snap is None:
            snap = {
                "pid": entry.pid,
                "tid": entry.pid,
                "ppid": entry.ppid,
                "uid": entry.uid,
                "gid": entry.gid,
                "euid": entry.euid,
                "egid": entry.egid,
                "user": self.user_name(entry.uid),
                "group": self.group_name(entry.gid),
                "comm": entry.comm,
                "file": {"path": entry.path, "name": os.path.basename(entry.path)},
                "argv": entry.argv[1:],
                "argv0": entry.argv[0] if entry.argv else "",
                "args": " ".join(entry.argv[1:]),
                "container": {"id": entry.container_id},
                "cgroup": entry.cgroup,
                "exec_time": entry.exec_time,
            }
            if entry.envs is not None:
                snap["envs"] = [e.partition("=")[0] for e in entry.envs]
                snap["envp"] = list(entry.envs)
            entry.snapshot = snap
        return snap

    def process(self, pid: int) -> dict[str, Any]:
        """The SECL ``process`` dict of pid, with ``ancestors`` (parent first) and ``parent``.
        Built once per entry version and shared (read-only for consumers): a process's
        ancestors are its parent's snapshot followed by the parent's own ancestors, so each
        event costs a dict lookup, not a walk up the tree."""
        return self._full(self.entry(pid), 0)

    def process_if_known(self, pid: int) -> dict[str, Any]:
        """Like :meth:`process`, but a pid the cache does not hold (nor recently exited) gives
        the empty stand-in (``is_unresolved``) instead of a /proc read. For sources whose
        events can overtake the process source's fork record: the read would mostly fail
        (the process is gone) or duplicate what the fork record brings an instant later, and
        the service retries unresolved events. Falls back to :meth:`process` when no process
        source follows the cache."""
        if not self.followed:
            return self.process(pid)
        with self._lock:
            entry = self._entries.get(pid) or self._exited.get(pid)
        return self._full(entry if entry is not None else ProcessEntry(pid=pid), 0)

    def _full(self, entry: ProcessEntry, depth: int) -> dict[str, Any]:
        full = entry.full
        if full is not None:
            return full
        full = dict(self.snapshot(entry))
        ancestors: list[dict[str, Any]] = []
        if entry.ppid > 0 and entry.ppid != entry.pid and depth < MAX_ANCESTORS:
            parent = self.entry(entry.ppid)
            if parent.path or parent.comm:
                above = self._full(parent, depth + 1)["ancestors"]
                ancestors = [self.snapshot(parent), *above[: MAX_ANCESTORS - 1]]
        full["ancestors"] = ancestors
        full["parent"] = ancestors[0] if ancestors else {}
        entry.full = full
        return full
