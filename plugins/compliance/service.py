"""The compliance runner: benchmarks per framework, with jitter and throttling on the reactor.

Rego benchmarks run every ``check_interval``: the host's scheduler owns that period (the
plugin's ``PluginSpec.interval``) and calls :meth:`ComplianceService.run` for one pass over the
frameworks; it never overlaps two passes and counts a skipped turn. XCCDF benchmarks run every
3 hours as a scheduler job of their own. Inside a pass, before each framework, the reference's
deterministic per-framework jitter (FNV-64a over run count, hostname and framework; see
:mod:`plugins.compliance.jitter`) and, between two rules, 2 seconds; :meth:`stop` cuts both
waits short, which is why the host asks the plugin to stop before it waits for the pass.

The host adds its own per-run jitter (at most a tenth of the interval, per job name) on top:
it spreads passes across a fleet but is keyed on the job, not the framework, and has no
first-run cap, so it cannot replace the reference's per-framework delay, which stays here.

Rule evaluation runs in the host's worker pool; timers use ``agent.reactor`` so tests drive
them with ``task.Clock``.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from twisted.internet import defer, task
from twisted.logger import Logger
from twisted.python.failure import Failure

from plugins.compliance.benchmark import Benchmark, LoadResult, Rule, load_benchmarks
from plugins.compliance.checker import Checker, default_rule_filter
from plugins.compliance.environment import HostEnv, docker_host_problem
from plugins.compliance.jitter import benchmark_jitter
from plugins.compliance.kube_apiserver import KubeTarget
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
    # KUBERNETES_SERVICE_HOST (set by Kubernetes in every pod) is read through the config
    # so that tests and unusual set-ups can name the API server and credentials themselves.
    kube = KubeTarget(
        host=cfg.get_str("compliance_config.kubernetes.service_host") or "",
        port=cfg.get_str("compliance_config.kubernetes.service_port") or "443",
        service_account_dir=cfg.get_str("compliance_config.kubernetes.service_account_dir"),
    )
    env = HostEnv(
        hostname=agent.hostname,
        host_root=cfg.get_str("compliance_config.host_root") or "/",
        kubernetes=bool(kube.host),
        kube_target=kube,
        docker_host=docker_host_of(agent),
    )
    env.proc_root = env.path("/proc")
    want_xccdf = cfg.get_bool("compliance_config.xccdf.enabled") or cfg.get_bool(
        "compliance_config.host_benchmarks.enabled"
    )
    env.xccdf_enabled = bool(want_xccdf and oscap_path())
    env.load_os_release()
    return env


def docker_host_of(agent: Any) -> str:
    """``compliance_config.docker_host`` (or ``DOCKER_HOST``), checked: ``unix:///path``."""
    value = agent.config.get_str("compliance_config.docker_host") or ""
    problem = docker_host_problem(value)
    if problem is not None:
        raise agent.config.value_error("compliance_config.docker_host", problem)
    return value


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
        self._loading: defer.Deferred[Any] | None = None

    # --- loading ---------------------------------------------------------------------------

    def load(self) -> LoadResult:
        """Read the benchmarks and declare their rules in status (in the calling thread)."""
        return self._declare(self._read())

    def _read(self) -> LoadResult:
        # Only this runs in a worker: status is read and written in the reactor thread.
        return load_benchmarks(self.dirs, "*.yaml", default_rule_filter(self.env))

    def _declare(self, result: LoadResult) -> LoadResult:
        for error in result.errors:
            log.error("compliance: {error}", error=error)
        self.status.load_errors = list(result.errors)
        by_framework: dict[str, list[Benchmark]] = {}
        for bench in result.benchmarks:
            by_framework.setdefault(bench.framework, []).append(bench)
        for framework, benches in by_framework.items():
            rule_ids = [r.id for b in benches for r in b.rules]
            self.status.declare(framework, benches[0].name, benches[0].version, rule_ids)
        self.status.keep_only(set(by_framework))
        self.loaded = True
        return result

    def _load_in_worker(self) -> defer.Deferred[LoadResult]:
        """Parse the benchmark files in a worker (YAML and filters must not hold the reactor,
        where status is served), then declare them in the reactor thread."""
        read: defer.Deferred[LoadResult] = self.agent.workers.defer(self._read)
        return read.addCallback(self._declare)

    def load_soon(self) -> None:
        """Load in a worker, unless a load is under way."""
        if self._loading is not None:
            return
        d = self._load_in_worker()
        self._loading = d

        def done(result: Any) -> None:
            self._loading = None
            if isinstance(result, Failure):
                log.failure("compliance: loading the benchmarks failed", result)

        d.addBoth(done)

    # --- running ---------------------------------------------------------------------------

    async def _sleep(self, seconds: float) -> None:
        if self.stopping:
            raise defer.CancelledError()  # stop() came while a rule was being evaluated
        if seconds <= 0:
            return
        d: defer.Deferred[Any] = task.deferLater(self.agent.reactor, seconds, lambda: None)
        self._sleeps.add(d)
        try:
            await d
        finally:
            self._sleeps.discard(d)

    def run(self) -> defer.Deferred[None]:
        """One pass over every Rego benchmark; the host calls it every ``check_interval``.

        After :meth:`stop` the pass ends at its next wait (jitter or throttling) or after the
        rule being evaluated in a worker, without error.
        """
        return defer.ensureDeferred(self._run(xccdf=False))

    def run_xccdf(self) -> defer.Deferred[None]:
        return defer.ensureDeferred(self._run(xccdf=True))

    async def _run(self, xccdf: bool) -> None:
        loaded = await self._load_in_worker()
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
        """Cancel pending waits so the pass in progress ends; a rule being evaluated in a
        worker finishes on its own (the host waits for it up to the stop timeout)."""
        self.stopping = True
        for d in list(self._sleeps):
            d.cancel()
        self.xccdf_checker.scans.kill_all()  # an OpenSCAP scan can take minutes
        if self.xccdf_job is not None:
            job, self.xccdf_job = self.xccdf_job, None
            return defer.maybeDeferred(job.stop, 5.0)
        return defer.succeed(None)
