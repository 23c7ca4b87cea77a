"""The constants of service checks and the shape of an event."""

from __future__ import annotations

from typing import NamedTuple, TypedDict


class ServiceCheckStatus(NamedTuple):
    OK: int
    WARNING: int
    CRITICAL: int
    UNKNOWN: int


ServiceCheck = ServiceCheckStatus(0, 1, 2, 3)


class Event(TypedDict, total=False):
    """The keys ``AgentCheck.event`` understands; the host ignores others."""

    timestamp: int
    event_type: str
    api_key: str
    msg_title: str
    msg_text: str
    aggregation_key: str
    alert_type: str
    source_type_name: str
    host: str
    tags: list[str]
    priority: str
