"""Process events from the netlink process connector (cn_proc): fork, exec, exit and uid/gid
changes, with the process context from the shared ProcessCache.

The connector only carries pids and ids; everything else comes from /proc, read by the cache
the moment the exec arrives. A process that lived less than that (``/bin/true``) is gone by
then: its executable path is recovered from a fanotify FAN_OPEN_EXEC watch (exec_paths.py)
when the kernel allows one, its argv is lost (and counted in ``exec_unresolved``). Threads
are ignored: only thread-group leaders become events.

Loss: the socket's receive buffer is raised to 16 MiB (SO_RCVBUFFORCE, root); when the kernel
still cannot queue a message, ``recv`` fails with ENOBUFS and the exact number lost is read
from the Drops column of /proc/net/netlink.
"""

from __future__ import annotations

import contextlib
import errno
import socket
import struct
import time
from typing import Any

from .base import Event, Source, SourceUnavailable
from .exec_paths import ExecPaths
from .netlink import NLMSG_DONE, grow_receive_buffer, iter_messages, nlmsg, socket_drops
from .process_cache import ProcessCache

NETLINK_CONNECTOR = 11
CN_IDX_PROC = 1
CN_VAL_PROC = 1
PROC_CN_MCAST_LISTEN = 1
PROC_CN_MCAST_IGNORE = 2

PROC_EVENT_FORK = 0x00000001
PROC_EVENT_EXEC = 0x00000002
PROC_EVENT_UID = 0x00000004
PROC_EVENT_GID = 0x00000040
PROC_EVENT_EXIT = 0x80000000

CN_MSG = struct.Struct("=IIIIHH")  # idx, val, seq, ack, len, flags
PROC_EVENT_HDR = struct.Struct("=IIQ")  # what, cpu, timestamp_ns
FORK = struct.Struct("=IIII")
EXEC = struct.Struct("=II")
IDS = struct.Struct("=IIII")
EXIT = struct.Struct("=IIII")
RECEIVE_BUFFER = 16 * 1024 * 1024


def _cn_msg(op: int) -> bytes:
    data = struct.pack("=I", op)
    return nlmsg(NLMSG_DONE, CN_MSG.pack(CN_IDX_PROC, CN_VAL_PROC, 0, 0, len(data), 0) + data, 0)


