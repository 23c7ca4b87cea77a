"""The audit input against the kernel's real rules (netlink AUDIT_LIST_RULES).

The test adds watch rules through netlink (AUDIT_ADD_RULE, as auditctl -w does) and removes
exactly those afterwards. When the kernel refuses (no CAP_AUDIT_CONTROL), it skips, saying why.
"""

from __future__ import annotations

import os
import socket
import struct

import pytest
from compliance_hosts import build_good_host

from plugins.compliance import audit_rules
from plugins.compliance.benchmark import load_benchmark
from plugins.compliance.checker import Checker
from plugins.compliance.environment import HostEnv
from plugins.compliance.service import builtin_benchmarks_dir

AUDIT_ADD_RULE, AUDIT_DEL_RULE = 1011, 1012
AUDIT_FILTER_EXIT, AUDIT_ALWAYS, AUDIT_EQUAL = 0x04, 2, 0x40000000
NLM_F_REQUEST, NLM_F_ACK = 0x1, 0x4
PATHS = ["/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow"]


def watch_rule(path: str, perms: int, key: str) -> bytes:
    fields = [audit_rules.AUDIT_WATCH, audit_rules.AUDIT_PERM, audit_rules.AUDIT_FILTERKEY]
    values = [len(path.encode()), perms, len(key.encode())]
    pad = lambda xs: xs + [0] * (64 - len(xs))  # noqa: E731
    buf = path.encode() + key.encode()
    return (
        struct.pack("=III", AUDIT_FILTER_EXIT, AUDIT_ALWAYS, len(fields))
        + struct.pack("=64I", *([0xFFFFFFFF] * 64))
        + struct.pack("=64I", *pad(fields))
        + struct.pack("=64I", *pad(values))
        + struct.pack("=64I", *pad([AUDIT_EQUAL] * len(fields)))
        + struct.pack("=I", len(buf))
        + buf
    )


def audit_request(msg_type: int, payload: bytes) -> None:
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, audit_rules.NETLINK_AUDIT)
    try:
        sock.settimeout(2)
        sock.bind((0, 0))
        sock.send(
            struct.pack("=IHHII", 16 + len(payload), msg_type, NLM_F_REQUEST | NLM_F_ACK, 1, 0)
            + payload
        )
        data = sock.recv(65536)
        _len, type_ = struct.unpack_from("=IH", data)
        if type_ == audit_rules.NLMSG_ERROR:
            (err,) = struct.unpack_from("=i", data, 16)
            if err:
                raise OSError(-err, os.strerror(-err))
    finally:
        sock.close()


@pytest.fixture
def identity_watches():
    try:
        existing = audit_rules.list_watches()
    except OSError as exc:
        pytest.skip(f"the kernel refuses to list audit rules: {exc}")
    if any(w.path in PATHS for w in existing):
        pytest.skip("this host already audits the identity files; the failing case cannot be built")
    added = []

    def add(perms: int) -> None:
        for path in PATHS:
            rule = watch_rule(path, perms, f"compliance-test-{os.getpid()}")
            try:
                audit_request(AUDIT_ADD_RULE, rule)
            except OSError as exc:
                pytest.skip(f"the kernel refuses to add an audit rule: {exc}")
            added.append(rule)

    yield add
    for rule in added:
        audit_request(AUDIT_DEL_RULE, rule)
    assert not any(w.path in PATHS for w in audit_rules.list_watches())


def evaluate(tmp_path):
    bench = load_benchmark(os.path.join(builtin_benchmarks_dir(), "linux-baseline.yaml"))
    rule = next(r for r in bench.rules if r.id == "linux-baseline-audit-identity-watches")
    root = build_good_host(tmp_path / "host").root
    env = HostEnv(hostname="test-host", host_root=str(root), proc_root=str(root / "proc"))
    return [
        (f.result, f.resource_id, dict(f.data))
        for f in Checker(env, "7.99.0", 1200).findings(bench, rule)
    ]


def test_compliance_audit_watches_pass_when_loaded(tmp_path, identity_watches):
    identity_watches(audit_rules.PERM_WRITE | audit_rules.PERM_ATTR)
    assert evaluate(tmp_path) == [("passed", p, {"rules": 1}) for p in sorted(PATHS)]


def test_compliance_audit_watches_fail_without_rules(tmp_path, identity_watches):
    assert evaluate(tmp_path) == [("failed", p, {"rules": 0}) for p in sorted(PATHS)]


def test_compliance_audit_watch_without_attribute_fails(tmp_path, identity_watches):
    identity_watches(audit_rules.PERM_WRITE)
    assert evaluate(tmp_path) == [("failed", p, {"rules": 1}) for p in sorted(PATHS)]


def test_compliance_audit_listing_reports_permissions(identity_watches):
    identity_watches(audit_rules.PERM_WRITE | audit_rules.PERM_READ)
    mine = [w for w in audit_rules.list_watches() if w.key == f"compliance-test-{os.getpid()}"]
    assert sorted((w.path, w.permissions) for w in mine) == sorted(
        (p, audit_rules.PERM_WRITE | audit_rules.PERM_READ) for p in PATHS
    )
