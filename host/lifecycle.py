"""Start and stop: the Go agent's ``RunAgent``/``StopAgent``, done generically over plugins.

The host names no plugin. Each plugin's :class:`~host.plugin_types.PluginSpec` says whether
the configuration enables it, whether it is a security component, whether it needs an API key,
and its start order. Plugins start one after another in that order (a once-run plugin's
``run()`` is awaited before the next starts) and stop in reverse order, each within its own
deadline so that one stuck plugin never hangs the daemon.

``twistd``'s ``MultiService`` would stop children concurrently and ignore start Deferreds,
which is why this is one service with ordered phases instead of a service per plugin.
"""

from __future__ import annotations

import faulthandler
import os
import resource
import signal
from pathlib import Path
from types import FrameType
from typing import Any

from twisted.application import service
from twisted.internet import defer, task
from twisted.logger import Logger

from host.agent import Agent, PluginRuntime
from host.deadlines import wait_at_most
from host.discovery import PluginState
from host.health import HealthTimeout
from host.plugin_types import FatalStartError

log = Logger(namespace="host.lifecycle")

PRODUCT = "Security Agent"

DEFAULT_START_TIMEOUT = 60.0
"""Seconds a long-running plugin's ``run()`` may take to start when its spec sets no
``run_deadline``."""


def setup_core_dumps(enabled: bool) -> None:
    """Raise ``RLIMIT_CORE`` when asked; a failure is a warning, never a failed start."""
    if not enabled:
        return
    try:
        faulthandler.enable()
        resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    except (OSError, ValueError) as exc:
        log.warn(
            "Can't setup core dumps: {error}, core dumps might not be available after a crash",
            error=exc,
        )