class ProcessSource(Source):
    """fork/exec/exit/setuid/setgid events. Event shapes (plus ``process`` and ``timestamp``):

    - ``exec``: ``exec`` = the new process image (same dict as ``process`` minus ancestors)
    - ``fork``: ``process`` is the child; ``fork.parent_pid``
    - ``exit``: ``exit.code`` (exit status) and ``exit.cause`` (``EXITED`` or ``SIGNALED``)
    - ``setuid``: ``setuid.uid``/``setuid.euid``; ``setgid``: ``setgid.gid``/``setgid.egid``
    """

    name = "process"

    def __init__(
        self, cache: ProcessCache, emit_fork: bool = True, exec_paths: bool = True
    ) -> None:
        super().__init__()
        self.cache = cache
        self.emit_fork = emit_fork
        self.want_exec_paths = exec_paths
        self._exec_paths: ExecPaths | None = None
        self._exec_paths_done = ("off", 0)  # figures of the last run, kept after stop()
        self._sock: socket.socket | None = None
        self._enobufs = 0
        self._kernel_drops = 0

    def _open(self) -> None:
        try:
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_CONNECTOR)
        except OSError as exc:
            raise SourceUnavailable(f"netlink process connector refused: {exc}") from exc
        try:
            sock.bind((0, CN_IDX_PROC))
            self._rcvbuf = grow_receive_buffer(sock, RECEIVE_BUFFER)
            sock.send(_cn_msg(PROC_CN_MCAST_LISTEN))
        except OSError as exc:
            sock.close()
            raise SourceUnavailable(f"netlink process connector refused: {exc}") from exc
        sock.setblocking(False)
        self._sock = sock
        if self.want_exec_paths:
            self._exec_paths = ExecPaths.open()
        self.cache.seed()
        self.cache.followed = True

    def _fileno(self) -> int:
        assert self._sock is not None
        return self._sock.fileno()

    def _close(self) -> None:
        self.cache.followed = False
        exec_paths, self._exec_paths = self._exec_paths, None
        if exec_paths is not None:
            self._exec_paths_done = (exec_paths.status, exec_paths.recovered)
            exec_paths.close()
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.send(_cn_msg(PROC_CN_MCAST_IGNORE))
            sock.close()

    def _detail(self) -> dict[str, Any]:
        live = self._exec_paths
        return {
            "enobufs": self._enobufs,
            "cached_processes": len(self.cache),
            "proc_reads": self.cache.proc_reads,
            "exec_unresolved": self.cache.exec_unresolved,
            "exec_path_fallback": live.status if live else self._exec_paths_done[0],
            "exec_path_recovered": live.recovered if live else self._exec_paths_done[1],
        }

    def _exec_path(self, pid: int) -> str:
        assert self._exec_paths is not None
        return self._exec_paths.take(pid)

    def _read_ready(self) -> None:
        sock = self._sock
        assert sock is not None
        if self._exec_paths is not None:
            self._exec_paths.drain()
        for _ in range(256):  # bounded so stop() is honoured under a flood
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    self._enobufs += 1
                    self._count_kernel_drops(at_least=1)
                    continue
                raise
            for msg_type, _flags, _seq, payload in iter_messages(data):
                if msg_type == NLMSG_DONE and len(payload) >= CN_MSG.size:
                    self._handle(payload[CN_MSG.size :])

    def _tick(self) -> None:
        self._count_kernel_drops(at_least=0)

    def _count_kernel_drops(self, at_least: int) -> None:
        sock = self._sock
        total = socket_drops(sock) if sock is not None else 0
        new = max(total - self._kernel_drops, at_least)
        self._kernel_drops = max(total, self._kernel_drops + new)
        self._add_drops(new)

    def _handle(self, data: bytes) -> None:
        if len(data) < PROC_EVENT_HDR.size:
            return
        what, _cpu, _ts = PROC_EVENT_HDR.unpack_from(data)
        body = PROC_EVENT_HDR.size
        now = time.time()
        if what == PROC_EVENT_EXEC:
            pid, tgid = EXEC.unpack_from(data, body)
            if pid != tgid:
                return
            self.cache.on_exec(tgid, now, self._exec_path if self._exec_paths else None)
            process = self.cache.process(tgid)
            exec_part = {k: v for k, v in process.items() if k not in ("ancestors", "parent")}
            self._emit(
                {
                    "type": "exec",
                    "timestamp": now,
                    "source": self.name,
                    "exec": exec_part,
                    "process": process,
                }
            )
        elif what == PROC_EVENT_FORK:
            _ppid, ptgid, pid, tgid = FORK.unpack_from(data, body)
            if pid != tgid:
                return  # a new thread, not a process
            self.cache.on_fork(ptgid, tgid, now)
            if self.emit_fork:
                self._emit(
                    {
                        "type": "fork",
                        "timestamp": now,
                        "source": self.name,
                        "fork": {"parent_pid": ptgid},
                        "process": self.cache.process(tgid),
                    }
                )
        elif what == PROC_EVENT_EXIT:
            pid, tgid, code, _signal = EXIT.unpack_from(data, body)
            if pid != tgid:
                return
            event: Event = {
                "type": "exit",
                "timestamp": now,
                "source": self.name,
                "exit": _exit_fields(code),
                "process": self.cache.process(tgid),
            }
            self.cache.on_exit(tgid)
            self._emit(event)
        elif what in (PROC_EVENT_UID, PROC_EVENT_GID):
            pid, tgid, real, effective = IDS.unpack_from(data, body)
            known = self.cache.entry(tgid)
            current = (known.uid, known.euid) if what == PROC_EVENT_UID else (known.gid, known.egid)
            if current == (real, effective) and tgid in self.cache:
                return  # glibc applies set*id to every thread: one event per process is enough
            if what == PROC_EVENT_UID:
                self.cache.on_ids(tgid, real, effective, None, None)
                part = {
                    "uid": real,
                    "euid": effective,
                    "user": self.cache.user_name(real),
                    "euser": self.cache.user_name(effective),
                }
                kind = "setuid"
            else:
                self.cache.on_ids(tgid, None, None, real, effective)
                part = {
                    "gid": real,
                    "egid": effective,
                    "group": self.cache.group_name(real),
                    "egroup": self.cache.group_name(effective),
                }
                kind = "setgid"
            self._emit(
                {
                    "type": kind,
                    "timestamp": now,
                    "source": self.name,
                    kind: part,
                    "process": self.cache.process(tgid),
                }
            )


def _exit_fields(status: int) -> dict[str, Any]:
    """Decode a wait status the way Datadog's exit event does."""
    if status & 0x7F:
        return {"cause": "SIGNALED", "code": status & 0x7F, "status": status}
    return {"cause": "EXITED", "code": (status >> 8) & 0xFF, "status": status}
