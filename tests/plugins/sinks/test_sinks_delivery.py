"""The delivery loop on a fake clock: batching, retries with backoff, drops, flush."""

from __future__ import annotations

import gzip
import json
import random

from twisted.internet import defer, error, task
from twisted.logger import globalLogPublisher

from host.plugin_types import Event
from plugins.sinks.backoff import Backoff
from plugins.sinks.datadog import LogsEncoder
from plugins.sinks.delivery import DeliveryLoop
from plugins.sinks.records import encode_event
from plugins.sinks.settings import PRODUCTS, BatchSettings, LogsEndpoint
from plugins.sinks.spool import Spool
from plugins.sinks.transport import Response

URL = "http://127.0.0.1:1/api/v2/logs"


class FakeTransport:
    def __init__(self):
        self.pending = []  # (request, deferred)

    def post(self, request, timeout):
        d = defer.Deferred()
        self.pending.append((request, d))
        return d

    def answer(self, status, body=b"", reason=""):
        request, d = self.pending.pop(0)
        d.callback(Response(status, reason, body))
        return request

    def fail(self, exc):
        request, d = self.pending.pop(0)
        d.errback(exc)
        return request

    def close(self):
        return defer.succeed(None)


def ids_of(request):
    return [e["event_id"] for e in json.loads(gzip.decompress(request.body))]


def make_loop(tmp_path, clock, transport, *, batch=None, max_bytes=1 << 20):
    endpoint = LogsEndpoint(
        product=PRODUCTS[1],
        url=URL,
        use_compression=True,
        compression_level=6,
        batch=batch or BatchSettings(wait=5.0, max_size=3, max_content_size=10**6),
    )
    loop = DeliveryLoop(
        "datadog-runtime",
        URL,
        Spool(tmp_path / "spool", max_bytes=max_bytes),
        encode=LogsEncoder(endpoint, "KEY", "host1", "1.2.3"),
        transport=transport,
        reactor=clock,
        batch=endpoint.batch,
        backoff=Backoff(1.0, 8.0, random.Random(7)),
        request_timeout=10.0,
        fsync_interval=1.0,
    )
    loop.open()
    return loop


def event(i):
    return Event("runtime", {"seq": i}, f"id{i:04d}", 1000.0 + i)


def capture_logs():
    seen = []

    def observer(e):
        from twisted.logger import formatEvent

        seen.append(formatEvent(e))

    globalLogPublisher.addObserver(observer)
    return seen, lambda: globalLogPublisher.removeObserver(observer)


def test_a_full_batch_leaves_at_once_and_a_partial_one_after_batch_wait(tmp_path):
    clock, transport = task.Clock(), FakeTransport()
    loop = make_loop(tmp_path, clock, transport)
    loop.start()
    for i in range(4):
        loop.append(encode_event(event(i)))
    assert len(transport.pending) == 1
    request = transport.answer(202)
    assert ids_of(request) == ["id0000", "id0001", "id0002"]
    assert request.headers["DD-API-KEY"] == "KEY"
    assert request.headers["Content-Encoding"] == "gzip"
    assert request.headers["DD-EVP-ORIGIN"] == "cloud-workload-security"
    assert transport.pending == []
    clock.advance(4.9)
    assert transport.pending == []
    clock.advance(0.1)
    assert ids_of(transport.answer(202)) == ["id0003"]
    assert loop.snapshot()["sent"] == 4
    assert loop.snapshot()["queued_records"] == 0
    loop.close()


def test_retryable_failures_back_off_exponentially_and_keep_the_batch(tmp_path):
    clock, transport = task.Clock(), FakeTransport()
    loop = make_loop(tmp_path, clock, transport)
    loop.start()
    seen, stop = capture_logs()
    try:
        for i in range(3):
            loop.append(encode_event(event(i)))
        transport.answer(503, b"busy", "Service Unavailable")
        failures = [
            lambda: transport.answer(429, b"", "Too Many Requests"),
            lambda: transport.fail(error.ConnectionRefusedError()),
            lambda: transport.fail(defer.TimeoutError()),
            lambda: transport.fail(error.ConnectionLost()),
            lambda: transport.answer(500),
        ]
        delays = []
        for fail in failures:
            before = clock.seconds()
            while not transport.pending:
                clock.advance(0.05)
            delays.append(clock.seconds() - before)
            fail()
        while not transport.pending:
            clock.advance(0.05)
        assert ids_of(transport.answer(200)) == ["id0000", "id0001", "id0002"]
    finally:
        stop()
    # 1s, 2s, 4s, 8s, 8s ceilings, each scaled into [0.5, 1.0]
    for delay, ceiling in zip(delays, [1, 2, 4, 8, 8], strict=True):
        assert ceiling * 0.5 - 0.05 <= delay <= ceiling + 0.05
    snap = loop.snapshot()
    assert snap["sent"] == 3
    assert snap["retried"] == 6
    assert snap["dropped"] == 0
    assert snap["last_error"] == "500"
    assert any(
        "Sink datadog-runtime: sending 3 event(s) to " + URL + " failed (503 Service Unavailable)"
        in line
        for line in seen
    )
    assert any("failed (no answer within 10s)" in line for line in seen)
    assert any("failed (ConnectionRefusedError: " in line for line in seen)
    assert any(
        "Sink datadog-runtime: delivery to " + URL + " works again after 6 retry(ies)" in line
        for line in seen
    )
    loop.close()