class AgentService(service.Service):
    """The whole agent as one Twisted service: ``twistd``, ``twist`` and
    ``security-agent start`` all run this."""

    name = "security-agent"

    def __init__(self, agent: Agent, *, install_signal_handlers: bool = True) -> None:
        self.agent = agent
        self._install_signals = install_signal_handlers
        self._starting: defer.Deferred[None] | None = None
        self._stopping: defer.Deferred[None] | None = None
        self._signals_received = 0
        self._attempted: list[PluginRuntime] = []
        self.ready = False
        self._health_seen: dict[str, bool] = {}
        self._health_watch: Any = None

    # --- start ---

    def startService(self) -> None:
        super().startService()  # type: ignore[no-untyped-call]
        self.agent.stop_requested = self._request_stop
        if self._install_signals:
            # After the reactor's own handlers, so ours win: we need the second signal.
            self.agent.reactor.callWhenRunning(self._install_signal_handlers)
        self._starting = defer.ensureDeferred(self._start())
        self._starting.addErrback(self._start_crashed)

    def _start_crashed(self, failure: Any) -> None:
        log.failure("The agent failed to start", failure)
        self.agent.exit_code = 1
        self._stop_reactor()

    async def _start(self) -> None:
        agent = self.agent
        log.info("Starting {product} {version}", product=PRODUCT, version=agent.version)
        for record in agent.plugins:
            if record.state is PluginState.FAILED:
                log.error(
                    "Plugin {plugin} ({distribution} {version}) failed to load: {error}",
                    plugin=record.name,
                    distribution=record.distribution,
                    version=record.version,
                    error=record.error,
                )
            elif record.state is PluginState.DISABLED:
                log.info("Plugin {plugin} is disabled by configuration", plugin=record.name)
        setup_core_dumps(agent.config.get_bool("security_agent.core_dump"))
        self._prepare_run_path()

        enabled = [rt for rt in agent.runtimes.values() if rt.spec.enabled]
        delay = agent.config.get_duration("security_agent.disabled_exit_delay")
        if not any(rt.spec.security_component for rt in enabled):
            log.info("All security-agent components are deactivated, exiting")
            await self._exit_after(delay)
            return
        needs_key = [rt.record.name for rt in enabled if rt.spec.requires_api_key]
        if needs_key and not agent.config.get_str("api_key"):
            log.critical("No API key configured, exiting")
            await self._exit_after(delay)
            return

        agent.workers.start()
        agent.scheduler.quiet_errors = (FatalStartError,)
        # Sinks are in place before any plugin runs, so the first finding has somewhere to go.
        agent.install_event_sinks()
        for rt in enabled:
            if self._stopping is not None:
                return
            if not await self._start_plugin(rt):
                return
        self.ready = True
        log.info("{product} is now running.", product=PRODUCT)
        # Every component starts unhealthy until its first health tick (Datadog's pre-filled
        # channel); look only after two ticks so start-up does not log false alarms.
        self._health_watch = agent.reactor.callLater(
            2 * agent.health.ping_frequency + 0.1, self._watch_health
        )

    def _prepare_run_path(self) -> None:
        # Tokens, keys and spools live here: owner-only from the start.
        path = Path(self.agent.run_path)
        try:
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            log.error(
                "Cannot create run_path {path}: {error}; plugins that write there will fail",
                path=str(path),
                error=exc.strerror or str(exc),
            )

    async def _start_plugin(self, rt: PluginRuntime) -> bool:
        """Start one plugin; ``False`` when the agent must not go on (FatalStartError)."""
        agent, spec, name = self.agent, rt.spec, rt.record.name
        if spec.health == "readiness":
            handle = agent.health.register_readiness(name)
        else:
            handle = agent.health.register_liveness(name)

        def run() -> Any:
            return agent.call_one(name, "security_agent_run", agent=agent)

        job = agent.scheduler.add(
            name,
            run,
            interval=spec.interval,
            deadline=spec.effective_deadline,
            blocking=spec.blocking,
            health=handle,
        )
        self._attempted.append(rt)
        started = job.start()
        if spec.interval is None:
            # A service that never finishes starting must not hold back the ones after it.
            timeout = spec.run_deadline or DEFAULT_START_TIMEOUT

            def too_slow() -> None:
                log.error(
                    "Plugin {plugin} did not start within {timeout}s; starting the others",
                    plugin=name,
                    timeout=timeout,
                )

            if not await wait_at_most(agent.reactor, started, timeout, too_slow):
                rt.start_error = f"did not start within {timeout}s"
                handle.set_failing(rt.start_error)
                return True
        failure = job.last_failure
        if failure is not None and failure.check(FatalStartError):  # type: ignore[no-untyped-call]
            rt.start_error = job.stats.last_error
            log.critical("{error}", error=failure.getErrorMessage())
            agent.exit_code = 1
            self._request_stop()
            return False
        if job.stats.errors:
            rt.start_error = job.stats.last_error
            log.error("Plugin {plugin} failed to start: {error}", plugin=name, error=rt.start_error)
        else:
            rt.started = True
            log.info("Plugin {plugin} started", plugin=name)
        return True

    def _watch_health(self) -> None:
        """Log every health change, so an operator reading the log sees a plugin go
        unhealthy (and why) without polling the API."""
        agent = self.agent
        try:
            status = agent.health.get_ready_nonblocking()
        except HealthTimeout:
            status = None
        if status is not None:
            reasons = agent.health.unhealthy_reasons()
            for name in status.healthy:
                if self._health_seen.get(name) is not True:
                    log.info("Component {component} is healthy", component=name)
                self._health_seen[name] = True
            for name in status.unhealthy:
                if self._health_seen.get(name) is not False:
                    log.warn(
                        "Component {component} is unhealthy: {reason}",
                        component=name,
                        reason=reasons.get(name, "unknown"),
                    )
                self._health_seen[name] = False
        if self._stopping is None:
            self._health_watch = agent.reactor.callLater(
                agent.health.ping_frequency, self._watch_health
            )

    async def _exit_after(self, delay: float) -> None:
        # Datadog sleeps before exiting so that sysV init does not read the quick exit as a
        # failed start; the exit code is 0 because "nothing to do" is not an error.
        if delay > 0:
            await task.deferLater(self.agent.reactor, delay, lambda: None)
        self.agent.exit_code = 0
        self._stop_reactor()

    def _stop_reactor(self) -> None:
        reactor = self.agent.reactor
        if getattr(reactor, "running", False):
            reactor.stop()

    # --- signals ---

    def _install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        # Writing to a closed pipe (a client that went away) must not kill the daemon.
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._signals_received += 1
        name = signal.Signals(signum).name
        if self._signals_received > 1:
            # The operator insists: whatever is stuck, leave now.
            os.write(2, f"Received signal '{name}' again, forcing exit\n".encode())
            os._exit(1)
        self.agent.reactor.callFromThread(self._signalled, name)

    def _signalled(self, name: str) -> None:
        log.info("Received signal '{signal}', shutting down...", signal=name)
        self._request_stop()

    def _request_stop(self) -> None:
        self.agent.reactor.callLater(0, self._stop_reactor)

    # --- stop ---

    def stopService(self) -> defer.Deferred[None]:
        if self._stopping is None:
            super().stopService()  # type: ignore[no-untyped-call]
            self._stopping = defer.ensureDeferred(self._stop())
        return self._stopping

    async def _stop(self) -> None:
        agent = self.agent
        try:
            status = agent.health.get_ready_nonblocking()
        except HealthTimeout as exc:
            log.warn("Security Agent health unknown: {error}", error=exc)
        else:
            if status.unhealthy:
                log.warn(
                    "Some components were unhealthy: {components}",
                    components=list(status.unhealthy),
                )
        # Reverse start order unless a plugin asks otherwise (sorted() is stable, so plugins
        # with equal keys stop in reverse start order too).
        for rt in sorted(reversed(self._attempted), key=lambda rt: rt.spec.stop_key):
            await self._stop_plugin(rt)
        if self._health_watch is not None and self._health_watch.active():
            self._health_watch.cancel()
        agent.scheduler.stop_heartbeat()
        agent.health.stop()
        await agent.workers.stop(timeout=5.0)
        log.info("See ya!")

    async def _stop_plugin(self, rt: PluginRuntime) -> None:
        agent, name, timeout = self.agent, rt.record.name, rt.spec.stop_timeout
        job = agent.scheduler.jobs.get(name)
        # Cancel future runs first, then ask the plugin to stop *before* waiting for a run in
        # progress: stop() is how a plugin cuts a long run short (a compliance pass, a scan).
        in_flight = job.stop(timeout) if job is not None else defer.succeed(True)
        d = defer.maybeDeferred(agent.call_one, name, "security_agent_stop", agent=agent)
        d.addTimeout(timeout, agent.reactor)
        try:
            await d
        except defer.TimeoutError:
            log.error(
                "Plugin {plugin} did not stop within {timeout}s; abandoning it",
                plugin=name,
                timeout=timeout,
            )
        except Exception:
            log.failure("Plugin {plugin} failed to stop cleanly", plugin=name)
        else:
            log.info("Plugin {plugin} stopped", plugin=name)
        await in_flight
