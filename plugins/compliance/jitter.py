"""Datadog's deterministic start delay before each benchmark run."""

from __future__ import annotations

import struct

from host.scheduler import fnv1a64

_MASK64 = 0xFFFFFFFFFFFFFFFF
FIRST_RUN_CAP = 20 * 60.0


def benchmark_jitter(run_count: int, hostname: str, framework: str, interval: float) -> float:
    """Seconds to wait before run ``run_count`` of ``framework`` on ``hostname``.

    At most a tenth of the interval (capped at 20 minutes on the first run), from FNV-64a over
    (run count as little-endian uint64, hostname, framework id), as Datadog seeds it. Datadog
    then draws from Go's math/rand; we take the hash modulo the span in milliseconds, so the
    delay is deterministic per host and run but not the same number as Datadog's.
    """
    span = interval / 10
    if run_count == 0:
        span = min(span, FIRST_RUN_CAP)
    span_ms = int(span * 1000)
    if span_ms <= 0:
        return 0.0
    seed = struct.pack("<Q", run_count & _MASK64) + hostname.encode() + framework.encode()
    return (fnv1a64(seed) % span_ms) / 1000.0
