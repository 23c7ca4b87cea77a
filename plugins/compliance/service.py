"""The compliance runner: benchmarks per framework, with jitter and throttling on the reactor.

Rego benchmarks run every ``check_interval`` (the host calls :meth:`ComplianceService.run`),
XCCDF benchmarks every 3 hours (a job of their own). Before a framework, a deterministic jitter;
between two rules, 2 seconds. Rule evaluation runs in the host's worker pool; timers use
``agent.reactor`` so tests drive them with ``task.Clock``.
"""

from __future__ import annotations

import os
from importlib import resources
from typing import Any

from twisted.internet import defer, task
from twisted.logger import Logger
from twisted.python.failure import Failure

from plugins.compliance.benchmark import Benchmark, LoadResult, Rule, load_benchmarks
from plugins.compliance.checker import Checker, default_rule_filter
from plugins.compliance.environment import HostEnv, detect_kubernetes
from plugins.compliance.jitter import benchmark_jitter
from plugins.compliance.status import ComplianceStatus
from plugins.compliance.xccdf_eval import oscap_path

log = Logger(namespace="compliance")

EVAL_THROTTLING = 2.0
XCCDF_INTERVAL = 3 * 3600.0
DEFAULT_INTERVAL = 20 * 60.0


def builtin_benchmarks_dir() -> str:
    return str(resources.files("plugins.compliance").joinpath("benchmarks"))


def host_env_from_config(agent: Any) -> HostEnv:
    cfg = agent.config
    env = HostEnv(
        hostname=agent.hostname,
        host_root=cfg.get_str("compliance_config.host_root") or "/",
        kubernetes=detect_kubernetes(),
    )
    env.proc_root = env.path("/proc")
    want_xccdf = cfg.get_bool("compliance_config.xccdf.enabled") or cfg.get_bool(
        "compliance_config.host_benchmarks.enabled"
    )
    env.xccdf_enabled = bool(want_xccdf and oscap_path())
    env.load_os_release()
    return env


def benchmark_dirs(agent: Any) -> list[str]:
    dirs = [agent.config.get_str("compliance_config.dir")]
    if agent.config.get_bool("compliance_config.builtin_benchmarks"):
        dirs.append(builtin_benchmarks_dir())
    return [d for d in dirs if d]


def check_interval_of(agent: Any) -> float:
    interval = float(agent.config.get_duration("compliance_config.check_interval"))
    if interval <= 0:
        raise agent.config.value_error(
            "compliance_config.check_interval", f"must be positive, got {interval:g}s"
        )
    return interval


def split(benchmarks: list[Benchmark], xccdf: bool) -> list[Benchmark]:
    """The benchmarks restricted to their XCCDF rules (``xccdf``) or to their Rego rules."""
    out = []
    for bench in benchmarks:
        rules = [r for r in bench.rules if r.is_xccdf == xccdf]
        if rules:
            out.append(
                Benchmark(bench.path, bench.name, bench.framework, bench.version, bench.tags, rules)
            )
    return out


