"""Every plugin ``run()`` (and later every check instance) goes through :class:`Job`.

Why not ``LoopingCall``/``TimerService``: they stop for good on the first exception and
stack or skip runs in ways that hide overruns. A :class:`Job` catches, logs (with the
traceback) and counts each failure, marks the component unhealthy until a run succeeds, never
lets two runs of one job overlap (a turn that finds the previous run still going is skipped
and counted) and spreads periodic runs with a deterministic jitter, as Datadog's compliance
agent does, so that a fleet of hosts does not fire in lockstep yet a host's schedule is
reproducible.

All time comes from the injected clock, so tests drive the scheduler with ``task.Clock``.
"""

from __future__ import annotations

import struct
import traceback as tb
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from host.deadlines import wait_at_most

if TYPE_CHECKING:
    from host.health import HealthHandle

log = Logger(namespace="host.scheduler")

HEARTBEAT_INTERVAL = 5.0
"""Default seconds between heartbeats the scheduler gives registered health handles: a third
of the 15 s health tick, so one late reactor turn does not flap health."""

_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3
_MASK64 = 0xFFFFFFFFFFFFFFFF


def fnv1a64(data: bytes) -> int:
    """FNV-1a, 64 bits: the hash Datadog seeds its compliance jitter with."""
    h = _FNV_OFFSET
    for byte in data:
        h ^= byte
        h = (h * _FNV_PRIME) & _MASK64
    return h


def jitter(run_index: int, hostname: str, name: str, interval: float) -> float:
    """Deterministic delay in ``[0, interval / 10)`` for the ``run_index``-th run of ``name``.

    The same host, job and run always get the same delay; different hosts spread out.
    """
    span_ms = int(interval * 100)  # a tenth of the interval, in milliseconds
    if span_ms <= 0:
        return 0.0
    seed = struct.pack("<Q", run_index & _MASK64) + hostname.encode() + name.encode()
    return (fnv1a64(seed) % span_ms) / 1000.0


class Defers(Protocol):
    """The part of :class:`host.workers.WorkerPool` the scheduler needs."""

    def defer(self, f: Callable[..., Any], *args: Any, **kwargs: Any) -> defer.Deferred[Any]: ...


@dataclass
class JobStats:
    """What status shows for one job."""

    runs: int = 0
    errors: int = 0
    skipped: int = 0
    overruns: int = 0
    last_start: float | None = None
    last_duration: float | None = None
    total_duration: float = 0.0
    last_error: str | None = None
    last_traceback: str | None = None
    last_error_time: float | None = None

    @property
    def average_duration(self) -> float | None:
        finished = self.runs + self.errors
        return self.total_duration / finished if finished else None


