"""Kernel-side filtering of the file source against real fanotify marks: discarders (inode
ignore marks) and a kernel mask narrowed to the rules' event types. What the kernel holds is
read back from /proc/self/fdinfo, not from our own bookkeeping."""

from __future__ import annotations

import os
import time

import pytest
from rs_support import ignored_on as _ignored_on
from rs_support import kernel_marks as _kernel_marks
from rs_support import run_child

from plugins.runtime_security.sources.fanotify_backend import FAN_MODIFY, FAN_OPEN, Fanotify
from plugins.runtime_security.sources.file_source import O_CREAT, FileSource
from plugins.runtime_security.sources.process_cache import ProcessCache


def _filesystem_mask() -> int:
    """The event mask of the (one) filesystem mark: a mark line with neither ino nor mnt_id."""
    masks = [m["mask"] for m in _kernel_marks() if "mask" in m and not {"ino", "mnt_id"} & set(m)]
    assert len(masks) == 1, masks
    return masks[0]


@pytest.fixture
def source(collector, watched):
    marks_before = len(_kernel_marks())
    src = FileSource(ProcessCache(), [str(watched)], backend="fanotify")
    src.start(collector)
    if not src.stats().active:
        pytest.skip(f"the kernel refuses fanotify filesystem marks: {src.stats().reason}")
    yield src
    src.stop()
    assert len(_kernel_marks()) == marks_before  # discarders went with the group


def _opens_of(collector, path, pid):
    return collector.matching(
        lambda e: (
            e["type"] == "open"
            and e["open"]["file"]["path"] == str(path)
            and e["process"]["pid"] == pid
        )
    )


def _read(path):
    def act():
        with open(path) as f:
            f.read()

    return act


def _opened_then_marker(collector, target, marker):
    """A child reads ``target`` then ``marker``; once the marker's open is here, every event
    of the target the kernel queued is too. Returns the target's opens by that child."""
    pid = run_child(lambda: (_read(target)(), _read(marker)()))
    collector.wait_for(
        lambda e: (
            e["type"] == "open"
            and e["open"]["file"]["path"] == str(marker)
            and e["process"]["pid"] == pid
        )
    )
    return _opens_of(collector, target, pid)


def test_a_discarded_file_is_dropped_in_the_kernel_until_it_gets_a_new_name(
    source, collector, watched
):
    target, marker = watched / "quiet.txt", watched / "marker.txt"
    target.write_text("q")
    marker.write_text("m")
    assert len(_opened_then_marker(collector, target, marker)) == 1

    assert source.discard(str(target), "open")
    assert _ignored_on(target) & FAN_OPEN
    assert source.stats().detail["discarders"]["active"] >= 1
    assert _opened_then_marker(collector, target, marker) == []

    # A hard link gives the inode a name the rules may care about: the discarder is lifted.
    link = watched / "shadow"
    pid = run_child(lambda: os.link(target, link))
    collector.wait_for(
        lambda e: (
            e["type"] == "open"
            and e["open"]["file"]["path"] == str(link)
            and e["open"]["flags"] == O_CREAT
            and e["process"]["pid"] == pid
        )
    )
    assert _ignored_on(target) == 0
    assert source.stats().detail["discarders"]["lifted"] == 1
    assert len(_opened_then_marker(collector, target, marker)) == 1


def test_a_rename_onto_a_discarded_inode_lifts_it(source, collector, watched):
    moving, marker = watched / "moving.txt", watched / "marker.txt"
    moving.write_text("x")
    marker.write_text("m")
    assert source.discard(str(moving), "open")
    renamed = watched / "renamed.txt"
    run_child(lambda: os.rename(moving, renamed))
    collector.wait_for(lambda e: e["type"] == "rename")
    assert _ignored_on(renamed) == 0
    assert len(_opened_then_marker(collector, renamed, marker)) == 1


def test_flush_lifts_every_discarder(source, collector, watched):
    files = [watched / f"f{i}" for i in range(3)]
    for f in files:
        f.write_text("x")
        assert source.discard(str(f), "open")
    assert all(_ignored_on(f) for f in files)
    source.flush_discarders()
    assert [_ignored_on(f) for f in files] == [0, 0, 0]
    assert source.stats().detail["discarders"]["active"] == 0


