"""The built-in event sinks: where findings, security events and metrics go.

- ``file`` (on by default): JSON lines under ``run_path``, one file per track, rotated.
- ``datadog`` (when ``api_key`` or a product endpoint is set): the logs intake for compliance
  findings and runtime events, with Datadog's per-product endpoint keys, and the series API
  for metrics.
- ``otlp`` (when ``sinks.otlp.endpoint`` is set): OTLP/HTTP JSON logs to a collector.

Network sinks write every event to an on-disk spool before sending it (see ``spool.py``) and
deliver at least once. The sinks live in ``agent.events``; this plugin finds its own there, so
it keeps no state of its own. It starts first and stops last, so events produced while other
plugins stop still reach the spool.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from twisted.internet import defer
from twisted.logger import Logger

from host import FlareBuilder, PluginSpec, StatusSection, hookimpl
from host.plugin_types import EventSink
from plugins.sinks import factory, settings
from plugins.sinks.file_sink import FileSink
from plugins.sinks.network_sink import NetworkSink
from plugins.sinks.spool import SpoolError
from plugins.sinks.status_text import render

log = Logger(namespace="sinks")

START_ORDER = -1000
"""Before every producer, so that sinks are delivering when the first event comes, and
stopped after all of them."""


def _ours(agent: Any) -> list[FileSink | NetworkSink]:
    return [s for s in agent.events.sinks if isinstance(s, FileSink | NetworkSink)]


def _stats(agent: Any) -> dict[str, Any]:
    return {s.name: s.stats() for s in _ours(agent)}


@hookimpl
def security_agent_config_schema(schema: Any) -> None:
    settings.declare_keys(schema)


@hookimpl
def security_agent_plugin_spec(agent: Any) -> PluginSpec:
    plan = factory.make_plan(agent.config, agent.run_path)
    return PluginSpec(
        enabled=plan.any_sink,
        start_order=START_ORDER,
        stop_timeout=plan.flush_timeout + 5.0,
        requires_api_key=plan.datadog and settings.endpoint_configured(agent.config),
    )


@hookimpl
def security_agent_event_sinks(agent: Any) -> Iterable[EventSink]:
    plan = factory.make_plan(agent.config, agent.run_path)
    factory.warn_insecure(plan, agent.config)
    sinks: list[EventSink] = []
    if plan.file:
        sinks.append(factory.build_file(plan))
    network: list[NetworkSink] = []
    if plan.datadog:
        network.append(factory.build_datadog(plan, agent))
    if plan.otlp_url:
        network.append(factory.build_otlp(plan, agent))
    for sink in network:
        try:
            sink.open()
        except SpoolError as exc:
            log.error("Sink {sink} is disabled: {error}", sink=sink.name, error=exc)
            continue
        sinks.append(sink)
    if "sinks" not in agent.published:
        agent.publish("sinks", lambda: _stats(agent))
    return sinks


@hookimpl
def security_agent_run(agent: Any) -> None:
    for sink in _ours(agent):
        if isinstance(sink, NetworkSink):
            sink.start()


@hookimpl
def security_agent_stop(agent: Any) -> defer.Deferred[Any]:
    flush = agent.config.get_duration("sinks.flush_timeout")
    stops = []
    for sink in _ours(agent):
        if isinstance(sink, NetworkSink):
            stops.append(defer.ensureDeferred(sink.stop(flush)))
        else:
            sink.close()
    return defer.gatherResults(stops)


@hookimpl
def security_agent_status(agent: Any) -> StatusSection:
    stats = _stats(agent)
    return StatusSection(key="sinks", title="Event Sinks", data=stats, text=render(stats))


@hookimpl
def security_agent_flare(agent: Any, flare: FlareBuilder) -> None:
    """The counters of every sink and destination (URLs, queues, drops, last errors)."""
    flare.add_file("sinks/stats.json", json.dumps(_stats(agent), indent=2, sort_keys=True))
