"""host.health on a fake clock: Datadog's catalog semantics plus the set_failing extension."""

from __future__ import annotations

import dataclasses
import inspect
import json
import threading

import pytest
from twisted.internet.task import Clock

from host.health import (
    PING_FREQUENCY,
    Health,
    HealthError,
    HealthHandle,
    HealthStatus,
    HealthTimeout,
)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def health(clock: Clock) -> Health:
    return Health(clock)


def stall(clock: Clock, seconds: float) -> None:
    """Move time on without running any timed call, as a busy reactor thread would.

    ``Clock.advance`` runs every call that falls due, so the ticker would catch up at once and
    nothing would ever look stalled; a reactor stuck in a blocking call is precisely a clock
    that moves while nobody fires the calls. ``advance(0)`` later is the reactor getting free.
    """
    clock.rightNow += seconds


def status(healthy: tuple[str, ...] = (), unhealthy: tuple[str, ...] = ()) -> HealthStatus:
    return HealthStatus(healthy=healthy, unhealthy=unhealthy)


# --- basics -----------------------------------------------------------------------------------


def test_ping_frequency_is_datadogs() -> None:
    assert PING_FREQUENCY == 15.0


def test_empty_registry_reports_empty_status(health: Health) -> None:
    assert health.get_live() == status()
    assert health.get_ready() == status()
    assert health.get_startup() == status()
    assert health.get_live().all_healthy is True
    assert health.unhealthy_reasons() == {}


def test_unhealthy_right_after_register(health: Health, clock: Clock) -> None:
    handle = health.register_liveness("runtime")
    assert isinstance(handle, HealthHandle)
    assert (handle.name, handle.catalog) == ("runtime", "liveness")
    assert health.get_live() == status(("healthcheck",), ("runtime",))
    assert health.get_live().all_healthy is False
    # Still unhealthy after a tick without a beat: the pre-filled buffer is full.
    clock.advance(PING_FREQUENCY)
    assert health.get_live() == status(("healthcheck",), ("runtime",))


def test_beat_alone_is_not_enough_a_tick_must_pass(health: Health, clock: Clock) -> None:
    handle = health.register_liveness("runtime")
    handle.beat()
    assert health.get_live() == status(("healthcheck",), ("runtime",))
    clock.advance(PING_FREQUENCY - 0.001)
    assert health.get_live() == status(("healthcheck",), ("runtime",))
    clock.advance(0.001)
    assert health.get_live() == status(("healthcheck", "runtime"))
    assert health.get_live().all_healthy is True


def test_regular_beats_stay_healthy(health: Health, clock: Clock) -> None:
    handle = health.register_liveness("runtime")
    for _ in range(20):
        handle.beat()
        clock.advance(PING_FREQUENCY)
        assert health.get_live() == status(("healthcheck", "runtime"))


def test_two_missed_ticks_make_unhealthy(health: Health, clock: Clock) -> None:
    handle = health.register_liveness("runtime")
    handle.beat()
    clock.advance(PING_FREQUENCY)  # t=15: buffer 0 -> 1, healthy
    assert health.get_live() == status(("healthcheck", "runtime"))
    clock.advance(PING_FREQUENCY)  # t=30: first missed tick, buffer 1 -> 2, still healthy
    assert health.get_live() == status(("healthcheck", "runtime"))
    clock.advance(PING_FREQUENCY)  # t=45: buffer full, second missed tick
    assert health.get_live() == status(("healthcheck",), ("runtime",))
    assert health.unhealthy_reasons() == {"runtime": "missed heartbeats"}
    # And it recovers with the next beat and tick.
    handle.beat()
    clock.advance(PING_FREQUENCY)
    assert health.get_live() == status(("healthcheck", "runtime"))


def test_status_reflects_the_last_tick_not_the_current_instant(
    health: Health, clock: Clock
) -> None:
    handle = health.register_liveness("runtime")
    handle.beat()
    clock.advance(PING_FREQUENCY)
    clock.advance(PING_FREQUENCY)
    clock.advance(PING_FREQUENCY)
    assert health.get_live().unhealthy == ("runtime",)
    handle.beat()
    # Only the next tick notices the beat, as in Datadog.
    assert health.get_live().unhealthy == ("runtime",)


# --- once -------------------------------------------------------------------------------------


