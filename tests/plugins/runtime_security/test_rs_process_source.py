"""The process source against the real netlink process connector."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time

import pytest
from rs_support import run_child

from plugins.runtime_security.sources import process_source
from plugins.runtime_security.sources.process_cache import ProcessCache
from plugins.runtime_security.sources.process_source import ProcessSource


@pytest.fixture
def source(collector):
    src = ProcessSource(ProcessCache())
    src.start(collector)
    stats = src.stats()
    if not stats.active:
        pytest.skip(f"the kernel refuses the process connector: {stats.reason}")
    yield src
    src.stop()


def test_exec_of_a_test_binary_has_path_args_and_ancestors(source, collector, tmp_path):
    binary = tmp_path / "rs-test-binary"
    shutil.copy("/bin/sleep", binary)
    child = subprocess.Popen([str(binary), "0.3"])
    child.wait()

    event = collector.wait_for(lambda e: e["type"] == "exec" and e["process"]["pid"] == child.pid)
    process = event["process"]
    assert process["file"] == {"path": str(binary), "name": "rs-test-binary"}
    assert event["exec"]["file"]["path"] == str(binary)
    assert process["comm"] == "rs-test-binary"
    assert process["argv0"] == str(binary)
    assert process["argv"] == ["0.3"]
    assert process["args"] == "0.3"
    assert process["ppid"] == os.getpid()
    assert process["ancestors"][0]["pid"] == os.getpid()
    assert process["uid"] == os.getuid()
    assert process["user"] == "root"
    assert event["source"] == "process"

    exit_event = collector.wait_for(
        lambda e: e["type"] == "exit" and e["process"]["pid"] == child.pid
    )
    assert exit_event["exit"] == {"cause": "EXITED", "code": 0, "status": 0}
    assert exit_event["process"]["file"]["path"] == str(binary)


def test_a_process_gone_before_proc_is_read_keeps_its_executable_path(source, collector, tmp_path):
    """/bin/true exits before /proc can be read; FAN_OPEN_EXEC still names the binary."""
    if source.stats().detail["exec_path_fallback"] != "on":
        pytest.skip(f"fanotify refused: {source.stats().detail['exec_path_fallback']}")
    binary = tmp_path / "rs-short"
    shutil.copy("/bin/true", binary)
    pids = []
    for _ in range(20):
        child = subprocess.Popen([str(binary), "x"])
        child.wait()
        pids.append(child.pid)
    for pid in pids:
        event = collector.wait_for(
            lambda e, pid=pid: e["type"] == "exec" and e["process"]["pid"] == pid
        )
        assert event["process"]["file"]["path"] == str(binary)
        assert event["process"]["comm"] == "rs-short"
        assert event["process"]["argv"] in (["x"], [])  # argv is lost when /proc was gone


def test_exit_code_and_fork(source, collector):
    child = subprocess.Popen(["/bin/sh", "-c", "exit 7"])
    child.wait()
    forked = collector.wait_for(lambda e: e["type"] == "fork" and e["process"]["pid"] == child.pid)
    assert forked["fork"] == {"parent_pid": os.getpid()}
    assert forked["process"]["ppid"] == os.getpid()
    event = collector.wait_for(lambda e: e["type"] == "exit" and e["process"]["pid"] == child.pid)
    assert event["exit"]["code"] == 7
    assert event["exit"]["cause"] == "EXITED"


def test_setuid_in_a_child_is_seen_with_its_pid(source, collector):
    pid = run_child(lambda: os.setuid(65534))
    event = collector.wait_for(lambda e: e["type"] == "setuid" and e["process"]["pid"] == pid)
    assert event["setuid"]["uid"] == 65534
    assert event["setuid"]["euid"] == 65534
    assert event["setuid"]["user"] == "nobody"
    assert event["process"]["uid"] == 65534
    assert event["process"]["ancestors"][0]["pid"] == os.getpid()


def test_setgid_in_a_child(source, collector):
    pid = run_child(lambda: os.setgid(65534))
    event = collector.wait_for(lambda e: e["type"] == "setgid" and e["process"]["pid"] == pid)
    assert (event["setgid"]["gid"], event["setgid"]["egid"]) == (65534, 65534)


def test_stats_and_stop():
    src = ProcessSource(ProcessCache())
    assert src.stats().reason == "not started"
    src.start(lambda event: None)
    if not src.stats().active:
        pytest.skip(f"the kernel refuses the process connector: {src.stats().reason}")
    stats = src.stats()
    assert stats.reason == ""
    assert stats.detail["cached_processes"] > 1
    src.stop()
    assert (src.stats().active, src.stats().reason) == (False, "stopped")


def test_enobufs_is_counted_as_drops(monkeypatch, collector):
    """A reader that stalls with a tiny receive buffer loses messages: they are counted."""
    monkeypatch.setattr(process_source, "RECEIVE_BUFFER", 1)
    release = threading.Event()

    def slow(event):
        release.wait(10)
        collector(event)

    src = ProcessSource(ProcessCache())
    src.start(slow)
    if not src.stats().active:
        pytest.skip(f"the kernel refuses the process connector: {src.stats().reason}")
    try:
        for _ in range(100):
            subprocess.run(["/bin/true"], check=True)
        release.set()
        deadline = time.monotonic() + 5
        while src.stats().drops == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        stats = src.stats()
        assert stats.drops > 0
        assert stats.detail["enobufs"] >= 1
    finally:
        release.set()
        src.stop()
