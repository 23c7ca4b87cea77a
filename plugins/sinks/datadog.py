"""Request bodies for Datadog: the logs intake (findings, security events) and the series API.

Logs use Datadog's ``agent-json`` protocol: a JSON array of log entries whose ``message`` is
the event's JSON, gzipped when ``use_compression`` is on, authenticated with ``DD-API-KEY``.
Each entry carries the event id as ``event_id`` so the backend (or a test intake) can
de-duplicate what a retry or a replay sent twice.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from plugins.sinks.records import StoredEvent
from plugins.sinks.settings import LogsEndpoint
from plugins.sinks.transport import Request, gzipped

METRIC_TYPES = ("gauge", "count", "rate")


class LogsEncoder:
    """Builds one logs intake request from a batch of one product's events."""

    def __init__(
        self, endpoint: LogsEndpoint, api_key: str, hostname: str, agent_version: str
    ) -> None:
        self.endpoint = endpoint
        self._api_key = api_key
        self._hostname = hostname
        self._version = agent_version

    def __call__(self, events: Sequence[StoredEvent]) -> Request:
        product = self.endpoint.product
        entries = [
            {
                "message": json.dumps(e.payload, separators=(",", ":"), default=str),
                "status": "info",
                "timestamp": int(e.timestamp * 1000),
                "hostname": self._hostname,
                "service": product.source,
                "ddsource": product.source,
                "ddtags": f"host:{self._hostname}",
                "event_id": e.id,
            }
            for e in events
        ]
        headers = {
            "Content-Type": "application/json",
            "DD-API-KEY": self._api_key,
            "DD-PROTOCOL": "agent-json",
            "DD-EVP-ORIGIN": product.origin,
            "DD-EVP-ORIGIN-VERSION": self._version,
            "User-Agent": f"security-agent/{self._version}",
        }
        body = json.dumps(entries, separators=(",", ":")).encode()
        if self.endpoint.use_compression:
            body = gzipped(body, headers, self.endpoint.compression_level)
        return Request(self.endpoint.url, body, headers)


def series_problem(payload: Any) -> str | None:
    """Why a ``metrics`` event cannot become series, or ``None`` when it can.

    A metrics event is one series (``{"metric", "points"|"value", "type", "tags"}``) or a
    batch of them (``{"series": [...]}``).
    """
    items = payload.get("series") if isinstance(payload, Mapping) else None
    if items is None:
        items = [payload]
    if not isinstance(items, list) or not items:
        return "a metrics event needs 'metric' or a non-empty 'series' list"
    for item in items:
        if not isinstance(item, Mapping) or not isinstance(item.get("metric"), str):
            return f"a series needs a 'metric' name, got {item!r:.80}"
        if "points" not in item and not isinstance(item.get("value"), int | float):
            return f"series {item['metric']!r} needs 'points' or a numeric 'value'"
        if item.get("type", "gauge") not in METRIC_TYPES:
            return f"series {item['metric']!r}: type must be one of {', '.join(METRIC_TYPES)}"
    return None


class SeriesEncoder:
    """Builds one ``/api/v1/series`` request from a batch of metrics events."""

    def __init__(self, url: str, api_key: str, hostname: str, agent_version: str) -> None:
        self.url = url
        self._api_key = api_key
        self._hostname = hostname
        self._version = agent_version

    def __call__(self, events: Sequence[StoredEvent]) -> Request:
        series: list[dict[str, Any]] = []
        for event in events:
            payload = event.payload
            items = payload.get("series", [payload]) if isinstance(payload, Mapping) else []
            for item in items:
                entry = {k: v for k, v in item.items() if k != "value"}
                if "points" not in item:
                    entry["points"] = [[int(event.timestamp), item["value"]]]
                entry.setdefault("type", "gauge")
                entry.setdefault("host", self._hostname)
                series.append(entry)
        headers = {
            "Content-Type": "application/json",
            "DD-API-KEY": self._api_key,
            "User-Agent": f"security-agent/{self._version}",
        }
        body = json.dumps({"series": series}, separators=(",", ":"), default=str).encode()
        return Request(self.url, gzipped(body, headers), headers)
