"""Syscalls with their arguments from the audit netlink.

Start-up, in order:
1. read the audit status (AUDIT_GET) and remember it;
2. if no live process owns audit, become the audit daemon (AUDIT_SET pid on our reading
   socket), enable audit and raise the backlog limit if they were lower; if another process
   owns it (auditd), leave it alone and read the records through the multicast group
   AUDIT_NLGRP_READLOG instead;
3. add one exit rule per architecture, tagged with our key ``rs-secagent:<pid>`` and
   excluding our own pid (a rule left by a dead earlier run, recognised by its key, is removed
   first).
``stop()`` undoes exactly that: deletes the rules it added, then restores the enabled flag,
the backlog limit and the audit pid it found. When audit is locked (enabled == 2) no rule can
be added: the source stays inactive and says so.

Loss: the kernel's ``lost`` counter (polled every second) and ENOBUFS on our socket.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
from typing import Any

from .audit_netlink import (
    ARCHES,
    AUDIT_NLGRP_READLOG,
    AUDIT_STATUS_BACKLOG_LIMIT,
    AUDIT_STATUS_ENABLED,
    AUDIT_STATUS_PID,
    NETLINK_AUDIT,
    SYSCALLS,
    AuditControl,
    AuditError,
    AuditStatus,
    build_rule,
    machine_arch,
    rule_key,
)
from .audit_records import AuditAssembler, AuditMapper
from .base import Source, SourceUnavailable
from .netlink import (
    NLM_F_ACK,
    NLM_F_REQUEST,
    NLMSG_DONE,
    NLMSG_ERROR,
    NLMSG_HDR,
    grow_receive_buffer,
    iter_messages,
    nlmsg,
)
from .process_cache import ProcessCache

KEY_PREFIX = "rs-secagent:"
BACKLOG_LIMIT = 8192
RECEIVE_BUFFER = 8 * 1024 * 1024


def audit_messages(data: bytes) -> list[tuple[int, bytes]]:
    """Split a datagram from the audit netlink. Records come one per datagram and their
    nlmsg_len famously leaves out the header, so a record is everything after the header;
    only the kernel's ACKs and errors are ordinary netlink messages."""
    if len(data) < NLMSG_HDR.size:
        return []
    _length, msg_type, _flags, _seq, _pid = NLMSG_HDR.unpack_from(data)
    if msg_type in (NLMSG_ERROR, NLMSG_DONE):
        return [(t, p) for t, _f, _s, p in iter_messages(data)]
    return [(msg_type, data[NLMSG_HDR.size :])]


def _pid_alive(pid: int) -> bool:
    return pid > 0 and os.path.exists(f"/proc/{pid}")


