"""The expvar listener: HTTP on 127.0.0.1 only, closed with its connections at stop.

Bound to the IPv4 loopback address and nothing else, as the Go agent binds
``127.0.0.1:<expvar_port>``: the page shows command lines and internal figures and has no
authentication, so no setting can widen it. Stopping closes idle keep-alive connections too
(Go's ``Server.Shutdown``), so a stopped agent holds no socket.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.internet.address import IPv4Address
from twisted.internet.interfaces import IListeningPort
from twisted.internet.protocol import Protocol
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from twisted.web.resource import Resource
from twisted.web.server import Site

LOOPBACK = "127.0.0.1"


class _QuietSite(Site):
    """No access log: scrapes every few seconds would drown the agent's log."""

    def log(self, request: Any) -> None:
        pass


class _TrackingFactory(WrappingFactory):
    """Remembers open connections and tells who waits when the last one has closed."""

    def __init__(self, wrapped: Site) -> None:
        super().__init__(wrapped)  # type: ignore[no-untyped-call]
        self._drained: list[defer.Deferred[None]] = []

    def unregisterProtocol(self, p: Protocol) -> None:
        super().unregisterProtocol(p)  # type: ignore[no-untyped-call]
        if not self.protocols:
            waiting, self._drained = self._drained, []
            for d in waiting:
                d.callback(None)

    def close_all(self) -> defer.Deferred[None]:
        if not self.protocols:
            return defer.succeed(None)
        d: defer.Deferred[None] = defer.Deferred()
        self._drained.append(d)
        for protocol in list(self.protocols):
            if isinstance(protocol, ProtocolWrapper) and protocol.transport is not None:
                protocol.transport.loseConnection()
        return d


class ExpvarServer:
    """Serves ``resource`` on ``127.0.0.1:port`` (port 0 picks a free one)."""

    def __init__(self, reactor: Any, resource: Resource) -> None:
        self._reactor = reactor
        site = _QuietSite(resource, reactor=reactor)  # type: ignore[no-untyped-call]
        site.noisy = False  # no "Starting factory" lines for every listen
        self._factory = _TrackingFactory(site)
        self._factory.noisy = False
        self._port: IListeningPort | None = None

    def listen(self, port: int) -> int:
        """Start listening; returns the bound port. ``CannotListenError`` if it is taken."""
        self._port = self._reactor.listenTCP(port, self._factory, interface=LOOPBACK)
        return self.port or port

    @property
    def port(self) -> int | None:
        """The bound port while listening."""
        if self._port is None:
            return None
        host = self._port.getHost()
        assert isinstance(host, IPv4Address)
        return host.port

    @property
    def address(self) -> str | None:
        if self._port is None:
            return None
        host = self._port.getHost()
        assert isinstance(host, IPv4Address)
        return host.host

    async def stop(self) -> None:
        """Stop accepting, then close open connections and wait until they are gone."""
        if self._port is not None:
            port, self._port = self._port, None
            await defer.maybeDeferred(port.stopListening)
        await self._factory.close_all()
