"""The workload store: the processes of the host and the containers they run in.

Two writers feed it. :meth:`WorkloadStore.refresh` rescans procfs (blocking: run it in a
worker thread); runtime security calls :meth:`WorkloadStore.set_process` and
:meth:`WorkloadStore.remove_process` as exec and exit events arrive. Readers (the
``workload-list`` endpoint, status) call :meth:`WorkloadStore.dump` from the reactor thread at
any time. One lock guards the maps; the slow procfs reads happen outside it, so a reader never
waits for a scan.

An event that lands while a scan is in progress is newer than what the scan read, so the scan
does not overwrite or resurrect what the event set or removed: every event bumps a sequence
number, and a scan only applies to processes no event has touched since it began.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from plugins.workloadmeta.cgroups import container_from_path
from plugins.workloadmeta.procfs import (
    BootClock,
    ProcessInfo,
    ProcessVanished,
    list_pids,
    read_process,
)

PROCFS_SOURCE = "procfs"
"""The source name of what :meth:`WorkloadStore.refresh` reads."""

EVENT_SOURCE = "runtime_security"
"""The default source name of :meth:`WorkloadStore.set_process`."""


@dataclass(frozen=True)
class ContainerInfo:
    """A container seen through the processes running in it."""

    id: str
    runtime: str
    pod_uid: str
    cgroup: str
    pids: tuple[int, ...]
    first_seen: float
    sources: frozenset[str]


@dataclass
class RefreshStats:
    """What the last scans did; shown in status so a scan that reads nothing is visible."""

    refreshes: int = 0
    vanished: int = 0
    """Processes that exited between the listing and their reads (normal, counted)."""
    unreadable: int = 0
    """Processes whose files could not be parsed or read for another reason."""
    last_error: str | None = None
    last_refresh: float | None = None
    last_duration: float | None = None


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _same_process(old: ProcessInfo, new: ProcessInfo) -> bool:
    # A pid is reused after exit; the start time tells two holders of it apart.
    return not old.start_time or not new.start_time or old.start_time == new.start_time


class WorkloadStore:
    """Processes (from ``proc_root`` and from events) and the containers they run in.

    Thread-safe: ``refresh`` may run in a worker thread while the reactor thread calls
    ``dump``, ``set_process`` or ``remove_process``. ``clock`` gives the time recorded as a
    container's first sighting and a refresh's end (seconds since the epoch).
    """

    def __init__(self, proc_root: str = "/proc", *, clock: Callable[[], float] = time.time) -> None:
        self.proc_root = proc_root
        self._clock = clock
        self._lock = threading.Lock()
        self._refreshing = threading.Lock()
        self._processes: dict[int, ProcessInfo] = {}
        self._seq = 0
        self._touched: dict[int, int] = {}
        """pid -> sequence number of the last event that set or removed it."""
        self._first_seen: dict[str, float] = {}
        self._stats = RefreshStats()

    # --- writers ---

    def refresh(self) -> None:
        """Rescan every ``<proc_root>/<pid>`` and make the store match it (blocking).

        Processes gone from procfs are removed, new ones added. A process that exits mid-read
        is counted in ``stats()["vanished"]``; one whose files are unreadable or malformed in
        ``unreadable`` (with ``last_error``). ``OSError`` if ``proc_root`` cannot be listed.
        Concurrent calls run one after the other.
        """
        with self._refreshing:
            started = time.monotonic()
            with self._lock:
                scan_seq = self._seq
            scanned, vanished, unreadable, last_error = self._scan()
            with self._lock:
                self._apply_scan(scanned, scan_seq)
                stats = self._stats
                stats.refreshes += 1
                stats.vanished += vanished
                stats.unreadable += unreadable
                if last_error is not None:
                    stats.last_error = last_error
                stats.last_refresh = self._clock()
                stats.last_duration = time.monotonic() - started

    def _scan(self) -> tuple[dict[int, ProcessInfo], int, int, str | None]:
        boot = BootClock.read(self.proc_root)
        scanned: dict[int, ProcessInfo] = {}
        vanished = unreadable = 0
        last_error = None
        for pid in list_pids(self.proc_root):
            try:
                scanned[pid] = read_process(self.proc_root, pid, boot, PROCFS_SOURCE)
            except ProcessVanished:
                vanished += 1
            except (OSError, ValueError, IndexError) as error:
                unreadable += 1
                last_error = f"{self.proc_root}/{pid}: {type(error).__name__}: {error}"
        return scanned, vanished, unreadable, last_error

    def _apply_scan(self, scanned: dict[int, ProcessInfo], scan_seq: int) -> None:
        merged: dict[int, ProcessInfo] = {}
        for pid, read in scanned.items():
            if self._touched.get(pid, -1) > scan_seq:
                continue  # an event since the scan began knows better
            old = self._processes.get(pid)
            if old is not None and _same_process(old, read):
                merged[pid] = replace(read, sources=read.sources | old.sources)
            else:
                merged[pid] = read
        for pid, old in self._processes.items():
            if pid not in merged and self._touched.get(pid, -1) > scan_seq:
                merged[pid] = old
        self._processes = merged
        # Events older than this scan are now reflected in procfs; forget them.
        self._touched = {pid: seq for pid, seq in self._touched.items() if seq > scan_seq}
        self._sync_containers()

    def set_process(
        self,
        pid: int,
        *,
        ppid: int = 0,
        comm: str = "",
        exe: str = "",
        cmdline: Iterable[str] = (),
        uid: int = 0,
        gid: int = 0,
        euid: int | None = None,
        egid: int | None = None,
        start_time: float = 0.0,
        container_id: str = "",
        cgroup: str = "",
        source: str = EVENT_SOURCE,
    ) -> ProcessInfo:
        """Add or replace process ``pid`` from an event (an exec, a fork); returns what is kept.

        ``cgroup`` is the process's cgroup path; when ``container_id`` is empty the container
        is derived from it (see :mod:`plugins.workloadmeta.cgroups`). ``euid``/``egid``
        default to ``uid``/``gid``. When the pid already holds the same process (same start
        time, or either is unknown) the sources are merged.
        """
        ref = container_from_path(cgroup) if cgroup else None
        runtime = pod_uid = ""
        if ref is not None and (not container_id or container_id == ref.id):
            container_id, runtime, pod_uid = ref.id, ref.runtime, ref.pod_uid
        info = ProcessInfo(
            pid=pid,
            ppid=ppid,
            comm=comm,
            exe=exe,
            cmdline=tuple(cmdline),
            uid=uid,
            gid=gid,
            euid=uid if euid is None else euid,
            egid=gid if egid is None else egid,
            start_time=start_time,
            container_id=container_id,
            container_runtime=runtime,
            pod_uid=pod_uid,
            cgroup=cgroup,
            sources=frozenset((source,)),
        )
        with self._lock:
            old = self._processes.get(pid)
            if old is not None and not old.sources <= info.sources and _same_process(old, info):
                info = replace(info, sources=info.sources | old.sources)
            self._processes[pid] = info
            self._seq += 1
            self._touched[pid] = self._seq
            self._container_changed(old.container_id if old is not None else "", container_id)
        return info

    def remove_process(self, pid: int) -> bool:
        """Forget process ``pid`` (it exited); ``False`` if the store did not hold it."""
        with self._lock:
            self._seq += 1
            self._touched[pid] = self._seq
            removed = self._processes.pop(pid, None)
            if removed is not None:
                self._container_changed(removed.container_id, "")
        return removed is not None

    def _container_changed(self, old_cid: str, new_cid: str) -> None:
        # Called with the lock held, for one process whose container went from old_cid to
        # new_cid: events are frequent, so only that process's containers are looked at.
        if old_cid == new_cid:
            return
        if new_cid and new_cid not in self._first_seen:
            self._first_seen[new_cid] = self._clock()
        if old_cid and not any(p.container_id == old_cid for p in self._processes.values()):
            self._first_seen.pop(old_cid, None)

    def _sync_containers(self) -> None:
        # Called with the lock held: a container lives as long as one of its processes.
        live = {p.container_id for p in self._processes.values() if p.container_id}
        now = None
        for cid in live - self._first_seen.keys():
            now = self._clock() if now is None else now
            self._first_seen[cid] = now
        for cid in self._first_seen.keys() - live:
            del self._first_seen[cid]

    # --- readers ---

    def process(self, pid: int) -> ProcessInfo | None:
        with self._lock:
            return self._processes.get(pid)

    def processes(self) -> list[ProcessInfo]:
        """Every process, by pid."""
        with self._lock:
            return [self._processes[pid] for pid in sorted(self._processes)]

    def containers(self) -> list[ContainerInfo]:
        """Every container some known process runs in, by id."""
        with self._lock:
            return self._containers_locked()

    def _containers_locked(self) -> list[ContainerInfo]:
        members: dict[str, list[ProcessInfo]] = {}
        for pid in sorted(self._processes):
            info = self._processes[pid]
            if info.container_id:
                members.setdefault(info.container_id, []).append(info)
        result = []
        for cid in sorted(members):
            procs = members[cid]
            described = next((p for p in procs if p.container_runtime), procs[0])
            result.append(
                ContainerInfo(
                    id=cid,
                    runtime=described.container_runtime,
                    pod_uid=next((p.pod_uid for p in procs if p.pod_uid), ""),
                    cgroup=described.cgroup,
                    pids=tuple(p.pid for p in procs),
                    first_seen=self._first_seen.get(cid, 0.0),
                    sources=frozenset(s for p in procs for s in p.sources),
                )
            )
        return result

    def stats(self) -> dict[str, Any]:
        """Counts and the last refresh's figures, JSON-ready."""
        with self._lock:
            s = self._stats
            return {
                "processes": len(self._processes),
                "containers": len(self._first_seen),
                "refreshes": s.refreshes,
                "vanished": s.vanished,
                "unreadable": s.unreadable,
                "last_error": s.last_error,
                "last_refresh": s.last_refresh,
                "last_duration": s.last_duration,
            }

    def dump(self, verbose: bool) -> dict[str, Any]:
        """The store in the shape of Datadog's ``workloadmeta`` ``Dump(verbose)``.

        ``{"entities": {"process": {"infos": {KEY: INFO}}, "container": {"infos": {...}}}}``
        where ``KEY`` is ``"sources(merged):[procfs runtime_security] id: <pid or container
        id>"`` and ``INFO`` a string: one line without ``verbose``, the full multi-line
        description with it. Both kinds are always present, possibly with no entries.
        """
        with self._lock:
            processes = [self._processes[pid] for pid in sorted(self._processes)]
            containers = self._containers_locked()
        render_process = process_detail if verbose else process_line
        render_container = container_detail if verbose else container_line
        return {
            "entities": {
                "process": {
                    "infos": {
                        entity_key(p.sources, str(p.pid)): render_process(p) for p in processes
                    }
                },
                "container": {
                    "infos": {entity_key(c.sources, c.id): render_container(c) for c in containers}
                },
            }
        }


