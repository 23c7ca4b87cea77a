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
from twisted.web.resource import Resource
from twisted.web.server import Site

from host.connections import ConnectionTracker

LOOPBACK = "127.0.0.1"


class _QuietSite(Site):
    """No access log (scrapes every few seconds would drown the agent's log); follows its
    connections so that stop can close them."""

    def __init__(self, resource: Resource, reactor: Any) -> None:
        super().__init__(resource, reactor=reactor)  # type: ignore[no-untyped-call]
        self.connections = ConnectionTracker()

    def buildProtocol(self, addr: Any) -> Any:
        return self.connections.follow(super().buildProtocol(addr))  # type: ignore[no-untyped-call]

    def log(self, request: Any) -> None:
        pass


class ExpvarServer:
    """Serves ``resource`` on ``127.0.0.1:port`` (port 0 picks a free one)."""

    def __init__(self, reactor: Any, resource: Resource) -> None:
        self._reactor = reactor
        self._site = _QuietSite(resource, reactor)
        self._site.noisy = False  # no "Starting factory" lines for every listen
        self._port: IListeningPort | None = None

    def listen(self, port: int) -> int:
        """Start listening; returns the bound port. ``CannotListenError`` if it is taken."""
        self._port = self._reactor.listenTCP(port, self._site, interface=LOOPBACK)
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
        await self._site.connections.close_all()
