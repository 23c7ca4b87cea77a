"""The contract between the host and its plugins: every hook a plugin may implement.

Implement a hook by defining a function of the same name decorated with
``host.hookimpl``; take only the arguments you need (pluggy passes them by name). A function
named ``security_agent_*`` that matches no spec here makes the plugin fail to load, so typos
surface in ``security-agent plugins`` instead of being silently ignored.

Per-plugin hooks (``security_agent_plugin_spec``, ``security_agent_run``,
``security_agent_stop``) are called by the host on each plugin separately, in start order.
The others are broadcast: the host calls every implementation and isolates failures, so one
plugin raising in ``security_agent_status`` does not hide the other sections.

Hooks may return a Deferred or a coroutine where noted; the host waits for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import pluggy

from host import PROJECT_NAME

if TYPE_CHECKING:
    from host.agent import Agent
    from host.config import ConfigSchema
    from host.plugin_types import (
        ApiRoute,
        CliCommand,
        EventSink,
        FlareBuilder,
        PluginSpec,
        RuntimeSetting,
        StatusSection,
    )

hookspec = pluggy.HookspecMarker(PROJECT_NAME)


# --- configuration ---------------------------------------------------------------------------


@hookspec
def security_agent_config_schema(schema: ConfigSchema) -> None:
    """Declare the configuration keys the plugin reads, with their defaults.

    Called once after discovery and before anything starts. Declare every key::

        schema.declare("compliance_config.enabled", False)
        schema.declare("compliance_config.dir", "/etc/security-agent/compliance.d", path=True)
        schema.declare("site", "datadoghq.com", env=("DD_SITE",))

    A declared key is read from the config files, from ``DD_<KEY>`` in the environment (dots
    become underscores) and from the extra ``env`` aliases; its value is converted to the type
    of the default. ``path=True`` resolves a relative path against the directory of the config
    file that set it.
    """


@hookspec
def security_agent_runtime_settings(agent: Agent) -> Iterable[RuntimeSetting]:
    """Return the settings this plugin lets operators change while the agent runs.

    They are listed by ``config list-runtime`` and changed by ``config set``. The host itself
    provides ``log_level``.
    """
    return ()


# --- the plugin's own life -------------------------------------------------------------------


@hookspec(firstresult=True)
def security_agent_plugin_spec(agent: Agent) -> PluginSpec | None:
    """Tell the host how to run this plugin under the current configuration.

    Called on each plugin separately after configuration is loaded. A plugin that does not
    implement it runs once at start, enabled, at the default start order. Read the config here
    (``agent.config``) to decide ``enabled``; raise ``ValueError`` with a one-line message for
    a configuration the plugin cannot work with and the agent refuses to start.
    """
    return None


@hookspec(firstresult=True)
def security_agent_run(agent: Agent) -> Any:
    """Do the plugin's work: called once at start, or every ``PluginSpec.interval``.

    Runs in the reactor thread unless ``PluginSpec.blocking`` is set, in which case it runs in
    the host's worker pool and must not touch the reactor except through
    ``reactor.callFromThread``. May return a Deferred or a coroutine. An exception is logged
    with its traceback, counted, shown in status and marks the plugin unhealthy until a run
    succeeds; the schedule continues.
    """


@hookspec(firstresult=True)
def security_agent_stop(agent: Agent) -> Any:
    """Release what the plugin holds (listeners, threads, kernel handles).

    Called once at shutdown, in reverse start order, after the scheduler has stopped calling
    ``run()``. May return a Deferred; the host gives up on it after ``PluginSpec.stop_timeout``
    seconds, logs an error and moves on.
    """


# --- what the plugin shows -------------------------------------------------------------------


@hookspec
def security_agent_status(agent: Agent) -> StatusSection | None:
    """Return this plugin's section of ``security-agent status``, or ``None`` for none."""
    return None


@hookspec
def security_agent_flare(agent: Agent, flare: FlareBuilder) -> None:
    """Add files that help debug this plugin to a flare archive (``flare.add_file``).

    Add raw content: the archive writer scrubs secrets from every file.
    """


@hookspec
def security_agent_cli_commands() -> Iterable[CliCommand]:
    """Return the ``security-agent`` subcommands this plugin contributes.

    Called while the command line is built, before configuration is loaded; the command's
    ``run`` receives a :class:`host.cli_context.CliContext` that loads it on demand.
    """
    return ()


# --- what the plugin offers other plugins ----------------------------------------------------


@hookspec
def security_agent_api_routes(agent: Agent) -> Iterable[ApiRoute]:
    """Return routes to add to the agent's command API (served by the ``ipc_api`` plugin).

    Routes are authenticated like every other endpoint; a path already taken by another
    plugin is refused with an error in the log. Handlers run in the reactor thread: hand
    blocking work to ``agent.workers.defer``.
    """
    return ()


@hookspec
def security_agent_event_sinks(agent: Agent) -> Iterable[EventSink]:
    """Return the event sinks this plugin provides, as configured (none when disabled).

    Called once at start, before any plugin runs. Every event a plugin emits with
    ``agent.events.emit(track, payload)`` goes to each sink subscribed to its track; an event
    no sink takes is counted as unrouted, never silently dropped.
    """
    return ()


@hookspec
def security_agent_process_event(agent: Agent, event: Mapping[str, Any]) -> None:
    """React to a process starting or ending, as seen by the runtime security sources.

    Called in the reactor thread for every ``exec``, ``fork`` and ``exit`` event, with the
    event dict (SECL field paths: ``event["type"]``, ``event["process"]["pid"]``, …). Keep it
    cheap: it runs for every process on the host. The ``ipc_api`` plugin uses it to keep the
    workload list current between its ``/proc`` scans.
    """
