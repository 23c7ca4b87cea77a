"""A durable, byte-bounded FIFO of records on disk: what a network sink writes before sending.

Layout, in the spool's own directory under ``run_path``::

    0000000000000001.seg   records, appended; a new segment starts past ``segment_bytes``
    0000000000000002.seg
    cursor                 {"segment": 2, "offset": 4096}: everything before it was delivered

Each record is framed as ``length (4 bytes, big-endian) | crc32 (4 bytes) | payload``. Appends
go straight to the kernel with ``os.write`` on an ``O_APPEND`` descriptor, so a record is in
the page cache, and survives the process being killed with ``kill -9``, as soon as
:meth:`Spool.append` returns. Surviving a power loss or kernel crash needs ``fsync``: with
``fsync_interval == 0`` every append is fsynced (slow, safest); otherwise the owner calls
:meth:`Spool.sync` every ``fsync_interval`` seconds and at most that much is at risk.

When the spool is opened every record after the cursor is checked: a record cut short by a
crash in the middle of a write (a torn tail), or one whose checksum does not match, is
truncated away with everything after it in that segment, counted and reported; the records
before it are intact because appends never rewrite committed bytes.

Delivery is at least once: the cursor moves only after a batch is acknowledged, so a crash
between sending and acknowledging replays the batch. When the records not yet delivered would
exceed ``max_bytes``, the oldest ones not currently being sent are dropped and counted.
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

HEADER = struct.Struct(">II")
"""Payload length, then the CRC-32 of the payload."""

MAX_RECORD_BYTES = 16 * 1024 * 1024
"""A length field above this is garbage from a torn write, not a record."""

SEGMENT_SUFFIX = ".seg"
CURSOR_NAME = "cursor"

Position = tuple[int, int]
"""(segment number, byte offset in that segment); tuples order like positions do."""


class SpoolError(Exception):
    """The spool directory cannot be used (permissions, a full disk, a bad cursor)."""


@dataclass
class Batch:
    """Records read for sending; acknowledge with :meth:`Spool.ack` once delivered."""

    records: list[bytes]
    framed_bytes: int
    start: Position
    end: Position

    def __len__(self) -> int:
        return len(self.records)


@dataclass
class OpenReport:
    """What opening the spool found on disk, for the start-up log."""

    replayed_records: int = 0
    replayed_bytes: int = 0
    truncated_bytes: int = 0
    truncated_segments: list[str] = field(default_factory=list)


@dataclass
class DropReport:
    """Records removed, oldest first, to keep the spool within its byte bound."""

    records: int = 0
    bytes: int = 0


def segment_name(number: int) -> str:
    return f"{number:016d}{SEGMENT_SUFFIX}"


def frame(payload: bytes) -> bytes:
    """The on-disk form of one record."""
    return HEADER.pack(len(payload), zlib.crc32(payload)) + payload


class Spool:
    """One destination's queue of undelivered records. Not thread-safe: use it from the
    reactor thread only (the sinks do)."""

    def __init__(
        self,
        directory: Path,
        *,
        max_bytes: int,
        segment_bytes: int | None = None,
        fsync_interval: float = 1.0,
    ) -> None:
        if max_bytes <= 0:
            raise ValueError(f"the spool byte bound must be positive, got {max_bytes}")
        self.directory = directory
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes or max(64 * 1024, min(4 * 1024 * 1024, max_bytes // 8))
        self.fsync_every_append = fsync_interval <= 0
        self.queued_records = 0
        self.queued_bytes = 0
        """Records (and their framed bytes) not yet acknowledged, including the batch in
        flight."""
        self._segments: list[int] = []
        self._sizes: dict[int, int] = {}
        self._committed: Position = (1, 0)
        self._read: Position = (1, 0)
        self._inflight: Batch | None = None
        self._write_fd: int | None = None
        self._read_fds: dict[int, int] = {}
        self._dirty = False
        self._opened = False

    # --- opening ------------------------------------------------------------------------------

    def open(self) -> OpenReport:
        """Create or recover the spool; truncates torn or corrupt tails (see the report)."""
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            return self._recover()
        except OSError as exc:
            raise SpoolError(
                f"cannot use the spool directory {self.directory}: {exc.strerror or exc}"
            ) from exc

    def _recover(self) -> OpenReport:
        report = OpenReport()
        numbers = sorted(
            int(p.name[: -len(SEGMENT_SUFFIX)])
            for p in self.directory.iterdir()
            if p.name.endswith(SEGMENT_SUFFIX) and p.name[: -len(SEGMENT_SUFFIX)].isdigit()
        )
        cursor = self._load_cursor()
        for number in [n for n in numbers if n < cursor[0]]:
            # Fully delivered; a crash came between moving the cursor and removing the file.
            (self.directory / segment_name(number)).unlink()
        numbers = [n for n in numbers if n >= cursor[0]]
        if numbers and numbers[0] != cursor[0]:
            cursor = (numbers[0], 0)
        for number in numbers:
            start = cursor[1] if number == cursor[0] else 0
            records, good_end, size = self._scan(number, start)
            if good_end < size:
                self._truncate(number, good_end)
                report.truncated_bytes += size - good_end
                report.truncated_segments.append(segment_name(number))
            self._segments.append(number)
            self._sizes[number] = good_end
            self.queued_records += records
            self.queued_bytes += good_end - start
        if not self._segments:
            self._segments = [cursor[0]]
            self._sizes[cursor[0]] = 0
        if cursor[1] > self._sizes[cursor[0]]:
            cursor = (cursor[0], self._sizes[cursor[0]])
        self._committed = self._read = cursor
        self._open_writer(self._segments[-1])
        report.replayed_records = self.queued_records
        report.replayed_bytes = self.queued_bytes
        self._opened = True
        return report

    def _load_cursor(self) -> Position:
        path = self.directory / CURSOR_NAME
        try:
            doc = json.loads(path.read_bytes())
            position = (int(doc["segment"]), int(doc["offset"]))
        except FileNotFoundError:
            return (1, 0)
        except (ValueError, KeyError, TypeError) as exc:
            # The cursor is replaced atomically, so this is outside damage; replaying from
            # the oldest segment is the choice that loses nothing.
            raise SpoolError(
                f"{path}: unreadable spool cursor ({exc}); remove it to replay"
            ) from exc
        if position[0] < 1 or position[1] < 0:
            raise SpoolError(f"{path}: invalid spool cursor {position}")
        return position

    def _scan(self, number: int, start: int) -> tuple[int, int, int]:
        """Count the intact records from ``start``; return (records, end of the last intact
        record, file size)."""
        path = self.directory / segment_name(number)
        data = path.read_bytes()
        offset, records = start, 0
        while offset < len(data):
            if offset + HEADER.size > len(data):
                break
            length, crc = HEADER.unpack_from(data, offset)
            end = offset + HEADER.size + length
            if length == 0 or length > MAX_RECORD_BYTES or end > len(data):
                break
            if zlib.crc32(data[offset + HEADER.size : end]) != crc:
                break
            offset, records = end, records + 1
        return records, offset, len(data)

    def _truncate(self, number: int, size: int) -> None:
        fd = os.open(self.directory / segment_name(number), os.O_WRONLY)
        try:
            os.ftruncate(fd, size)
            os.fsync(fd)
        finally:
            os.close(fd)

    def _open_writer(self, number: int) -> None:
        if self._write_fd is not None:
            os.close(self._write_fd)
        path = self.directory / segment_name(number)
        self._write_fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._sizes.setdefault(number, 0)
        if self.fsync_every_append:
            self._sync_directory()
        else:
            self._dirty = True  # the next sync() makes the new file's name durable

    # --- writing ------------------------------------------------------------------------------

    def append(self, payload: bytes) -> DropReport:
        """Write one record; drops the oldest records first if it would not fit."""
        if not self._opened or self._write_fd is None:
            raise SpoolError(f"spool {self.directory} is closed")
        if not payload:
            raise ValueError("a spool record cannot be empty")
        if len(payload) > MAX_RECORD_BYTES:
            raise ValueError(
                f"a spool record is limited to {MAX_RECORD_BYTES} bytes, got {len(payload)}"
            )
        data = frame(payload)
        dropped = self._make_room(len(data))
        active = self._segments[-1]
        if self._sizes[active] >= self.segment_bytes:
            active += 1
            self._segments.append(active)
            self._open_writer(active)
        written = os.write(self._write_fd, data)
        if written != len(data):  # a full disk: leave no half record behind
            os.ftruncate(self._write_fd, self._sizes[active])
            raise SpoolError(f"spool {self.directory}: short write ({written} of {len(data)})")
        self._sizes[active] += len(data)
        self.queued_records += 1
        self.queued_bytes += len(data)
        if self.fsync_every_append:
            os.fsync(self._write_fd)
        else:
            self._dirty = True
        return dropped

    def _make_room(self, incoming: int) -> DropReport:
        report = DropReport()
        inflight = self._inflight.framed_bytes if self._inflight is not None else 0
        while self.queued_bytes + incoming > self.max_bytes and self.queued_bytes > inflight:
            self._normalize_read()
            size = self._record_size_at(self._read)
            if size is None:
                break
            self._read = (self._read[0], self._read[1] + size)
            self._normalize_read()
            self.queued_records -= 1
            self.queued_bytes -= size
            report.records += 1
            report.bytes += size
        if report.records and self._inflight is None and self._read[0] > self._committed[0]:
            # Only when whole segments became free: a lagging cursor merely replays records
            # that were dropped, while moving it on every drop would cost a rename per event.
            self._commit(self._read)
        elif report.records and self._inflight is not None:
            # The cursor stays before the batch in flight (it is not delivered yet), but the
            # segments wholly dropped after it can go: a long outage must not fill the disk.
            self._remove_segments(self._inflight.end[0], self._read[0])
        return report

    def _remove_segments(self, after: int, before: int) -> None:
        for number in [n for n in self._segments if after < n < before]:
            self._segments.remove(number)
            self._sizes.pop(number, None)
            fd = self._read_fds.pop(number, None)
            if fd is not None:
                os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                (self.directory / segment_name(number)).unlink()

    def _record_size_at(self, position: Position) -> int | None:
        number, offset = position
        if offset + HEADER.size > self._sizes.get(number, 0):
            return None
        header = os.pread(self._reader(number), HEADER.size, offset)
        length, _ = HEADER.unpack(header)
        return HEADER.size + int(length)

    def _normalize_read(self) -> None:
        # Past the end of a finished segment means the start of the next one.
        number, offset = self._read
        while offset >= self._sizes.get(number, 0) and number != self._segments[-1]:
            number, offset = next(n for n in self._segments if n > number), 0
        self._read = (number, offset)

    # --- reading and acknowledging ------------------------------------------------------------

    @property
    def inflight(self) -> Batch | None:
        """The batch read and not yet acknowledged, if any."""
        return self._inflight

    @property
    def pending_records(self) -> int:
        """Records waiting to be read (queued, minus the batch in flight)."""
        return self.queued_records - (len(self._inflight) if self._inflight else 0)

    @property
    def pending_bytes(self) -> int:
        return self.queued_bytes - (self._inflight.framed_bytes if self._inflight else 0)

    def read_batch(self, max_records: int, max_bytes: int) -> Batch | None:
        """The oldest records not in flight: at most ``max_records``, with payloads adding up
        to at most ``max_bytes`` (one record is returned even when it alone is larger).

        Only one batch is in flight at a time; ``None`` when one already is or nothing waits.
        """
        if self._inflight is not None or self.pending_records == 0:
            return None
        self._normalize_read()
        start = position = self._read
        records: list[bytes] = []
        framed = payload_total = 0
        while len(records) < max_records:
            number, offset = position
            size = self._sizes.get(number, 0)
            if offset >= size:
                if number == self._segments[-1]:
                    break
                position = (next(n for n in self._segments if n > number), 0)
                continue
            want = min(size - offset, max_bytes + HEADER.size * (max_records - len(records)))
            chunk = os.pread(self._reader(number), max(want, HEADER.size), offset)
            used, stop = self._parse_chunk(
                chunk,
                records,
                max_records=max_records,
                budget=max_bytes - payload_total,
                number=number,
                offset=offset,
            )
            if used == 0:
                break
            framed += used
            payload_total = sum(len(r) for r in records)
            position = (number, offset + used)
            if stop:
                break
        if not records:
            return None
        self._read = position
        self._normalize_read()
        self._inflight = Batch(records, framed, start, self._read)
        return self._inflight

    def _parse_chunk(
        self,
        chunk: bytes,
        records: list[bytes],
        *,
        max_records: int,
        budget: int,
        number: int,
        offset: int,
    ) -> tuple[int, bool]:
        """Append whole records from ``chunk``; return (bytes used, whether a limit hit)."""
        used = 0
        while len(records) < max_records and used + HEADER.size <= len(chunk):
            length, _ = HEADER.unpack_from(chunk, used)
            if length > budget and records:
                return used, True
            end = used + HEADER.size + length
            if end > len(chunk):
                if records or used:
                    return used, False
                # A single record larger than the chunk: read it whole.
                whole = os.pread(self._reader(number), HEADER.size + length, offset)
                records.append(whole[HEADER.size :])
                return HEADER.size + length, True
            records.append(chunk[used + HEADER.size : end])
            budget -= length
            used = end
        return used, len(records) >= max_records

    def ack(self, batch: Batch) -> None:
        """The batch is done with (delivered, or refused for good): forget it."""
        if batch is not self._inflight:
            return
        self._inflight = None
        self.queued_records -= len(batch)
        self.queued_bytes -= batch.framed_bytes
        self._commit(self._read)

    def _commit(self, position: Position) -> None:
        self._committed = position
        self._write_cursor()
        self._remove_segments(0, position[0])

    def _write_cursor(self) -> None:
        path = self.directory / CURSOR_NAME
        tmp = path.with_name(CURSOR_NAME + ".tmp")
        number, offset = self._committed
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, json.dumps({"segment": number, "offset": offset}).encode())
            if self.fsync_every_append:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        self._dirty = True

    def _reader(self, number: int) -> int:
        fd = self._read_fds.get(number)
        if fd is None:
            fd = os.open(self.directory / segment_name(number), os.O_RDONLY)
            self._read_fds[number] = fd
        return fd

    # --- durability and shutdown --------------------------------------------------------------

    def sync(self) -> None:
        """Flush appended records and the cursor to stable storage (power-loss safety)."""
        if not self._dirty or self._write_fd is None:
            return
        os.fsync(self._write_fd)
        self._sync_directory()
        self._dirty = False

    def _sync_directory(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def close(self) -> None:
        """Sync and release the files; records not yet delivered stay for the next start."""
        if not self._opened:
            return
        self.sync()
        if self._write_fd is not None:
            os.close(self._write_fd)
            self._write_fd = None
        for fd in self._read_fds.values():
            os.close(fd)
        self._read_fds.clear()
        self._inflight = None
        self._opened = False

    def disk_bytes(self) -> int:
        """Bytes the segment files take, delivered prefix included."""
        return sum(self._sizes.values())