def test_once_stays_healthy_after_passing(health: Health, clock: Clock) -> None:
    handle = health.register_startup("init", once=True)
    assert health.get_startup() == status(("healthcheck",), ("init",))
    handle.beat()
    clock.advance(PING_FREQUENCY)
    assert health.get_startup() == status(("healthcheck", "init"))
    for _ in range(10):
        clock.advance(PING_FREQUENCY)
        assert health.get_startup() == status(("healthcheck", "init"))


def test_once_is_unhealthy_until_it_has_passed(health: Health, clock: Clock) -> None:
    health.register_startup("init", once=True)
    for _ in range(5):
        clock.advance(PING_FREQUENCY)
        assert health.get_startup() == status(("healthcheck",), ("init",))


def test_without_once_the_same_component_goes_unhealthy(health: Health, clock: Clock) -> None:
    handle = health.register_startup("init")
    handle.beat()
    for _ in range(3):
        clock.advance(PING_FREQUENCY)
    assert health.get_startup() == status(("healthcheck",), ("init",))


# --- healthcheck pseudo-component ---------------------------------------------------------------


def test_healthcheck_goes_unhealthy_when_ticker_stalls(health: Health, clock: Clock) -> None:
    handle = health.register_liveness("runtime")
    handle.beat()
    clock.advance(PING_FREQUENCY)  # latest run at t=15
    assert health.get_live() == status(("healthcheck", "runtime"))

    stall(clock, 2 * PING_FREQUENCY)  # t=45: exactly at the limit, not past it
    assert health.get_live() == status(("healthcheck", "runtime"))
    assert clock.getDelayedCalls()[0].getTime() == 2 * PING_FREQUENCY  # overdue, not run

    stall(clock, 0.5)  # t=45.5: the catalog's ticker has not run for more than 30 s
    # The component keeps its last computed state; only the healthcheck can notice the stall.
    assert health.get_live() == status(("runtime",), ("healthcheck",))
    assert health.unhealthy_reasons() == {"healthcheck": "health ticker stalled"}

    clock.advance(0)  # the reactor gets free: the overdue tick runs and the healthcheck recovers
    assert health.get_live() == status(("healthcheck", "runtime"))
    # The next tick is scheduled a full period after the late one, not as a catch-up burst.
    assert [call.getTime() for call in clock.getDelayedCalls()] == [45.5 + PING_FREQUENCY]


def test_stall_is_visible_from_another_thread(health: Health, clock: Clock) -> None:
    """The point of the healthcheck: a worker thread building a flare sees the reactor stuck."""
    health.register_liveness("runtime").beat()
    clock.advance(PING_FREQUENCY)
    stall(clock, 60)
    seen: list[HealthStatus] = []
    reader = threading.Thread(target=lambda: seen.append(health.get_ready()))
    reader.start()
    reader.join(timeout=5)
    assert seen == [status(("runtime",), ("healthcheck",))]


def test_healthcheck_goes_unhealthy_after_stop(health: Health, clock: Clock) -> None:
    handle = health.register_liveness("runtime")
    handle.beat()
    clock.advance(PING_FREQUENCY)
    health.stop()
    assert clock.getDelayedCalls() == []
    clock.advance(2 * PING_FREQUENCY)
    assert health.get_live() == status(("healthcheck", "runtime"))
    clock.advance(0.001)
    assert health.get_live() == status(("runtime",), ("healthcheck",))


def test_restarted_catalog_does_not_inherit_old_latest_run(health: Health, clock: Clock) -> None:
    health.deregister(health.register_liveness("first"))
    clock.advance(1000)
    health.register_liveness("second")
    assert health.get_live() == status(("healthcheck",), ("second",))


# --- get_ready ----------------------------------------------------------------------------------


def test_catalogs_are_separate(health: Health, clock: Clock) -> None:
    live = health.register_liveness("live")
    health.register_readiness("ready")
    health.register_startup("start")
    live.beat()
    clock.advance(PING_FREQUENCY)
    assert health.get_live() == status(("healthcheck", "live"))
    assert health.get_ready() == status(("healthcheck", "live"), ("ready",))
    assert health.get_startup() == status(("healthcheck",), ("start",))


def test_get_ready_concatenates_in_catalog_then_registration_order(
    health: Health, clock: Clock
) -> None:
    handles = [
        health.register_readiness("r1"),
        health.register_liveness("l1"),
        health.register_readiness("r2"),
        health.register_liveness("l2"),
    ]
    for handle in handles:
        handle.beat()
    clock.advance(PING_FREQUENCY)
    ready = health.get_ready()
    assert ready == status(("healthcheck", "l1", "l2", "r1", "r2"))
    assert ready.healthy.count("healthcheck") == 1