class ComplianceService:
    def __init__(self, agent: Any, env: HostEnv, dirs: list[str], interval: float) -> None:
        self.agent = agent
        self.env = env
        self.dirs = dirs
        self.interval = interval
        self.status = ComplianceStatus()
        self.checker = Checker(env, agent.version, interval, clock=agent.reactor.seconds)
        self.xccdf_checker = Checker(
            env, agent.version, XCCDF_INTERVAL, clock=agent.reactor.seconds
        )
        self.run_counts: dict[str, int] = {}
        self.stopping = False
        self._sleeps: set[defer.Deferred[Any]] = set()
        self.xccdf_job: Any = None
        self.loaded = False
        self.current: defer.Deferred[None] | None = None
        self.skipped_runs = 0
        self.failed_runs = 0

    # --- loading ---------------------------------------------------------------------------

    def load(self) -> LoadResult:
        result = load_benchmarks(self.dirs, "*.yaml", default_rule_filter(self.env))
        for error in result.errors:
            log.error("compliance: {error}", error=error)
        self.status.load_errors = list(result.errors)
        self.loaded = True
        by_framework: dict[str, list[Benchmark]] = {}
        for bench in result.benchmarks:
            by_framework.setdefault(bench.framework, []).append(bench)
        for framework, benches in by_framework.items():
            rule_ids = [r.id for b in benches for r in b.rules]
            self.status.declare(framework, benches[0].name, benches[0].version, rule_ids)
        self.status.keep_only(set(by_framework))
        return result

    # --- running ---------------------------------------------------------------------------

    async def _sleep(self, seconds: float) -> None:
        if seconds <= 0:
            return
        d: defer.Deferred[Any] = task.deferLater(self.agent.reactor, seconds, lambda: None)
        self._sleeps.add(d)
        try:
            await d
        finally:
            self._sleeps.discard(d)

    def run(self) -> defer.Deferred[None]:
        """One run of every Rego benchmark (the host calls it every ``check_interval``)."""
        return defer.ensureDeferred(self._run(xccdf=False))

    def start_run(self) -> None:
        """Start a run in the background, unless the previous one is still going.

        The run is not handed to the host: a run spends most of its time waiting (jitter,
        throttling), and the host waits for a plugin's run to end before calling its stop, so
        a run it held would delay the agent's stop by the whole wait.
        """
        if self.current is not None:
            self.skipped_runs += 1
            log.warn("compliance: previous run still going; skipping this turn")
            return
        d = self.run()
        self.current = d

        def done(result: Any) -> None:
            self.current = None
            cancelled = isinstance(result, Failure) and result.check(defer.CancelledError)  # type: ignore[no-untyped-call]
            if isinstance(result, Failure) and not cancelled:
                self.failed_runs += 1
                log.failure("compliance: run failed", result)

        d.addBoth(done)

    def run_xccdf(self) -> defer.Deferred[None]:
        return defer.ensureDeferred(self._run(xccdf=True))

    async def _run(self, xccdf: bool) -> None:
        loaded = await self.agent.workers.defer(self.load)
        benchmarks = split(loaded.benchmarks, xccdf)
        if not benchmarks:
            if not xccdf:
                log.info("compliance: no rego benchmark to run")
            return
        checker = self.xccdf_checker if xccdf else self.checker
        checker.new_run()
        interval = XCCDF_INTERVAL if xccdf else self.interval
        try:
            for bench in benchmarks:
                key = ("xccdf:" if xccdf else "") + bench.framework
                count = self.run_counts.get(key, 0)
                self.run_counts[key] = count + 1
                await self._sleep(
                    benchmark_jitter(count, self.env.hostname, bench.framework, interval)
                )
                for i, rule in enumerate(bench.rules):
                    if self.stopping:
                        return
                    if i:
                        await self._sleep(EVAL_THROTTLING)
                    events = await self.agent.workers.defer(checker.events, bench, rule)
                    self.report(bench, rule, events)
                self.status.frameworks[bench.framework].runs += 1
        except defer.CancelledError:
            return  # stop() cancelled a pending timer

    def report(self, bench: Benchmark, rule: Rule, events: list[dict[str, Any]]) -> None:
        """Record the rule's results and send its findings; skipped ones are not sent."""
        self.status.record(bench.framework, rule.id, [e["result"] for e in events])
        sent = 0
        for event in events:
            if event["result"] == "skipped":
                continue
            self.agent.events.emit("compliance", event)
            sent += 1
        self.status.count_events(sent, len(events) - sent)

    def start_xccdf(self) -> None:
        if self.xccdf_job is None and self.env.xccdf_enabled:
            self.xccdf_job = self.agent.scheduler.add(
                "compliance-xccdf", self.run_xccdf, interval=XCCDF_INTERVAL
            )
            self.xccdf_job.start()

    def stop(self) -> defer.Deferred[Any]:
        """Cancel pending waits; a rule being evaluated in a worker finishes on its own."""
        self.stopping = True
        for d in list(self._sleeps):
            d.cancel()
        if self.current is not None:
            self.current.cancel()
        self.xccdf_checker.scans.kill_all()  # an OpenSCAP scan can take minutes
        if self.xccdf_job is not None:
            job, self.xccdf_job = self.xccdf_job, None
            return defer.maybeDeferred(job.stop, 5.0)
        return defer.succeed(None)


def xccdf_available() -> bool:
    return oscap_path() is not None and os.path.isdir("/usr/share/xml/scap/ssg/content")
