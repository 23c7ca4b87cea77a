"""The audit netlink protocol, just what the audit source needs: status get/set, rule
add/delete/list, and the syscall numbers of the architectures we build rules for.

Replies to AUDIT_GET and AUDIT_LIST_RULES are sent by a kernel thread and can arrive after the
netlink ACK, so those requests ask for no ACK and wait for the reply itself; AUDIT_SET and
rule changes ask for an ACK and wait for it.
"""

from __future__ import annotations

import errno
import os
import platform
import select
import socket
import struct
from dataclasses import dataclass, fields

from .netlink import (
    NLM_F_ACK,
    NLM_F_REQUEST,
    NLMSG_DONE,
    NLMSG_ERROR,
    iter_messages,
    nlmsg,
    nlmsg_error_code,
)

NETLINK_AUDIT = 9
AUDIT_NLGRP_READLOG = 1

AUDIT_GET = 1000
AUDIT_SET = 1001
AUDIT_ADD_RULE = 1011
AUDIT_DEL_RULE = 1012
AUDIT_LIST_RULES = 1013

AUDIT_STATUS_ENABLED = 0x1
AUDIT_STATUS_PID = 0x4
AUDIT_STATUS_BACKLOG_LIMIT = 0x10

AUDIT_FILTER_EXIT = 0x04
AUDIT_ALWAYS = 2
AUDIT_PID = 0
AUDIT_ARCH = 11
AUDIT_FILTERKEY = 210
AUDIT_EQUAL = 0x40000000
AUDIT_NOT_EQUAL = 0x30000000
AUDIT_MAX_FIELDS = 64
AUDIT_BITMASK_SIZE = 64
RULE_HEAD = struct.Struct(f"=III{AUDIT_BITMASK_SIZE}I")
RULE_FIELDS = struct.Struct(f"={AUDIT_MAX_FIELDS}I")

ARCHES = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}

# Syscalls each event type needs, by architecture (arm64 has only the *at forms).
SYSCALLS: dict[str, dict[str, int]] = {
    "x86_64": {
        "chmod": 90,
        "fchmod": 91,
        "fchmodat": 268,
        "fchmodat2": 452,
        "chown": 92,
        "fchown": 93,
        "lchown": 94,
        "fchownat": 260,
        "unlink": 87,
        "unlinkat": 263,
        "rmdir": 84,
        "mkdir": 83,
        "mkdirat": 258,
        "rename": 82,
        "renameat": 264,
        "renameat2": 316,
        "link": 86,
        "linkat": 265,
        "utime": 132,
        "utimes": 235,
        "futimesat": 261,
        "utimensat": 280,
        "setuid": 105,
        "setreuid": 113,
        "setresuid": 117,
        "setfsuid": 122,
        "setgid": 106,
        "setregid": 114,
        "setresgid": 119,
        "setfsgid": 123,
        "ptrace": 101,
        "init_module": 175,
        "finit_module": 313,
        "connect": 42,
        "bind": 49,
        "mount": 165,
    },
    "aarch64": {
        "fchmod": 52,
        "fchmodat": 53,
        "fchmodat2": 452,
        "fchownat": 54,
        "fchown": 55,
        "unlinkat": 35,
        "mkdirat": 34,
        "renameat": 38,
        "renameat2": 276,
        "linkat": 37,
        "utimensat": 88,
        "setuid": 146,
        "setreuid": 145,
        "setresuid": 147,
        "setfsuid": 151,
        "setgid": 144,
        "setregid": 143,
        "setresgid": 149,
        "setfsgid": 152,
        "ptrace": 117,
        "init_module": 105,
        "finit_module": 273,
        "connect": 203,
        "bind": 200,
        "mount": 40,
    },
}


class AuditError(OSError):
    pass


@dataclass
class AuditStatus:
    mask: int = 0
    enabled: int = 0
    failure: int = 0
    pid: int = 0
    rate_limit: int = 0
    backlog_limit: int = 0
    lost: int = 0
    backlog: int = 0
    feature_bitmap: int = 0
    backlog_wait_time: int = 0

    FORMAT = struct.Struct("=10I")

    @classmethod
    def decode(cls, data: bytes) -> AuditStatus:
        data = data[: cls.FORMAT.size].ljust(cls.FORMAT.size, b"\0")
        return cls(*cls.FORMAT.unpack(data))

    def encode(self) -> bytes:
        return self.FORMAT.pack(*(getattr(self, f.name) for f in fields(self)))


def machine_arch() -> str:
    return platform.machine()