def test_what_cannot_be_discarded(source, watched):
    (watched / "dir").mkdir()
    assert not source.discard(str(watched / "missing"), "open")  # gone
    assert not source.discard(str(watched / "dir"), "open")  # a directory
    (watched / "f").write_text("x")
    assert not source.discard(str(watched / "f"), "rename")  # not a per-file event


@pytest.mark.parametrize("where", ["elsewhere", "."], ids=["other-directory", "parent-directory"])
def test_files_outside_the_watched_paths_are_discarded_by_the_source(
    source, collector, watched, tmp_path, where
):
    # A directory above a watched path is judged per file; any other one by directory.
    (tmp_path / where).mkdir(exist_ok=True)
    outside, marker = tmp_path / where / "outside.txt", watched / "marker.txt"
    outside.write_text("o")
    marker.write_text("m")
    _opened_then_marker(collector, outside, marker)
    assert _ignored_on(outside) & FAN_OPEN
    assert collector.matching(lambda e: "outside.txt" in str(e)) == []


def test_discarders_are_bounded(watched):
    # The backend alone (no reader thread): nothing but this test adds discarders.
    fan = Fanotify([str(watched)], FAN_OPEN, max_discarders=2)
    try:
        fan.open()
    except OSError as exc:
        pytest.skip(f"the kernel refuses fanotify filesystem marks: {exc}")
    try:
        files = [watched / f"f{i}" for i in range(3)]
        for f in files:
            f.write_text("x")
            assert fan.discard(str(f), FAN_OPEN)
        assert [bool(_ignored_on(f)) for f in files] == [False, True, True]  # oldest evicted
        assert (fan.discarders, fan.discarders_added, fan.discarders_evicted) == (2, 3, 1)
    finally:
        fan.close()


def test_no_discarders_when_turned_off(collector, watched, tmp_path):
    src = FileSource(ProcessCache(), [str(watched)], backend="fanotify", max_discarders=0)
    src.start(collector)
    try:
        if not src.stats().active:
            pytest.skip(f"the kernel refuses fanotify filesystem marks: {src.stats().reason}")
        (watched / "f").write_text("x")
        assert not src.discard(str(watched / "f"), "open")
        outside, marker = tmp_path / "outside.txt", watched / "marker.txt"
        outside.write_text("o")
        marker.write_text("m")
        _opened_then_marker(collector, outside, marker)
        assert _ignored_on(outside) == 0
    finally:
        src.stop()


def test_restrict_asks_the_kernel_only_for_the_rules_event_types(source, collector, watched):
    assert _filesystem_mask() & (FAN_OPEN | FAN_MODIFY) == FAN_OPEN | FAN_MODIFY
    source.restrict(frozenset({"exec", "unlink"}))
    mask = _filesystem_mask()
    assert mask & (FAN_OPEN | FAN_MODIFY) == 0
    detail = source.stats().detail
    assert detail["restricted_to_rules"] is True
    assert "open" not in detail["kernel_events"]
    assert {"create", "delete", "rename"} <= set(detail["kernel_events"])

    target = watched / "written.txt"

    def write_then_remove():
        with open(target, "w") as f:
            f.write("x")
        os.unlink(target)

    pid = run_child(write_then_remove)
    collector.wait_for(lambda e: e["type"] == "unlink" and e["process"]["pid"] == pid)
    kinds = {e["type"] for e in collector.matching(lambda e: e["process"]["pid"] == pid)}
    # The creation still comes (it is how open(O_CREAT) and the self-test are seen).
    assert kinds == {"open", "unlink"}

    source.restrict(None)
    assert _filesystem_mask() & (FAN_OPEN | FAN_MODIFY) == FAN_OPEN | FAN_MODIFY
    pid = run_child(lambda: target.write_text("again"))
    collector.wait_for(lambda e: e["type"] == "modify" and e["process"]["pid"] == pid)


def test_restrict_lifts_discarders(source, watched):
    target = watched / "t"
    target.write_text("x")
    assert source.discard(str(target), "open")
    source.restrict(frozenset({"open"}))
    deadline = time.monotonic() + 1
    while _ignored_on(target) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _ignored_on(target) == 0
