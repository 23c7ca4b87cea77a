"""Internal profiling: the agent profiling itself, as ``setupInternalProfiling`` does.

With the optional profiler extra installed (``pip install 'security-agent-host[profiling]'``,
which brings ``ddtrace``), its profiler is started with the service, env, version and tags,
and uploads on its own schedule to the local trace agent (``TRACE_AGENT_URL``) or to the
intake of ``site``; ddtrace has no setting for an arbitrary ``profile_dd_url``, so that one is
reported as ignored. Without it, the agent's own
:class:`~plugins.expvar.sampler.SamplingProfiler` captures a CPU profile every ``period`` for
``cpu_duration`` and writes it under ``<run_path>/profiles/``; one log line at start says so.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from typing import TYPE_CHECKING, Any

from twisted.internet import defer
from twisted.logger import Logger

from plugins.expvar.profiling_settings import PROFILING_URL_TEMPLATE, ProfilingSettings
from plugins.expvar.sampler import SamplingProfiler

if TYPE_CHECKING:
    from host.agent import Agent
    from host.scheduler import Job

log = Logger(namespace="expvar.profiling")

JOB_NAME = "expvar.internal_profiling"
PROFILER_PACKAGE = "ddtrace"
PROFILER_MODULE = "ddtrace.profiling"


def load_profiler_extra(environment: dict[str, str]) -> Any | None:
    """``ddtrace.profiling`` when the extra is installed, else ``None``.

    ddtrace reads its endpoint from the process environment when it is imported, so
    ``environment`` is put there first; a variable the operator already set wins.
    """
    if importlib.util.find_spec(PROFILER_PACKAGE) is None:
        return None
    for name, value in environment.items():
        os.environ.setdefault(name, value)
    try:
        return importlib.import_module(PROFILER_MODULE)
    except ImportError:
        return None


class InternalProfiling:
    """Runs whichever profiler is available for as long as the plugin runs."""

    def __init__(self, agent: Agent, settings: ProfilingSettings) -> None:
        self._agent = agent
        self.settings = settings
        self.directory = os.path.join(agent.run_path, "profiles")
        self.mode = "off"
        self.sampler: SamplingProfiler | None = None
        self.job: Job | None = None
        self._extra_profiler: Any = None

    def start(self) -> None:
        """Start profiling; errors from the extra's profiler propagate (a failed start)."""
        module = load_profiler_extra(self.settings.extra_environment())
        if module is not None:
            self._start_extra(module)
            return
        self.sampler = SamplingProfiler(
            self.directory,
            self._agent.reactor,
            cpu_duration=self.settings.cpu_duration,
            max_files=self.settings.max_files,
        )
        self.job = self._agent.scheduler.add(
            JOB_NAME, self.sampler.capture, interval=self.settings.period
        )
        self.job.start()
        self.mode = "local"
        log.info(
            "Internal profiling: the profiler extra (ddtrace) is not installed, "
            "so CPU profiles go to {directory}",
            directory=self.directory,
        )

    def _start_extra(self, module: Any) -> None:
        settings = self.settings
        # The documented constructor takes these four; the endpoint comes from the
        # environment set by load_profiler_extra().
        kwargs: dict[str, Any] = {
            "service": settings.service,
            "version": settings.version,
            "tags": settings.tag_map(),
        }
        if settings.env:
            kwargs["env"] = settings.env
        profiler = module.Profiler(**kwargs)
        profiler.start()
        self._extra_profiler = profiler
        self.mode = "ddtrace"
        endpoint = settings.url
        if not settings.trace_agent_url and settings.url != PROFILING_URL_TEMPLATE % settings.site:
            endpoint = PROFILING_URL_TEMPLATE % settings.site
            log.warn(
                "Internal profiling: the profiler extra cannot send to profile_dd_url {url}; "
                "profiles go to {endpoint}",
                url=settings.url,
                endpoint=endpoint,
            )
        log.info(
            "Internal profiling: sending profiles to {url} as {service}",
            url=endpoint,
            service=settings.service,
        )

    def stop(self, timeout: float) -> defer.Deferred[Any]:
        """Stop the profiler; a capture in progress ends early and still writes its file."""
        if self._extra_profiler is not None:
            profiler, self._extra_profiler = self._extra_profiler, None
            profiler.stop(flush=False)
        if self.sampler is not None:
            self.sampler.stop()
        if self.job is not None:
            job, self.job = self.job, None
            self._agent.scheduler.remove(JOB_NAME)
            return job.stop(timeout)
        return defer.succeed(None)

    def to_json(self) -> dict[str, Any]:
        status: dict[str, Any] = {**self.settings.to_json(), "mode": self.mode}
        if self.mode == "local" and self.sampler is not None:
            status["directory"] = self.directory
            status["captures"] = self.sampler.captures
            status["last_file"] = self.sampler.last_file
        return status