def test_get_ready_with_only_readiness_components(health: Health) -> None:
    health.register_readiness("ready")
    assert health.get_ready() == status(("healthcheck",), ("ready",))
    assert health.get_live() == status()


def test_get_ready_healthcheck_unhealthy_if_either_catalog_stalled(
    health: Health, clock: Clock
) -> None:
    health.register_liveness("live")  # latest run t=0
    clock.advance(10)
    health.register_readiness("ready")  # latest run t=10
    stall(clock, 20.5)  # t=30.5: liveness stalled (> 0 + 30), readiness not (< 10 + 30)
    assert health.get_live() == status((), ("healthcheck", "live"))
    ready = health.get_ready()
    assert ready == status((), ("healthcheck", "live", "ready"))
    assert ready.unhealthy.count("healthcheck") == 1


# --- set_failing --------------------------------------------------------------------------------


def test_set_failing_is_immediate_and_beats_are_ignored(health: Health, clock: Clock) -> None:
    handle = health.register_liveness("compliance")
    handle.beat()
    clock.advance(PING_FREQUENCY)
    assert health.get_live() == status(("healthcheck", "compliance"))
    assert handle.failing_reason is None

    handle.set_failing("last run raised ValueError")
    assert handle.failing_reason == "last run raised ValueError"
    assert health.get_live() == status(("healthcheck",), ("compliance",))
    assert health.get_ready() == status(("healthcheck",), ("compliance",))
    assert health.unhealthy_reasons() == {"compliance": "last run raised ValueError"}

    for _ in range(3):
        handle.beat()
        clock.advance(PING_FREQUENCY)
        assert health.get_live() == status(("healthcheck",), ("compliance",))

    handle.clear_failing()
    assert handle.failing_reason is None
    # Heartbeats were tracked underneath, so clearing shows the heartbeat state at once.
    assert health.get_live() == status(("healthcheck", "compliance"))
    assert health.unhealthy_reasons() == {}


def test_clear_failing_reveals_missed_heartbeats(health: Health, clock: Clock) -> None:
    handle = health.register_liveness("compliance")
    handle.set_failing("deadline overrun")
    for _ in range(3):
        clock.advance(PING_FREQUENCY)
    handle.clear_failing()
    assert health.get_live() == status(("healthcheck",), ("compliance",))
    assert health.unhealthy_reasons() == {"compliance": "missed heartbeats"}


def test_set_failing_overrides_once(health: Health, clock: Clock) -> None:
    handle = health.register_startup("init", once=True)
    handle.beat()
    clock.advance(PING_FREQUENCY)
    handle.set_failing("broken")
    assert health.get_startup() == status(("healthcheck",), ("init",))
    handle.clear_failing()
    assert health.get_startup() == status(("healthcheck", "init"))


def test_set_failing_needs_a_reason(health: Health) -> None:
    handle = health.register_liveness("x")
    with pytest.raises(ValueError, match="must not be empty"):
        handle.set_failing("")
    assert handle.failing_reason is None


def test_unhealthy_reasons_prefers_failing_reason_for_shared_names(health: Health) -> None:
    health.register_liveness("dup")
    health.register_readiness("dup").set_failing("boom")
    health.register_startup("other")
    assert health.unhealthy_reasons() == {"dup": "boom", "other": "missed heartbeats"}


# --- registration and deregistration ----------------------------------------------------------


def test_same_name_gives_distinct_handles(health: Health, clock: Clock) -> None:
    first = health.register_liveness("worker")
    second = health.register_liveness("worker")
    assert first is not second
    first.beat()
    clock.advance(PING_FREQUENCY)
    assert health.get_live() == status(("healthcheck", "worker"), ("worker",))
    health.deregister(first)
    assert health.get_live() == status(("healthcheck",), ("worker",))


def test_deregister_removes_component(health: Health) -> None:
    keep = health.register_liveness("keep")
    gone = health.register_liveness("gone")
    health.deregister(gone)
    assert health.get_live() == status(("healthcheck",), ("keep",))
    health.deregister(keep)
    assert health.get_live() == status()


def test_deregister_unknown_handle(health: Health, clock: Clock) -> None:
    handle = health.register_liveness("x")
    health.deregister(handle)
    with pytest.raises(HealthError) as excinfo:
        health.deregister(handle)
    assert str(excinfo.value) == "component not registered"

    foreign = Health(clock).register_liveness("y")
    with pytest.raises(HealthError) as excinfo:
        health.deregister(foreign)
    assert str(excinfo.value) == "component not registered"


