"""A sink that sends over the network: one :class:`~.delivery.DeliveryLoop` per destination,
chosen by the event's track (Datadog sends compliance, runtime and metrics to three URLs)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from twisted.internet import defer

from host.plugin_types import Event
from plugins.sinks.delivery import DeliveryLoop
from plugins.sinks.records import encode_event
from plugins.sinks.transport import Transport

Validator = Callable[[Any], str | None]
"""Returns why an event cannot go to a destination, or ``None`` when it can."""


class NetworkSink:
    def __init__(
        self,
        name: str,
        routes: Mapping[str, DeliveryLoop],
        transport: Transport,
        validators: Mapping[str, Validator] | None = None,
    ) -> None:
        self.name = name
        self.routes = dict(routes)
        self.tracks = frozenset(self.routes)
        self._transport = transport
        self._validators = dict(validators or {})

    def open(self) -> None:
        for loop in self.routes.values():
            loop.open()

    def send(self, event: Event) -> None:
        loop = self.routes[event.track]
        validate = self._validators.get(event.track)
        problem = validate(event.payload) if validate else None
        if problem is not None:
            loop.count_invalid(problem)
            return
        loop.append(encode_event(event))

    def start(self) -> None:
        for loop in self.routes.values():
            loop.start()

    async def stop(self, flush_timeout: float) -> None:
        await defer.gatherResults([loop.flush(flush_timeout) for loop in self.routes.values()])
        for loop in self.routes.values():
            loop.close()
        await self._transport.close()

    def stats(self) -> dict[str, Any]:
        per_route = {track: loop.snapshot() for track, loop in self.routes.items()}
        totals = {
            key: sum(r[key] for r in per_route.values())
            for key in ("sent", "retried", "queued_records", "queued_bytes", "dropped")
        }
        errors = [
            (r["last_error_time"], r["last_error"]) for r in per_route.values() if r["last_error"]
        ]
        return {
            "kind": "network",
            **totals,
            "last_error": max(errors)[1] if errors else "",
            "destinations": per_route,
        }
