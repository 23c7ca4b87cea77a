"""The ``compliance`` plugin: Datadog compliance benchmarks (Rego and XCCDF) and findings.

Benchmarks are read from ``compliance_config.dir`` and from the benchmarks shipped in this
package (``benchmarks/``); see :mod:`plugins.compliance.service` for scheduling and
:mod:`plugins.compliance.checker` for evaluation.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from host import CliCommand, FlareBuilder, PluginSpec, StatusSection, hookimpl
from plugins.compliance import cli
from plugins.compliance.service import (
    DEFAULT_INTERVAL,
    ComplianceService,
    benchmark_dirs,
    check_interval_of,
    host_env_from_config,
)

STATE = "compliance"
"""The name of this plugin's state on the agent (``agent.plugin_state``)."""


@dataclass
class _State:
    """What this plugin keeps per agent: the service, once a hook has needed it (stop and
    flare must not create one just to find there is nothing to stop or report)."""

    service: ComplianceService | None = None


def _state(agent: Any) -> _State:
    state: _State = agent.plugin_state(STATE, _State)
    return state


def service_for(agent: Any) -> ComplianceService:
    """The agent's compliance service, created on first use."""
    state = _state(agent)
    if state.service is None:
        state.service = ComplianceService(
            agent, host_env_from_config(agent), benchmark_dirs(agent), check_interval_of(agent)
        )
        agent.publish("compliance", state.service.status.as_dict)
    return state.service


@hookimpl
def security_agent_config_schema(schema: Any) -> None:
    schema.declare("compliance_config.enabled", False)
    schema.declare("compliance_config.dir", "/etc/datadog-agent/compliance.d", path=True)
    schema.declare("compliance_config.check_interval", f"{int(DEFAULT_INTERVAL)}s")
    schema.declare("compliance_config.builtin_benchmarks", True)
    schema.declare("compliance_config.host_root", "/", path=True)
    schema.declare("compliance_config.xccdf.enabled", True)
    schema.declare("compliance_config.host_benchmarks.enabled", True)


@hookimpl
def security_agent_plugin_spec(agent: Any) -> PluginSpec:
    try:
        interval = check_interval_of(agent)
    except Exception as exc:
        raise ValueError(str(exc)) from None
    return PluginSpec(
        enabled=agent.config.get_bool("compliance_config.enabled"),
        interval=interval,
        security_component=True,
        stop_timeout=10.0,
    )


@hookimpl
def security_agent_run(agent: Any) -> None:
    service = service_for(agent)
    service.start_xccdf()
    service.start_run()


@hookimpl
def security_agent_stop(agent: Any) -> Any:
    service = _state(agent).service
    agent.drop_plugin_state(STATE)
    if service is None:
        return None
    return service.stop()


@hookimpl
def security_agent_status(agent: Any) -> StatusSection | None:
    if not agent.config.get_bool("compliance_config.enabled"):
        return None
    service = service_for(agent)
    if not service.loaded:
        service.load()  # so that a status before the first run lists the rules not run yet
    return StatusSection(
        key="compliance",
        title="Compliance",
        data=service.status.as_dict(),
        text=service.status.text(),
    )


@hookimpl
def security_agent_flare(agent: Any, flare: FlareBuilder) -> None:
    service = _state(agent).service
    if service is not None:
        flare.add_file("compliance/status.txt", service.status.text())


@hookimpl
def security_agent_cli_commands() -> Iterable[CliCommand]:
    return [cli.command()]
