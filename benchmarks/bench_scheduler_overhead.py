"""Host overhead per scheduled ``run()``: the scheduler's whole path for one turn (fire,
deadline timer, Deferred wrapping, stats, health, next turn with its jitter) against calling
the same function directly."""

from __future__ import annotations

import time
from typing import Any

from twisted.internet import task

from host.health import Health
from host.scheduler import Scheduler

N = 50_000


def _noop() -> None:
    return None


class _NoWorkers:
    def defer(self, f: Any, *a: Any, **kw: Any) -> Any:
        raise AssertionError("not used")


def _best_of(repeat: int, fn: Any) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def run() -> list[dict[str, Any]]:
    def direct() -> None:
        for _ in range(N):
            _noop()

    clock = task.Clock()
    health = Health(clock)
    sched = Scheduler(clock, _NoWorkers(), "bench-host")
    job = sched.add("bench", _noop, interval=15.0, health=health.register_liveness("bench"))
    job.start()

    def scheduled() -> None:
        turn = job._turn
        for _ in range(N):
            turn()
            # Drop the next-turn timer _turn just armed, so the clock's queue stays constant
            # and we measure the host, not an ever-growing heap of fake timers.
            call = job._next_call
            if call is not None:
                call.cancel()
                job._next_call = None

    base = _best_of(5, direct) / N
    value = _best_of(5, scheduled) / N
    assert job.stats.runs >= N
    overhead_us = (value - base) * 1e6
    return [
        {
            "name": "host.scheduler.overhead_per_run",
            "unit": "us",
            "value": round(overhead_us, 2),
            "baseline": round(base * 1e6, 3),
            "baseline_name": "direct call of the same run()",
            "scheduled_call_us": round(value * 1e6, 2),
            "ratio": round(value / base, 1),
            "target": "< 50 us",
        }
    ]
