"""The check runner: loads every configured check, schedules each instance, flushes metrics.

Each instance is one host scheduler job (``agent.scheduler.add``), so runs never overlap: a
turn that finds the previous run still going is skipped and counted, never stacked. The job
hands the run to the plugin's :class:`RunnerPool`. A failing check is shown in status and
keeps its schedule; it never makes the agent unhealthy (jobs get no health handle).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from twisted.internet import defer
from twisted.logger import Logger

from plugins.checks.aggregation import DEFAULT_FLUSH_INTERVAL, payloads
from plugins.checks.builtin_modules import BuiltinModules
from plugins.checks.check_host import CheckHost
from plugins.checks.instance import CheckInstance, RunResult
from plugins.checks.loader import (
    CheckLoadError,
    ConfigFileError,
    LoadedClass,
    SkipInstance,
    add_checksd_paths,
    discover,
    instantiate,
    load_class,
)
from plugins.checks.runner_pool import RunnerPool, Runners

if TYPE_CHECKING:
    from host.agent import Agent
    from host.scheduler import Job

log = Logger(namespace="checks")


@dataclass
class LoadReport:
    """What loading found: instances ready to run and what failed, by check name."""

    instances: list[CheckInstance] = field(default_factory=list)
    errors: dict[str, list[str]] = field(default_factory=dict)
    skipped: dict[str, list[str]] = field(default_factory=dict)
    configured: dict[str, int] = field(default_factory=dict)


def checksd_dirs(agent: Agent) -> list[str]:
    value = agent.config.get("additional_checksd")
    if isinstance(value, list):
        return [str(v) for v in value if v]
    return [str(value)] if value else []


class ChecksSetup:
    """The host side of checks for one agent: builtin modules, aggregator, loading."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.host = CheckHost(agent)
        self.builtins = BuiltinModules(self.host)

    def install(self) -> None:
        self.builtins.install()
        add_checksd_paths(checksd_dirs(self.agent))

    def load(self, only: str | None = None) -> LoadReport:
        """Load every check under ``confd_path`` (or only ``only``)."""
        report = LoadReport()
        confd = self.agent.config.get_str("confd_path")
        configs = discover(confd, only)
        for name, errors in configs.errors.items():
            report.errors.setdefault(name, []).extend(errors)
        base = self.builtins.base_class
        for name, instances in configs.instances.items():
            report.configured[name] = len(instances)
            if base is None:
                report.errors.setdefault(name, []).append(str(self.builtins.base_error))
                continue
            try:
                loaded = load_class(name, base)
            except CheckLoadError as error:
                report.errors.setdefault(name, []).extend(error.errors)
                continue
            for config in instances:
                self._instantiate(loaded, config, report)
        return report

    def _instantiate(self, loaded: LoadedClass, config: Any, report: LoadReport) -> None:
        name = config.name
        try:
            interval = config.interval()
            check = instantiate(loaded, config, self.agent.config.as_dict())
        except SkipInstance as skip:
            report.skipped.setdefault(name, []).append(str(skip))
            return
        except (ConfigFileError, RuntimeError) as error:
            report.errors.setdefault(name, []).append(str(error))
            return
        report.instances.append(CheckInstance(self.host, config, check, loaded.version, interval))

    def uninstall(self) -> None:
        self.builtins.uninstall()


class CheckRunner:
    """Schedules the loaded instances and flushes the aggregator while the agent runs."""

    def __init__(self, agent: Agent, pool: Runners | None = None) -> None:
        self.agent = agent
        self.setup = ChecksSetup(agent)
        self.pool: Runners = pool or RunnerPool(
            agent.reactor, agent.config.get_int("check_runners")
        )
        self.report = LoadReport()
        self.jobs: dict[str, Job] = {}
        self.flush_job: Job | None = None
        self.cancel_errors: dict[str, str] = {}
        self.emitted_payloads = 0

    @property
    def host(self) -> CheckHost:
        return self.setup.host

    @property
    def instances(self) -> list[CheckInstance]:
        return self.report.instances

    def start(self) -> None:
        self.setup.install()
        self.report = self.setup.load()
        for name, errors in self.report.errors.items():
            for error in errors:
                log.error("check {name} failed to load: {error}", name=name, error=error)
        self.pool.start()
        scheduler = self.agent.scheduler
        for instance in self.report.instances:
            job = scheduler.add(
                f"check:{instance.check_id}",
                functools.partial(self._fire, instance),
                interval=instance.interval,
            )
            self.jobs[instance.check_id] = job
            job.start()
        self.flush_job = scheduler.add("checks:flush", self.flush, interval=DEFAULT_FLUSH_INTERVAL)
        self.flush_job.start()
        log.info(
            "checks: {count} instance(s) scheduled on {runners} runner(s), "
            "{failed} check(s) failed",
            count=len(self.report.instances),
            runners=self.pool.size,
            failed=len(self.report.errors),
        )

    def _fire(self, instance: CheckInstance) -> defer.Deferred[RunResult]:
        d = self.pool.defer(instance.run_once)

        def logged(result: RunResult) -> RunResult:
            if result.error:
                log.error(
                    "Error running check {check_id}: {error}",
                    check_id=instance.check_id,
                    error=result.error,
                )
            return result

        return d.addCallback(logged)

    def flush(self) -> None:
        """Send what the checks committed since the last flush to the ``metrics`` sinks."""
        for payload in payloads(self.host.aggregator.take()):
            self.agent.events.emit("metrics", payload)
            self.emitted_payloads += 1

    @defer.inlineCallbacks
    def stop(self, timeout: float = 2.0) -> Any:
        """Unschedule every instance, ``cancel()`` each check, flush once more."""
        jobs = list(self.jobs.values())
        if self.flush_job is not None:
            jobs.append(self.flush_job)
        results = yield defer.gatherResults([job.stop(timeout) for job in jobs])
        for job in jobs:
            self.agent.scheduler.remove(job.name)
        for instance in self.report.instances:
            error = instance.cancel()
            if error:
                self.cancel_errors[instance.check_id] = error
                log.error("{check_id}: {error}", check_id=instance.check_id, error=error)
        self.flush()
        self.pool.stop()
        self.setup.uninstall()
        return all(results)

    # --- what status, expvar and the CLI show ---

    def runner_stats(self) -> dict[str, Any]:
        checks: dict[str, dict[str, Any]] = {}
        runs = errors = warnings = skipped = 0
        for instance in self.report.instances:
            snap = instance.snapshot()
            job = self.jobs.get(instance.check_id)
            snap["SkippedTurns"] = job.stats.skipped if job is not None else 0
            snap["Running"] = bool(job.running) if job is not None else False
            checks.setdefault(instance.name, {})[instance.check_id] = snap
            runs += snap["TotalRuns"]
            errors += snap["TotalErrors"]
            warnings += snap["TotalWarnings"]
            skipped += snap["SkippedTurns"]
        return {
            "Checks": checks,
            "Runs": runs,
            "Errors": errors,
            "Warnings": warnings,
            "SkippedTurns": skipped,
            "Workers": self.pool.stats(),
            "LoadErrors": {name: list(e) for name, e in self.report.errors.items()},
            "Skipped": {name: list(e) for name, e in self.report.skipped.items()},
        }

    def aggregator_stats(self) -> dict[str, Any]:
        stats = self.host.aggregator.stats()
        stats["payloads_emitted"] = self.emitted_payloads
        return stats
