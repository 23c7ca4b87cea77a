"""One scheduled check instance: its check object, its runs and the figures status shows."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from plugins.checks.loader import InstanceConfig, python_error

if TYPE_CHECKING:
    from plugins.checks.check_host import CheckHost


@dataclass
class InstanceStats:
    total_runs: int = 0
    total_errors: int = 0
    total_warnings: int = 0
    metric_samples: int = 0
    total_metric_samples: int = 0
    events: int = 0
    total_events: int = 0
    service_checks: int = 0
    total_service_checks: int = 0
    histogram_buckets: int = 0
    total_duration: float = 0.0
    last_duration: float = 0.0
    last_run: float | None = None
    last_success: float | None = None
    last_error: str = ""
    last_traceback: str = ""
    last_warnings: list[str] = field(default_factory=list)


@dataclass
class RunResult:
    """What one run gave: the error (empty when none), warnings and the committed output."""

    error: str
    traceback: str
    warnings: list[str]
    output: dict[str, list[dict[str, Any]]]


def parse_run_error(result: str) -> tuple[str, str]:
    """``run()``'s JSON ``[{"message", "traceback"}]`` -> (message, traceback)."""
    try:
        parsed = json.loads(result)
        first = parsed[0]
        return str(first["message"]), str(first.get("traceback", ""))
    except (ValueError, LookupError, TypeError):
        return result, ""


class CheckInstance:
    """Runs ``check.run()`` (in a runner thread) and keeps the figures of its runs."""

    def __init__(
        self, host: CheckHost, config: InstanceConfig, check: Any, version: str, interval: float
    ) -> None:
        self.host = host
        self.config = config
        self.check = check
        self.version = version
        self.interval = interval
        self.check_id = config.check_id
        self.stats = InstanceStats()
        self._lock = threading.Lock()
        empty_host = bool(config.instance.get("empty_default_hostname"))
        service = config.instance.get("service", config.init_config.get("service"))
        host.aggregator.sampler(
            self.check_id,
            interval,
            "" if empty_host else host.get_hostname(),
            [f"service:{service}"] if service else [],
        )

    @property
    def name(self) -> str:
        return self.config.name

    def run_once(self) -> RunResult:
        started = time.time()
        clock = time.perf_counter()
        error = traceback = ""
        try:
            result = self.check.run()
        except Exception:
            error = "error invoking 'run' method: " + python_error()
        else:
            if not isinstance(result, str):
                error = (
                    "error invoking 'run' method: unknown error "
                    f"(run() returned {type(result).__name__}, not str)"
                )
            elif result:
                error, traceback = parse_run_error(result)
        warnings: list[str] = []
        try:
            raw_warnings = self.check.get_warnings()
            if not isinstance(raw_warnings, list):
                raise TypeError(f"'get_warnings' returned {type(raw_warnings).__name__}, not list")
            warnings = [str(w) for w in raw_warnings]
        except Exception:
            warnings = ["error invoking 'get_warnings' method: " + python_error()]
        sampler = self.host.aggregator.sampler(self.check_id)
        counts = sampler.counts
        duration = time.perf_counter() - clock
        output = self.host.aggregator.commit(self.check_id)
        with self._lock:
            s = self.stats
            s.total_runs += 1
            s.last_run = started
            s.last_duration = duration
            s.total_duration += duration
            s.metric_samples = counts.metric_samples
            s.total_metric_samples += counts.metric_samples
            s.events = counts.events
            s.total_events += counts.events
            s.service_checks = counts.service_checks
            s.total_service_checks += counts.service_checks
            s.histogram_buckets = counts.histogram_buckets
            s.last_warnings = warnings
            s.total_warnings += len(warnings)
            if error:
                s.total_errors += 1
                s.last_error, s.last_traceback = error, traceback
            else:
                s.last_error = s.last_traceback = ""
                s.last_success = started
        return RunResult(error, traceback, warnings, output)

    def cancel(self) -> str:
        """rtloader's ``cancel_check``; returns the error text, empty when none."""
        try:
            self.check.cancel()
        except Exception:
            return "error invoking 'cancel' method: " + python_error()
        return ""

    def state(self) -> str:
        with self._lock:
            return self.state_unlocked()

    def snapshot(self) -> dict[str, Any]:
        """Datadog's runner expvar names for one instance."""
        with self._lock:
            s = self.stats
            runs = s.total_runs
            return {
                "CheckID": self.check_id,
                "CheckName": self.name,
                "CheckVersion": self.version,
                "CheckConfigSource": self.config.source,
                "Interval": self.interval,
                "State": self.state_unlocked(),
                "TotalRuns": runs,
                "TotalErrors": s.total_errors,
                "TotalWarnings": s.total_warnings,
                "MetricSamples": s.metric_samples,
                "TotalMetricSamples": s.total_metric_samples,
                "Events": s.events,
                "TotalEvents": s.total_events,
                "ServiceChecks": s.service_checks,
                "TotalServiceChecks": s.total_service_checks,
                "HistogramBuckets": s.histogram_buckets,
                "AverageExecutionTime": round(s.total_duration / runs * 1000) if runs else 0,
                "LastExecutionTime": round(s.last_duration * 1000),
                "LastExecutionDate": s.last_run,
                "LastSuccessDate": s.last_success,
                "LastError": s.last_error,
                "LastTraceback": s.last_traceback,
                "LastWarnings": list(s.last_warnings),
            }

    def state_unlocked(self) -> str:
        s = self.stats
        if s.total_runs == 0:
            return "PENDING"
        if s.last_error:
            return "ERROR"
        return "WARNING" if s.last_warnings else "OK"
