from __future__ import annotations

import pytest
from twisted.internet import defer, task
from twisted.logger import LogLevel, capturedLogs

from host.health import Health
from host.scheduler import Scheduler, fnv1a64, jitter


class InlineWorkers:
    """Runs 'blocking' work synchronously, recording that it went through the pool."""

    def __init__(self):
        self.calls = 0

    def defer(self, f, *args, **kwargs):
        self.calls += 1
        return defer.maybeDeferred(f, *args, **kwargs)


@pytest.fixture
def clock():
    return task.Clock()


@pytest.fixture
def scheduler(clock):
    return Scheduler(clock, InlineWorkers(), "host-a")


def test_fnv1a64_matches_the_published_test_vectors():
    assert fnv1a64(b"") == 0xCBF29CE484222325
    assert fnv1a64(b"a") == 0xAF63DC4C8601EC8C
    assert fnv1a64(b"foobar") == 0x85944171F73967E8


def test_jitter_is_deterministic_bounded_and_spread_by_host():
    values = [jitter(i, "host-a", "compliance", 600.0) for i in range(50)]
    assert values == [jitter(i, "host-a", "compliance", 600.0) for i in range(50)]
    assert all(0.0 <= v < 60.0 for v in values)
    assert len(set(values)) > 40
    assert [jitter(i, "host-b", "compliance", 600.0) for i in range(50)] != values


def test_once_job_runs_immediately_and_only_once(clock, scheduler):
    calls = []
    job = scheduler.add("svc", lambda: calls.append(clock.seconds()))
    d = job.start()
    assert d.called
    clock.advance(3600)
    assert calls == [0.0]
    assert job.stats.runs == 1


def test_periodic_job_runs_every_interval_with_its_jitter(clock, scheduler):
    calls = []
    job = scheduler.add("periodic", lambda: calls.append(clock.seconds()), interval=10.0)
    job.start()
    for _ in range(5):
        clock.advance(job.next_run - clock.seconds())
    expected = [k * 10.0 + jitter(k, "host-a", "periodic", 10.0) for k in range(5)]
    assert calls == pytest.approx(expected)
    assert job.stats.runs == 5


def test_exception_is_logged_with_traceback_counted_and_schedule_continues(clock, scheduler):
    health = Health(clock)
    handle = health.register_liveness("flaky")
    attempts = []

    def run():
        attempts.append(clock.seconds())
        if len(attempts) == 2:
            raise ValueError("disk on fire")

    job = scheduler.add("flaky", run, interval=10.0, health=handle)
    with capturedLogs() as events:
        job.start()
        clock.pump([1.0] * 25)
        assert job.stats.errors == 1
        assert job.stats.runs == 2
        assert job.stats.last_error == "ValueError: disk on fire"
        assert "disk on fire" in job.stats.last_traceback
        assert "Traceback" in job.stats.last_traceback
    failures = [e for e in events if e.get("log_failure") is not None]
    assert len(failures) == 1
    assert failures[0]["plugin"] == "flaky"
    assert failures[0]["log_level"] is LogLevel.critical
    clock.pump([1.0] * 10)
    assert job.stats.runs == 3  # the loop survived


def test_failed_run_marks_unhealthy_until_a_run_succeeds(clock, scheduler):
    health = Health(clock)
    handle = health.register_liveness("p")
    outcomes = iter([RuntimeError("x"), None])

    def run():
        exc = next(outcomes)
        if exc:
            raise exc

    job = scheduler.add("p", run, interval=30.0, health=handle)
    job.start()
    clock.pump([1.0] * 5)
    assert handle.failing_reason == "last run failed: RuntimeError: x"
    assert "p" in health.get_ready().unhealthy
    clock.pump([1.0] * 35)
    assert handle.failing_reason is None


def test_runs_never_overlap_and_an_overrun_is_unhealthy_then_skipped(clock, scheduler):
    health = Health(clock)
    handle = health.register_liveness("slow")
    pending: list[defer.Deferred] = []

    def run():
        d = defer.Deferred()
        pending.append(d)
        return d

    job = scheduler.add("slow", run, interval=10.0, health=handle)
    job.start()
    clock.pump([0.5] * 60)  # 30 s: one run started, never finished
    assert len(pending) == 1
    assert job.stats.overruns == 1
    assert job.stats.skipped >= 2
    assert handle.failing_reason == "run exceeded its deadline of 10.0s"
    pending[0].callback(None)
    assert handle.failing_reason is None
    assert job.stats.runs == 1
    clock.pump([0.5] * 30)
    assert len(pending) == 2  # the schedule resumed with one new run, not a burst


def test_blocking_job_goes_through_the_worker_pool(clock):
    workers = InlineWorkers()
    sched = Scheduler(clock, workers, "h")
    job = sched.add("b", lambda: 42, blocking=True)
    job.start()
    assert workers.calls == 1
    assert job.stats.runs == 1


def test_coroutine_runs_are_awaited(clock, scheduler):
    seen = []

    async def run():
        await task.deferLater(clock, 2.0, lambda: None)
        seen.append(clock.seconds())

    job = scheduler.add("async", run)
    d = job.start()
    assert not d.called
    clock.advance(2.0)
    assert d.called
    assert seen == [2.0]
    assert job.stats.last_duration == 2.0


def test_stop_cancels_future_runs_and_waits_for_the_current_one(clock, scheduler):
    current = defer.Deferred()
    job = scheduler.add("s", lambda: current, interval=5.0)
    job.start()
    clock.advance(job.next_run)  # first run starts and hangs
    stopped = job.stop(timeout=10.0)
    assert not stopped.called
    current.callback(None)
    assert stopped.result is True
    clock.advance(100)
    assert job.stats.runs == 1


def test_stop_abandons_a_run_that_outlives_the_timeout(clock, scheduler):
    job = scheduler.add("stuck", defer.Deferred)
    job.start()
    stopped = job.stop(timeout=10.0)
    with capturedLogs() as events:
        clock.advance(10.0)
    assert stopped.result is False
    assert any("abandoning" in e["log_format"] for e in events)
    assert clock.getDelayedCalls() == []


def test_heartbeat_keeps_healthy_components_healthy(clock, scheduler):
    health = Health(clock)
    handle = health.register_liveness("p")
    scheduler.add("p", lambda: None, interval=60.0, health=handle).start()
    clock.pump([1.0] * 60)
    assert health.get_ready().to_json() == {"Healthy": ["healthcheck", "p"], "Unhealthy": []}
    scheduler.stop_heartbeat()
    clock.pump([1.0] * 45)  # two missed health ticks
    assert health.get_ready().unhealthy == ("p",)
