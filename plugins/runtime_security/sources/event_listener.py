"""The agent side of the event-monitoring socket, with the behaviour of Datadog's
``NewListener``/``SysProbeListener``: connect to ``event_monitoring_config.socket``, hand
every event to the handler, and on any error retry every 2 s, logging the error through an
exponential backoff (2 s doubling to 60 s) so a missing module does not flood the log.
"Successfully connected to the event monitoring module" is logged once per connection.

Everything runs on the reactor (the handler is called in the reactor thread); time comes
from the reactor, so tests drive it with a Clock.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol

from twisted.internet.defer import Deferred
from twisted.internet.endpoints import UNIXClientEndpoint
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.protocol import Factory, connectionDone
from twisted.internet.protocol import Protocol as TwistedProtocol
from twisted.logger import Logger
from twisted.protocols.basic import LineOnlyReceiver
from twisted.python.failure import Failure

from .base import Event

RETRY_INTERVAL = 2.0
LOG_BACKOFF_INITIAL = 2.0
LOG_BACKOFF_MAX = 60.0
MAX_LINE = 4 * 1024 * 1024

Handler = Callable[[Event], None]
Connector = Callable[[Factory], "Deferred[Any]"]


class _StrConfig(Protocol):
    def get_str(self, key: str) -> str: ...


class _EventProtocol(LineOnlyReceiver):
    delimiter = b"\n"
    MAX_LENGTH = MAX_LINE

    def __init__(self, listener: EventListener) -> None:
        self.listener = listener

    def lineReceived(self, line: bytes) -> None:
        self.listener._line(line)

    def lineLengthExceeded(self, line: bytes) -> None:
        self.listener._bad(f"line longer than {MAX_LINE} bytes")
        self.transport.loseConnection()  # type: ignore[union-attr]

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.listener._lost(self, reason)


class _Factory(Factory):
    noisy = False

    def __init__(self, listener: EventListener) -> None:
        self.listener = listener

    def buildProtocol(self, addr: Any) -> TwistedProtocol:
        return _EventProtocol(self.listener)


class EventListener:
    """Streams events from the event-monitoring socket into ``handler``.

    ``event_types`` limits what reaches the handler (the process listener of the reference
    passes only ``{"exec", "exit"}``); None passes everything. ``connect`` replaces the unix
    socket endpoint (tests)."""

    def __init__(
        self,
        reactor: Any,
        socket_path: str,
        handler: Handler | None,
        *,
        event_types: frozenset[str] | None = None,
        connect: Connector | None = None,
        log: Logger | None = None,
    ) -> None:
        if not socket_path:
            raise ValueError("event_monitoring_config.socket must be set")
        if handler is None:
            raise ValueError("can't create a Listener without an EventHandler")
        self.reactor = reactor
        self.socket_path = socket_path
        self.handler = handler
        self.event_types = event_types
        self.log = log if log is not None else Logger(namespace="runtime_security.listener")
        self._connect = connect if connect is not None else self._connect_unix
        self.connected = False
        self.events_received = 0
        self.decode_errors = 0
        self.connection_errors = 0
        self._running = False
        self._protocol: _EventProtocol | None = None
        self._retry: IDelayedCall | None = None
        self._log_backoff = LOG_BACKOFF_INITIAL
        self._next_log_at = 0.0

    @classmethod
    def from_config(
        cls, reactor: Any, config: _StrConfig, handler: Handler | None, **kwargs: Any
    ) -> EventListener:
        return cls(reactor, config.get_str("event_monitoring_config.socket"), handler, **kwargs)

    def _connect_unix(self, factory: Factory) -> Deferred[Any]:
        endpoint = UNIXClientEndpoint(self.reactor, self.socket_path)  # type: ignore[no-untyped-call]
        connecting: Deferred[Any] = endpoint.connect(factory)  # type: ignore[no-untyped-call]
        return connecting

    def run(self) -> None:
        self.log.info("Start listening for process events")
        self._running = True
        self._attempt()

    def stop(self) -> None:
        self.log.info("Stopping listening for process events")
        self._running = False
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        self._retry = None
        protocol, self._protocol = self._protocol, None
        if protocol is not None and protocol.transport is not None:
            protocol.transport.loseConnection()
        self.connected = False
        self.log.info("Listener stopped")

    def stats(self) -> dict[str, Any]:
        return {
            "connected": self.connected,
            "eventReceived": self.events_received,
            "decode_errors": self.decode_errors,
            "connection_errors": self.connection_errors,
        }

    # -- internals ----------------------------------------------------------------------------

    def _attempt(self) -> None:
        self._retry = None
        if not self._running:
            return
        d = self._connect(_Factory(self))
        d.addCallbacks(self._connected, self._failed)

    def _connected(self, protocol: _EventProtocol) -> None:
        if not self._running:
            if protocol.transport is not None:
                protocol.transport.loseConnection()
            return
        self._protocol = protocol
        if not self.connected:
            self.connected = True
            self.log.info("Successfully connected to the event monitoring module")
        self._log_backoff = LOG_BACKOFF_INITIAL
        self._next_log_at = 0.0

    def _failed(self, failure: Failure) -> None:
        self._error(failure.getErrorMessage())

    def _lost(self, protocol: _EventProtocol, reason: Failure) -> None:
        if protocol is not self._protocol:
            return
        self._protocol = None
        if self._running:
            self._error(f"connection lost: {reason.getErrorMessage()}")

    def _error(self, message: str) -> None:
        self.connected = False
        self.connection_errors += 1
        now = self.reactor.seconds()
        if now >= self._next_log_at:
            self.log.warn(
                "Error while connecting to the runtime-security module: {error}", error=message
            )
            self._next_log_at = now + self._log_backoff
            self._log_backoff = min(self._log_backoff * 2, LOG_BACKOFF_MAX)
        if self._running:
            self._retry = self.reactor.callLater(RETRY_INTERVAL, self._attempt)

    def _bad(self, problem: str) -> None:
        self.decode_errors += 1
        self.log.warn("Could not unmarshal process event: {error}", error=problem)

    def _line(self, line: bytes) -> None:
        try:
            event = json.loads(line)
        except ValueError as exc:
            self._bad(str(exc))
            return
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            self._bad("an event must be a JSON object with a string 'type'")
            return
        self.events_received += 1
        if self.event_types is not None and event["type"] not in self.event_types:
            return
        self.handler(event)
