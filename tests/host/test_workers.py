from __future__ import annotations

import threading
import time

import pytest
from support import FakeReactor
from twisted.logger import capturedLogs, formatEvent

from host.workers import WorkerPool


def settle(reactor, until, timeout=10.0):
    """Let worker threads hand their results to the fake reactor, then run them."""
    deadline = time.monotonic() + timeout
    while not until():
        assert time.monotonic() < deadline, "worker result never arrived"
        time.sleep(0.01)
        reactor.advance(0)


def test_blocking_work_runs_in_named_daemon_threads_and_returns_to_the_reactor():
    reactor = FakeReactor()
    pool = WorkerPool(reactor, 2, name="sa-test-worker")
    pool.start()
    try:
        seen = {}

        def work(x):
            t = threading.current_thread()
            seen["name"], seen["daemon"] = t.name, t.daemon
            return x * 2

        d = pool.defer(work, 21)
        settle(reactor, lambda: d.called)
        assert d.result == 42
        assert seen["name"] == "PoolThread-sa-test-worker-0"
        assert seen["daemon"] is True
        assert threading.current_thread().name != seen["name"]
    finally:
        stopped = pool.stop(timeout=5)
        settle(reactor, lambda: stopped.called)
    assert stopped.result is True


def test_pool_is_bounded():
    reactor = FakeReactor()
    pool = WorkerPool(reactor, 2)
    pool.start()
    gate = threading.Event()
    running = []
    lock = threading.Lock()
    peak = [0]

    def work():
        with lock:
            running.append(1)
            peak[0] = max(peak[0], len(running))
        gate.wait(5)
        with lock:
            running.pop()

    ds = [pool.defer(work) for _ in range(6)]
    time.sleep(0.2)
    assert pool.stats() == {"size": 2, "busy": 2, "queued": 4}
    gate.set()
    settle(reactor, lambda: all(d.called for d in ds))
    assert peak[0] == 2
    stopped = pool.stop(timeout=5)
    settle(reactor, lambda: stopped.called)


def test_stop_abandons_a_stuck_job_after_the_timeout():
    reactor = FakeReactor()
    pool = WorkerPool(reactor, 1, name="stuck-pool")
    pool.start()
    release = threading.Event()
    pool.defer(release.wait, 30)
    time.sleep(0.1)
    with capturedLogs() as events:
        stopped = pool.stop(timeout=2.0)
        reactor.advance(2.0)
    assert stopped.result is False
    assert [formatEvent(e) for e in events] == [
        "Worker pool stuck-pool did not stop within 2.0s; abandoning 1 busy thread(s)"
    ]
    release.set()


def test_work_after_stop_fails_clearly():
    pool = WorkerPool(FakeReactor(), 1)
    d = pool.defer(lambda: 1)
    failure = []
    d.addErrback(failure.append)
    assert str(failure[0].value) == "worker pool security-agent-worker is not running"
    with pytest.raises(ValueError, match="at least 1"):
        WorkerPool(FakeReactor(), 0)
