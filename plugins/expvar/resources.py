"""The expvar HTTP server's one resource: ``GET /debug/vars`` and, optionally, ``/telemetry``.

A small synchronous :class:`~twisted.web.resource.Resource` of our own rather than
``prometheus_client.twisted.MetricsResource``: that one is a WSGI wrapper that takes the
reactor's shared thread pool and imports the global reactor, and it cannot be subclassed.
Building either page takes a few milliseconds of reads, so rendering in the reactor thread is
cheaper than a thread hop.

Every answer that is not a page is JSON ``{"error": ...}``: 404 for an unknown path (and for
``/telemetry`` while telemetry is off), 405 with ``Allow: GET`` for another method, 500 if
building the page failed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import Request

from plugins.expvar.variables import RequestCounts, encode_vars

log = Logger(namespace="expvar")

JSON_TYPE = "application/json; charset=utf-8"
VARS_PATH = "/debug/vars"
TELEMETRY_PATH = "/telemetry"


def _set_header(request: Request, name: bytes, value: bytes) -> None:
    request.setHeader(name, value)  # type: ignore[no-untyped-call]


class ExpvarResource(Resource):
    """Serves the variables ``snapshot()`` returns; ``registry`` enables ``/telemetry``."""

    isLeaf = True

    def __init__(
        self,
        snapshot: Callable[[], dict[str, Any]],
        requests: RequestCounts,
        registry: CollectorRegistry | None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._snapshot = snapshot
        self._requests = requests
        self._registry = registry

    def render(self, request: Request) -> bytes:
        path = (request.path or b"/").decode("latin-1")
        pages: dict[str, Callable[[Request], bytes]] = {VARS_PATH: self._vars}
        if self._registry is not None:
            pages[TELEMETRY_PATH] = self._telemetry
        page = pages.get(path)
        if page is None:
            return self._answer(request, path, 404, {"error": f"no such page: {path}"})
        method = (request.method or b"").decode("latin-1")
        if method != "GET":
            _set_header(request, b"Allow", b"GET")
            return self._answer(
                request, path, 405, {"error": f"method {method} not allowed on {path}; use GET"}
            )
        try:
            body = page(request)
        except Exception as error:  # a broken page answers 500; the server stays up
            log.failure("expvar: building {path} failed", path=path)
            return self._answer(request, path, 500, {"error": f"{type(error).__name__}: {error}"})
        self._requests.count(path, 200)
        return body

    def _vars(self, request: Request) -> bytes:
        body = encode_vars(self._snapshot())
        _set_header(request, b"Content-Type", JSON_TYPE.encode())
        return body

    def _telemetry(self, request: Request) -> bytes:
        assert self._registry is not None  # the page exists only with a registry
        accept = request.getHeader(b"accept")
        encoder, content_type = choose_encoder(accept.decode("latin-1") if accept else "")
        body = encoder(self._registry)
        _set_header(request, b"Content-Type", content_type.encode())
        return body

    def _answer(self, request: Request, path: str, code: int, body: dict[str, str]) -> bytes:
        self._requests.count(path, code)
        request.setResponseCode(code)
        _set_header(request, b"Content-Type", JSON_TYPE.encode())
        return json.dumps(body).encode() + b"\n"