def test_a_client_error_drops_the_batch_with_the_reason(tmp_path):
    clock, transport = task.Clock(), FakeTransport()
    loop = make_loop(tmp_path, clock, transport)
    loop.start()
    seen, stop = capture_logs()
    try:
        for i in range(4):
            loop.append(encode_event(event(i)))
        transport.answer(400, b'{"errors":["bad payload"]}', "Bad Request")
    finally:
        stop()
    snap = loop.snapshot()
    assert snap["dropped_rejected"] == 3
    assert snap["dropped"] == 3
    assert snap["last_error"] == '400 Bad Request: {"errors":["bad payload"]}'
    assert (
        "Sink datadog-runtime: " + URL + " refused 3 event(s) with 400 Bad Request: "
        '{"errors":["bad payload"]}; dropping them (retrying cannot help)'
    ) in seen
    clock.advance(5)
    assert ids_of(transport.answer(202)) == ["id0003"]
    loop.close()


def test_the_spool_bound_drops_oldest_while_the_destination_is_down(tmp_path):
    clock, transport = task.Clock(), FakeTransport()
    loop = make_loop(tmp_path, clock, transport, max_bytes=64 * 1024)
    loop.start()
    seen, stop = capture_logs()
    try:
        loop.append(encode_event(event(0)))
        loop.append(encode_event(event(1)))
        loop.append(encode_event(event(2)))
        transport.fail(error.ConnectionRefusedError())
        for i in range(3, 2000):
            loop.append(encode_event(event(i)))
    finally:
        stop()
    snap = loop.snapshot()
    assert snap["queued_bytes"] <= 64 * 1024
    assert snap["dropped_spool_full"] == 2000 - snap["queued_records"]
    drops = [line for line in seen if "spool full (65536 bytes)" in line]
    assert len(drops) == 1  # rate limited while the outage lasts
    assert drops[0].startswith("Sink datadog-runtime: spool full (65536 bytes), dropped the ")
    loop.close()


def test_flush_sends_partial_batches_at_once_and_gives_up_at_the_deadline(tmp_path):
    clock, transport = task.Clock(), FakeTransport()
    loop = make_loop(tmp_path, clock, transport)
    loop.start()
    loop.append(encode_event(event(0)))
    assert transport.pending == []
    done = loop.flush(3.0)
    transport.answer(202)
    assert done.result is True
    loop.append(encode_event(event(1)))
    late = loop.flush(3.0)
    transport.answer(503)
    clock.advance(3.0)
    assert late.result is False
    loop.close()
    # what was not delivered is still spooled for the next start
    spool = Spool(tmp_path / "spool", max_bytes=1 << 20)
    assert spool.open().replayed_records == 1


def test_the_backlog_found_at_start_is_sent_without_waiting(tmp_path):
    clock, transport = task.Clock(), FakeTransport()
    loop = make_loop(tmp_path, clock, transport)
    loop.append(encode_event(event(0)))
    loop.close()
    again = make_loop(tmp_path, clock, transport)
    assert again.snapshot()["replayed"] == 1
    again.start()
    assert ids_of(transport.answer(202)) == ["id0000"]
    again.close()


def test_a_torn_tail_found_at_open_is_logged_and_counted(tmp_path):
    from plugins.sinks.spool import frame, segment_name

    clock, transport = task.Clock(), FakeTransport()
    loop = make_loop(tmp_path, clock, transport)
    loop.append(encode_event(event(0)))
    loop.close()
    with open(tmp_path / "spool" / segment_name(1), "ab") as f:
        f.write(frame(b"half written")[:9])
    seen, stop = capture_logs()
    try:
        again = make_loop(tmp_path, clock, transport)
    finally:
        stop()
    assert again.snapshot()["truncated_bytes"] == 9
    assert again.snapshot()["replayed"] == 1
    assert (
        "Sink datadog-runtime: truncated an incomplete or corrupt record at the end of spool "
        f"segment {segment_name(1)} (interrupted write); 9 bytes discarded in total"
    ) in seen
    assert "Sink datadog-runtime: replaying 1 undelivered event(s) (" in " ".join(seen)
    again.close()


def test_flush_does_not_wait_for_a_pending_backoff(tmp_path):
    clock, transport = task.Clock(), FakeTransport()
    loop = make_loop(tmp_path, clock, transport)
    loop.start()
    for i in range(3):
        loop.append(encode_event(event(i)))
    transport.answer(503)
    assert transport.pending == []  # waiting for the backoff
    done = loop.flush(5.0)
    assert ids_of(transport.answer(202)) == ["id0000", "id0001", "id0002"]
    assert done.result is True
    loop.close()


def test_a_loop_that_never_started_does_not_wait_at_flush(tmp_path):
    clock, transport = task.Clock(), FakeTransport()
    loop = make_loop(tmp_path, clock, transport)
    loop.append(encode_event(event(0)))
    assert loop.flush(5.0).result is False
    loop.close()


def test_each_event_is_encoded_once_for_all_sinks(monkeypatch):
    from plugins.sinks import records

    calls = []
    real_dumps = json.dumps

    def counting_dumps(*args, **kwargs):
        calls.append(1)
        return real_dumps(*args, **kwargs)

    monkeypatch.setattr(records.json, "dumps", counting_dumps)
    first, second = event(1), event(2)
    data = encode_event(first)
    assert encode_event(first) is data  # the next sink the host hands the event to
    assert len(calls) == 1
    assert json.loads(encode_event(second))["id"] == "id0002"
    assert len(calls) == 2
    assert json.loads(data) == {
        "id": "id0001",
        "track": "runtime",
        "timestamp": 1001.0,
        "payload": {"seq": 1},
    }
