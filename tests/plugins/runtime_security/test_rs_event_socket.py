"""The event-monitoring socket: the privileged server streaming JSON lines and the agent's
listener with NewListener/SysProbeListener behaviour."""

from __future__ import annotations

import json
import os
import socket
import stat
import threading
import time

import pytest
from twisted.internet import defer
from twisted.internet.pollreactor import PollReactor
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import capturedLogs, formatEvent
from twisted.python.failure import Failure

from plugins.runtime_security.sources.event_listener import EventListener
from plugins.runtime_security.sources.event_stream_server import EventStreamServer, serve_events
from plugins.runtime_security.sources.replay_source import ReplaySource


def _messages(events):
    return [formatEvent(e) for e in events if e.get("log_namespace", "").startswith("runtime")]


def test_listener_requires_a_socket_and_a_handler():
    with pytest.raises(ValueError, match=r"^event_monitoring_config\.socket must be set$"):
        EventListener(MemoryReactorClock(), "", lambda e: None)
    with pytest.raises(ValueError, match=r"^can't create a Listener without an EventHandler$"):
        EventListener(MemoryReactorClock(), "/run/x.sock", None)


class _Config:
    def __init__(self, value):
        self.value = value

    def get_str(self, key):
        assert key == "event_monitoring_config.socket"
        return self.value


def test_listener_from_config_reads_the_socket_key():
    listener = EventListener.from_config(MemoryReactorClock(), _Config("/run/e.sock"), print)
    assert listener.socket_path == "/run/e.sock"
    with pytest.raises(ValueError, match="must be set"):
        EventListener.from_config(MemoryReactorClock(), _Config(""), print)


class _FlakyConnector:
    """Fails the first ``failures`` attempts, then connects a protocol to a StringTransport."""

    def __init__(self, failures):
        self.failures = failures
        self.attempts = 0
        self.protocol = None

    def __call__(self, factory):
        self.attempts += 1
        if self.attempts <= self.failures:
            return defer.fail(ConnectionRefusedError("Connection refused"))
        self.protocol = factory.buildProtocol(None)
        self.protocol.makeConnection(StringTransport())
        return defer.succeed(self.protocol)


def test_listener_retries_every_2s_logging_with_backoff_then_connects_once():
    clock = MemoryReactorClock()
    connector = _FlakyConnector(failures=20)
    received = []
    listener = EventListener(clock, "/run/e.sock", received.append, connect=connector)
    with capturedLogs() as logs:
        listener.run()
        for _ in range(20):
            clock.advance(2)
    assert connector.attempts == 21  # the first attempt, then one every 2 s
    messages = _messages(logs)
    assert messages[0] == "Start listening for process events"
    errors = [m for m in messages if m.startswith("Error while connecting")]
    # Logged at t=0, 2, 6, 14, 30 (backoff 2, 4, 8, 16, 32 s) out of 20 failures.
    assert len(errors) == 5
    assert errors[0] == (
        "Error while connecting to the runtime-security module: Connection refused"
    )
    assert messages[-1] == "Successfully connected to the event monitoring module"
    assert listener.connected is True
    assert listener.stats()["connection_errors"] == 20

    connector.protocol.dataReceived(b'{"type":"exec","process":{"pid":4}}\n{"type":"open"}\n')
    assert [e["type"] for e in received] == ["exec", "open"]
    assert listener.stats()["eventReceived"] == 2
    with capturedLogs() as logs:
        connector.protocol.dataReceived(b"not json\n")
        listener.stop()
    messages = _messages(logs)
    assert messages[0].startswith("Could not unmarshal process event: ")
    assert messages[1:] == ["Stopping listening for process events", "Listener stopped"]
    assert listener.stats()["decode_errors"] == 1
    assert clock.getDelayedCalls() == []


