"""The default sink: one JSON-lines file per track under ``run_path``, rotated by size.

It needs no network, so the embedded default configuration keeps every finding and event
somewhere an operator (or a log shipper) can read them. Lines are written with one
``os.write`` each on an ``O_APPEND`` descriptor, so a crash never leaves half a line in the
middle of the file; they are not fsynced (this is a log, not a queue).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from host.plugin_types import Event
from plugins.sinks.records import encode_event


class FileSink:
    """``<dir>/<track>.jsonl``, rotated to ``<track>.jsonl.1`` … ``.N`` past ``max_size``."""

    def __init__(
        self, directory: Path, tracks: frozenset[str], max_size: int, max_rolls: int
    ) -> None:
        self.name = "file"
        self.tracks = tracks
        self.directory = directory
        self.max_size = max_size
        self.max_rolls = max_rolls
        self._files: dict[str, tuple[int, int]] = {}  # track -> (fd, size)
        self.written = 0
        self.written_bytes = 0
        self.rotations = 0
        self.last_error = ""

    def send(self, event: Event) -> None:
        line = encode_event(event) + b"\n"
        fd, size = self._open(event.track)
        if size and size + len(line) > self.max_size:
            fd, size = self._rotate(event.track)
        try:
            os.write(fd, line)
        except OSError as exc:
            self.last_error = f"{self.directory / (event.track + '.jsonl')}: {exc.strerror}"
            raise
        self._files[event.track] = (fd, size + len(line))
        self.written += 1
        self.written_bytes += len(line)

    def _path(self, track: str, roll: int = 0) -> Path:
        return self.directory / (f"{track}.jsonl" + (f".{roll}" if roll else ""))

    def _open(self, track: str) -> tuple[int, int]:
        opened = self._files.get(track)
        if opened is not None:
            return opened
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self._path(track), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError as exc:
            self.last_error = f"{self._path(track)}: {exc.strerror}"
            raise
        opened = (fd, os.fstat(fd).st_size)
        self._files[track] = opened
        return opened

    def _rotate(self, track: str) -> tuple[int, int]:
        fd, _ = self._files.pop(track)
        os.close(fd)
        if self.max_rolls <= 0:
            self._path(track).unlink()
        else:
            for roll in range(self.max_rolls, 0, -1):
                source = self._path(track, roll - 1)
                with contextlib.suppress(FileNotFoundError):
                    os.replace(source, self._path(track, roll))
        self.rotations += 1
        return self._open(track)

    def close(self) -> None:
        for fd, _ in self._files.values():
            os.close(fd)
        self._files.clear()

    def stats(self) -> dict[str, Any]:
        return {
            "kind": "file",
            "directory": str(self.directory),
            "written": self.written,
            "written_bytes": self.written_bytes,
            "rotations": self.rotations,
            "dropped": 0,
            "last_error": self.last_error,
        }
