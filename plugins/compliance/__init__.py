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
from plugins.compliance.kube_apiserver import DEFAULT_SERVICE_ACCOUNT_DIR
from plugins.compliance.service import (
    DEFAULT_INTERVAL,
    ComplianceService,
    benchmark_dirs,
    check_interval_of,
    docker_host_of,
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
    # Empty: the Docker socket of the evaluated host (host_root + /var/run/docker.sock).
    schema.declare("compliance_config.docker_host", "", env=("DOCKER_HOST",))
    # In-cluster access for the kubeApiserver input; Kubernetes sets the first two in pods.
    schema.declare(
        "compliance_config.kubernetes.service_host", "", env=("KUBERNETES_SERVICE_HOST",)
    )
    schema.declare(
        "compliance_config.kubernetes.service_port", "443", env=("KUBERNETES_SERVICE_PORT",)
    )
    schema.declare(
        "compliance_config.kubernetes.service_account_dir",
        DEFAULT_SERVICE_ACCOUNT_DIR,
        path=True,
    )


@hookimpl
def security_agent_plugin_spec(agent: Any) -> PluginSpec:
    enabled = agent.config.get_bool("compliance_config.enabled")
    try:
        interval = check_interval_of(agent)
        if enabled:  # DOCKER_HOST set for other tools must not stop an agent without compliance
            docker_host_of(agent)
    except Exception as exc:
        raise ValueError(str(exc)) from None
    # The host runs one pass per interval on the reactor (blocking=False): a pass mostly
    # waits (jitter, 2 s between rules) and sends each rule's evaluation to the worker pool
    # itself, so it would only tie up a worker thread for minutes. stop_timeout is the
    # reference's "Stop() waits at most 10 s".
    return PluginSpec(
        enabled=enabled,
        interval=interval,
        blocking=False,
        security_component=True,
        stop_timeout=10.0,
    )


@hookimpl
def security_agent_run(agent: Any) -> Any:
    """One pass over the Rego benchmarks, handed to the host (it fires when the pass ends)."""
    service = service_for(agent)
    service.start_xccdf()
    return service.run()


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
        service.load_soon()  # so that a status before the first run lists the rules not run yet
    return StatusSection(
        key="compliance",
        title="Compliance",
        data=service.status.as_dict(),
        text=service.status.text() if service.loaded else "Loading the benchmarks",
    )


@hookimpl
def security_agent_flare(agent: Any, flare: FlareBuilder) -> None:
    service = _state(agent).service
    if service is not None:
        flare.add_file("compliance/status.txt", service.status.text())


@hookimpl
def security_agent_cli_commands() -> Iterable[CliCommand]:
    return [cli.command()]
