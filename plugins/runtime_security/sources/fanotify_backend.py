"""fanotify in FID mode with filesystem marks: file events with the acting pid and the
directory handle + name of the file, which we turn back into a path with open_by_handle_at
on a descriptor of the marked filesystem.

A filesystem mark sees every event on that filesystem, so events are filtered in user space
to the watched path prefixes; directory handles are cached (a rename or removal of a
directory empties the cache, since it may have moved every path below it).

Discarders (Datadog's name for values no rule can match, dropped in the kernel): a file whose
events cannot matter gets an inode mark with an ignored mask, so the kernel stops queueing
those events for it. Files outside the watched paths are discarded this way by the backend
itself (``discard_unwatched``); callers discard watched files no rule can match with
:meth:`Fanotify.discard`. A discarder is tied to the inode while its verdict is tied to the
path, so a link or rename that gives a discarded inode a new name lifts it (the new name may
matter), and :meth:`Fanotify.flush_discarders` lifts them all (a policy reload). Their number
is bounded: each marked inode stays in the kernel's inode cache.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import struct
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.fanotify_init.argtypes = [ctypes.c_uint, ctypes.c_uint]
_libc.fanotify_init.restype = ctypes.c_int
_libc.fanotify_mark.argtypes = [
    ctypes.c_int,
    ctypes.c_uint,
    ctypes.c_uint64,
    ctypes.c_int,
    ctypes.c_char_p,
]
_libc.fanotify_mark.restype = ctypes.c_int
_libc.open_by_handle_at.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
_libc.open_by_handle_at.restype = ctypes.c_int

FAN_CLOEXEC = 0x1
FAN_NONBLOCK = 0x2
FAN_CLASS_NOTIF = 0x0
FAN_REPORT_FID = 0x200
FAN_REPORT_DIR_FID = 0x400
FAN_REPORT_NAME = 0x800
FAN_REPORT_DFID_NAME = FAN_REPORT_DIR_FID | FAN_REPORT_NAME

FAN_MARK_ADD = 0x1
FAN_MARK_REMOVE = 0x2
FAN_MARK_DONT_FOLLOW = 0x4
FAN_MARK_IGNORED_MASK = 0x20
FAN_MARK_IGNORED_SURV_MODIFY = 0x40
FAN_MARK_FLUSH = 0x80
FAN_MARK_FILESYSTEM = 0x100
AT_FDCWD = -100

FAN_MODIFY = 0x2
FAN_ATTRIB = 0x4
FAN_CLOSE_WRITE = 0x8
FAN_OPEN = 0x20
FAN_MOVED_FROM = 0x40
FAN_MOVED_TO = 0x80
FAN_CREATE = 0x100
FAN_DELETE = 0x200
FAN_OPEN_EXEC = 0x1000
FAN_Q_OVERFLOW = 0x4000
FAN_RENAME = 0x10000000
FAN_ONDIR = 0x40000000

FAN_EVENT_INFO_TYPE_FID = 1
FAN_EVENT_INFO_TYPE_DFID_NAME = 2
FAN_EVENT_INFO_TYPE_DFID = 3
FAN_EVENT_INFO_TYPE_OLD_DFID_NAME = 10
FAN_EVENT_INFO_TYPE_NEW_DFID_NAME = 12

DEFAULT_MASK = (
    FAN_OPEN
    | FAN_MODIFY
    | FAN_CLOSE_WRITE
    | FAN_OPEN_EXEC
    | FAN_CREATE
    | FAN_DELETE
    | FAN_RENAME
    | FAN_ATTRIB
    | FAN_ONDIR
)
METADATA = struct.Struct("=IBBHQii")  # event_len, vers, reserved, metadata_len, mask, fd, pid
INFO_HDR = struct.Struct("=BBH")
O_PATH = 0o10000000


DIR_CACHE_SIZE = 16384
# Events of one file (reported on the file's own inode, so an inode ignore mark drops them);
# creations, deletions and renames are reported on the directory and are never discarded.
PER_FILE_EVENTS = FAN_OPEN | FAN_OPEN_EXEC | FAN_MODIFY | FAN_CLOSE_WRITE | FAN_ATTRIB
# Events that give an inode a new name: they lift that inode's discarder.
NEW_NAME_EVENTS = FAN_CREATE | FAN_MOVED_TO | FAN_RENAME
MAX_DISCARDERS = 4096
_PATH_INFO = frozenset(
    {
        FAN_EVENT_INFO_TYPE_DFID_NAME,
        FAN_EVENT_INFO_TYPE_OLD_DFID_NAME,
        FAN_EVENT_INFO_TYPE_NEW_DFID_NAME,
        FAN_EVENT_INFO_TYPE_DFID,
        FAN_EVENT_INFO_TYPE_FID,
    }
)


def _join(directory: str, name: bytes) -> str:
    if not name or name == b".":
        return directory
    return directory.rstrip("/") + "/" + name.decode(errors="surrogateescape")


@dataclass
class RawFileEvent:
    """One decoded fanotify event: mask bits, acting pid, and resolved paths (``path`` is
    the object; ``new_path`` the destination of a rename)."""

    mask: int
    pid: int
    path: str
    new_path: str = ""


def _is_regular(mode: int) -> bool:
    return mode & 0o170000 == 0o100000


def libc_error(call: str) -> OSError:
    """The OSError of the libc call that just failed, with its errno (read right after it)."""
    code = ctypes.get_errno()
    return OSError(code, f"{call}: {os.strerror(code)}")


class Fanotify:
    """A fanotify group with filesystem marks on the filesystems holding ``paths``."""

    def __init__(
        self,
        paths: list[str],
        mask: int = DEFAULT_MASK,
        *,
        discard_unwatched: bool = False,
        max_discarders: int = MAX_DISCARDERS,
    ) -> None:
        """``discard_unwatched``: put a discarder on each file outside ``paths`` the first
        time one of its events comes up (only useful when the mask asks for per-file events
        such as FAN_OPEN, and the group then must ask for NEW_NAME_EVENTS to lift them)."""
        self.paths = [os.path.realpath(p) for p in paths]
        self.mask = mask
        self.fd = -1
        self._marks: list[tuple[str, int]] = []
        self._mount_fds: dict[bytes, int] = {}
        self._dirs: dict[bytes, tuple[str, bool]] = {}
        self.overflows = 0
        self._rename_fallback = False
        self.discard_unwatched = discard_unwatched
        self.max_discarders = max_discarders
        # (st_dev, st_ino) -> (path it was discarded under, ignored bits); oldest first.
        self._discarded: OrderedDict[tuple[int, int], tuple[str, int]] = OrderedDict()
        self._discard_lock = threading.Lock()
        self.discarders_added = 0
        self.discarders_lifted = 0
        self.discarders_evicted = 0
        self.discard_errors = 0

    def open(self) -> None:
        """Raise OSError (with the kernel's errno) when fanotify or a mark is refused."""
        fd = _libc.fanotify_init(
            FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK | FAN_REPORT_DFID_NAME,
            os.O_RDONLY | os.O_LARGEFILE,
        )
        if fd < 0:
            raise libc_error("fanotify_init")
        self.fd = fd
        try:
            for path in self.paths:
                self._mark(path)
        except OSError:
            self.close()
            raise

    def _mark(self, path: str) -> None:
        mask = self.mask
        rc = _libc.fanotify_mark(
            self.fd, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, mask, -1, path.encode()
        )
        if rc < 0 and ctypes.get_errno() == errno.EINVAL and mask & FAN_RENAME:
            mask &= ~FAN_RENAME  # kernel < 5.17: fall back to the moved_from/moved_to pair
            mask |= FAN_MOVED_FROM | FAN_MOVED_TO
            self.mask = mask
            self._rename_fallback = True
            rc = _libc.fanotify_mark(
                self.fd, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, mask, -1, path.encode()
            )
        if rc < 0:
            raise libc_error(f"fanotify_mark(FAN_MARK_FILESYSTEM, {path})")
        self._marks.append((path, mask))
        fsid = self._fsid(path)
        if fsid not in self._mount_fds:
            self._mount_fds[fsid] = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)

    @staticmethod
    def _fsid(path: str) -> bytes:
        # statfs f_fsid is what fanotify reports as fsid; read it through ctypes statfs.
        buf = ctypes.create_string_buffer(120)
        if _libc.statfs(path.encode(), buf) != 0:
            raise libc_error(f"statfs({path})")
        # struct statfs on 64-bit: 7 longs (type, bsize, blocks, bfree, bavail, files, ffree)
        return buf.raw[56:64]

    def set_mask(self, mask: int) -> None:
        """Change the events the filesystem marks ask for, on a running group too (bits
        added with FAN_MARK_ADD, dropped with FAN_MARK_REMOVE). Raise OSError on refusal."""
        if mask & FAN_RENAME and self._rename_fallback:
            mask = (mask & ~FAN_RENAME) | FAN_MOVED_FROM | FAN_MOVED_TO
        if self.fd >= 0:
            marks = []
            for path, old in self._marks:
                for op, bits in ((FAN_MARK_ADD, mask & ~old), (FAN_MARK_REMOVE, old & ~mask)):
                    if bits & ~FAN_ONDIR:
                        flags = op | FAN_MARK_FILESYSTEM
                        if _libc.fanotify_mark(self.fd, flags, bits, -1, path.encode()) < 0:
                            raise libc_error(f"fanotify_mark(FAN_MARK_FILESYSTEM, {path})")
                marks.append((path, mask))
            self._marks = marks
        self.mask = mask

    # -- discarders ---------------------------------------------------------------------------

    def discard(self, path: str, events: int) -> bool:
        """Stop the kernel queueing ``events`` (per-file bits) of the file now at ``path``,
        until it gets another name or :meth:`flush_discarders`. False when the file is gone
        or is not a regular file (or the kernel refused the mark, counted)."""
        events &= PER_FILE_EVENTS
        if not events or self.fd < 0 or self.max_discarders <= 0:
            return False
        try:
            st = os.lstat(path)
        except OSError:
            return False
        if not _is_regular(st.st_mode):
            return False  # a directory's ignored mask would not cover its entries anyway
        key = (st.st_dev, st.st_ino)
        with self._discard_lock:
            known = self._discarded.get(key)
            bits = events | (known[1] if known else 0)
            flags = FAN_MARK_ADD | FAN_MARK_IGNORED_MASK | FAN_MARK_IGNORED_SURV_MODIFY
            rc = _libc.fanotify_mark(
                self.fd, flags | FAN_MARK_DONT_FOLLOW, bits, AT_FDCWD, path.encode()
            )
            if rc < 0:
                self.discard_errors += 1
                return False
            if known is None:
                self.discarders_added += 1
            self._discarded[key] = (path, bits)
            self._discarded.move_to_end(key)
            while len(self._discarded) > self.max_discarders:
                _old_key, (old_path, old_bits) = self._discarded.popitem(last=False)
                self._unmark(old_path, old_bits)
                self.discarders_evicted += 1
        return True

    def _unmark(self, path: str, bits: int) -> None:
        # ENOENT (gone, or no mark on whatever is there now) is fine: nothing left to lift.
        _libc.fanotify_mark(
            self.fd,
            FAN_MARK_REMOVE | FAN_MARK_IGNORED_MASK | FAN_MARK_DONT_FOLLOW,
            bits,
            AT_FDCWD,
            path.encode(),
        )

    def _lift(self, path: str) -> None:
        """``path`` is a new name: if its inode was discarded, lift the discarder."""
        if not self._discarded:
            return
        try:
            st = os.lstat(path)
        except OSError:
            return
        with self._discard_lock:
            known = self._discarded.pop((st.st_dev, st.st_ino), None)
            if known is not None:
                self._unmark(path, known[1])
                self.discarders_lifted += 1

    def flush_discarders(self) -> None:
        """Lift every discarder (the filesystem marks stay): a new rule set may care."""
        with self._discard_lock:
            if self.fd >= 0 and self._discarded:
                _libc.fanotify_mark(self.fd, FAN_MARK_FLUSH, 0, -1, None)
            self._discarded.clear()

    @property
    def discarders(self) -> int:
        return len(self._discarded)

    def close(self) -> None:
        self._discarded.clear()
        if self.fd >= 0:
            for path, mask in self._marks:
                _libc.fanotify_mark(
                    self.fd, FAN_MARK_REMOVE | FAN_MARK_FILESYSTEM, mask, -1, path.encode()
                )
            os.close(self.fd)
            self.fd = -1
        self._marks.clear()
        for fd in self._mount_fds.values():
            os.close(fd)
        self._mount_fds.clear()
        self._dirs.clear()

    def read(self) -> Iterator[RawFileEvent]:
        """Decode what is queued now; a queue overflow bumps ``overflows``."""
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return
            offset = 0
            while offset + METADATA.size <= len(data):
                length, _vers, _res, meta_len, mask, fd, pid = METADATA.unpack_from(data, offset)
                if length < METADATA.size:
                    return
                if fd >= 0:
                    os.close(fd)
                if mask & FAN_Q_OVERFLOW:
                    self.overflows += 1
                else:
                    event = self._decode(mask, pid, data[offset + meta_len : offset + length])
                    if event is not None:
                        yield event
                offset += length

    def _decode(self, mask: int, pid: int, info: bytes) -> RawFileEvent | None:
        """Resolve the event's paths, or None when it cannot concern a watched path. Most
        events of a filesystem mark are elsewhere, so that verdict is cached per directory
        handle and reached before any string is built."""
        found: dict[int, tuple[str, bytes]] = {}
        relevant = False
        offset = 0
        while offset + INFO_HDR.size <= len(info):
            info_type, _pad, length = INFO_HDR.unpack_from(info, offset)
            if length == 0:
                break
            if info_type in _PATH_INFO:
                record = info[offset + INFO_HDR.size : offset + length]
                resolved = self._directory(record)
                if resolved is not None:
                    directory, watched, name = resolved
                    relevant = relevant or watched
                    found[info_type] = (directory, name)
            offset += length
        if not relevant:
            if self.discard_unwatched and mask & PER_FILE_EVENTS and not mask & FAN_ONDIR:
                named = found.get(FAN_EVENT_INFO_TYPE_DFID_NAME)
                if named is not None and named[1]:
                    self.discard(_join(*named), self.mask & PER_FILE_EVENTS)
            return None
        paths = {kind: _join(directory, name) for kind, (directory, name) in found.items()}
        if mask & NEW_NAME_EVENTS:
            new = paths.get(FAN_EVENT_INFO_TYPE_NEW_DFID_NAME) or paths.get(
                FAN_EVENT_INFO_TYPE_DFID_NAME
            )
            if new is not None:
                self._lift(new)
        old = paths.get(FAN_EVENT_INFO_TYPE_OLD_DFID_NAME)
        if old is not None:
            return RawFileEvent(mask, pid, old, paths.get(FAN_EVENT_INFO_TYPE_NEW_DFID_NAME, ""))
        for kind in (
            FAN_EVENT_INFO_TYPE_DFID_NAME,
            FAN_EVENT_INFO_TYPE_FID,
            FAN_EVENT_INFO_TYPE_DFID,
        ):
            if kind in paths:
                return RawFileEvent(mask, pid, paths[kind])
        return None

    def _directory(self, record: bytes) -> tuple[str, bool, bytes] | None:
        """(directory path, may concern a watched path, raw name) of one fid record."""
        handle_bytes = struct.unpack_from("=I", record, 8)[0]
        key = record[: 16 + handle_bytes]
        name = record[16 + handle_bytes :].split(b"\0", 1)[0]
        cached = self._dirs.get(key)
        if cached is None:
            mount_fd = self._mount_fds.get(key[:8])
            if mount_fd is None:
                return None
            fd = _libc.open_by_handle_at(mount_fd, key[8:], O_PATH | os.O_CLOEXEC)
            if fd < 0:
                return None  # already deleted: nothing left to name
            try:
                directory = os.readlink(f"/proc/self/fd/{fd}")
            finally:
                os.close(fd)
            if len(self._dirs) > DIR_CACHE_SIZE:
                self._dirs.clear()
            cached = (directory, self._concerns(directory))
            self._dirs[key] = cached
        return cached[0], cached[1], name

    def _concerns(self, directory: str) -> bool:
        """Whether entries of ``directory`` can be watched paths: it is one of them, below
        one, or above one (an entry named like the next path component)."""
        base = directory.rstrip("/") + "/"
        for path in self.paths:
            if directory == path or directory.startswith(path.rstrip("/") + "/"):
                return True
            if path.startswith(base):
                return True
        return False

    def forget_directories(self) -> None:
        """A directory moved or went away: cached directory paths may be wrong now."""
        self._dirs.clear()
