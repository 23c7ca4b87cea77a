"""Routing events from the plugins that produce them to the sinks that deliver them.

The host knows nothing of what an event means; it only stamps an id and a time, picks the
sinks by track and counts what happens, so that nothing is lost silently: an event with no
sink for its track, or one a sink raised on, is counted per track and shown in status.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from typing import Any

from twisted.logger import Logger

from host.plugin_types import Event, EventSink

log = Logger(namespace="host.events")


class EventRouter:
    """``agent.events``: emit events from any thread; sinks receive them in the reactor."""

    def __init__(self, reactor: Any) -> None:
        self._reactor = reactor
        # The agent is built in the thread that then runs the reactor.
        self._reactor_thread = threading.get_ident()
        self._sinks: list[EventSink] = []
        self._lock = threading.Lock()
        self.emitted: Counter[str] = Counter()
        self.delivered: Counter[str] = Counter()
        self.unrouted: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()

    @property
    def sinks(self) -> list[EventSink]:
        return list(self._sinks)

    def add_sink(self, sink: EventSink) -> None:
        if any(s.name == sink.name for s in self._sinks):
            raise ValueError(f"an event sink named {sink.name!r} is already registered")
        self._sinks.append(sink)

    def emit(self, track: str, payload: Mapping[str, Any]) -> Event:
        """Stamp and route one event; safe to call from worker threads."""
        event = Event(track=track, payload=payload, id=uuid.uuid4().hex, timestamp=time.time())
        with self._lock:
            self.emitted[track] += 1
        if threading.get_ident() == self._reactor_thread:
            self._deliver(event)
        else:
            self._reactor.callFromThread(self._deliver, event)
        return event

    def _deliver(self, event: Event) -> None:
        taken = False
        for sink in self._sinks:
            if sink.tracks and event.track not in sink.tracks:
                continue
            taken = True
            try:
                sink.send(event)
            except Exception:  # a broken sink must not stop delivery to the others
                with self._lock:
                    self.failed[event.track] += 1
                log.failure(
                    "Event sink {sink} failed on a {track} event", sink=sink.name, track=event.track
                )
            else:
                with self._lock:
                    self.delivered[event.track] += 1
        if not taken:
            with self._lock:
                self.unrouted[event.track] += 1
            if self.unrouted[event.track] == 1:
                log.warn(
                    "No event sink takes {track} events; they are counted and dropped",
                    track=event.track,
                )

    def stats(self) -> dict[str, Any]:
        with self._lock:
            counters = {
                "emitted": dict(self.emitted),
                "delivered": dict(self.delivered),
                "unrouted": dict(self.unrouted),
                "failed": dict(self.failed),
            }
        sinks = {}
        for sink in self._sinks:
            try:
                sinks[sink.name] = dict(sink.stats())
            except Exception as exc:  # status must render even with a broken sink
                sinks[sink.name] = {"error": f"{type(exc).__name__}: {exc}"}
        return {**counters, "sinks": sinks}
