"""How an :class:`~host.plugin_types.Event` is stored in a spool or a file, and read back.

One compact JSON object per event: ``{"id", "track", "timestamp", "payload"}``. The id travels
with the record through every retry and replay, so a receiver can de-duplicate.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from host.plugin_types import Event


@dataclass(frozen=True)
class StoredEvent:
    """An event as read back from a spool: the fields every encoder needs."""

    id: str
    track: str
    timestamp: float
    payload: Any


_last: tuple[Event, bytes] | None = None
"""The last event encoded and its bytes: the host hands each event to every sink in turn
(file, datadog, otlp), so they share one encoding instead of one each."""


def encode_event(event: Event) -> bytes:
    """The record bytes for ``event``; payload values JSON cannot hold are spelled with str()."""
    global _last  # noqa: PLW0603 - a one-slot cache, shared by every sink
    last = _last
    if last is not None and last[0] is event:
        return last[1]
    doc = {
        "id": event.id,
        "track": event.track,
        "timestamp": event.timestamp,
        "payload": event.payload,
    }
    data = json.dumps(doc, separators=(",", ":"), default=str).encode()
    _last = (event, data)
    return data


def decode_event(data: bytes) -> StoredEvent:
    """Read back what :func:`encode_event` wrote; ``ValueError`` for anything else."""
    doc = json.loads(data)
    if not isinstance(doc, dict) or not isinstance(doc.get("id"), str):
        raise ValueError("record is not a stored event")
    return StoredEvent(
        id=doc["id"],
        track=str(doc.get("track", "")),
        timestamp=float(doc.get("timestamp", 0.0)),
        payload=doc.get("payload"),
    )
