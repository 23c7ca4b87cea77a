"""HTTP POST on the reactor with treq, and what a response means for a batch."""

from __future__ import annotations

import enum
import gzip
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Protocol

from treq.client import HTTPClient
from twisted.internet import defer
from twisted.python.failure import Failure
from twisted.web.client import Agent, HTTPConnectionPool
from twisted.web.http_headers import Headers


@dataclass(frozen=True)
class Request:
    url: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Response:
    status: int
    reason: str
    body: bytes


def gzipped(body: bytes, headers: dict[str, str], level: int = 6) -> bytes:
    """``body`` gzipped without a timestamp (the same batch gives the same bytes), and
    ``Content-Encoding`` set in ``headers``."""
    headers["Content-Encoding"] = "gzip"
    return gzip.compress(body, compresslevel=level, mtime=0)


class Outcome(enum.Enum):
    SENT = "sent"
    RETRY = "retry"
    REJECTED = "rejected"


def classify(status: int) -> Outcome:
    """2xx is delivered; 408, 429 and 5xx are worth retrying; any other status will not get
    better by sending the same bytes again, so the batch is dropped with the reason logged."""
    if 200 <= status < 300:
        return Outcome.SENT
    if status in (408, 429) or status >= 500:
        return Outcome.RETRY
    return Outcome.REJECTED


def _reason(code: int) -> str:
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return ""


def describe_failure(exc: BaseException | None) -> str:
    """A one-line reason for a failed request; Twisted wraps connection errors in lists."""
    reasons = getattr(exc, "reasons", None)
    if isinstance(reasons, list) and reasons:
        inner = "; ".join(f"{type(r.value).__name__}: {r.getErrorMessage()}" for r in reasons)
        return f"{type(exc).__name__} ({inner})"
    return f"{type(exc).__name__}: {exc}"


class Transport(Protocol):
    def post(self, request: Request, timeout: float) -> defer.Deferred[Response]: ...

    def close(self) -> defer.Deferred[Any]: ...


class TreqTransport:
    """Persistent connections per destination; a request (body included) that takes longer
    than ``timeout`` is cancelled, which the delivery loop treats as retryable."""

    def __init__(self, reactor: Any, connect_timeout: float = 30.0) -> None:
        self._reactor = reactor
        self._pool = HTTPConnectionPool(reactor, persistent=True)  # type: ignore[no-untyped-call]
        self._pool.maxPersistentPerHost = 2
        agent = Agent(reactor, pool=self._pool, connectTimeout=connect_timeout)  # type: ignore[no-untyped-call]
        self._client = HTTPClient(agent)

    def post(self, request: Request, timeout: float) -> defer.Deferred[Response]:
        async def go() -> Response:
            response = await self._client.post(
                request.url,
                data=request.body,
                headers=Headers({k: [v] for k, v in request.headers.items()}),
            )
            body = await response.content()
            return Response(int(response.code), _reason(int(response.code)), body)

        d: defer.Deferred[Response] = defer.ensureDeferred(go())
        # Deferred.addTimeout only reports a timeout when the cancelled call fails with
        # CancelledError; treq wraps it in ResponseNeverReceived, so keep our own flag.
        expired: list[bool] = []

        def expire() -> None:
            expired.append(True)
            d.cancel()

        call = self._reactor.callLater(timeout, expire)

        def finish(result: Any) -> Any:
            if call.active():
                call.cancel()
            if expired and isinstance(result, Failure):
                return Failure(defer.TimeoutError(f"no answer within {timeout:g}s"))  # type: ignore[no-untyped-call]
            return result

        d.addBoth(finish)
        return d

    def close(self) -> defer.Deferred[Any]:
        closed: defer.Deferred[Any] = self._pool.closeCachedConnections()  # type: ignore[no-untyped-call]
        return closed
