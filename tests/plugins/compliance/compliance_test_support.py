"""Shared fakes for the compliance tests: a sink that keeps events and small JSON API servers."""

from __future__ import annotations

import json
import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from typing import Any

from support import FakeReactor, entry_point, make_agent, plugin_module

import plugins.compliance


class ListSink:
    """An event sink for the ``compliance`` track that keeps every event it is sent."""

    name = "list"
    tracks = frozenset({"compliance"})

    def __init__(self) -> None:
        self.events: list[Any] = []

    def send(self, event: Any) -> None:
        self.events.append(event)

    def stats(self) -> dict[str, int]:
        return {"sent": len(self.events)}


def agent_with_list_sink(tmp_path: Any, config: str, env: Any = None) -> tuple[Any, Any, ListSink]:
    """An agent with the compliance plugin and a :class:`ListSink`, on a running fake
    reactor: ``(agent, reactor, sink)``."""
    sink = ListSink()
    sinks = plugin_module("listsink", security_agent_event_sinks=lambda agent: [sink])
    reactor = FakeReactor()
    reactor.running = True
    agent = make_agent(
        reactor,
        [entry_point("compliance", plugins.compliance), entry_point("listsink", sinks)],
        config,
        tmp_path=tmp_path,
        env=env,
    )
    return agent, reactor, sink


class JSONHandler(BaseHTTPRequestHandler):
    """A quiet request handler that answers with JSON documents."""

    def reply(self, code: int, doc: Any) -> None:
        body = json.dumps(doc).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def reply_from(self, routes: dict[str, Any]) -> None:
        """The document routed at this path, else a Docker-style 404."""
        if self.path in routes:
            self.reply(200, routes[self.path])
        else:
            self.reply(404, {"message": "not found"})

    def log_message(self, *args: Any) -> None:
        pass


class UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """An HTTP server on a unix socket (as the Docker daemon serves its API)."""

    daemon_threads = True

    def get_request(self) -> tuple[Any, Any]:
        request, _ = super().get_request()
        return request, ("local", 0)


@contextmanager
def serving(server: socketserver.BaseServer) -> Iterator[socketserver.BaseServer]:
    """Serve ``server`` in a daemon thread until the block ends, then shut it down."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