class Job:
    """One scheduled callable: once at start (``interval=None``) or periodically."""

    def __init__(
        self,
        scheduler: Scheduler,
        name: str,
        run: Callable[[], Any],
        *,
        interval: float | None,
        deadline: float | None,
        blocking: bool,
        health: HealthHandle | None,
    ) -> None:
        self.name = name
        self._scheduler = scheduler
        self._run = run
        self.interval = interval
        self.deadline = deadline
        self.blocking = blocking
        self.health = health
        self.stats = JobStats()
        self.running = False
        self.stopped = False
        self._origin = 0.0
        self._index = 0
        self._next_call: IDelayedCall | None = None
        self._deadline_call: IDelayedCall | None = None
        self._current: defer.Deferred[None] | None = None
        self._overran = False
        self.last_failure: Failure | None = None

    # --- scheduling ---

    def start(self) -> defer.Deferred[None]:
        """Start the job: a once-job runs now and the Deferred fires when that run ends
        (successfully or not); a periodic job schedules its first run and fires at once."""
        clock = self._scheduler.clock
        self._origin = clock.seconds()
        if self.interval is None:
            return self.fire()
        self._schedule_next()
        return defer.succeed(None)

    def _schedule_next(self) -> None:
        if self.stopped or self.interval is None:
            return
        clock = self._scheduler.clock
        due = (
            self._origin
            + self._index * self.interval
            + jitter(self._index, self._scheduler.hostname, self.name, self.interval)
        )
        self._index += 1
        self._next_call = clock.callLater(max(0.0, due - clock.seconds()), self._turn)

    def _turn(self) -> None:
        self._next_call = None
        self.fire()
        self._schedule_next()

    @property
    def next_run(self) -> float | None:
        """Clock time of the next scheduled run, if any."""
        return self._next_call.getTime() if self._next_call is not None else None

    # --- one run ---

    def fire(self) -> defer.Deferred[None]:
        """Run now unless a run is in progress (then the turn is skipped and counted)."""
        if self.running:
            self.stats.skipped += 1
            log.warn(
                "{plugin}: previous run still going after {elapsed:.1f}s; skipping this turn",
                plugin=self.name,
                elapsed=self._scheduler.clock.seconds() - (self.stats.last_start or 0.0),
            )
            return defer.succeed(None)
        clock = self._scheduler.clock
        self.running = True
        self._overran = False
        self.stats.last_start = start = clock.seconds()
        if self.deadline is not None:
            self._deadline_call = clock.callLater(self.deadline, self._deadline_passed)
        if self.blocking:
            d = self._scheduler.workers.defer(self._run)
        else:
            d = defer.maybeDeferred(self._run)
        d.addCallbacks(self._succeeded, self._failed, callbackArgs=(start,), errbackArgs=(start,))
        self._current = d
        return d

    def _finish(self, start: float) -> float:
        self.running = False
        self._current = None
        if self._deadline_call is not None:
            if self._deadline_call.active():
                self._deadline_call.cancel()
            self._deadline_call = None
        duration = self._scheduler.clock.seconds() - start
        self.stats.last_duration = duration
        self.stats.total_duration += duration
        return duration

    def _succeeded(self, _result: object, start: float) -> None:
        self._finish(start)
        self.stats.runs += 1
        if self.health is not None:
            self.health.clear_failing()

    def _failed(self, failure: Failure, start: float) -> None:
        self._finish(start)
        self.last_failure = failure
        stats = self.stats
        stats.errors += 1
        stats.last_error = f"{type(failure.value).__name__}: {failure.getErrorMessage()}"
        stats.last_traceback = "".join(tb.format_exception(failure.value))
        stats.last_error_time = self._scheduler.clock.seconds()
        if failure.check(*self._scheduler.quiet_errors):  # type: ignore[no-untyped-call]
            # An error the owner reports itself, as one line: no traceback here.
            if self.health is not None:
                self.health.set_failing(f"last run failed: {stats.last_error}")
            return
        log.failure(
            "{plugin}: run failed ({errors} error(s) so far)",
            failure,
            plugin=self.name,
            errors=stats.errors,
        )
        if self.health is not None:
            self.health.set_failing(f"last run failed: {stats.last_error}")

    def _deadline_passed(self) -> None:
        self._deadline_call = None
        self._overran = True
        self.stats.overruns += 1
        log.error(
            "{plugin}: run has exceeded its deadline of {deadline}s; marking it unhealthy",
            plugin=self.name,
            deadline=self.deadline,
        )
        if self.health is not None:
            self.health.set_failing(f"run exceeded its deadline of {self.deadline}s")

    # --- shutdown ---

    def stop(self, timeout: float) -> defer.Deferred[bool]:
        """Cancel future runs; fire ``True`` when no run is in progress, ``False`` if the
        current run is still going after ``timeout`` seconds (it is then abandoned)."""
        self.stopped = True
        if self._next_call is not None and self._next_call.active():
            self._next_call.cancel()
        self._next_call = None
        if self._current is None:
            return defer.succeed(True)

        def give_up() -> None:
            log.error(
                "{plugin}: run still going {timeout}s after stop was asked; abandoning it",
                plugin=self.name,
                timeout=timeout,
            )

        return wait_at_most(self._scheduler.clock, self._current, timeout, give_up)

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready view for status and telemetry."""
        s = self.stats
        return {
            "name": self.name,
            "interval": self.interval,
            "running": self.running,
            "runs": s.runs,
            "errors": s.errors,
            "skipped": s.skipped,
            "overruns": s.overruns,
            "last_start": s.last_start,
            "last_duration": s.last_duration,
            "average_duration": s.average_duration,
            "last_error": s.last_error,
            "last_traceback": s.last_traceback,
            "next_run": self.next_run,
        }


class Scheduler:
    """Creates and owns jobs; gives their health handles a heartbeat while the reactor turns."""

    def __init__(
        self,
        clock: IReactorTime,
        workers: Defers,
        hostname: str,
        *,
        heartbeat_interval: float = HEARTBEAT_INTERVAL,
    ) -> None:
        self.clock = clock
        self.heartbeat_interval = heartbeat_interval
        self.quiet_errors: tuple[type[BaseException], ...] = ()
        """Exception types a run may raise that the job's owner logs itself."""
        self.workers = workers
        self.hostname = hostname
        self.jobs: dict[str, Job] = {}
        self._heartbeat: IDelayedCall | None = None

    def add(
        self,
        name: str,
        run: Callable[[], Any],
        *,
        interval: float | None = None,
        deadline: float | None = None,
        blocking: bool = False,
        health: HealthHandle | None = None,
    ) -> Job:
        if name in self.jobs:
            raise ValueError(f"a job named {name!r} is already scheduled")
        if deadline is None:
            deadline = interval  # a periodic run should end before its next turn
        job = Job(
            self, name, run, interval=interval, deadline=deadline, blocking=blocking, health=health
        )
        self.jobs[name] = job
        if health is not None and self._heartbeat is None:
            self._beat()
        return job

    def remove(self, name: str) -> None:
        self.jobs.pop(name, None)

    def _beat(self) -> None:
        # The heartbeat is the proof that the reactor still turns; a component whose run
        # failed or overran stays unhealthy through set_failing(), whatever the beats say.
        for job in self.jobs.values():
            if job.health is not None and not job.stopped:
                job.health.beat()
        self._heartbeat = self.clock.callLater(self.heartbeat_interval, self._beat)

    def stop_heartbeat(self) -> None:
        if self._heartbeat is not None and self._heartbeat.active():
            self._heartbeat.cancel()
        self._heartbeat = None

    def snapshot(self) -> dict[str, dict[str, Any]]:
        return {name: job.snapshot() for name, job in self.jobs.items()}
