"""The file source against real fanotify filesystem marks and real inotify watches."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import threading
import time

import pytest
from rs_support import held_child, run_child

from plugins.runtime_security.sources.file_source import O_CREAT, FileSource
from plugins.runtime_security.sources.process_cache import ProcessCache


def _fanotify_marks() -> int:
    """fanotify marks held by this process, from /proc/self/fdinfo."""
    count = 0
    for fd in os.listdir("/proc/self/fdinfo"):
        try:
            with open(f"/proc/self/fdinfo/{fd}") as f:
                count += sum(1 for line in f if line.startswith("fanotify "))
        except OSError:
            continue
    return count


@pytest.fixture
def fan_source(collector, watched):
    marks_before = _fanotify_marks()
    src = FileSource(ProcessCache(), [str(watched)], backend="fanotify")
    src.start(collector)
    stats = src.stats()
    if not stats.active:
        pytest.skip(f"the kernel refuses fanotify filesystem marks: {stats.reason}")
    assert stats.detail["backend"] == "fanotify"
    yield src
    src.stop()
    assert _fanotify_marks() == marks_before


def _of(kind, path, pid=None):
    def match(event):
        return (
            event["type"] == kind
            and event[kind]["file"]["path"] == str(path)
            and (pid is None or event["process"]["pid"] == pid)
        )

    return match


def test_open_and_write_of_a_watched_file_carry_the_acting_pid(fan_source, collector, watched):
    target = watched / "data.txt"
    target.write_text("before")

    def write():
        with open(target, "a") as f:
            f.write("more")

    with held_child(write) as pid:
        opened = collector.wait_for(_of("open", target, pid))
        assert opened["open"]["flags"] == 0
        assert opened["open"]["file"]["name"] == "data.txt"
        assert opened["open"]["file"]["inode"] == target.stat().st_ino
        assert opened["process"]["ppid"] == os.getpid()
        assert opened["process"]["ancestors"][0]["pid"] == os.getpid()
        collector.wait_for(_of("modify", target, pid))
        collector.wait_for(_of("close_write", target, pid))


def test_create_rename_unlink_and_directories(fan_source, collector, watched):
    created = watched / "new.txt"
    moved = watched / "moved.txt"
    sub = watched / "sub"

    def act():
        created.write_text("x")
        os.chmod(created, 0o600)
        os.rename(created, moved)
        os.unlink(moved)
        os.mkdir(sub)
        os.rmdir(sub)

    pid = run_child(act)
    creation = collector.wait_for(
        lambda e: _of("open", created, pid)(e) and e["open"]["flags"] == O_CREAT
    )
    assert creation["source"] == "file"
    collector.wait_for(_of("attrib", created, pid))
    renamed = collector.wait_for(_of("rename", created, pid))
    assert renamed["rename"]["file"]["destination"]["path"] == str(moved)
    assert renamed["rename"]["file"]["destination"]["name"] == "moved.txt"
    collector.wait_for(_of("unlink", moved, pid))
    collector.wait_for(_of("mkdir", sub, pid))
    collector.wait_for(_of("rmdir", sub, pid))


def test_events_outside_the_watched_paths_are_filtered(fan_source, collector, watched, tmp_path):
    outside = tmp_path / "outside.txt"
    inside = watched / "inside.txt"
    run_child(lambda: (outside.write_text("o"), inside.write_text("i")))
    collector.wait_for(_of("close_write", inside))
    assert collector.matching(lambda e: str(tmp_path / "outside") in str(e)) == []


def test_own_events_are_not_reported(fan_source, collector, watched):
    (watched / "mine.txt").write_text("self")
    other = watched / "other.txt"
    run_child(lambda: other.write_text("child"))
    collector.wait_for(_of("close_write", other))
    assert collector.matching(lambda e: "mine.txt" in str(e)) == []


@pytest.fixture
def ino_source(collector, watched):
    (watched / "deep").mkdir()
    src = FileSource(ProcessCache(), [str(watched)], backend="inotify")
    src.start(collector)
    assert src.stats().active, src.stats().reason
    yield src
    src.stop()


def test_inotify_fallback_reports_names_without_pid(ino_source, collector, watched):
    assert ino_source.stats().detail["backend"] == "inotify"
    target = watched / "deep" / "f.txt"
    run_child(lambda: (target.write_text("x"), os.rename(target, watched / "g.txt")))
    event = collector.wait_for(_of("open", target))
    assert event["open"]["flags"] == O_CREAT
    assert event["process"]["pid"] == 0
    collector.wait_for(_of("modify", target))
    renamed = collector.wait_for(_of("rename", target))
    assert renamed["rename"]["file"]["destination"]["path"] == str(watched / "g.txt")
    newdir = watched / "later"
    newdir.mkdir()
    collector.wait_for(_of("mkdir", newdir))
    time.sleep(0.2)  # the watch on the new directory is added by the reader thread
    (newdir / "h.txt").write_text("h")
    collector.wait_for(_of("close_write", newdir / "h.txt"))


def test_inotify_queue_overflow_is_counted(collector, watched):
    """A stalled reader overflows the kernel queue (max_queued_events): counted as a drop."""
    with open("/proc/sys/fs/inotify/max_queued_events") as f:
        limit = int(f.read())
    first, second = watched / "a", watched / "b"
    first.write_text("a")
    second.write_text("b")
    release = threading.Event()

    def slow(event):
        release.wait(20)

    src = FileSource(ProcessCache(), [str(watched)], backend="inotify")
    src.start(slow)
    try:
        for i in range(limit + 100):  # twice the queue: the reader may hold one buffer
            os.utime(first, (i, i))  # alternate files: identical consecutive events merge
            os.utime(second, (i, i))
        release.set()
        deadline = time.monotonic() + 10
        while src.stats().drops == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert src.stats().drops == 1
    finally:
        release.set()
        src.stop()


def test_file_fields_of_a_gone_file_are_zero(fan_source, collector, watched):
    target = watched / "gone.txt"
    run_child(lambda: (target.write_text("x"), os.unlink(target)))
    event = collector.wait_for(_of("unlink", target))
    assert event["unlink"]["file"] == {
        "path": str(target),
        "name": "gone.txt",
        "mode": 0,
        "uid": 0,
        "gid": 0,
        "inode": 0,
    }
    assert not stat.S_ISREG(event["unlink"]["file"]["mode"])


def test_unknown_backend_is_an_error():
    with pytest.raises(ValueError, match="unknown file backend 'dnotify'"):
        FileSource(ProcessCache(), ["/tmp"], backend="dnotify")


def test_exec_of_a_watched_binary_is_open_exec_with_pid(fan_source, collector, watched):
    binary = watched / "rs-bin"
    shutil.copy("/bin/true", binary)
    child = subprocess.Popen([str(binary)])
    child.wait()
    event = collector.wait_for(_of("open_exec", binary, child.pid))
    assert event["open_exec"]["file"]["name"] == "rs-bin"


def test_auto_backend_prefers_fanotify(collector, watched):
    src = FileSource(ProcessCache(), [str(watched)])
    src.start(collector)
    try:
        detail = src.stats().detail
        if detail["backend"] != "fanotify":
            pytest.skip(f"the kernel refuses fanotify: {detail['fallback_reason']}")
        assert detail["fallback_reason"] == ""
    finally:
        src.stop()