class AuditSource(Source):
    """chmod, chown, unlink, rmdir, mkdir, rename, link, utimes, setuid, setgid, ptrace,
    load_module, connect, bind and mount events (see audit_records.AuditMapper for shapes).
    ``stats().detail`` has ``mode`` ("unicast" or "multicast"), the status found, ``lost``."""

    name = "audit"

    def __init__(self, cache: ProcessCache, syscalls: list[str] | None = None) -> None:
        super().__init__()
        self.cache = cache
        arch = machine_arch()
        self.arch = arch
        table = SYSCALLS.get(arch, {})
        wanted = syscalls if syscalls is not None else list(table)
        self.syscalls = {table[n]: n for n in wanted if n in table}
        self.key = f"{KEY_PREFIX}{os.getpid()}"
        self._control: AuditControl | None = None
        self._sock: socket.socket | None = None
        self._found: AuditStatus | None = None
        self._mode = ""
        self._rules: list[bytes] = []
        self._changed = AuditStatus()
        self._lost_start = 0
        self._lost = 0
        self._enobufs = 0
        self._assembler = AuditAssembler()
        self._mapper = AuditMapper(cache, self.syscalls)
        self._early: list[tuple[int, bytes]] = []

    # -- start/stop ---------------------------------------------------------------------------

    def _open(self) -> None:
        if self.arch not in ARCHES:
            raise SourceUnavailable(f"audit rules not supported on {self.arch}")
        try:
            control = AuditControl()
            found = control.get_status()
        except OSError as exc:
            raise SourceUnavailable(f"audit netlink refused: {exc.strerror}") from exc
        self._control, self._found = control, found
        if found.enabled == 2:
            control.close()
            self._control = None
            raise SourceUnavailable(
                "audit configuration is locked (enabled=2): rules cannot be added"
            )
        self._lost_start = self._lost = found.lost
        try:
            self._remove_stale_rules()
            if _pid_alive(found.pid) and found.pid != os.getpid():
                self._open_multicast()
            else:
                self._open_unicast(found)
            rule = build_rule(list(self.syscalls), self.key, ARCHES[self.arch], os.getpid())
            control.add_rule(rule)
            self._rules.append(rule)
        except OSError as exc:
            self._close()
            raise SourceUnavailable(f"audit refused: {exc.strerror or exc}") from exc

    def _remove_stale_rules(self) -> None:
        assert self._control is not None
        for rule in self._control.list_rules():
            key = rule_key(rule)
            if key.startswith(KEY_PREFIX):
                owner = key[len(KEY_PREFIX) :]
                if owner.isdigit() and not _pid_alive(int(owner)):
                    self._control.del_rule(rule)

    def _open_multicast(self) -> None:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_AUDIT)
        try:
            sock.bind((0, 1 << (AUDIT_NLGRP_READLOG - 1)))
            grow_receive_buffer(sock, RECEIVE_BUFFER)
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        self._sock, self._mode = sock, "multicast"

    def _open_unicast(self, found: AuditStatus) -> None:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_AUDIT)
        sock.bind((0, 0))
        grow_receive_buffer(sock, RECEIVE_BUFFER)
        self._sock, self._mode = sock, "unicast"
        change = AuditStatus(mask=AUDIT_STATUS_PID, pid=os.getpid())
        if found.enabled == 0:
            change.mask |= AUDIT_STATUS_ENABLED
            change.enabled = 1
        if found.backlog_limit < BACKLOG_LIMIT:
            change.mask |= AUDIT_STATUS_BACKLOG_LIMIT
            change.backlog_limit = BACKLOG_LIMIT
        self._changed = change  # recorded first: a failure half-way is still undone
        self._set_on_reader(change)
        sock.setblocking(False)

    def _set_on_reader(self, status: AuditStatus) -> None:
        """AUDIT_SET pid must come from the socket that will receive the records; records may
        already be flowing in, so they are kept for the reader while we wait for the ACK."""
        sock = self._sock
        assert sock is not None
        sock.setblocking(True)
        sock.settimeout(2.0)
        sock.send(nlmsg(1001, status.encode(), NLM_F_REQUEST | NLM_F_ACK, 1))
        while True:
            data = sock.recv(1 << 16)
            for msg_type, payload in audit_messages(data):
                # An NLMSG_ERROR payload is the error code then the header of our request.
                if (
                    msg_type == NLMSG_ERROR
                    and len(payload) >= 20
                    and int.from_bytes(payload[12:16], "little") == 1
                ):
                    code = -int.from_bytes(payload[:4], "little", signed=True)
                    if code:
                        raise AuditError(code, f"AUDIT_SET: {os.strerror(code)}")
                    sock.settimeout(None)
                    return
                self._early.append((msg_type, payload))

    def _close(self) -> None:
        control = self._control
        if control is not None:
            for rule in self._rules:
                with contextlib.suppress(OSError):
                    control.del_rule(rule)
            self._rules.clear()
            self._restore(control)
            control.close()
            self._control = None
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    def _restore(self, control: AuditControl) -> None:
        found, changed = self._found, self._changed
        if found is None or not changed.mask:
            return
        restore = AuditStatus(
            mask=changed.mask & ~AUDIT_STATUS_PID,
            enabled=found.enabled,
            backlog_limit=found.backlog_limit,
        )
        try:
            if restore.mask:
                control.set_status(restore)
            if changed.mask & AUDIT_STATUS_PID and control.get_status().pid == os.getpid():
                # We only take audit when no live process owns it, so what we give back is
                # "no owner": pid 0 (the kernel accepts no other process's pid from us).
                self._release_pid(0)
        except OSError:
            pass
        self._changed = AuditStatus()

    def _release_pid(self, pid: int) -> None:
        if self._sock is None:
            return
        with contextlib.suppress(OSError):
            self._set_on_reader(AuditStatus(mask=AUDIT_STATUS_PID, pid=pid))

    # -- reading ------------------------------------------------------------------------------

    def _fileno(self) -> int:
        assert self._sock is not None
        return self._sock.fileno()

    def _detail(self) -> dict[str, Any]:
        found = self._found
        return {
            "mode": self._mode,
            "arch": self.arch,
            "key": self.key,
            "found": {
                "enabled": found.enabled,
                "pid": found.pid,
                "backlog_limit": found.backlog_limit,
            }
            if found
            else {},
            "lost": self._lost - self._lost_start,
            "enobufs": self._enobufs,
        }

    def _read_ready(self) -> None:
        sock = self._sock
        assert sock is not None
        early, self._early = self._early, []
        for msg_type, payload in early:
            self._record(msg_type, payload)
        for _ in range(256):
            try:
                data = sock.recv(1 << 16)
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    self._enobufs += 1
                    self._add_drops(1)
                    continue
                raise
            for msg_type, payload in audit_messages(data):
                self._record(msg_type, payload)

    def _record(self, msg_type: int, payload: bytes) -> None:
        if msg_type < 1300 or msg_type >= 2100:
            return
        text = payload.split(b"\0", 1)[0].decode(errors="surrogateescape")
        for stamp, records in self._assembler.add(msg_type, text):
            if not any(f.get("key") == self.key for _t, f in records):
                continue  # another rule's event (auditd's own rules, in multicast mode)
            event = self._mapper.event_of(stamp, records)
            if event is not None:
                self._emit(event)

    def _tick(self) -> None:
        control = self._control
        if control is None:
            return
        try:
            lost = control.get_status().lost
        except OSError:
            return
        if lost > self._lost:
            self._add_drops(lost - self._lost)
        self._lost = max(lost, self._lost)
