"""The audit source against the real audit netlink: syscalls with their arguments, and the
kernel's audit state (enabled, pid, backlog limit, rules) restored exactly on stop."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import socket
import subprocess
import sys
import textwrap

import pytest
from rs_support import audit_state, run_child

from plugins.runtime_security.sources.audit_netlink import (
    ARCHES,
    AuditControl,
    AuditStatus,
    build_rule,
    machine_arch,
    rule_key,
)
from plugins.runtime_security.sources.audit_source import KEY_PREFIX, AuditSource
from plugins.runtime_security.sources.process_cache import ProcessCache

PTRACE_ATTACH = 16


@pytest.fixture
def audit(audit_guard, collector):
    src = AuditSource(ProcessCache())
    src.start(collector)
    stats = src.stats()
    if not stats.active:
        pytest.skip(f"the kernel refuses audit: {stats.reason}")
    yield src
    src.stop()


def _ours(kind, pid):
    return lambda e: e["type"] == kind and e["process"]["pid"] == pid


def test_rule_is_added_while_running_and_state_restored_after(audit_guard, collector):
    (enabled, pid, backlog), rules = audit_guard
    src = AuditSource(ProcessCache())
    src.start(collector)
    if not src.stats().active:
        pytest.skip(f"the kernel refuses audit: {src.stats().reason}")
    try:
        (now_enabled, now_pid, now_backlog), now_rules = audit_state()
        assert len(now_rules) == len(rules) + 1
        assert [rule_key(r) for r in now_rules if r not in rules] == [f"{KEY_PREFIX}{os.getpid()}"]
        if src.stats().detail["mode"] == "unicast":
            assert (now_enabled, now_pid) == (1, os.getpid())
            assert now_backlog >= backlog
        else:
            assert (now_enabled, now_pid) == (enabled, pid)
    finally:
        src.stop()
    assert audit_state() == audit_guard
    assert (src.stats().active, src.stats().reason) == (False, "stopped")


def test_chmod_with_the_mode(audit, collector, tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    os.chmod(target, 0o644)
    pid = run_child(lambda: os.chmod(target, 0o4750))
    event = collector.wait_for(_ours("chmod", pid))
    assert event["chmod"]["file"]["path"] == str(target)
    assert event["chmod"]["file"]["destination"]["mode"] == 0o4750
    assert event["chmod"]["file"]["mode"] & 0o7777 == 0o644  # the mode before the change
    assert event["chmod"]["retval"] == 0
    assert event["process"]["ppid"] == os.getpid()
    assert event["process"]["ancestors"][0]["pid"] == os.getpid()
    assert event["source"] == "audit"


def test_chown_uid_and_gid(audit, collector, tmp_path):
    target = tmp_path / "owned"
    target.write_text("x")
    pid = run_child(lambda: os.chown(target, 65534, 65534))
    event = collector.wait_for(_ours("chown", pid))
    assert event["chown"]["file"]["path"] == str(target)
    assert event["chown"]["file"]["destination"]["uid"] == 65534
    assert event["chown"]["file"]["destination"]["gid"] == 65534
    assert event["chown"]["file"]["destination"]["user"] == "nobody"


def test_rename_link_utimes_unlink(audit, collector, tmp_path):
    old, new, hard = tmp_path / "old", tmp_path / "new", tmp_path / "hard"
    old.write_text("x")

    def act():
        os.rename(old, new)
        os.link(new, hard)
        os.utime(hard, (1, 1))
        os.unlink(new)

    pid = run_child(act)
    renamed = collector.wait_for(_ours("rename", pid))
    assert renamed["rename"]["file"]["path"] == str(old)
    assert renamed["rename"]["file"]["destination"]["path"] == str(new)
    linked = collector.wait_for(_ours("link", pid))
    assert linked["link"]["file"]["path"] == str(new)
    assert linked["link"]["file"]["destination"]["path"] == str(hard)
    assert collector.wait_for(_ours("utimes", pid))["utimes"]["file"]["path"] == str(hard)
    unlinked = collector.wait_for(_ours("unlink", pid))
    assert unlinked["unlink"]["file"]["path"] == str(new)


def test_relative_paths_are_resolved_against_the_cwd(audit, collector, tmp_path):
    (tmp_path / "rel").write_text("x")

    def act():
        os.chdir(tmp_path)
        os.chmod("rel", 0o600)

    pid = run_child(act)
    event = collector.wait_for(_ours("chmod", pid))
    assert event["chmod"]["file"]["path"] == str(tmp_path / "rel")


def test_connect_to_loopback_has_address_and_port(audit, collector):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    try:
        pid = run_child(lambda: socket.create_connection(("127.0.0.1", port)).close())
        event = collector.wait_for(_ours("connect", pid))
        assert event["connect"]["addr"] == {
            "family": socket.AF_INET,
            "ip": "127.0.0.1",
            "port": port,
        }
        assert event["connect"]["retval"] == 0
    finally:
        server.close()


def test_bind_is_reported(audit, collector):
    def act():
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))

    pid = run_child(act)
    event = collector.wait_for(_ours("bind", pid))
    assert event["bind"]["addr"]["ip"] == "127.0.0.1"
    assert event["bind"]["addr"]["family"] == socket.AF_INET


def test_setuid_in_a_child_with_new_credentials(audit, collector):
    def act():
        os.setgid(65534)
        os.setuid(65534)

    pid = run_child(act)
    event = collector.wait_for(_ours("setuid", pid))
    assert event["setuid"] == {"uid": 65534, "euid": 65534, "fsuid": 65534, "retval": 0}
    assert event["process"]["uid"] == 65534
    assert event["process"]["user"] == "nobody"
    gid_event = collector.wait_for(_ours("setgid", pid))
    assert gid_event["setgid"]["gid"] == 65534


def test_own_syscalls_are_excluded(audit, collector, tmp_path):
    (tmp_path / "mine").write_text("x")
    os.chmod(tmp_path / "mine", 0o600)
    marker = tmp_path / "marker"
    marker.write_text("x")
    pid = run_child(lambda: os.chmod(marker, 0o600))
    collector.wait_for(_ours("chmod", pid))
    assert collector.matching(lambda e: e["process"]["pid"] == os.getpid()) == []


FAKE_AUDITD = textwrap.dedent(
    """
    import os, socket, struct, sys
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 9)
    sock.bind((0, 0))
    status = struct.pack("=10I", 0x4, 0, 0, os.getpid(), 0, 0, 0, 0, 0, 0)
    sock.send(struct.pack("=IHHII", 16 + len(status), 1001, 0x5, 1, 0) + status)
    sock.recv(65536)
    print("ready", flush=True)
    sock.setblocking(False)
    import select
    while True:
        r, _, _ = select.select([sock, sys.stdin], [], [])
        if sys.stdin in r:
            break
        try:
            while True:
                sock.recv(65536)
        except BlockingIOError:
            pass
    status = struct.pack("=10I", 0x4, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    sock.send(struct.pack("=IHHII", 16 + len(status), 1001, 0x5, 2, 0) + status)
    sock.recv(65536)
    """
)


def test_coexists_with_a_running_auditd_through_multicast(audit_guard, collector, tmp_path):
    (_enabled, found_pid, _backlog), _rules = audit_guard
    if found_pid:
        pytest.skip(f"audit is already owned by pid {found_pid}")
    auditd = subprocess.Popen(
        [sys.executable, "-c", FAKE_AUDITD],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert auditd.stdout.readline() == "ready\n"
        control = AuditControl()
        enabled_before = control.get_status().enabled
        assert control.get_status().pid == auditd.pid
        src = AuditSource(ProcessCache())
        src.start(collector)
        try:
            assert src.stats().active, src.stats().reason
            assert src.stats().detail["mode"] == "multicast"
            target = tmp_path / "f"
            target.write_text("x")
            # In multicast mode we do not enable audit: the owner decides. Enable it for the
            # duration of the check only if it was off, then put it back.
            if enabled_before == 0:
                control.set_status(AuditStatus(mask=1, enabled=1))
            try:
                pid = run_child(lambda: os.chmod(target, 0o700))
                event = collector.wait_for(_ours("chmod", pid))
                assert event["chmod"]["file"]["destination"]["mode"] == 0o700
            finally:
                if enabled_before == 0:
                    control.set_status(AuditStatus(mask=1, enabled=0))
        finally:
            src.stop()
        status = control.get_status()
        assert (status.pid, status.enabled) == (auditd.pid, enabled_before)
        control.close()
    finally:
        auditd.stdin.close()
        auditd.wait(10)


def test_a_stale_rule_of_a_dead_run_is_removed(audit_guard, collector):
    stale_pid = 2**22 - 7  # above pid_max's default range; never a live process here
    assert not os.path.exists(f"/proc/{stale_pid}")
    control = AuditControl()
    stale = build_rule([90], f"{KEY_PREFIX}{stale_pid}", ARCHES[machine_arch()], 0)
    try:
        control.add_rule(stale)
    except OSError as exc:
        control.close()
        pytest.skip(f"the kernel refuses audit rules: {exc}")
    src = AuditSource(ProcessCache())
    src.start(collector)
    try:
        keys = [rule_key(r) for r in control.list_rules()]
        assert f"{KEY_PREFIX}{stale_pid}" not in keys
    finally:
        src.stop()
        if stale in control.list_rules():
            control.del_rule(stale)
        control.close()


def test_ptrace_attach_names_the_request_and_the_tracee(audit, collector):
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    sleeper = subprocess.Popen(["/bin/sleep", "30"])
    try:
        pid = run_child(lambda: libc.ptrace(PTRACE_ATTACH, sleeper.pid, 0, 0))
        event = collector.wait_for(_ours("ptrace", pid))
        assert event["ptrace"]["request"] == PTRACE_ATTACH
        assert event["ptrace"]["tracee"]["pid"] == sleeper.pid
        assert event["ptrace"]["tracee"]["file"]["path"] == "/usr/bin/sleep"
        assert event["ptrace"]["retval"] == 0
    finally:
        sleeper.kill()
        sleeper.wait()


def test_mount_names_the_mountpoint_and_fs_type(audit, collector, tmp_path):
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()

    def mount():
        if libc.mount(b"rs-test", str(mountpoint).encode(), b"tmpfs", 0, None) != 0:
            raise OSError(ctypes.get_errno(), "mount")

    try:
        pid = run_child(mount)
        event = collector.wait_for(_ours("mount", pid))
        assert event["mount"]["mountpoint"]["path"] == str(mountpoint)
        assert event["mount"]["fs_type"] == "tmpfs"
        assert event["mount"]["retval"] == 0
    finally:
        libc.umount2(str(mountpoint).encode(), 0)
