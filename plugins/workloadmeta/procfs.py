"""Reading processes from a procfs tree (``/proc`` or a fake one in tests).

A process can exit between the directory listing and any of the reads; that is normal on a
busy host, so :func:`read_process` raises :class:`ProcessVanished` and the caller counts it
instead of failing the whole scan.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass, field

from plugins.workloadmeta.cgroups import container_from_cgroup_file, unified_path


class ProcessVanished(Exception):
    """The process exited while it was being read."""


@dataclass(frozen=True)
class ProcessInfo:
    """One process as the workload store keeps it.

    ``start_time`` is seconds since the epoch (0.0 when unknown); ``container_id`` is ``""``
    for a process on the host; ``uid``/``gid`` are the real ids and ``euid``/``egid`` the
    effective ones.
    """

    pid: int
    ppid: int = 0
    comm: str = ""
    exe: str = ""
    cmdline: tuple[str, ...] = ()
    uid: int = 0
    gid: int = 0
    euid: int = 0
    egid: int = 0
    start_time: float = 0.0
    container_id: str = ""
    container_runtime: str = ""
    pod_uid: str = ""
    cgroup: str = ""
    sources: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class BootClock:
    """What turns ``/proc/<pid>/stat``'s start time (clock ticks since boot) into epoch."""

    boot_time: float
    ticks_per_second: int

    @classmethod
    def read(cls, proc_root: str) -> BootClock:
        boot = 0.0
        try:
            with open(os.path.join(proc_root, "stat"), encoding="ascii", errors="replace") as f:
                for line in f:
                    if line.startswith("btime "):
                        boot = float(line.split()[1])
                        break
        except OSError:
            pass  # start times then stay relative to boot; still ordered, still useful
        return cls(boot, os.sysconf("SC_CLK_TCK"))

    def epoch(self, ticks: int) -> float:
        return self.boot_time + ticks / self.ticks_per_second


def list_pids(proc_root: str) -> list[int]:
    """The numeric entries of ``proc_root``: the processes that existed when it was listed."""
    return sorted(int(name) for name in os.listdir(proc_root) if name.isdigit())


def _read_text(path: str) -> str:
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        return f.read()


def _vanished(error: OSError) -> bool:
    # ENOENT: the directory is gone; ESRCH: reading a file of a process being reaped.
    return error.errno in (errno.ENOENT, errno.ESRCH)


def parse_stat(text: str) -> tuple[str, int, int]:
    """``(comm, ppid, start ticks)`` from ``/proc/<pid>/stat``.

    ``comm`` may itself contain spaces and parentheses, so it is everything between the
    first ``(`` and the last ``)``; fields are counted from after that.
    """
    open_paren, close_paren = text.index("("), text.rindex(")")
    comm = text[open_paren + 1 : close_paren]
    rest = text[close_paren + 2 :].split()
    # rest[0] is field 3 (state); ppid is field 4, starttime field 22.
    return comm, int(rest[1]), int(rest[19])


def parse_ids(status: str, label: str) -> tuple[int, int]:
    """The real and effective ids of a ``Uid:``/``Gid:`` line of ``/proc/<pid>/status``."""
    for line in status.splitlines():
        if line.startswith(label + ":"):
            values = line.split()[1:]
            return int(values[0]), int(values[1])
    return 0, 0


def read_process(proc_root: str, pid: int, clock: BootClock, source: str = "procfs") -> ProcessInfo:
    """Read one process; :class:`ProcessVanished` when it is gone part-way through.

    ``exe`` is ``""`` when the link cannot be read (kernel threads, or another user's process
    without CAP_SYS_PTRACE); ``cgroup`` and the container fields are ``""`` when the file is
    missing (a kernel without cgroups).
    """
    base = os.path.join(proc_root, str(pid))
    try:
        comm, ppid, ticks = parse_stat(_read_text(os.path.join(base, "stat")))
        status = _read_text(os.path.join(base, "status"))
        raw_cmdline = _read_text(os.path.join(base, "cmdline"))
    except OSError as error:
        if _vanished(error):
            raise ProcessVanished(pid) from error
        raise
    try:
        exe = os.readlink(os.path.join(base, "exe"))
    except OSError:
        exe = ""
    try:
        cgroup_text = _read_text(os.path.join(base, "cgroup"))
    except OSError as error:
        if _vanished(error) and not os.path.isdir(base):
            raise ProcessVanished(pid) from error
        cgroup_text = ""
    uid, euid = parse_ids(status, "Uid")
    gid, egid = parse_ids(status, "Gid")
    ref = container_from_cgroup_file(cgroup_text)
    return ProcessInfo(
        pid=pid,
        ppid=ppid,
        comm=comm,
        exe=exe,
        # argv entries end with NUL; empty arguments in the middle are real and kept.
        cmdline=tuple(raw_cmdline.rstrip("\0").split("\0")) if raw_cmdline else (),
        uid=uid,
        gid=gid,
        euid=euid,
        egid=egid,
        start_time=clock.epoch(ticks),
        container_id=ref.id if ref else "",
        container_runtime=ref.runtime if ref else "",
        pod_uid=ref.pod_uid if ref else "",
        cgroup=ref.cgroup_path if ref else unified_path(cgroup_text),
        sources=frozenset((source,)),
    )
