"""ConnectionTracker: a server's open connections, closed (gently or not) at stop."""

from __future__ import annotations

from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure

from host.connections import ConnectionTracker


class Transport:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def loseConnection(self) -> None:
        self.calls.append("lose")

    def abortConnection(self) -> None:
        self.calls.append("abort")


class Recording(Protocol):
    def __init__(self) -> None:
        self.made: list[object] = []
        self.lost: list[Failure] = []

    def makeConnection(self, transport: object) -> None:
        self.made.append(transport)

    def connectionLost(self, reason: Failure) -> None:  # type: ignore[override]
        self.lost.append(reason)


def _connected(tracker: ConnectionTracker) -> tuple[Recording, Transport]:
    protocol, transport = Recording(), Transport()
    assert tracker.follow(protocol) is protocol
    protocol.makeConnection(transport)
    return protocol, transport


def test_nothing_open_fires_at_once():
    tracker = ConnectionTracker()
    fired: list[object] = []
    tracker.close_all().addCallback(fired.append)
    assert fired == [None]
    assert tracker.follow(None) is None


def test_close_all_fires_when_the_last_connection_is_gone():
    tracker = ConnectionTracker()
    (first, t1), (second, t2) = _connected(tracker), _connected(tracker)
    assert len(tracker) == 2
    assert first.made == [t1]  # the protocol's own makeConnection still runs
    fired: list[object] = []
    tracker.close_all().addCallback(fired.append)
    assert (t1.calls, t2.calls) == (["lose"], ["lose"])
    reason = Failure(ConnectionError("closed"))
    first.connectionLost(reason)
    assert fired == []
    assert first.lost == [reason]
    second.connectionLost(reason)
    assert fired == [None]
    assert len(tracker) == 0


def test_abort_does_not_wait_for_buffered_data():
    tracker = ConnectionTracker()
    protocol, transport = _connected(tracker)
    fired: list[object] = []
    tracker.close_all(abort=True).addCallback(fired.append)
    assert transport.calls == ["abort"]
    protocol.connectionLost(Failure(ConnectionError("aborted")))
    assert fired == [None]


def test_a_connection_lost_before_close_is_forgotten():
    tracker = ConnectionTracker()
    protocol, transport = _connected(tracker)
    protocol.connectionLost(Failure(ConnectionError("client left")))
    fired: list[object] = []
    tracker.close_all().addCallback(fired.append)
    assert fired == [None]
    assert transport.calls == []
