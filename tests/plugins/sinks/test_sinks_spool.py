"""The on-disk spool: framing, replay, torn tails, corruption and the byte bound."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap

import pytest

from plugins.sinks.spool import HEADER, Spool, SpoolError, frame, segment_name


def records(n, size=50, prefix="r"):
    return [f"{prefix}{i:06d}".encode().ljust(size, b".") for i in range(n)]


def filled(directory, data, **options):
    """An open spool holding ``data``."""
    spool = Spool(directory, **options)
    spool.open()
    for r in data:
        spool.append(r)
    return spool


def drain(spool, max_records=1000, max_bytes=10**9):
    got = []
    while (batch := spool.read_batch(max_records, max_bytes)) is not None:
        got.extend(batch.records)
        spool.ack(batch)
    return got


def test_records_come_back_in_order_and_ack_removes_them(tmp_path):
    data = records(10)
    spool = filled(tmp_path / "s", data, max_bytes=1 << 20)
    assert spool.queued_records == 10
    assert spool.queued_bytes == sum(len(frame(r)) for r in data)
    batch = spool.read_batch(4, 10**6)
    assert batch.records == data[:4]
    assert spool.read_batch(4, 10**6) is None  # one batch in flight at a time
    spool.ack(batch)
    assert spool.queued_records == 6
    assert drain(spool) == data[4:]
    assert spool.queued_records == 0
    assert spool.queued_bytes == 0
    spool.close()
    assert stat.S_IMODE(os.stat(tmp_path / "s").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(tmp_path / "s" / segment_name(1)).st_mode) == 0o600


def test_batches_respect_record_and_byte_limits(tmp_path):
    data = records(10, size=100)
    spool = filled(tmp_path / "s", data, max_bytes=1 << 20)
    batch = spool.read_batch(100, 350)
    assert batch.records == data[:3]
    spool.ack(batch)
    big = b"x" * 1000
    spool.append(big)
    assert drain(spool, max_bytes=350)[-1] == big  # a record larger than the limit goes alone


def test_unacknowledged_records_are_replayed_after_reopen(tmp_path):
    data = records(20)
    spool = filled(tmp_path / "s", data, max_bytes=1 << 20)
    spool.ack(spool.read_batch(5, 10**6))
    spool.read_batch(5, 10**6)  # in flight when the process goes away: not acknowledged
    spool.close()

    again = Spool(tmp_path / "s", max_bytes=1 << 20)
    report = again.open()
    assert report.replayed_records == 15
    assert report.truncated_bytes == 0
    assert drain(again) == data[5:]


def test_segments_roll_and_delivered_ones_are_removed(tmp_path):
    data = records(100)
    spool = filled(tmp_path / "s", data, max_bytes=1 << 20, segment_bytes=1000)
    segments = sorted(p.name for p in (tmp_path / "s").glob("*.seg"))
    assert len(segments) == 6
    assert drain(spool, max_records=7) == data
    assert sorted(p.name for p in (tmp_path / "s").glob("*.seg")) == [segments[-1]]
    spool.close()
    again = Spool(tmp_path / "s", max_bytes=1 << 20, segment_bytes=1000)
    assert again.open().replayed_records == 0


def test_a_torn_tail_is_truncated_and_committed_records_survive(tmp_path):
    data = records(5)
    spool = filled(tmp_path / "s", data, max_bytes=1 << 20)
    spool.close()
    seg = tmp_path / "s" / segment_name(1)
    good = seg.stat().st_size
    with open(seg, "ab") as f:  # what a write cut short by kill -9 leaves: half a record
        f.write(frame(b"the record being written")[:15])

    again = Spool(tmp_path / "s", max_bytes=1 << 20)
    report = again.open()
    assert report.truncated_bytes == 15
    assert report.truncated_segments == [segment_name(1)]
    assert seg.stat().st_size == good
    again.append(b"after the crash")
    assert drain(again) == [*data, b"after the crash"]


def test_a_record_with_a_bad_checksum_is_cut_with_what_follows(tmp_path):
    data = records(5)
    spool = filled(tmp_path / "s", data, max_bytes=1 << 20)
    spool.close()
    seg = tmp_path / "s" / segment_name(1)
    raw = bytearray(seg.read_bytes())
    third = 2 * len(frame(data[0]))
    raw[third + HEADER.size + 3] ^= 0xFF
    seg.write_bytes(bytes(raw))

    again = Spool(tmp_path / "s", max_bytes=1 << 20)
    report = again.open()
    assert report.truncated_bytes == 3 * len(frame(data[0]))
    assert drain(again) == data[:2]


def test_kill_9_in_the_middle_of_appends_never_corrupts_committed_records(tmp_path):
    # A child appends numbered records as fast as it can and reports each committed one;
    # it is killed at a random point. Every reported record must come back, in order.
    script = textwrap.dedent(
        f"""
        import os, sys
        sys.path.insert(0, {os.getcwd()!r})
        from pathlib import Path
        from plugins.sinks.spool import Spool
        spool = Spool(Path({str(tmp_path / "s")!r}), max_bytes=1 << 30, segment_bytes=200000)
        spool.open()
        i = 0
        while True:
            spool.append(b"record-%08d" % i + b"." * (i % 300))
            os.write(1, b"%d\\n" % i)
            i += 1
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    try:
        for _ in range(20000):
            child.stdout.readline()
    finally:
        child.kill()
        child.wait()
    committed = [int(line) for line in child.stdout.read().split()] or [0]
    last = committed[-1]
    again = Spool(tmp_path / "s", max_bytes=1 << 30, segment_bytes=200000)
    again.open()
    got = drain(again)
    assert len(got) >= last + 1
    for i, record in enumerate(got):
        assert record == b"record-%08d" % i + b"." * (i % 300)