def test_deregistered_handle_is_inert(health: Health, clock: Clock) -> None:
    handle = health.register_liveness("x")
    health.register_liveness("y")
    health.deregister(handle)
    handle.beat()
    handle.set_failing("late")
    assert handle.failing_reason is None
    clock.advance(PING_FREQUENCY)
    assert health.get_live() == status(("healthcheck",), ("y",))
    assert health.unhealthy_reasons() == {"y": "missed heartbeats"}


# --- tickers ------------------------------------------------------------------------------------


def test_one_ticker_per_non_empty_catalog(health: Health, clock: Clock) -> None:
    assert clock.getDelayedCalls() == []
    health.register_liveness("a")
    health.register_liveness("b")
    assert [call.getTime() for call in clock.getDelayedCalls()] == [PING_FREQUENCY]
    health.register_readiness("c")
    assert len(clock.getDelayedCalls()) == 2


def test_ticker_stops_when_catalog_empties(health: Health, clock: Clock) -> None:
    handles = [
        health.register_liveness("a"),
        health.register_liveness("b"),
        health.register_readiness("c"),
        health.register_startup("d"),
    ]
    clock.advance(PING_FREQUENCY * 2)
    for handle in handles[:-1]:
        health.deregister(handle)
    assert len(clock.getDelayedCalls()) == 1  # the startup catalog still ticks
    health.deregister(handles[-1])
    assert clock.getDelayedCalls() == []


def test_stop_cancels_all_tickers_and_is_idempotent(health: Health, clock: Clock) -> None:
    health.register_liveness("a")
    health.register_readiness("b")
    health.register_startup("c")
    health.stop()
    assert clock.getDelayedCalls() == []
    health.stop()
    assert clock.getDelayedCalls() == []
    # Stopped for good: registering during shutdown does not bring a ticker back.
    health.register_liveness("late")
    assert clock.getDelayedCalls() == []


# --- non-blocking read --------------------------------------------------------------------------


def test_get_ready_nonblocking_default_timeout_is_datadogs() -> None:
    parameter = inspect.signature(Health.get_ready_nonblocking).parameters["timeout"]
    assert parameter.default == 0.5


def test_get_ready_nonblocking_returns_get_ready(health: Health, clock: Clock) -> None:
    health.register_liveness("live").beat()
    health.register_readiness("ready")
    clock.advance(PING_FREQUENCY)
    assert health.get_ready_nonblocking() == health.get_ready()
    assert health.get_ready_nonblocking() == status(("healthcheck", "live"), ("ready",))


def test_get_ready_nonblocking_times_out_when_lock_is_held(health: Health) -> None:
    health.register_liveness("x")
    holding = threading.Event()
    release = threading.Event()

    def hold() -> None:
        # The lock is private; holding it from a thread is the situation the timeout is for.
        with health._lock:
            holding.set()
            release.wait(timeout=10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(timeout=10)
        with pytest.raises(HealthTimeout) as excinfo:
            health.get_ready_nonblocking(timeout=0.05)
        assert str(excinfo.value) == "timeout when getting health status"
        assert isinstance(excinfo.value, HealthError)
    finally:
        release.set()
        holder.join(timeout=10)
    assert not holder.is_alive()
    # Released: the same call now succeeds.
    assert health.get_ready_nonblocking(timeout=0.05) == status(("healthcheck",), ("x",))


# --- HealthStatus -------------------------------------------------------------------------------


def test_to_json_shape() -> None:
    assert HealthStatus().to_json() == {"Healthy": [], "Unhealthy": []}
    body = status(("healthcheck", "a"), ("b",)).to_json()
    assert body == {"Healthy": ["healthcheck", "a"], "Unhealthy": ["b"]}
    assert all(type(value) is list for value in body.values())
    assert json.loads(json.dumps(body)) == body


def test_to_json_of_live_status(health: Health) -> None:
    health.register_liveness("runtime")
    assert health.get_live().to_json() == {"Healthy": ["healthcheck"], "Unhealthy": ["runtime"]}


def test_health_status_is_frozen() -> None:
    snapshot = status(("a",))
    with pytest.raises(dataclasses.FrozenInstanceError):
        snapshot.healthy = ()  # type: ignore[misc]
    assert snapshot.all_healthy is True
    assert status((), ("b",)).all_healthy is False