# --- rendering, public so that status and CLI code can show one entity the same way ---


def entity_key(sources: Iterable[str], entity_id: str) -> str:
    """Datadog's key for a merged entity: ``sources(merged):[a b] id: <id>``."""
    return f"sources(merged):[{' '.join(sorted(sources))}] id: {entity_id}"


def process_line(p: ProcessInfo) -> str:
    line = f"PID: {p.pid} PPID: {p.ppid} Comm: {p.comm} UID: {p.uid}"
    if p.container_id:
        line += f" Container ID: {p.container_id}"
    return line


def container_line(c: ContainerInfo) -> str:
    line = f"Runtime: {c.runtime or 'unknown'} PIDs: {len(c.pids)}"
    if c.pod_uid:
        line += f" Pod UID: {c.pod_uid}"
    return line


def process_detail(p: ProcessInfo) -> str:
    return "\n".join(
        [
            "----------- Entity ID -----------",
            f"Kind: process ID: {p.pid}",
            "----------- Entity Meta -----------",
            f"Sources: {', '.join(sorted(p.sources))}",
            "----------- Process Info -----------",
            f"PID: {p.pid}",
            f"PPID: {p.ppid}",
            f"Comm: {p.comm}",
            f"Exe: {p.exe}",
            f"Cmdline: {' '.join(p.cmdline)}",
            f"UID: {p.uid} (effective {p.euid})",
            f"GID: {p.gid} (effective {p.egid})",
            f"Start Time: {_iso(p.start_time) if p.start_time else 'unknown'}",
            f"Container ID: {p.container_id}",
            f"Cgroup: {p.cgroup}",
            "",
        ]
    )


def container_detail(c: ContainerInfo) -> str:
    return "\n".join(
        [
            "----------- Entity ID -----------",
            f"Kind: container ID: {c.id}",
            "----------- Entity Meta -----------",
            f"Sources: {', '.join(sorted(c.sources))}",
            "----------- Container Info -----------",
            f"Runtime: {c.runtime or 'unknown'}",
            f"Pod UID: {c.pod_uid}",
            f"Cgroup: {c.cgroup}",
            f"PIDs: {' '.join(str(pid) for pid in c.pids)}",
            f"First Seen: {_iso(c.first_seen)}",
            "",
        ]
    )
