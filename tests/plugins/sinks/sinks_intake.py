"""A test intake on loopback (Twisted web) for the sinks' tests.

It records every request it accepts (path, headers, the event ids in the body) and can be
told to misbehave: answer a status (503, 429, 400), never answer (a timeout), or reset the
connection. Behaviour comes from a script of modes consumed one per request, then a default
mode. Used two ways:

- imported by trial tests, which run it in their own reactor (``IntakeResource``);
- run as a process by the end-to-end tests: ``python sinks_intake.py PORT_FILE RECORD_FILE
  [PORT]``, controlled with ``POST /control`` ``{"default": "ok", "script": ["503", ...]}``;
  every accepted request is appended to RECORD_FILE as one JSON line.
"""

from __future__ import annotations

import gzip
import json
import sys
from typing import Any

from twisted.internet import reactor as global_reactor
from twisted.web import resource, server

MODES = ("ok", "lost", "503", "429", "400", "500", "timeout", "reset")
"""``lost`` records the request, then resets the connection: the answer is lost, so the
sender retries what was already received (a duplicate the ids account for)."""


def event_ids(path: str, body: Any) -> list[str]:
    """The event ids in a logs, OTLP or series body."""
    if isinstance(body, list):  # Datadog logs
        return [entry["event_id"] for entry in body]
    if isinstance(body, dict) and "resourceLogs" in body:
        ids = []
        for rl in body["resourceLogs"]:
            for sl in rl["scopeLogs"]:
                for record in sl["logRecords"]:
                    attrs = {a["key"]: a["value"]["stringValue"] for a in record["attributes"]}
                    ids.append(attrs["event.id"])
        return ids
    return []


class IntakeResource(resource.Resource):
    isLeaf = True

    def __init__(self, record_file: str | None = None) -> None:
        super().__init__()
        self.default = "ok"
        self.script: list[str] = []
        self.requests: list[dict[str, Any]] = []
        self.modes_seen: list[str] = []
        self.held: list[server.Request] = []
        self._record_file = open(record_file, "a") if record_file else None  # noqa: SIM115

    def render_GET(self, request: server.Request) -> bytes:
        request.setHeader(b"content-type", b"application/json")
        return json.dumps({"requests": len(self.requests), "modes": self.modes_seen[:50]}).encode()

    def render_POST(self, request: server.Request) -> Any:
        raw = request.content.read()
        if request.path == b"/control":
            doc = json.loads(raw)
            self.default = doc.get("default", self.default)
            self.script = list(doc.get("script", []))
            self.modes_seen = []
            return b"{}"
        mode = self.script.pop(0) if self.script else self.default
        self.modes_seen.append(mode)
        if mode == "timeout":
            self.held.append(request)
            request.notifyFinish().addErrback(lambda _: None)
            return server.NOT_DONE_YET
        if mode == "reset":
            request.transport.abortConnection()
            return server.NOT_DONE_YET
        if mode not in ("ok", "lost"):
            request.setResponseCode(int(mode))
            return f"intake says {mode}".encode()
        if request.getHeader("content-encoding") == "gzip":
            raw = gzip.decompress(raw)
        body = json.loads(raw)
        headers = {
            k.decode().lower(): v[0].decode() for k, v in request.requestHeaders.getAllRawHeaders()
        }
        entry = {
            "path": request.path.decode(),
            "headers": headers,
            "ids": event_ids(request.path.decode(), body),
            "body": body,
        }
        self.requests.append(entry)
        if self._record_file is not None:
            self._record_file.write(json.dumps({k: entry[k] for k in ("path", "ids")}) + "\n")
            self._record_file.flush()
        if mode == "lost":
            request.transport.abortConnection()
            return server.NOT_DONE_YET
        request.setResponseCode(202)
        return b"{}"

    def release_held(self) -> None:
        for request in self.held:
            if request.channel is not None:
                request.transport.abortConnection()
        self.held.clear()

    def received_ids(self) -> list[str]:
        return [i for r in self.requests for i in r["ids"]]


def main(argv: list[str]) -> None:
    port_file, record_file = argv[0], argv[1]
    wanted = int(argv[2]) if len(argv) > 2 else 0
    site = server.Site(IntakeResource(record_file))
    site.timeOut = None
    port = global_reactor.listenTCP(wanted, site, interface="127.0.0.1")  # type: ignore[attr-defined]
    with open(port_file + ".tmp", "w") as f:
        f.write(str(port.getHost().port))
    import os

    os.replace(port_file + ".tmp", port_file)
    global_reactor.run()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main(sys.argv[1:])
