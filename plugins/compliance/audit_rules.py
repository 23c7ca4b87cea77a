"""The kernel's loaded audit rules, listed over netlink (``AUDIT_LIST_RULES``); read only.

Needs ``CAP_AUDIT_CONTROL`` (or the initial network namespace); an error says why it failed.
"""

from __future__ import annotations

import os
import socket
import struct
from dataclasses import dataclass

NETLINK_AUDIT = 9
AUDIT_LIST_RULES = 1013
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
AUDIT_WATCH = 105
AUDIT_PERM = 106
AUDIT_DIR = 107
AUDIT_FILTERKEY = 210
_MAX_FIELDS = 64
_RULE_HEAD = struct.Struct("=III")  # flags, action, field_count
_RULE_SIZE = _RULE_HEAD.size + 4 * _MAX_FIELDS * 4 + 4  # mask, fields, values, fieldflags, buflen
PERM_EXEC, PERM_WRITE, PERM_READ, PERM_ATTR = 1, 2, 4, 8


@dataclass(frozen=True)
class AuditWatch:
    """A file or directory watch rule: ``-w path -p perms``."""

    path: str
    permissions: int
    key: str = ""


def parse_rule(payload: bytes) -> AuditWatch | None:
    """The watch in one ``audit_rule_data``, or ``None`` for a rule that is not a watch."""
    _flags, _action, count = _RULE_HEAD.unpack_from(payload)
    base = _RULE_HEAD.size + 4 * _MAX_FIELDS  # skip the syscall mask
    fields = struct.unpack_from(f"={_MAX_FIELDS}I", payload, base)
    values = struct.unpack_from(f"={_MAX_FIELDS}I", payload, base + 4 * _MAX_FIELDS)
    buf_off = _RULE_SIZE
    path, key, perms = None, "", 0xF
    for i in range(min(count, _MAX_FIELDS)):
        if fields[i] in (AUDIT_WATCH, AUDIT_DIR, AUDIT_FILTERKEY):
            text = payload[buf_off : buf_off + values[i]].decode("utf-8", "replace")
            buf_off += values[i]
            if fields[i] == AUDIT_FILTERKEY:
                key = text
            else:
                path = text
        elif fields[i] == AUDIT_PERM:
            perms = values[i]
    return AuditWatch(path, perms, key) if path is not None else None


def list_watches(timeout: float = 2.0) -> list[AuditWatch]:
    """Every watch rule the kernel has loaded; ``OSError`` when the kernel refuses."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_AUDIT)
    try:
        sock.settimeout(timeout)
        sock.bind((0, 0))
        seq = 1
        sock.send(struct.pack("=IHHII", 16, AUDIT_LIST_RULES, NLM_F_REQUEST, seq, 0))
        watches: list[AuditWatch] = []
        while True:
            data = sock.recv(65536)
            off = 0
            while off + 16 <= len(data):
                length, type_, _flags, _seq, _pid = struct.unpack_from("=IHHII", data, off)
                body = data[off + 16 : off + length]
                if type_ == NLMSG_DONE:
                    return watches
                if type_ == NLMSG_ERROR:
                    (errno_neg,) = struct.unpack_from("=i", body)
                    if errno_neg != 0:
                        raise OSError(-errno_neg, os.strerror(-errno_neg))
                elif type_ == AUDIT_LIST_RULES:
                    watch = parse_rule(body)
                    if watch is not None:
                        watches.append(watch)
                off += (length + 3) & ~3
                if length == 0:
                    break
    finally:
        sock.close()
