"""The one object that hands the host's components to plugins.

There are no module-level singletons: the config, the plugin manager, the scheduler, health,
the worker pool and the reactor all hang off the :class:`Agent` a plugin receives in its hooks.
Tests build an Agent on a ``task.Clock``/``MemoryReactorClock``.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, cast

from twisted.logger import Logger

from host import __version__
from host.discovery import PluginRecord, PluginState, call_plugin_hook
from host.plugin_types import EventSink

if TYPE_CHECKING:
    import pluggy

    from host.config import Config
    from host.events import EventRouter
    from host.health import Health
    from host.logs import LogControl
    from host.plugin_types import PluginSpec, RuntimeSetting
    from host.scheduler import Scheduler
    from host.workers import WorkerPool

log = Logger(namespace="host.agent")

T = TypeVar("T")


@dataclass
class PluginRuntime:
    """What the host knows of a loaded plugin once configuration is applied."""

    record: PluginRecord
    spec: PluginSpec
    started: bool = False
    start_error: str | None = None


@dataclass
class Agent:
    """Everything a plugin may use. Attributes are stable API for plugin authors."""

    config: Config
    """The agent's configuration (``datadog.yaml`` + ``security-agent.yaml`` + env + runtime)."""

    sysprobe_config: Config
    """The system-probe configuration (``--sysprobe-config``), for event-monitoring settings."""

    pm: pluggy.PluginManager
    plugins: list[PluginRecord]
    """Every discovered plugin, loaded, failed or disabled."""

    reactor: Any
    """The reactor (a ``task.Clock``-backed fake in tests). Use it for timers and sockets."""

    health: Health
    scheduler: Scheduler
    workers: WorkerPool
    events: EventRouter
    """Emit findings and security events here: ``agent.events.emit("runtime", {...})``."""

    hostname: str
    logs: LogControl | None = None
    runtime_settings: dict[str, RuntimeSetting] = field(default_factory=dict)
    runtimes: dict[str, PluginRuntime] = field(default_factory=dict)
    """Loaded plugins by name, with their spec, in start order."""

    published: dict[str, Callable[[], Any]] = field(default_factory=dict)
    """Expvar-style variables: name to a callable returning a JSON-ready value."""

    _plugin_state: dict[str, Any] = field(default_factory=dict, repr=False)

    version: str = __version__
    started_at: float = field(default_factory=time.time)
    stop_requested: Callable[[], None] | None = None
    exit_code: int = 0

    # --- plugin access ---

    def loaded_plugins(self) -> list[PluginRecord]:
        return [r for r in self.plugins if r.state is PluginState.LOADED]

    def call_each(self, hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call a broadcast hook on every plugin, isolating failures.

        Returns ``(plugin name, result)`` pairs; a plugin whose implementation raised is logged
        and gives ``(name, exception)``, so callers decide how to show it.
        """
        caller = getattr(self.pm.hook, hook_name)
        results: list[tuple[str, Any]] = []
        for impl in reversed(caller.get_hookimpls()):  # pluggy keeps them last-registered-first
            args = {name: kwargs[name] for name in impl.argnames}
            try:
                results.append((impl.plugin_name, impl.function(**args)))
            except Exception as exc:
                log.failure("{plugin}: hook {hook} failed", plugin=impl.plugin_name, hook=hook_name)
                results.append((impl.plugin_name, exc))
        return results

    def call_one(self, plugin_name: str, hook_name: str, **kwargs: Any) -> Any:
        """Call one plugin's implementation of a per-plugin hook; ``None`` if it has none."""
        return call_plugin_hook(self.pm, plugin_name, hook_name, **kwargs)

    def plugin_state(self, name: str, factory: Callable[[], T]) -> T:
        """The state object plugin ``name`` keeps for this agent, made by ``factory`` once.

        Plugins are modules, loaded once per process; keeping their state here instead of in
        module globals lets several agents (tests, ``security-agent check``) coexist::

            service = agent.plugin_state("my_plugin", lambda: MyService(agent))
        """
        if name not in self._plugin_state:
            self._plugin_state[name] = factory()
        return cast(T, self._plugin_state[name])

    def drop_plugin_state(self, name: str) -> None:
        """Forget plugin ``name``'s state (call it from ``security_agent_stop``)."""
        self._plugin_state.pop(name, None)

    def install_event_sinks(self) -> None:
        """Register the sinks of every enabled plugin with ``agent.events`` (once each).

        The lifecycle calls it before any plugin runs; a CLI command that emits events without
        starting the agent (``compliance check --report``) calls it too.
        """
        enabled = {name for name, rt in self.runtimes.items() if rt.spec.enabled}
        for plugin_name, sinks in self.call_each("security_agent_event_sinks", agent=self):
            if plugin_name not in enabled or isinstance(sinks, Exception):
                continue
            for sink in sinks or ():
                if not isinstance(sink, EventSink):
                    log.error(
                        "Plugin {plugin} returned a sink without send/stats/name/tracks: {sink!r}",
                        plugin=plugin_name,
                        sink=sink,
                    )
                    continue
                try:
                    self.events.add_sink(sink)
                except ValueError:  # the router refuses a second sink of the same name
                    log.error(
                        "Plugin {plugin}: an event sink named {sink} is already registered",
                        plugin=plugin_name,
                        sink=sink.name,
                    )
                else:
                    log.info(
                        "Event sink {sink} from {plugin} takes {tracks}",
                        sink=sink.name,
                        plugin=plugin_name,
                        tracks=", ".join(sorted(sink.tracks)) or "every track",
                    )

    # --- publishing and control ---

    def publish(self, name: str, getter: Callable[[], Any]) -> None:
        """Publish a variable for ``/debug/vars`` and telemetry; a duplicate name is an error."""
        if name in self.published:
            raise ValueError(f"variable {name!r} is already published")
        self.published[name] = getter

    def request_stop(self) -> None:
        """Ask for a graceful stop through the host lifecycle (as SIGTERM would)."""
        if self.stop_requested is None:
            raise RuntimeError("the agent is not running")
        self.stop_requested()

    @property
    def run_path(self) -> str:
        """Where the agent writes what it creates at run time (tokens, spools, caches)."""
        return str(self.config.get_str("run_path"))

    def header(self) -> dict[str, Any]:
        """The status header: who and where this agent is."""
        return {
            "version": self.version,
            "pid": os.getpid(),
            "hostname": self.hostname,
            "python_version": platform.python_version(),
            "python_executable": sys.executable,
            "started_at": self.started_at,
            "config_files": list(self.config.files),
            "run_path": self.run_path,
        }
