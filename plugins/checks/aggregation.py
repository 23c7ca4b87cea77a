"""The aggregator: Datadog's check-sampler semantics, and the payloads flushed to the sinks.

Each check instance has a :class:`CheckSampler`. Submissions of one run accumulate in it;
when the run ends the runner *commits* it, which turns every context (name, type, tags, host)
into series points as the Datadog Agent does:

* gauge — the last value of the run; count — the sum;
* rate — ``(v2 - v1) / (t2 - t1)`` between two runs, sent as a gauge; a negative rate
  (a reset) is dropped;
* monotonic_count — the sum of the positive differences between consecutive samples, across
  runs; a decrease is a reset and contributes nothing; the very first value is sent only with
  ``flush_first_value``;
* counter (``increment``) — the sum per second of the check interval, sent as a rate;
* histogram/historate — ``.max``, ``.median``, ``.avg``, ``.count`` (a rate per second of the
  interval) and ``.95percentile`` of the run's samples (historate: of the rates between
  consecutive samples).

Committed series, service checks and events wait in :class:`Aggregator` until the periodic
flush (every 15 s) hands them to ``agent.events.emit("metrics", payload)``. Payload shapes,
close to Datadog's v1 intake JSON (one payload per kind, as Datadog uses one endpoint each)::

    {"kind": "series", "series": [{"metric", "points": [[ts, value]], "tags", "host",
                                   "type": "gauge"|"count"|"rate", "interval",
                                   "source_type_name": "System"}]}
    {"kind": "service_checks", "service_checks": [{"check", "host_name", "timestamp",
                                                   "status", "message", "tags"}]}
    {"kind": "events", "events": [{"msg_title", "msg_text", "timestamp", "priority", "host",
                                   "tags", "alert_type", "aggregation_key",
                                   "source_type_name", "event_type"}]}
    {"kind": "sketches", "sketches": [{"metric", "buckets": [...], "tags", "host"}]}
"""

# The sampler's methods take rtloader's callback arguments, in rtloader's order.
# ruff: noqa: PLR0917

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

GAUGE, RATE, COUNT, MONOTONIC_COUNT, COUNTER, HISTOGRAM, HISTORATE = range(7)
DEFAULT_FLUSH_INTERVAL = 15.0
CONTEXT_EXPIRY_RUNS = 5
"""A context not submitted for this many runs is forgotten (its rate/monotonic history too),
so a check whose tags change (a PID, a container) does not grow memory for ever."""

Context = tuple[str, int, tuple[str, ...], str]


@dataclass
class _ContextState:
    """What one context keeps, within a run and (rate, monotonic) across runs."""

    flush_first_value: bool = False
    values: list[float] = field(default_factory=list)
    sample_times: list[float] = field(default_factory=list)
    previous: float | None = None
    previous_time: float | None = None
    monotonic_sum: float = 0.0
    monotonic_ready: bool = False
    last_commit: int = 0


