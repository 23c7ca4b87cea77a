"""Events from a JSON-lines file: one event object per line, blank lines and ``#`` comments
skipped. Used by tests and ``policy eval``. A bad line is an error naming file and line."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from typing import Any

from .base import Event, Source, SourceUnavailable


class ReplayError(ValueError):
    """One line of a replay file is not an event; the message names file and line."""


def read_events(path: str) -> Iterator[Event]:
    """Yield the events of a JSON-lines file; raise ReplayError on the first bad line."""
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            try:
                event = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ReplayError(
                    f"{path}:{number}: invalid JSON: {exc.msg} (column {exc.colno})"
                ) from None
            if not isinstance(event, dict):
                raise ReplayError(
                    f"{path}:{number}: an event must be a JSON object, got {type(event).__name__}"
                )
            if not isinstance(event.get("type"), str) or not event["type"]:
                raise ReplayError(f"{path}:{number}: key 'type' is missing or not a string")
            event.setdefault("timestamp", 0.0)
            yield event


class ReplaySource(Source):
    """Replays a file once in its own daemon thread, then goes inactive with reason
    ``"replay finished"`` (or the ReplayError text on a bad line, after emitting the events
    before it). ``wait()`` blocks until the replay is over."""

    name = "replay"

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        self._done = threading.Event()
        self._error = ""

    def _open(self) -> None:
        if not os.path.isfile(self.path):
            raise SourceUnavailable(f"{self.path}: no such file")
        self._done.clear()

    def _fileno(self) -> int:
        return self._wake_r

    def _read_ready(self) -> None:
        """Not used: the replay thread does not wait on a descriptor."""

    def _close(self) -> None:
        self._done.set()

    def _run(self) -> None:
        try:
            for event in read_events(self.path):
                if self._stopping.is_set():
                    break
                event.setdefault("source", self.name)
                self._emit(event)
            self._set_state(False, "replay finished")
        except (ReplayError, OSError, UnicodeDecodeError) as exc:
            self._error = str(exc)
            self._set_state(False, str(exc))
        finally:
            self._done.set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def _detail(self) -> dict[str, Any]:
        return {"path": self.path, "error": self._error}
