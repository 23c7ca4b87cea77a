"""Clocks for checks: a monotonic one for durations, the wall clock for timestamps."""

from __future__ import annotations

import time


def get_precise_time() -> float:
    """Seconds from a monotonic clock, for measuring durations."""
    return time.perf_counter()


def get_timestamp() -> float:
    """Seconds since the epoch."""
    return time.time()