def test_a_full_spool_drops_the_oldest_records_and_counts_them(tmp_path):
    one = len(frame(records(1)[0]))
    spool = Spool(tmp_path / "s", max_bytes=10 * one, segment_bytes=3 * one)
    spool.open()
    data = records(25)
    dropped = [spool.append(r).records for r in data]
    assert sum(dropped) == 15
    assert dropped[:10] == [0] * 10
    assert spool.queued_records == 10
    assert spool.queued_bytes == 10 * one
    assert drain(spool) == data[15:]
    # the disk holds at most the bound plus the segment being written
    assert spool.disk_bytes() <= 10 * one + 3 * one


def test_the_batch_in_flight_is_not_dropped_by_the_bound(tmp_path):
    one = len(frame(records(1)[0]))
    spool = Spool(tmp_path / "s", max_bytes=10 * one, segment_bytes=3 * one)
    spool.open()
    data = records(30)
    for r in data[:10]:
        spool.append(r)
    batch = spool.read_batch(4, 10**6)
    dropped = sum(spool.append(r).records for r in data[10:])
    assert dropped == 20
    assert batch.records == data[:4]
    spool.ack(batch)
    # the in-flight four were delivered; of the rest, the newest six fit beside them
    assert drain(spool) == data[24:]


def test_a_spool_that_dropped_while_nothing_was_in_flight_reopens_consistently(tmp_path):
    one = len(frame(records(1)[0]))
    data = records(40)
    spool = filled(tmp_path / "s", data, max_bytes=10 * one, segment_bytes=3 * one)
    spool.close()
    again = Spool(tmp_path / "s", max_bytes=10 * one, segment_bytes=3 * one)
    again.open()
    got = drain(again)
    # at least the newest ten; a few dropped ones may come back (the cursor lags by design)
    assert got[-10:] == data[-10:]
    assert len(got) <= 10 + 3


def test_an_unusable_directory_is_a_clear_error(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(SpoolError, match=r"cannot use the spool directory .*/file/s: "):
        Spool(tmp_path / "file" / "s", max_bytes=1 << 20).open()


def test_a_damaged_cursor_is_a_clear_error(tmp_path):
    spool = Spool(tmp_path / "s", max_bytes=1 << 20)
    spool.open()
    spool.append(b"x")
    spool.ack(spool.read_batch(1, 100))
    spool.close()
    (tmp_path / "s" / "cursor").write_text("{nope")
    with pytest.raises(SpoolError, match=r"s/cursor: unreadable spool cursor"):
        Spool(tmp_path / "s", max_bytes=1 << 20).open()


def test_fsync_every_append_mode_writes_the_same_records(tmp_path):
    spool = Spool(tmp_path / "s", max_bytes=1 << 20, fsync_interval=0)
    spool.open()
    spool.append(b"durable")
    spool.close()
    again = Spool(tmp_path / "s", max_bytes=1 << 20)
    again.open()
    assert drain(again) == [b"durable"]


def test_the_bound_holds_after_a_replay_that_starts_at_a_segment_boundary(tmp_path):
    one = len(frame(records(1)[0]))
    data = records(9)
    spool = filled(tmp_path / "s", data, max_bytes=10 * one, segment_bytes=3 * one)
    spool.ack(spool.read_batch(3, 10**6))  # the cursor now sits at the end of segment 1
    spool.close()
    again = Spool(tmp_path / "s", max_bytes=10 * one, segment_bytes=3 * one)
    assert again.open().replayed_records == 6
    more = records(10, prefix="m")
    assert sum(again.append(r).records for r in more) == 6
    assert again.queued_bytes == 10 * one
    assert drain(again) == more


def test_the_disk_stays_bounded_while_a_batch_is_retried_for_a_long_time(tmp_path):
    one = len(frame(records(1)[0]))
    spool = Spool(tmp_path / "s", max_bytes=20 * one, segment_bytes=4 * one)
    spool.open()
    for r in records(5):
        spool.append(r)
    batch = spool.read_batch(3, 10**6)  # stuck: the destination is down
    data = records(2000, prefix="n")
    for r in data:
        spool.append(r)
    assert spool.queued_bytes <= 20 * one
    # the bound, plus the segment holding the batch in flight and the one being written
    assert sum(p.stat().st_size for p in (tmp_path / "s").glob("*.seg")) <= 20 * one + 8 * one
    spool.close()  # killed while the batch is still in flight
    again = Spool(tmp_path / "s", max_bytes=20 * one, segment_bytes=4 * one)
    again.open()
    got = drain(again)
    assert got[:3] == batch.records  # the batch in flight was not lost
    assert got[-17:] == data[-17:]