def build_rule(syscalls: list[int], key: str, arch: int, exclude_pid: int) -> bytes:
    """An exit-filter 'always' rule on ``syscalls`` for one architecture, excluding our own
    pid, tagged with ``key`` so its records and the rule itself can be recognised."""
    mask = [0] * AUDIT_BITMASK_SIZE
    for nr in syscalls:
        mask[nr // 32] |= 1 << (nr % 32)
    keyb = key.encode()
    triples = [
        (AUDIT_ARCH, arch, AUDIT_EQUAL),
        (AUDIT_PID, exclude_pid, AUDIT_NOT_EQUAL),
        (AUDIT_FILTERKEY, len(keyb), AUDIT_EQUAL),
    ]
    names = [0] * AUDIT_MAX_FIELDS
    values = [0] * AUDIT_MAX_FIELDS
    flags = [0] * AUDIT_MAX_FIELDS
    for i, (name, value, op) in enumerate(triples):
        names[i], values[i], flags[i] = name, value, op
    return (
        RULE_HEAD.pack(AUDIT_FILTER_EXIT, AUDIT_ALWAYS, len(triples), *mask)
        + RULE_FIELDS.pack(*names)
        + RULE_FIELDS.pack(*values)
        + RULE_FIELDS.pack(*flags)
        + struct.pack("=I", len(keyb))
        + keyb
    )


def rule_key(rule: bytes) -> str:
    """The filter key of a rule as listed by AUDIT_LIST_RULES ('' when it has none)."""
    head = RULE_HEAD.size
    count = struct.unpack_from("=I", rule, 8)[0]
    names = RULE_FIELDS.unpack_from(rule, head)
    values = RULE_FIELDS.unpack_from(rule, head + RULE_FIELDS.size)
    buf_at = head + 3 * RULE_FIELDS.size + 4
    offset = 0
    for i in range(min(count, AUDIT_MAX_FIELDS)):
        if names[i] == AUDIT_FILTERKEY:
            return rule[buf_at + offset : buf_at + offset + values[i]].decode(errors="replace")
        if names[i] in _STRING_FIELDS:
            offset += values[i]
    return ""


# Fields whose value is a length into the rule's string buffer.
_STRING_FIELDS = {
    13,
    14,
    15,
    16,
    17,
    18,
    19,
    41,
    42,
    105,
    107,
    108,
    109,
    110,
    111,
    210,
    112,
    113,
    114,
    115,
}


class AuditControl:
    """A control socket on the audit netlink (no records arrive on it)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_AUDIT)
        self.sock.bind((0, 0))
        self._seq = 0

    def close(self) -> None:
        self.sock.close()

    def _send(self, msg_type: int, payload: bytes, ack: bool) -> int:
        self._seq += 1
        flags = NLM_F_REQUEST | (NLM_F_ACK if ack else 0)
        self.sock.send(nlmsg(msg_type, payload, flags, self._seq))
        return self._seq

    def _replies(self, timeout: float = 2.0) -> list[tuple[int, int, bytes]]:
        ready, _, _ = select.select([self.sock], [], [], timeout)
        if not ready:
            raise AuditError(errno.ETIMEDOUT, "no reply from the audit netlink")
        data = self.sock.recv(1 << 20)
        return [(t, s, p) for t, _f, s, p in iter_messages(data)]

    def get_status(self) -> AuditStatus:
        seq = self._send(AUDIT_GET, b"", ack=False)
        while True:
            for msg_type, rseq, payload in self._replies():
                if rseq != seq:
                    continue
                if msg_type == NLMSG_ERROR:
                    code = nlmsg_error_code(payload)
                    raise AuditError(code, f"AUDIT_GET: {os.strerror(code)}")
                if msg_type == AUDIT_GET:
                    return AuditStatus.decode(payload)

    def set_status(self, status: AuditStatus) -> None:
        self.request(AUDIT_SET, status.encode())

    def request(self, msg_type: int, payload: bytes) -> None:
        seq = self._send(msg_type, payload, ack=True)
        while True:
            for rtype, rseq, rpayload in self._replies():
                if rseq == seq and rtype == NLMSG_ERROR:
                    code = nlmsg_error_code(rpayload)
                    if code:
                        raise AuditError(code, f"audit request {msg_type}: {os.strerror(code)}")
                    return

    def list_rules(self) -> list[bytes]:
        seq = self._send(AUDIT_LIST_RULES, b"", ack=False)
        rules: list[bytes] = []
        while True:
            for msg_type, rseq, payload in self._replies():
                if rseq != seq:
                    continue
                if msg_type == NLMSG_DONE:
                    return rules
                if msg_type == NLMSG_ERROR:
                    code = nlmsg_error_code(payload)
                    raise AuditError(code, f"AUDIT_LIST_RULES: {os.strerror(code)}")
                if msg_type == AUDIT_LIST_RULES:
                    rules.append(payload)

    def add_rule(self, rule: bytes) -> None:
        self.request(AUDIT_ADD_RULE, rule)

    def del_rule(self, rule: bytes) -> None:
        self.request(AUDIT_DEL_RULE, rule)