def test_listener_reconnects_after_the_connection_is_lost_and_logs_connected_again():
    clock = MemoryReactorClock()
    connector = _FlakyConnector(failures=0)
    listener = EventListener(
        clock, "/run/e.sock", print, connect=connector, event_types=frozenset({"exec", "exit"})
    )
    with capturedLogs() as logs:
        listener.run()
        first = connector.protocol
        first.connectionLost(Failure(ConnectionResetError("reset")))
        assert listener.connected is False
        clock.advance(2)
    messages = _messages(logs)
    assert messages.count("Successfully connected to the event monitoring module") == 2
    assert "Error while connecting to the runtime-security module: connection lost: reset" in (
        messages
    )
    assert connector.attempts == 2
    listener.stop()


def test_listener_event_type_filter():
    clock = MemoryReactorClock()
    connector = _FlakyConnector(failures=0)
    received = []
    listener = EventListener(
        clock, "/s", received.append, connect=connector, event_types=frozenset({"exec", "exit"})
    )
    listener.run()
    connector.protocol.dataReceived(b'{"type":"open"}\n{"type":"exit"}\n')
    assert [e["type"] for e in received] == ["exit"]
    assert listener.stats()["eventReceived"] == 2
    listener.stop()


def test_server_socket_is_0600_and_streams_json_lines(tmp_path):
    path = str(tmp_path / "events.sock")
    server = EventStreamServer(path)
    server.start()
    try:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        client = socket.socket(socket.AF_UNIX)
        client.connect(path)
        deadline = time.monotonic() + 5
        while server.stats()["clients"] == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        server.publish({"type": "exec", "process": {"pid": 1}})
        data = client.makefile("rb").readline()
        assert json.loads(data) == {"type": "exec", "process": {"pid": 1}}
        client.close()
    finally:
        server.stop()
    assert not os.path.exists(path)


def test_server_refuses_to_replace_a_regular_file(tmp_path):
    path = tmp_path / "not-a-socket"
    path.write_text("keep me")
    with pytest.raises(OSError, match="exists and is not a socket, refusing to replace it"):
        EventStreamServer(str(path)).start()
    assert path.read_text() == "keep me"


def test_a_slow_client_loses_its_own_events_and_they_are_counted(tmp_path):
    path = str(tmp_path / "events.sock")
    server = EventStreamServer(path, queue_size=10)
    server.start()
    client = socket.socket(socket.AF_UNIX)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.connect(path)
    try:
        deadline = time.monotonic() + 5
        while server.stats()["clients"] == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        for i in range(5000):
            server.publish({"type": "open", "n": i, "pad": "x" * 200})
        assert server.stats()["drops"] > 0
        assert server.stats()["published"] == 5000
    finally:
        client.close()
        server.stop()


def test_serve_events_to_a_real_listener_end_to_end(tmp_path):
    """serve_events with a replay source on a real unix socket, read by the listener on a
    real (private, manually iterated) reactor."""
    events_file = tmp_path / "events.jsonl"
    events_file.write_text("".join(json.dumps({"type": "exec", "n": i}) + "\n" for i in range(3)))
    path = str(tmp_path / "em.sock")
    stop = threading.Event()
    result = {}
    reactor = PollReactor()
    received = []
    listener = EventListener(reactor, path, received.append)

    def serve():
        # The replay must start after the listener connected: wait for it first.
        server_sources = [_DelayedReplay(str(events_file), listener)]
        result.update(serve_events(path, server_sources, stop))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.01)
    listener.run()
    while len(received) < 3 and time.monotonic() < deadline:
        reactor.iterate(0.05)
    listener.stop()
    for _ in range(5):
        reactor.iterate(0.01)
    stop.set()
    thread.join(5)
    assert [e["n"] for e in received] == [0, 1, 2]
    assert result["published"] == 3
    assert result["sources"][0]["events"] == 3
    assert not os.path.exists(path)


class _DelayedReplay(ReplaySource):
    def __init__(self, path, listener):
        super().__init__(path)
        self.listener = listener

    def _run(self):
        deadline = time.monotonic() + 5
        while not self.listener.connected and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)  # the server registers the client in its accept thread
        super()._run()
