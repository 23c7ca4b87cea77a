"""The ``expvar`` plugin: the agent's internal figures over HTTP, and internal profiling.

``GET http://127.0.0.1:<security_agent.expvar_port>/debug/vars`` (default port 5011) answers
one JSON object: ``cmdline``, ``memstats``, the scheduler's per-plugin figures, event and
worker-pool counters, and every variable plugins publish with ``agent.publish(name, getter)``
(see :mod:`plugins.expvar.variables`). With ``telemetry.enabled``, ``GET /telemetry`` serves
the same figures in the Prometheus text format (:mod:`plugins.expvar.telemetry`). The server
listens on the IPv4 loopback address only. ``security_agent.internal_profiling.*`` turns on
the agent profiling itself (:mod:`plugins.expvar.internal_profiling`).

Tests and other code reach the running plugin's state through :func:`expvar_plugin`.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from twisted.internet import defer
from twisted.internet.error import CannotListenError
from twisted.logger import Logger

from host import FlareBuilder, PluginSpec, StatusSection, hookimpl
from host.config import get_port
from plugins.expvar.internal_profiling import InternalProfiling
from plugins.expvar.profiling_settings import ProfilingSettings, declare_keys
from plugins.expvar.resources import TELEMETRY_PATH, VARS_PATH, ExpvarResource
from plugins.expvar.server import LOOPBACK, ExpvarServer
from plugins.expvar.telemetry import make_registry
from plugins.expvar.variables import RequestCounts, collect_vars, encode_vars

if TYPE_CHECKING:
    from host.agent import Agent
    from host.config import ConfigSchema

log = Logger(namespace="expvar")

PORT_KEY = "security_agent.expvar_port"
TELEMETRY_KEY = "telemetry.enabled"
START_ORDER = 25
"""After runtime security (which starts first) and before the others, as RunAgent starts the
expvar server before the API server."""

STOP_TIMEOUT = 10.0
PROFILER_STOP_TIMEOUT = 5.0
"""Seconds a capture in progress gets to write what it sampled, within ``STOP_TIMEOUT``."""

STATE = "expvar"
"""The name of this plugin's state on the agent (``agent.plugin_state``): hooks are module
functions, and the state must live with the agent (two agents in one process stay apart)."""


class ExpvarPlugin:
    """The plugin's state for one agent: the server, its counters and the profiler."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        # 0 asks the kernel for a free port (what tests use); the bound one is in .port.
        self.configured_port = get_port(agent.config, PORT_KEY, allow_zero=True)
        self.telemetry = agent.config.get_bool(TELEMETRY_KEY)
        self.profiling_settings = ProfilingSettings.from_config(
            agent.config, agent.version, os.environ
        )
        self.requests = RequestCounts()
        registry = make_registry(self.snapshot) if self.telemetry else None
        self.server = ExpvarServer(
            agent.reactor, ExpvarResource(self.snapshot, self.requests, registry)
        )
        self.listen_error: str | None = None
        self.profiling: InternalProfiling | None = None

    def snapshot(self) -> dict[str, Any]:
        """Every variable's value now (what ``/debug/vars`` encodes)."""
        return collect_vars(self.agent, self.requests)

    @property
    def port(self) -> int | None:
        """The port bound on 127.0.0.1 while serving (the real one when configured as 0)."""
        return self.server.port

    def url(self, path: str = VARS_PATH) -> str | None:
        port = self.port
        return None if port is None else f"http://{LOOPBACK}:{port}{path}"

    def start(self) -> None:
        try:
            self.server.listen(self.configured_port)
        except CannotListenError as error:
            # As the Go agent: the expvar page is a debugging aid, not a reason to stop.
            self.listen_error = str(error.socketError)
            log.error(
                "Error creating expvar server on port {port}: {error}",
                port=self.configured_port,
                error=self.listen_error,
            )
        else:
            log.info("Expvar server listening on {url}", url=self.url())
        if self.profiling_settings.enabled:
            self.profiling = InternalProfiling(self.agent, self.profiling_settings)
            self.profiling.start()

    async def stop(self, timeout: float) -> None:
        if self.profiling is not None:
            await self.profiling.stop(timeout)
        try:
            await self.server.stop()
        except Exception as error:
            log.error("Error shutting down expvar server: {error}", error=error)

    def status(self) -> StatusSection:
        data: dict[str, Any] = {
            "url": self.url(),
            "telemetry_url": self.url(TELEMETRY_PATH) if self.telemetry else None,
            "listen_error": self.listen_error,
            "requests": self.requests.to_json(),
            "internal_profiling": (
                self.profiling.to_json()
                if self.profiling is not None
                else {"enabled": self.profiling_settings.enabled}
            ),
        }
        lines = [f"Debug variables: {data['url'] or 'not serving'}"]
        if self.listen_error:
            lines.append(f"Error: {self.listen_error}")
        lines.append(f"Telemetry: {data['telemetry_url'] or 'disabled'}")
        if self.profiling is None:
            lines.append("Internal profiling: disabled")
        elif self.profiling.mode == "local":
            lines.append(f"Internal profiling: CPU profiles in {self.profiling.directory}")
        else:
            lines.append(f"Internal profiling: sending to {self.profiling_settings.url}")
        return StatusSection(key="expvar", title="Expvar", data=data, text="\n".join(lines))


def expvar_plugin(agent: Agent) -> ExpvarPlugin:
    """The plugin's state on ``agent``, created on first use (when the host asks the spec)."""
    return agent.plugin_state(STATE, lambda: ExpvarPlugin(agent))


@hookimpl
def security_agent_config_schema(schema: ConfigSchema) -> None:
    schema.declare(PORT_KEY, 5011, description="port of /debug/vars, on 127.0.0.1 only")
    schema.declare(TELEMETRY_KEY, False, description="serve /telemetry in Prometheus format")
    declare_keys(schema)


@hookimpl
def security_agent_plugin_spec(agent: Agent) -> PluginSpec:
    expvar_plugin(agent)  # reads and validates the config now, so a bad value stops the start
    return PluginSpec(
        enabled=True, interval=None, start_order=START_ORDER, stop_timeout=STOP_TIMEOUT
    )


@hookimpl
def security_agent_run(agent: Agent) -> None:
    expvar_plugin(agent).start()


@hookimpl
def security_agent_stop(agent: Agent) -> defer.Deferred[None]:
    return defer.ensureDeferred(expvar_plugin(agent).stop(PROFILER_STOP_TIMEOUT))


@hookimpl
def security_agent_status(agent: Agent) -> StatusSection:
    return expvar_plugin(agent).status()


@hookimpl
def security_agent_flare(agent: Agent, flare: FlareBuilder) -> None:
    # The whole /debug/vars page (the flare's own expvar.json holds only published variables),
    # built directly rather than over HTTP so it is there even when the port is taken.
    flare.add_file("expvar/debug_vars.json", encode_vars(expvar_plugin(agent).snapshot()))
