"""The HTTP side: one leaf resource that authenticates, limits, routes and answers JSON errors.

Every request, whatever its path, is authenticated before anything else is looked at, so an
unauthenticated client learns nothing (not even which paths exist). Handler failures become
500 answers; nothing a client sends reaches the reactor as an exception.
"""

from __future__ import annotations

import inspect
import json
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import parse_qs

from twisted.internet import defer
from twisted.internet.interfaces import IAddress
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import http, resource, server
from twisted.web.http_headers import Headers

from host.connections import ConnectionTracker
from host.plugin_types import ApiRequest, ApiResponse
from plugins.ipc_api.auth import REALM_HEADER, check_authorization
from plugins.ipc_api.routes import RouteTable

log = Logger(namespace="ipc_api")

MAX_BODY = 1024 * 1024
"""Requests with a larger body get 413; nothing of the API needs more."""


def error_body(message: str) -> bytes:
    return json.dumps({"error": message}).encode()


class LimitedRequest(server.Request):
    """A request that stops storing its body past :data:`MAX_BODY` (and says so)."""

    too_large = False
    _received = 0

    def gotLength(self, length: int | None) -> None:
        super().gotLength(length)  # type: ignore[no-untyped-call]
        if length is not None and length > MAX_BODY:
            self.too_large = True

    def handleContentChunk(self, data: bytes) -> None:
        if self.too_large:
            return
        self._received += len(data)
        if self._received > MAX_BODY:
            self.too_large = True
            return
        super().handleContentChunk(data)  # type: ignore[no-untyped-call]


class ApiSite(server.Site):
    """The site: quiet (no access log), no tracebacks, tracks connections to close at stop."""

    noisy = False
    displayTracebacks = False
    requestFactory = LimitedRequest

    def __init__(self, root: resource.Resource, *, timeout: float = 60.0) -> None:
        super().__init__(root, timeout=timeout)  # type: ignore[no-untyped-call]
        self.connections = ConnectionTracker()
        """Open connections, so that stop can close keep-alive clients."""

    def buildProtocol(self, addr: IAddress | None) -> Any:
        return self.connections.follow(super().buildProtocol(addr))  # type: ignore[no-untyped-call]

    def log(self, request: http.Request) -> None:
        # Requests are counted by status code instead; a line per request would drown the log.
        pass


class ApiResource(resource.Resource):
    """The whole API as one leaf: ``token`` is the expected bearer credential."""

    isLeaf = True

    def __init__(self, routes: RouteTable, token: Callable[[], bytes]) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.routes = routes
        self._token = token
        self.counts: Counter[int] = Counter()

    # --- answering ---

    def _finish(self, request: server.Request, status: int, body: bytes, ctype: str) -> bytes:
        self.counts[status] += 1
        request.setResponseCode(status)
        request.setHeader(b"content-type", ctype.encode())  # type: ignore[no-untyped-call]
        return body

    def _error(self, request: server.Request, status: int, message: str) -> bytes:
        return self._finish(request, status, error_body(message), "application/json")

    def render(self, request: server.Request) -> bytes | int:
        try:
            return self._render(request)
        except Exception:
            log.failure("Error from the agent http API server")
            return self._error(request, http.INTERNAL_SERVER_ERROR, "internal error")

    def _render(self, request: server.Request) -> bytes | int:  # noqa: PLR0911
        failure = check_authorization(request.getHeader(b"authorization"), self._token())
        if failure is not None:
            log.debug(
                "Rejected a request to {path}: {reason}",
                path=(request.path or b"").decode("latin-1")[:200],
                reason=failure.message[:200],
            )
            if failure.status == http.UNAUTHORIZED:
                request.setHeader(b"www-authenticate", REALM_HEADER)  # type: ignore[no-untyped-call]
            return self._error(request, failure.status, failure.message)
        if getattr(request, "too_large", False):
            request.setHeader(b"connection", b"close")  # type: ignore[no-untyped-call]
            return self._error(
                request, http.REQUEST_ENTITY_TOO_LARGE, f"request body over {MAX_BODY} bytes"
            )
        raw_path = (request.path or b"/").decode("latin-1")
        match = self.routes.match(raw_path)
        if match is None:
            return self._error(request, http.NOT_FOUND, f"no such endpoint: {raw_path}")
        method = (request.method or b"").decode("latin-1")
        route = match.entry.route
        if method not in route.methods:
            request.setHeader(b"allow", ", ".join(route.methods).encode())  # type: ignore[no-untyped-call]
            return self._error(
                request, http.NOT_ALLOWED, f"method {method} not allowed on {route.path}"
            )
        api_request = ApiRequest(
            method=method,
            path=raw_path,
            params=match.params,
            query=_query(request),
            headers=_LazyHeaders(request.requestHeaders),
            body=_body(request),
        )
        try:
            result = route.handler(api_request)
        except Exception:
            return self._handler_failed(Failure(), request, route.path)  # type: ignore[no-untyped-call]
        if isinstance(result, ApiResponse):
            # The common case (health, version): answer at once, no extra reactor turn.
            return self._respond(result, request, route.path)
        if inspect.isawaitable(result) and not isinstance(result, defer.Deferred):
            result = defer.ensureDeferred(result)  # type: ignore[arg-type]
        if not isinstance(result, defer.Deferred):
            return self._respond(result, request, route.path)
        gone = {"value": False}
        request.notifyFinish().addErrback(lambda _f: gone.update(value=True))
        result.addCallback(self._respond, request, route.path)
        result.addErrback(self._handler_failed, request, route.path)

        def write(body: bytes) -> None:
            if not gone["value"]:  # the client may have left while we worked
                request.write(body)  # type: ignore[no-untyped-call]
                request.finish()  # type: ignore[no-untyped-call]

        result.addCallback(write)
        result.addErrback(lambda f: log.failure("Error from the agent http API server", f))
        return server.NOT_DONE_YET

    def _handler_failed(self, failure: Failure, request: server.Request, path: str) -> bytes:
        log.failure("Handler for {path} failed", failure, path=path)
        return self._error(
            request, http.INTERNAL_SERVER_ERROR, failure.getErrorMessage() or "internal error"
        )

    def _respond(self, result: Any, request: server.Request, path: str) -> bytes:
        if not isinstance(result, ApiResponse):
            log.error(
                "Handler for {path} returned {kind}, expected ApiResponse",
                path=path,
                kind=type(result).__name__,
            )
            return self._error(request, http.INTERNAL_SERVER_ERROR, "internal error")
        body, ctype = result.encoded()
        return self._finish(request, result.status, body, ctype)


class _LazyHeaders(Mapping[str, str]):
    """Request headers by lower-case name (last value wins), decoded only when a handler
    looks: most handlers never do, and the health endpoint is polled often."""

    def __init__(self, headers: Headers) -> None:
        self._headers = headers
        self._decoded: dict[str, str] | None = None

    def _all(self) -> dict[str, str]:
        if self._decoded is None:
            self._decoded = {
                k.decode("latin-1").lower(): v[-1].decode("latin-1")
                for k, v in self._headers.getAllRawHeaders()
            }
        return self._decoded

    def __getitem__(self, name: str) -> str:
        return self._all()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


def _query(request: server.Request) -> dict[str, list[str]]:
    _, _, query = (request.uri or b"").partition(b"?")
    if not query:
        return {}
    return parse_qs(query.decode("latin-1"), keep_blank_values=True)


def _body(request: server.Request) -> bytes:
    content = request.content
    if content is None:
        return b""
    content.seek(0)
    data: bytes = content.read(MAX_BODY + 1)
    return data
