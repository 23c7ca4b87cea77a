"""Building an :class:`~host.agent.Agent` from command-line options: config, plugins, specs.

This only *builds*: nothing here binds a socket, starts a thread or touches the reactor's
timers, because twistd calls it before daemonizing. Every problem a user can cause (a bad
file, a bad value, an unknown plugin name, a strict-mode failure) surfaces as one
:class:`StartupError` line.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from host.agent import Agent, PluginRuntime
from host.config import Config, ConfigError, load_config, load_sysprobe_config
from host.discovery import (
    Discovery,
    DiscoveryError,
    EntryPointLike,
    PluginState,
    call_plugin_hook,
    new_plugin_manager,
)
from host.events import EventRouter
from host.health import Health
from host.plugin_types import PluginSpec
from host.runtime_settings import host_runtime_settings
from host.scheduler import Scheduler
from host.workers import WorkerPool

DEFAULT_CONF_DIR = "/etc/security-agent"
DEFAULT_CFGPATHS = (
    f"{DEFAULT_CONF_DIR}/datadog.yaml",
    f"{DEFAULT_CONF_DIR}/security-agent.yaml",
)


class StartupError(Exception):
    """A one-line reason the agent cannot start; printed without a traceback."""


@dataclass(frozen=True)
class AgentOptions:
    """What the command line (``security-agent``, ``twistd``, ``twist``) says."""

    cfgpaths: Sequence[str] | None = None
    """``-c/--cfgpath`` values in order; ``None`` means the default files (missing ones are
    skipped). Files named explicitly must exist."""

    sysprobe_config: str | None = None
    strict_plugins: bool = False
    pidfile: str | None = None


def declare_host_keys(config: Config) -> None:
    """The keys the host itself reads."""

    def d(key: str, default: Any, **kw: Any) -> None:
        config.declare(key, default, owner="host", **kw)

    d(
        "run_path",
        "/var/lib/security-agent/run",
        path=True,
        description="where the agent writes tokens, certificates, spools and caches",
    )
    d("hostname", "", description="overrides the system hostname")
    d("api_key", "", description="the API key destinations such as the Datadog intake need")
    d("log_level", "info")
    d("log_format_json", False)
    d("log_to_console", True)
    d("disable_file_logging", False)
    d("log_file_max_size", "10Mb")
    d("log_file_max_rolls", 1)
    d("security_agent.log_file", "/var/log/security-agent/security-agent.log", path=True)
    d(
        "security_agent.worker_pool_size",
        4,
        description="threads for blocking plugin work (scans, file hashing)",
    )
    d(
        "security_agent.disabled_exit_delay",
        "5s",
        description="pause before exiting when nothing is enabled, so init systems see a start",
    )
    d(
        "security_agent.health_ping_frequency",
        "15s",
        description="health tick; a component missing two ticks is unhealthy (Datadog: 15s)",
    )
    d("security_agent.core_dump", False, description="raise RLIMIT_CORE and enable faulthandler")
    d("plugins.enabled", [], description="when non-empty, only these plugins are loaded")
    d("plugins.disabled", [], description="plugins that are not loaded")
    d("plugins.strict", False, description="a plugin that fails to load stops the start")


def plugin_names(config: Config, key: str) -> list[str]:
    """A list of plugin names from ``key``; YAML turns a bare ``off`` or ``no`` into a
    boolean, so anything but a string is refused with a hint instead of silently matching
    nothing."""
    names = config.get_list(key)
    for name in names:
        if not isinstance(name, str):
            raise config.value_error(
                key, f"expected a list of plugin names, got {name!r} (quote names such as 'off')"
            )
    return [str(n) for n in names]


def resolve_hostname(config: Config) -> str:
    return config.get_str("hostname") or socket.gethostname()


def load_agent_config(options: AgentOptions, *, env: Mapping[str, str] | None = None) -> Config:
    """Load the agent's config files and declare the host's own keys (no plugins yet)."""
    env = os.environ if env is None else env
    if options.cfgpaths is not None and list(options.cfgpaths) == [""]:
        raise StartupError("no Security Agent config files to load, exiting")
    required = options.cfgpaths is not None
    paths = list(options.cfgpaths) if options.cfgpaths is not None else list(DEFAULT_CFGPATHS)
    try:
        config = load_config(paths, env=env, required=required)
        declare_host_keys(config)
    except ConfigError as exc:
        raise StartupError(str(exc)) from exc
    return config


def build_agent(
    options: AgentOptions,
    reactor: Any,
    *,
    entry_points: Callable[[], Iterable[EntryPointLike]] | None = None,
    env: Mapping[str, str] | None = None,
) -> Agent:
    """Load the configuration, discover and register plugins, and ask each for its spec."""
    env = os.environ if env is None else env
    config = load_agent_config(options, env=env)
    try:
        sysprobe = load_sysprobe_config(options.sysprobe_config, env=env)

        pm = new_plugin_manager()
        discovery = Discovery(
            pm,
            entry_points=entry_points,
            allow=plugin_names(config, "plugins.enabled") or None,
            deny=plugin_names(config, "plugins.disabled"),
            strict=options.strict_plugins or config.get_bool("plugins.strict"),
        )
        records = discovery.run()
        for record in records:
            if record.state is PluginState.LOADED:
                _declare_plugin_keys(pm, record.name, config)
        workers = WorkerPool(reactor, config.get_int("security_agent.worker_pool_size"))
        hostname = resolve_hostname(config)
        ping = config.get_duration("security_agent.health_ping_frequency")
        if ping <= 0:
            raise config.value_error(
                "security_agent.health_ping_frequency", f"must be positive, got {ping:g}s"
            )
        agent = Agent(
            config=config,
            sysprobe_config=sysprobe,
            pm=pm,
            plugins=records,
            reactor=reactor,
            health=Health(reactor, ping_frequency=ping),
            scheduler=Scheduler(reactor, workers, hostname, heartbeat_interval=ping / 3),
            workers=workers,
            events=EventRouter(reactor),
            hostname=hostname,
        )
        for setting in host_runtime_settings(agent):
            agent.runtime_settings[setting.name] = setting
        _collect_runtime_settings(agent)
        _collect_specs(agent)
        return agent
    except (ConfigError, DiscoveryError, ValueError) as exc:
        raise StartupError(str(exc)) from exc


def _declare_plugin_keys(pm: Any, plugin_name: str, config: Config) -> None:
    schema = config.schema.owned_by(plugin_name)
    try:
        call_plugin_hook(pm, plugin_name, "security_agent_config_schema", schema=schema)
    except ConfigError:
        raise
    except ValueError as exc:
        raise StartupError(f"plugin {plugin_name}: {exc}") from exc


def _collect_runtime_settings(agent: Agent) -> None:
    for plugin_name, settings in agent.call_each("security_agent_runtime_settings", agent=agent):
        if isinstance(settings, Exception):
            continue
        for setting in settings or ():
            if setting.name in agent.runtime_settings:
                raise StartupError(
                    f"plugin {plugin_name}: runtime setting {setting.name!r} is already provided"
                )
            agent.runtime_settings[setting.name] = setting


def _collect_specs(agent: Agent) -> None:
    runtimes: list[PluginRuntime] = []
    for record in agent.loaded_plugins():
        try:
            spec = agent.call_one(record.name, "security_agent_plugin_spec", agent=agent)
        except (ConfigError, ValueError) as exc:
            raise StartupError(f"plugin {record.name}: {exc}") from exc
        if spec is None:
            spec = PluginSpec()
        if not isinstance(spec, PluginSpec):
            raise StartupError(
                f"plugin {record.name}: security_agent_plugin_spec returned "
                f"{type(spec).__name__}, expected PluginSpec"
            )
        runtimes.append(PluginRuntime(record=record, spec=spec))
    runtimes.sort(key=lambda rt: (rt.spec.start_order, rt.record.name))
    agent.runtimes = {rt.record.name: rt for rt in runtimes}
