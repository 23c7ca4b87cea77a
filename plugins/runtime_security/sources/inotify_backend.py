"""Recursive inotify watches: the fallback file backend where fanotify is refused. inotify
gives names but no pid, so these events carry ``process.pid == 0``; a queue overflow
(IN_Q_OVERFLOW) loses an unknown number of events and is counted as one drop."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import struct
from collections.abc import Iterator

from .fanotify_backend import (
    FAN_ATTRIB,
    FAN_CLOSE_WRITE,
    FAN_CREATE,
    FAN_DELETE,
    FAN_MODIFY,
    FAN_ONDIR,
    FAN_OPEN,
    FAN_RENAME,
    RawFileEvent,
    libc_error,
)

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]

IN_MODIFY = 0x2
IN_ATTRIB = 0x4
IN_CLOSE_WRITE = 0x8
IN_OPEN = 0x20
IN_MOVED_FROM = 0x40
IN_MOVED_TO = 0x80
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_Q_OVERFLOW = 0x4000
IN_IGNORED = 0x8000
IN_ISDIR = 0x40000000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC
WATCH_MASK = (
    IN_MODIFY
    | IN_ATTRIB
    | IN_CLOSE_WRITE
    | IN_OPEN
    | IN_MOVED_FROM
    | IN_MOVED_TO
    | IN_CREATE
    | IN_DELETE
)
EVENT = struct.Struct("=iIII")  # wd, mask, cookie, len
_TO_FAN = (
    (IN_CREATE, FAN_CREATE),
    (IN_OPEN, FAN_OPEN),
    (IN_MODIFY, FAN_MODIFY),
    (IN_ATTRIB, FAN_ATTRIB),
    (IN_CLOSE_WRITE, FAN_CLOSE_WRITE),
    (IN_DELETE, FAN_DELETE),
)


class Inotify:
    """Watches every directory under ``paths`` and adds new subdirectories as they appear."""

    def __init__(self, paths: list[str]) -> None:
        self.paths = [os.path.realpath(p) for p in paths]
        self.fd = -1
        self._wds: dict[int, str] = {}
        self._moves: dict[int, str] = {}
        self.overflows = 0

    def open(self) -> None:
        fd = _libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            raise libc_error("inotify_init1")
        self.fd = fd
        try:
            for path in self.paths:
                self._watch_tree(path)
        except OSError:
            self.close()
            raise

    def _watch_tree(self, top: str) -> None:
        self._watch(top)
        for root, dirs, _files in os.walk(top):
            for d in dirs:
                self._watch(os.path.join(root, d))

    def _watch(self, path: str) -> None:
        wd = _libc.inotify_add_watch(self.fd, path.encode(), WATCH_MASK)
        if wd < 0:
            raise libc_error(f"inotify_add_watch({path})")
        self._wds[wd] = path

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # closing the instance removes every watch
            self.fd = -1
        self._wds.clear()

    def read(self) -> Iterator[RawFileEvent]:
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return
            offset = 0
            while offset + EVENT.size <= len(data):
                wd, mask, cookie, length = EVENT.unpack_from(data, offset)
                raw_name = data[offset + EVENT.size : offset + EVENT.size + length]
                offset += EVENT.size + length
                if mask & IN_Q_OVERFLOW:
                    self.overflows += 1
                    continue
                if mask & IN_IGNORED:
                    self._wds.pop(wd, None)
                    continue
                directory = self._wds.get(wd)
                if directory is None:
                    continue
                name = raw_name.split(b"\0", 1)[0].decode(errors="surrogateescape")
                path = os.path.join(directory, name) if name else directory
                ondir = FAN_ONDIR if mask & IN_ISDIR else 0
                if mask & IN_CREATE and ondir:
                    with contextlib.suppress(OSError):
                        self._watch_tree(path)
                if mask & IN_MOVED_FROM:
                    self._moves[cookie] = path
                    continue
                if mask & IN_MOVED_TO:
                    old = self._moves.pop(cookie, "")
                    yield RawFileEvent(FAN_RENAME | ondir, 0, old or path, path)
                    continue
                fan = 0
                for in_bit, fan_bit in _TO_FAN:
                    if mask & in_bit:
                        fan |= fan_bit
                if fan:
                    yield RawFileEvent(fan | ondir, 0, path)

    def forget_directories(self) -> None:
        """Nothing cached by path here; kept for interface parity with Fanotify."""
