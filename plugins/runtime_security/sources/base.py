"""The contract every event source follows, and the thread that runs a blocking reader.

A source turns one kernel interface into events: plain nested dicts whose keys mirror SECL
field names, plus ``type``, ``timestamp`` (seconds since the epoch, float) and ``source``
(the name of the source that produced it). ``start(callback)`` begins delivery, ``stop()``
ends it and undoes every change made to the kernel, ``stats()`` is a snapshot that is safe to
read from the reactor thread at any time.

Threading: every kernel source reads in its own daemon thread and calls ``callback`` from
that thread, one event at a time, never concurrently for the same source. A callback that
must touch reactor state should hop over with ``reactor.callFromThread``; a callback that
raises is counted in ``stats().callback_errors`` and the source keeps going. ``on_burst``
(optional) is called from the same thread after each read of what the kernel had queued: a
consumer that queues events can wake its own thread once per burst instead of per event.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Event = dict[str, Any]
Callback = Callable[[Event], None]


@dataclass(frozen=True)
class SourceStats:
    """What ``Source.stats()`` returns. ``reason`` says why the source is not active ("" when
    it is); ``drops`` counts events the kernel or our queues lost; ``detail`` carries
    source-specific figures (audit mode, fanotify backend, …)."""

    name: str
    active: bool
    reason: str
    events: int
    drops: int
    callback_errors: int = 0
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "active": self.active,
            "reason": self.reason,
            "events": self.events,
            "drops": self.drops,
            "callback_errors": self.callback_errors,
            "detail": dict(self.detail),
        }


class SourceUnavailable(Exception):
    """Raised inside ``_open`` when the kernel refuses the interface; its text becomes
    ``stats().reason``."""


class Source(ABC):
    """Base for the kernel sources: owns the counters, the reader thread and the wake-up pipe
    that lets ``stop()`` interrupt a blocking ``select``."""

    name = "source"
    # Under load (wake-ups closer than this), let events accumulate this long before
    # draining: one wake-up per batch instead of per event saves most of the CPU of a
    # storm. At ordinary rates events are read at once, which matters for the process
    # source: /proc of a short-lived process must be read before it is gone.
    coalesce = 0.01

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events = 0
        self._drops = 0
        self._callback_errors = 0
        self._active = False
        self._reason = "not started"
        self._callback: Callback | None = None
        self._on_burst: Callable[[], None] | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._wake_r, self._wake_w = -1, -1

    # -- public API -------------------------------------------------------------------------

    def start(self, callback: Callback, on_burst: Callable[[], None] | None = None) -> None:
        """Open the kernel interface and start the reader thread. Never raises because the
        kernel refused: the source then stays inactive and ``stats().reason`` says why."""
        if self._thread is not None:
            raise RuntimeError(f"{self.name} source already started")
        self._callback = callback
        self._on_burst = on_burst
        self._stopping.clear()
        try:
            self._open()
        except SourceUnavailable as exc:
            self._set_state(False, str(exc))
            return
        self._wake_r, self._wake_w = os.pipe()
        self._set_state(True, "")
        self._thread = threading.Thread(
            target=self._run, name=f"rs-source-{self.name}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop reading, join the thread and release every kernel resource (marks, rules,
        sockets). Safe to call twice or on a source that never became active."""
        self._stopping.set()
        if self._wake_w >= 0:
            with contextlib.suppress(OSError):
                os.write(self._wake_w, b"x")
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
        try:
            self._close()
        finally:
            for fd in (self._wake_r, self._wake_w):
                if fd >= 0:
                    os.close(fd)
            self._wake_r = self._wake_w = -1
            if self._active:
                self._set_state(False, "stopped")

    def stats(self) -> SourceStats:
        with self._lock:
            return SourceStats(
                name=self.name,
                active=self._active,
                reason=self._reason,
                events=self._events,
                drops=self._drops,
                callback_errors=self._callback_errors,
                detail=self._detail(),
            )

    # -- for subclasses ---------------------------------------------------------------------

    @abstractmethod
    def _open(self) -> None:
        """Acquire the kernel interface; raise SourceUnavailable with the kernel's refusal."""

    @abstractmethod
    def _fileno(self) -> int:
        """The descriptor the reader thread waits on."""

    @abstractmethod
    def _read_ready(self) -> None:
        """Drain what is readable on ``_fileno()`` and ``_emit`` the events."""

    @abstractmethod
    def _close(self) -> None:
        """Release the kernel interface and undo every change made to kernel state."""

    def _tick(self) -> None:  # noqa: B027 - optional hook, most sources poll nothing
        """Called about once a second from the reader thread (counters polling)."""

    def _detail(self) -> dict[str, Any]:
        return {}

    def _emit(self, event: Event) -> None:
        callback = self._callback
        with self._lock:
            self._events += 1
        if callback is None:
            return
        try:
            callback(event)
        except Exception:
            with self._lock:
                self._callback_errors += 1

    def _add_drops(self, count: int) -> None:
        if count > 0:
            with self._lock:
                self._drops += count

    def _set_state(self, active: bool, reason: str) -> None:
        with self._lock:
            self._active = active
            self._reason = reason

    def _run(self) -> None:
        last_tick = last_wake = time.monotonic()
        try:
            while not self._stopping.is_set():
                fd = self._fileno()
                ready, _, _ = select.select([fd, self._wake_r], [], [], 1.0)
                if self._stopping.is_set():
                    break
                now = time.monotonic()
                if fd in ready:
                    busy = now - last_wake < self.coalesce
                    last_wake = now
                    if busy and self._stopping.wait(self.coalesce):
                        break
                    self._read_ready()
                    if self._on_burst is not None:
                        self._on_burst()
                if now - last_tick >= 1.0:
                    last_tick = now
                    self._tick()
        except Exception as exc:  # the reader died: say so in stats instead of vanishing
            self._set_state(False, f"reader failed: {type(exc).__name__}: {exc}")
