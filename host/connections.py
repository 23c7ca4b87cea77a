"""Open connections of a server a plugin runs, so that stopping it leaves no socket behind.

Stopping to listen does not close connections already accepted (an idle keep-alive client
would hold its socket for as long as it likes). A plugin's server factory hands every
protocol it builds to :meth:`ConnectionTracker.follow`; at stop, after ``stopListening``,
:meth:`ConnectionTracker.close_all` closes what is still open and fires once all are gone::

    class MySite(Site):
        def __init__(self, root):
            super().__init__(root)
            self.connections = ConnectionTracker()

        def buildProtocol(self, addr):
            return self.connections.follow(super().buildProtocol(addr))

The protocol is followed in place (its ``makeConnection`` and ``connectionLost`` are wrapped)
rather than behind a ``WrappingFactory``: a wrapper would add a call to every read and write of
a busy API for the sake of one event at each end of a connection.
"""

from __future__ import annotations

from typing import Any, TypeVar

from twisted.internet import defer
from twisted.python.failure import Failure

P = TypeVar("P")


class ConnectionTracker:
    def __init__(self) -> None:
        self._open: dict[int, Any] = {}  # id(protocol) -> its transport
        self._drained: list[defer.Deferred[None]] = []

    def __len__(self) -> int:
        return len(self._open)

    def follow(self, protocol: P) -> P:
        """Follow ``protocol`` from its connection to its loss; returns it (None passes)."""
        if protocol is None:
            return protocol
        key = id(protocol)
        make, lost = protocol.makeConnection, protocol.connectionLost  # type: ignore[attr-defined]

        def make_connection(transport: Any) -> None:
            self._open[key] = transport
            make(transport)

        def connection_lost(reason: Failure) -> None:
            self._open.pop(key, None)
            try:
                lost(reason)
            finally:
                if not self._open:
                    waiting, self._drained = self._drained, []
                    for d in waiting:
                        d.callback(None)

        protocol.makeConnection = make_connection  # type: ignore[attr-defined]
        protocol.connectionLost = connection_lost  # type: ignore[attr-defined]
        return protocol

    def close_all(self, *, abort: bool = False) -> defer.Deferred[None]:
        """Close every open connection (``abortConnection`` when ``abort``: no flush of what
        is buffered, for a client that may never read it); fires when the last is gone."""
        if not self._open:
            return defer.succeed(None)
        d: defer.Deferred[None] = defer.Deferred()
        self._drained.append(d)
        for transport in list(self._open.values()):
            if abort:
                transport.abortConnection()
            else:
                transport.loseConnection()
        return d
