"""``/telemetry``: the ``/debug/vars`` figures as Prometheus metrics.

A collector of our own turns one snapshot of the variables into metric families at scrape
time, registered in a :class:`~prometheus_client.CollectorRegistry` of this plugin's (the
global registry is process-wide state other code, third-party plugins included, writes to).
Published variables become the gauge ``security_agent_var{name, path}``, one sample per numeric
leaf; :data:`MAX_VAR_SAMPLES` bounds how many, and ``security_agent_var_dropped`` counts what
did not fit, so a plugin publishing a huge map cannot blow up a scrape unnoticed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from plugins.expvar.variables import BUILTIN_NAMES

PREFIX = "security_agent_"
MAX_VAR_SAMPLES = 1000
_MAX_DEPTH = 4

_PROCESS_GAUGES = (
    ("rss_bytes", "process_resident_memory_bytes", "Resident memory size in bytes."),
    ("rss_peak_bytes", "process_resident_memory_peak_bytes", "Peak resident memory in bytes."),
    ("virtual_bytes", "process_virtual_memory_bytes", "Virtual memory size in bytes."),
    ("open_fds", "process_open_fds", "Open file descriptors."),
    ("os_threads", "process_threads", "Threads of the process, as the kernel counts them."),
    ("python_threads", "python_threads", "Live Python threads."),
    ("allocated_blocks", "python_allocated_blocks", "Memory blocks the interpreter holds."),
)

_JOB_COUNTERS = (
    ("runs", "scheduler_runs", "Runs that succeeded."),
    ("errors", "scheduler_errors", "Runs that raised."),
    ("skipped", "scheduler_skipped", "Turns skipped because the previous run was still going."),
    ("overruns", "scheduler_overruns", "Runs that outlasted their deadline."),
)

_JOB_GAUGES = (
    ("last_duration", "scheduler_last_duration_seconds", "Duration of the last finished run."),
    ("average_duration", "scheduler_average_duration_seconds", "Mean duration of runs."),
)


def _number(value: Any) -> float | None:
    # Booleans are ints in Python but not figures.
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def numeric_leaves(value: Any, path: str = "", depth: int = 0) -> Iterator[tuple[str, float]]:
    """``(dotted path, number)`` for every number in a JSON-ready value, to depth 4."""
    number = _number(value)
    if number is not None:
        yield path, number
    elif depth < _MAX_DEPTH and isinstance(value, Mapping):
        for key, item in value.items():
            yield from numeric_leaves(item, f"{path}.{key}" if path else str(key), depth + 1)
    elif depth < _MAX_DEPTH and isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from numeric_leaves(item, f"{path}.{index}" if path else str(index), depth + 1)


class AgentCollector(Collector):
    """Builds every metric family from ``snapshot()`` (the dict :func:`collect_vars` returns)."""

    def __init__(self, snapshot: Callable[[], dict[str, Any]]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        values = self._snapshot()
        yield from self._process(values.get("memstats"))
        yield from self._scheduler(values.get("scheduler"))
        yield from self._events(values.get("events"))
        yield from self._workers(values.get("workers"))
        yield from self._requests(values.get("expvar"))
        yield from self._published(values)

    def _process(self, stats: Any) -> Iterator[Metric]:
        if not isinstance(stats, Mapping):
            return
        for key, name, doc in _PROCESS_GAUGES:
            number = _number(stats.get(key))
            if number is not None:
                yield GaugeMetricFamily(PREFIX + name, doc, value=number)
        generations = (stats.get("gc") or {}).get("generations") or []
        for key, doc in (
            ("collections", "Garbage collections per generation."),
            ("collected", "Objects collected per generation."),
            ("uncollectable", "Uncollectable objects found per generation."),
        ):
            family = CounterMetricFamily(f"{PREFIX}python_gc_{key}", doc, labels=["generation"])
            for index, generation in enumerate(generations):
                family.add_metric([str(index)], float(generation.get(key, 0)))
            yield family
        heap = stats.get("tracemalloc") or {}
        if heap.get("tracing"):
            yield GaugeMetricFamily(
                PREFIX + "python_tracemalloc_current_bytes",
                "Memory traced by tracemalloc.",
                value=float(heap.get("current_bytes", 0)),
            )

    def _scheduler(self, jobs: Any) -> Iterator[Metric]:
        if not isinstance(jobs, Mapping) or "error" in jobs:
            return
        for key, name, doc in _JOB_COUNTERS:
            counter = CounterMetricFamily(PREFIX + name, doc, labels=["plugin"])
            for job, figures in sorted(jobs.items()):
                counter.add_metric([job], float(figures.get(key) or 0))
            yield counter
        running = GaugeMetricFamily(
            PREFIX + "scheduler_running", "1 while a run is in progress.", labels=["plugin"]
        )
        for job, figures in sorted(jobs.items()):
            running.add_metric([job], 1.0 if figures.get("running") else 0.0)
        yield running
        for key, name, doc in _JOB_GAUGES:
            gauge = GaugeMetricFamily(PREFIX + name, doc, labels=["plugin"])
            for job, figures in sorted(jobs.items()):
                number = _number(figures.get(key))
                if number is not None:
                    gauge.add_metric([job], number)
            yield gauge

    def _events(self, stats: Any) -> Iterator[Metric]:
        if not isinstance(stats, Mapping):
            return
        for key, doc in (
            ("emitted", "Events plugins emitted."),
            ("delivered", "Events a sink accepted."),
            ("unrouted", "Events no sink takes (dropped, counted)."),
            ("failed", "Events a sink raised on."),
        ):
            family = CounterMetricFamily(f"{PREFIX}events_{key}", doc, labels=["track"])
            for track, count in sorted((stats.get(key) or {}).items()):
                family.add_metric([track], float(count))
            yield family

    def _workers(self, stats: Any) -> Iterator[Metric]:
        if not isinstance(stats, Mapping):
            return
        for key, doc in (
            ("size", "Threads of the blocking-work pool."),
            ("busy", "Pool threads running a job."),
            ("queued", "Jobs waiting for a pool thread."),
        ):
            number = _number(stats.get(key))
            if number is not None:
                yield GaugeMetricFamily(f"{PREFIX}workers_{key}", doc, value=number)

    def _requests(self, own: Any) -> Iterator[Metric]:
        if not isinstance(own, Mapping):
            return
        family = CounterMetricFamily(
            PREFIX + "expvar_requests", "Requests the expvar server answered.", labels=["code"]
        )
        for code, count in sorted(own["requests"]["by_code"].items()):
            family.add_metric([code], float(count))
        yield family

    def _published(self, values: Mapping[str, Any]) -> Iterator[Metric]:
        gauge = GaugeMetricFamily(
            PREFIX + "var",
            "Numeric leaves of the variables plugins publish.",
            labels=["name", "path"],
        )
        kept = dropped = 0
        for name, value in values.items():
            if name in BUILTIN_NAMES:
                continue
            for path, number in numeric_leaves(value):
                if kept < MAX_VAR_SAMPLES:
                    gauge.add_metric([name, path], number)
                    kept += 1
                else:
                    dropped += 1
        yield gauge
        yield GaugeMetricFamily(
            PREFIX + "var_dropped",
            f"Published numbers left out of security_agent_var (over {MAX_VAR_SAMPLES}).",
            value=float(dropped),
        )


def make_registry(snapshot: Callable[[], dict[str, Any]]) -> CollectorRegistry:
    """A registry of our own holding only the agent collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(AgentCollector(snapshot))
    return registry
