"""Audit records → SECL events.

The kernel sends one text record per netlink message (``audit(<sec>.<ms>:<serial>): k=v …``);
a syscall produces SYSCALL, CWD, PATH…, SOCKADDR, PROCTITLE records sharing one serial and
closed by EOE. ``AuditAssembler`` groups them and ``event_of`` maps a group to an event.
String values are quoted, or hex-encoded when they contain spaces or unusual bytes.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import struct
from typing import Any

from .process_cache import ProcessCache

AUDIT_SYSCALL = 1300
AUDIT_PATH = 1302
AUDIT_SOCKADDR = 1306
AUDIT_CWD = 1307
AUDIT_EOE = 1320
AUDIT_KERN_MODULE = 1330
_HEADER = re.compile(r"audit\((\d+)\.(\d+):(\d+)\):\s?")
_FIELD = re.compile(r'(\w+)=("[^"]*"|\S*)')
_HEX = re.compile(r"^[0-9A-Fa-f]+$")
_STRING_FIELDS = {"name", "comm", "exe", "cwd", "key", "proctitle", "saddr"}
AT_REMOVEDIR = 0x200
UNCHANGED = 0xFFFFFFFF
MAX_PENDING = 512


def parse_record(text: str) -> tuple[float, int, dict[str, str]] | None:
    """(timestamp, serial, fields) of one record; None when it has no audit header."""
    match = _HEADER.match(text)
    if match is None:
        return None
    stamp = int(match.group(1)) + int(match.group(2)) / 1000.0
    fields: dict[str, str] = {}
    for key, value in _FIELD.findall(text, match.end()):
        if value.startswith('"'):
            fields[key] = value[1:-1]
        elif key in _STRING_FIELDS and key != "saddr" and _HEX.match(value) and len(value) % 2 == 0:
            fields[key] = bytes.fromhex(value).decode(errors="surrogateescape")
        else:
            fields[key] = value
    return stamp, int(match.group(3)), fields


class AuditAssembler:
    """Collects the records of each serial until its EOE."""

    def __init__(self) -> None:
        self._pending: dict[int, list[tuple[int, dict[str, str]]]] = {}
        self._stamps: dict[int, float] = {}

    def add(self, rtype: int, text: str) -> list[tuple[float, list[tuple[int, dict[str, str]]]]]:
        """Feed one record; returns the groups it completed."""
        parsed = parse_record(text)
        if parsed is None:
            return []
        stamp, serial, fields = parsed
        if rtype == AUDIT_EOE:
            records = self._pending.pop(serial, [])
            self._stamps.pop(serial, None)
            return [(stamp, records)] if records else []
        self._pending.setdefault(serial, []).append((rtype, fields))
        self._stamps.setdefault(serial, stamp)
        done = []
        while len(self._pending) > MAX_PENDING:  # an EOE never came: flush the oldest
            oldest = min(self._pending)
            done.append((self._stamps.pop(oldest), self._pending.pop(oldest)))
        return done


def _int(fields: dict[str, str], key: str, base: int = 10) -> int:
    try:
        return int(fields.get(key, "0"), base)
    except ValueError:
        return 0


def _id(value: int) -> int:
    return -1 if value == UNCHANGED else value


def decode_sockaddr(hexdata: str) -> dict[str, Any]:
    """connect/bind ``addr``: family (numeric), ip, port — or the unix socket path."""
    try:
        raw = bytes.fromhex(hexdata)
    except ValueError:
        return {"family": 0}
    if len(raw) < 2:
        return {"family": 0}
    (family,) = struct.unpack_from("=H", raw)
    if family == socket.AF_INET and len(raw) >= 8:
        port = struct.unpack_from("!H", raw, 2)[0]
        return {"family": family, "ip": str(ipaddress.IPv4Address(raw[4:8])), "port": port}
    if family == socket.AF_INET6 and len(raw) >= 24:
        port = struct.unpack_from("!H", raw, 2)[0]
        return {"family": family, "ip": str(ipaddress.IPv6Address(raw[8:24])), "port": port}
    if family == socket.AF_UNIX:
        path = raw[2:].split(b"\0", 1)[0] if raw[2:3] != b"\0" else b"@" + raw[3:].rstrip(b"\0")
        return {"family": family, "path": path.decode(errors="replace")}
    return {"family": family}


def _file(path: str, record: dict[str, str] | None) -> dict[str, Any]:
    fields: dict[str, Any] = {"path": path, "name": os.path.basename(path)}
    if record is not None:
        fields.update(
            mode=_int(record, "mode", 8),
            uid=_int(record, "ouid"),
            gid=_int(record, "ogid"),
            inode=_int(record, "inode"),
        )
    return fields


def _mount_fs_type(mountpoint: str, pid: int) -> str:
    """The type of what is mounted on ``mountpoint`` now, as the mounting process (its mount
    namespace) sees it, or as we do once it is gone."""
    for table in (f"/proc/{pid}/mountinfo", "/proc/self/mountinfo"):
        try:
            with open(table) as f:
                found = ""
                for line in f:
                    left, _, right = line.partition(" - ")
                    parts = left.split()
                    if len(parts) > 4 and parts[4] == mountpoint:
                        found = right.split()[0]
        except OSError:
            continue
        if found:
            return found
    return ""


class _Group:
    """The records of one syscall, with the lookups the mappers need."""

    def __init__(self, name: str, records: list[tuple[int, dict[str, str]]]) -> None:
        self.name = name
        self.syscall: dict[str, str] = {}
        self.paths: list[dict[str, str]] = []
        self.cwd = ""
        self.sockaddr = ""
        self.module = ""
        for rtype, fields in records:
            if rtype == AUDIT_SYSCALL:
                self.syscall = fields
            elif rtype == AUDIT_PATH:
                self.paths.append(fields)
            elif rtype == AUDIT_CWD:
                self.cwd = fields.get("cwd", "")
            elif rtype == AUDIT_SOCKADDR:
                self.sockaddr = fields.get("saddr", "")
            elif rtype == AUDIT_KERN_MODULE:
                self.module = fields.get("name", "")
        self.args = [_int(self.syscall, f"a{i}", 16) for i in range(4)]

    def full(self, record: dict[str, str]) -> str:
        path = record.get("name", "")
        if path and not path.startswith("/") and self.cwd:
            path = os.path.normpath(os.path.join(self.cwd, path))
        return path

    def record(self, *kinds: str) -> dict[str, str] | None:
        for record in self.paths:
            if record.get("nametype") in kinds:
                return record
        return None

    def file(self, *kinds: str) -> dict[str, Any]:
        record = self.record(*kinds)
        if record is None:
            return {"path": "", "name": ""}
        return _file(self.full(record), record)


Part = tuple[str, dict[str, Any]]


def _chmod(g: _Group, cache: ProcessCache) -> Part:
    mode = (g.args[2] if g.name.startswith("fchmodat") else g.args[1]) & 0o7777
    file = g.file("NORMAL")
    file["destination"] = {"mode": mode, "rights": mode}
    return "chmod", {"file": file}


def _chown(g: _Group, cache: ProcessCache) -> Part:
    uid, gid = (g.args[2], g.args[3]) if g.name == "fchownat" else (g.args[1], g.args[2])
    file = g.file("NORMAL")
    file["destination"] = {
        "uid": _id(uid),
        "gid": _id(gid),
        "user": cache.user_name(uid) if uid != UNCHANGED else "",
        "group": cache.group_name(gid) if gid != UNCHANGED else "",
    }
    return "chown", {"file": file}


def _unlink(g: _Group, cache: ProcessCache) -> Part:
    flags = g.args[2] if g.name == "unlinkat" else 0
    kind = "rmdir" if g.name == "rmdir" or flags & AT_REMOVEDIR else "unlink"
    return kind, {"file": g.file("DELETE"), "flags": flags}


def _mkdir(g: _Group, cache: ProcessCache) -> Part:
    mode = g.args[2] if g.name == "mkdirat" else g.args[1]
    return "mkdir", {"file": g.file("CREATE"), "mode": mode}


def _rename(g: _Group, cache: ProcessCache) -> Part:
    file = g.file("DELETE")
    file["destination"] = g.file("CREATE")
    return "rename", {"file": file}


def _link(g: _Group, cache: ProcessCache) -> Part:
    file = g.file("NORMAL")
    file["destination"] = g.file("CREATE")
    return "link", {"file": file}


def _utimes(g: _Group, cache: ProcessCache) -> Part:
    return "utimes", {"file": g.file("NORMAL")}


def _setuid(g: _Group, cache: ProcessCache) -> Part:
    # The SYSCALL record carries the credentials at syscall exit: the new ones.
    s = g.syscall
    return "setuid", {"uid": _int(s, "uid"), "euid": _int(s, "euid"), "fsuid": _int(s, "fsuid")}


def _setgid(g: _Group, cache: ProcessCache) -> Part:
    s = g.syscall
    return "setgid", {"gid": _int(s, "gid"), "egid": _int(s, "egid"), "fsgid": _int(s, "fsgid")}


def _ptrace(g: _Group, cache: ProcessCache) -> Part:
    tracee = {k: v for k, v in cache.process(g.args[1]).items() if k not in ("ancestors", "parent")}
    return "ptrace", {"request": g.args[0], "tracee": tracee}


def _load_module(g: _Group, cache: ProcessCache) -> Part:
    part: dict[str, Any] = {"name": g.module}
    record = g.record("NORMAL")
    if record is not None:
        part["file"] = _file(g.full(record), record)
    return "load_module", part


def _socket(g: _Group, cache: ProcessCache) -> Part:
    addr = decode_sockaddr(g.sockaddr) if g.sockaddr else {"family": 0}
    return g.name, {"addr": addr}


def _mount(g: _Group, cache: ProcessCache) -> Part:
    record = g.record("NORMAL")
    mountpoint = g.full(record) if record is not None else ""
    fs_type = _mount_fs_type(mountpoint, _int(g.syscall, "pid"))
    return "mount", {"mountpoint": {"path": mountpoint}, "fs_type": fs_type}


_MAPPERS = {
    **dict.fromkeys(("chmod", "fchmod", "fchmodat", "fchmodat2"), _chmod),
    **dict.fromkeys(("chown", "fchown", "lchown", "fchownat"), _chown),
    **dict.fromkeys(("unlink", "unlinkat", "rmdir"), _unlink),
    **dict.fromkeys(("mkdir", "mkdirat"), _mkdir),
    **dict.fromkeys(("rename", "renameat", "renameat2"), _rename),
    **dict.fromkeys(("link", "linkat"), _link),
    **dict.fromkeys(("utime", "utimes", "futimesat", "utimensat"), _utimes),
    **dict.fromkeys(("setuid", "setreuid", "setresuid", "setfsuid"), _setuid),
    **dict.fromkeys(("setgid", "setregid", "setresgid", "setfsgid"), _setgid),
    "ptrace": _ptrace,
    **dict.fromkeys(("init_module", "finit_module"), _load_module),
    **dict.fromkeys(("connect", "bind"), _socket),
    "mount": _mount,
}


class AuditMapper:
    """Turns a record group into the SECL event of its syscall, with process context from the
    cache corrected by the credentials the SYSCALL record carries."""

    def __init__(self, cache: ProcessCache, syscall_names: dict[int, str]) -> None:
        self.cache = cache
        self.names = syscall_names

    def event_of(
        self, stamp: float, records: list[tuple[int, dict[str, str]]]
    ) -> dict[str, Any] | None:
        syscall = next((f for t, f in records if t == AUDIT_SYSCALL), None)
        if syscall is None:
            return None
        name = self.names.get(_int(syscall, "syscall"), "")
        mapper = _MAPPERS.get(name)
        if mapper is None:
            return None
        group = _Group(name, records)
        kind, part = mapper(group, self.cache)
        part["retval"] = _int(syscall, "exit")
        return {
            "type": kind,
            "timestamp": stamp,
            "source": "audit",
            kind: part,
            "process": self._process(syscall),
            "syscall": {"name": name, "success": syscall.get("success") == "yes"},
        }

    def _process(self, syscall: dict[str, str]) -> dict[str, Any]:
        process = dict(self.cache.process(_int(syscall, "pid")))
        for key in ("uid", "gid", "euid", "egid", "fsuid", "fsgid"):
            if key in syscall:
                process[key] = _int(syscall, key)
        if not process.get("comm"):  # gone before we could read /proc: use the record
            exe = syscall.get("exe", "")
            ppid = _int(syscall, "ppid")
            parent = self.cache.process(ppid) if ppid > 0 else {}
            parent_snapshot = {k: v for k, v in parent.items() if k not in ("ancestors", "parent")}
            ancestors = [parent_snapshot, *parent.get("ancestors", [])] if parent else []
            process.update(
                comm=syscall.get("comm", ""),
                file={"path": exe, "name": os.path.basename(exe)},
                ppid=ppid,
                ancestors=ancestors,
                parent=ancestors[0] if ancestors else {},
            )
        process["user"] = self.cache.user_name(process["uid"])
        process["group"] = self.cache.group_name(process["gid"])
        return process