def _histogram_points(
    name: str, samples: list[float], interval: float
) -> list[tuple[str, str, float]]:
    ordered = sorted(samples)
    n = len(ordered)
    return [
        (f"{name}.max", "gauge", ordered[-1]),
        (f"{name}.median", "gauge", ordered[(n - 1) // 2]),
        (f"{name}.avg", "gauge", sum(ordered) / n),
        (f"{name}.count", "rate", n / interval),
        (f"{name}.95percentile", "gauge", ordered[max(0, (95 * n - 1) // 100)]),
    ]


@dataclass
class RunCounts:
    """Submissions of one run, for status (``Metric Samples: Last Run``…)."""

    metric_samples: int = 0
    service_checks: int = 0
    events: int = 0
    histogram_buckets: int = 0


class CheckSampler:
    """The submissions of one check instance; see the module docstring for the semantics."""

    def __init__(
        self, check_id: str, interval: float, default_host: str, extra_tags: list[str]
    ) -> None:
        self.check_id = check_id
        self.interval = interval
        self.default_host = default_host
        self.extra_tags = extra_tags
        self._contexts: dict[Context, _ContextState] = {}
        self._raw_keys: dict[
            tuple[str, int, tuple[str, ...], str], tuple[Context, _ContextState]
        ] = {}
        self._touched: set[Context] = set()
        self._commits = 0
        # Types whose flush depends on earlier runs (unknown types would raise KeyError here,
        # but the builtin module only accepts the seven of rtloader).
        self._stateful: dict[
            int, Callable[[str, _ContextState, float], list[tuple[str, str, float]]]
        ] = {
            RATE: self._flush_rate,
            MONOTONIC_COUNT: self._flush_monotonic,
            HISTORATE: self._flush_historate,
        }
        self.service_checks: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.sketches: list[dict[str, Any]] = []
        self.counts = RunCounts()

    def _host(self, hostname: str) -> str:
        return hostname or self.default_host

    def _tags(self, tags: list[str]) -> list[str]:
        return sorted(set(tags) | set(self.extra_tags)) if self.extra_tags else sorted(set(tags))

    def add_sample(
        self,
        mtype: int,
        name: str,
        value: float,
        tags: list[str],
        hostname: str,
        flush_first_value: bool,
        now: float,
    ) -> None:
        # Checks submit the same contexts run after run: look the raw submission up first and
        # normalise (sort, dedupe, add extra tags, default host) only for a new one.
        raw = (name, mtype, tuple(tags), hostname)
        found = self._raw_keys.get(raw)
        if found is None:
            key: Context = (name, mtype, tuple(self._tags(tags)), self._host(hostname))
            state = self._contexts.get(key)
            if state is None:
                state = self._contexts[key] = _ContextState(flush_first_value=flush_first_value)
            found = self._raw_keys[raw] = (key, state)
        key, state = found
        state.values.append(value)
        if mtype == HISTORATE:
            state.sample_times.append(now)
        self._touched.add(key)
        self.counts.metric_samples += 1

    def add_service_check(
        self, name: str, status: int, tags: list[str], hostname: str, message: str, now: float
    ) -> None:
        self.service_checks.append(
            {
                "check": name,
                "host_name": self._host(hostname),
                "timestamp": int(now),
                "status": status,
                "message": message,
                "tags": self._tags(tags),
            }
        )
        self.counts.service_checks += 1

    def add_event(self, event: dict[str, Any], now: float) -> None:
        payload = dict(event)
        if not payload.get("timestamp"):
            payload["timestamp"] = int(now)
        payload["host"] = self._host(str(payload.get("host") or ""))
        payload["tags"] = self._tags(list(payload.get("tags") or []))
        self.events.append(payload)
        self.counts.events += 1

    def add_histogram_bucket(
        self,
        name: str,
        value: int,
        lower: float,
        upper: float,
        monotonic: bool,
        hostname: str,
        tags: list[str],
    ) -> None:
        self.sketches.append(
            {
                "metric": name,
                "buckets": [
                    {
                        "count": value,
                        "lower_bound": lower,
                        "upper_bound": upper,
                        "monotonic": monotonic,
                    }
                ],
                "tags": self._tags(tags),
                "host": self._host(hostname),
            }
        )
        self.counts.histogram_buckets += 1

    def commit(self, now: float) -> dict[str, list[dict[str, Any]]]:
        """End of a run: the series, service checks, events and sketches it produced."""
        series: list[dict[str, Any]] = []
        self._commits += 1
        for key in sorted(self._touched):
            name, mtype, tags, host = key
            state = self._contexts[key]
            state.last_commit = self._commits
            for metric, kind, value in self._flush_context(name, mtype, state, now):
                point: dict[str, Any] = {
                    "metric": metric,
                    "points": [[int(now), value]],
                    "tags": list(tags),
                    "host": host,
                    "type": kind,
                    "interval": int(self.interval) if kind != "gauge" else 0,
                    "source_type_name": "System",
                }
                series.append(point)
            state.values.clear()
            state.sample_times.clear()
        self._touched.clear()
        self._raw_keys.clear()
        expired = [
            k
            for k, st in self._contexts.items()
            if self._commits - st.last_commit >= CONTEXT_EXPIRY_RUNS
        ]
        for key in expired:
            del self._contexts[key]
        out = {
            "series": series,
            "service_checks": self.service_checks,
            "events": self.events,
            "sketches": self.sketches,
        }
        self.service_checks, self.events, self.sketches = [], [], []
        self.counts = RunCounts()
        return out

    def _flush_context(
        self, name: str, mtype: int, state: _ContextState, now: float
    ) -> list[tuple[str, str, float]]:
        values = state.values
        if mtype == GAUGE:
            return [(name, "gauge", values[-1])]
        if mtype == COUNT:
            return [(name, "count", sum(values))]
        if mtype == COUNTER:
            return [(name, "rate", sum(values) / self.interval)]
        if mtype == HISTOGRAM:
            return _histogram_points(name, values, self.interval)
        return self._stateful[mtype](name, state, now)

    def _flush_rate(
        self, name: str, state: _ContextState, now: float
    ) -> list[tuple[str, str, float]]:
        result: list[tuple[str, str, float]] = []
        value = state.values[-1]
        if (
            state.previous is not None
            and state.previous_time is not None
            and now > state.previous_time
        ):
            rate = (value - state.previous) / (now - state.previous_time)
            if rate >= 0:  # a negative rate means the counter was reset: drop it
                result.append((name, "gauge", rate))
        state.previous, state.previous_time = value, now
        return result

    def _flush_monotonic(
        self, name: str, state: _ContextState, _now: float
    ) -> list[tuple[str, str, float]]:
        total = 0.0
        for value in state.values:
            if state.previous is None:
                if state.flush_first_value:
                    total += value
                    state.monotonic_ready = True
            else:
                state.monotonic_ready = True
                if value > state.previous:  # a decrease is a reset: count nothing for it
                    total += value - state.previous
            state.previous = value
        if not state.monotonic_ready:
            return []
        return [(name, "count", total)]

    def _flush_historate(
        self, name: str, state: _ContextState, _now: float
    ) -> list[tuple[str, str, float]]:
        rates: list[float] = []
        for value, when in zip(state.values, state.sample_times, strict=True):
            if (
                state.previous is not None
                and state.previous_time is not None
                and when > state.previous_time
            ):
                rates.append((value - state.previous) / (when - state.previous_time))
            state.previous, state.previous_time = value, when
        return _histogram_points(name, rates, self.interval) if rates else []


class Aggregator:
    """Committed results of every check, waiting for the next flush. Thread-safe."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._samplers: dict[str, CheckSampler] = {}
        self._pending: dict[str, list[dict[str, Any]]] = self._empty()
        self.flushed = {"series": 0, "service_checks": 0, "events": 0, "sketches": 0}
        self.flushes = 0

    @staticmethod
    def _empty() -> dict[str, list[dict[str, Any]]]:
        return {"series": [], "service_checks": [], "events": [], "sketches": []}

    def now(self) -> float:
        return self._clock()

    def sampler(
        self,
        check_id: str,
        interval: float = DEFAULT_FLUSH_INTERVAL,
        default_host: str = "",
        extra_tags: list[str] | None = None,
    ) -> CheckSampler:
        """The sampler of ``check_id`` (created on first use, e.g. for an unknown check)."""
        sampler = self._samplers.get(check_id)  # a dict read is atomic: no lock on the hot path
        if sampler is not None:
            return sampler
        with self._lock:
            sampler = self._samplers.get(check_id)
            if sampler is None:
                sampler = CheckSampler(check_id, interval, default_host, extra_tags or [])
                self._samplers[check_id] = sampler
            return sampler

    def commit(self, check_id: str) -> dict[str, list[dict[str, Any]]]:
        """Commit one run of ``check_id``; what it produced is returned and queued."""
        result = self.sampler(check_id).commit(self.now())
        with self._lock:
            for kind, items in result.items():
                self._pending[kind].extend(items)
        return result

    def take(self) -> dict[str, list[dict[str, Any]]]:
        """Everything committed since the last flush."""
        with self._lock:
            pending, self._pending = self._pending, self._empty()
            for kind, items in pending.items():
                self.flushed[kind] += len(items)
            self.flushes += 1
        return pending

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "flushes": self.flushes,
                "flushed": dict(self.flushed),
                "pending": {kind: len(items) for kind, items in self._pending.items()},
                "contexts": sum(len(s._contexts) for s in self._samplers.values()),
            }


def payloads(pending: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The non-empty payloads of one flush, one per kind (see the module docstring)."""
    return [{"kind": kind, kind: items} for kind, items in pending.items() if items]
