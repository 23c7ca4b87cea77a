"""Reading files for a flare without ever blocking or failing the whole archive.

Everything here returns bytes or raises :class:`UnreadableFile` with a one-line reason; the
archive turns that into a line of ``flare_errors.log``.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass


class UnreadableFile(Exception):
    """A file the flare could not read; ``str()`` is the reason, for ``flare_errors.log``."""


@dataclass(frozen=True)
class FileContent:
    """What was read, and whether the size cap cut it."""

    data: bytes
    size: int
    truncated: bool


def _reason(error: OSError) -> str:
    return error.strerror or str(error)


def read_regular_file(path: str, cap: int, *, keep_tail: bool = False) -> FileContent:
    """Read at most ``cap`` bytes of the regular file at ``path`` (its end if ``keep_tail``).

    Symlinks are followed (a config file may be one). Anything but a regular file is refused
    before it is read: opening a FIFO or a device could block the flare forever.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as error:
        raise UnreadableFile(f"cannot read {path}: {_reason(error)}") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise UnreadableFile(f"cannot read {path}: {os.strerror(errno.EISDIR)}")
        if not stat.S_ISREG(info.st_mode):
            raise UnreadableFile(f"cannot read {path}: not a regular file")
        size = info.st_size
        truncated = size > cap
        if truncated and keep_tail:
            os.lseek(fd, size - cap, os.SEEK_SET)
        chunks = []
        remaining = cap
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        return FileContent(b"".join(chunks), size, truncated)
    except OSError as error:
        raise UnreadableFile(f"cannot read {path}: {_reason(error)}") from None
    finally:
        os.close(fd)
