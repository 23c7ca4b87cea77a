"""OTLP/HTTP JSON logs for an OpenTelemetry Collector (``POST <endpoint>/v1/logs``).

Each event is one log record whose body is the event's JSON; the event id, track and the
agent's identity are attributes, so collectors can route and de-duplicate on them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from plugins.sinks.records import StoredEvent
from plugins.sinks.transport import Request, gzipped

SEVERITY_INFO = 9


def _attr(key: str, value: str) -> dict[str, Any]:
    return {"key": key, "value": {"stringValue": value}}


class OtlpEncoder:
    def __init__(
        self,
        url: str,
        headers: dict[str, str],
        hostname: str,
        agent_version: str,
        use_compression: bool,
    ) -> None:
        self.url = url
        self._headers = headers
        self._hostname = hostname
        self._version = agent_version
        self._compress = use_compression

    def __call__(self, events: Sequence[StoredEvent]) -> Request:
        records = [
            {
                "timeUnixNano": str(int(e.timestamp * 1_000_000_000)),
                "severityNumber": SEVERITY_INFO,
                "severityText": "INFO",
                "body": {"stringValue": json.dumps(e.payload, separators=(",", ":"), default=str)},
                "attributes": [_attr("event.id", e.id), _attr("event.track", e.track)],
            }
            for e in events
        ]
        doc = {
            "resourceLogs": [
                {
                    "resource": {
                        "attributes": [
                            _attr("service.name", "security-agent"),
                            _attr("service.version", self._version),
                            _attr("host.name", self._hostname),
                        ]
                    },
                    "scopeLogs": [
                        {
                            "scope": {"name": "security-agent", "version": self._version},
                            "logRecords": records,
                        }
                    ],
                }
            ]
        }
        headers = {
            **self._headers,
            "Content-Type": "application/json",
            "User-Agent": f"security-agent/{self._version}",
        }
        body = json.dumps(doc, separators=(",", ":")).encode()
        if self._compress:
            body = gzipped(body, headers)
        return Request(self.url, body, headers)
