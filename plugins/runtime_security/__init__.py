"""Runtime security (CWS): SECL rules evaluated against events from real Linux kernel sources.

The plugin loads ``*.policy`` files (:mod:`.policy_loader`), runs the kernel sources
(:mod:`.sources`) in-process or listens to the event-monitoring socket, turns matches into
security events on the ``runtime`` track (:mod:`.engine`, :mod:`.security_event`), runs rule
actions (:mod:`.actions`), raises an event when a source drops events and self-tests at start
(:mod:`.self_test`). Everything for one agent lives in :class:`.service.RuntimeSecurityService`,
kept with ``agent.plugin_state``. CLI: :mod:`.cli`; API routes: below.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from twisted.internet.defer import Deferred

from host import (
    ApiRequest,
    ApiResponse,
    ApiRoute,
    CliCommand,
    FlareBuilder,
    PluginSpec,
    StatusSection,
    hookimpl,
)
from plugins.runtime_security import cli, settings
from plugins.runtime_security.policy_loader import PolicySet
from plugins.runtime_security.self_test import SelfTestResult
from plugins.runtime_security.service import RuntimeSecurityService
from plugins.runtime_security.settings import RuntimeSettings
from plugins.runtime_security.status_text import render

NAME = "runtime_security"
START_ORDER = -100  # before every plugin but the sinks (which must take its first events)
STOP_ORDER = -10_000  # and first to stop, as the Go agent does: no events into stopped plugins


def _service(agent: Any) -> RuntimeSecurityService | None:
    found: RuntimeSecurityService | None = agent.plugin_state(NAME, lambda: None)
    return found


def _create(agent: Any) -> RuntimeSecurityService:
    agent.drop_plugin_state(NAME)
    service = RuntimeSecurityService(agent, RuntimeSettings.from_agent(agent))
    created: RuntimeSecurityService = agent.plugin_state(NAME, lambda: service)
    if NAME not in agent.published:  # expvar: the live counters of whichever run is current
        agent.publish(NAME, lambda: _published(agent))
    return created


def _published(agent: Any) -> dict[str, Any]:
    service = _service(agent)
    if service is None:
        return {"running": False}
    data = service.status()
    return {
        "running": True,
        **{
            k: data[k] for k in ("eventReceived", "eventSent", "rateLimited", "drops", "dropEvents")
        },
    }


@hookimpl
def security_agent_config_schema(schema: Any) -> None:
    settings.declare(schema)


@hookimpl
def security_agent_plugin_spec(agent: Any) -> PluginSpec:
    enabled = agent.config.get_bool(settings.ENABLED)
    if enabled:
        RuntimeSettings.from_agent(agent)  # a bad value stops the start with its file:line
    return PluginSpec(
        enabled=enabled,
        interval=None,
        start_order=START_ORDER,
        stop_order=STOP_ORDER,
        security_component=True,
        stop_timeout=10.0,
    )


@hookimpl
def security_agent_run(agent: Any) -> Any:
    return _create(agent).start()


@hookimpl
def security_agent_stop(agent: Any) -> Any:
    service = _service(agent)
    agent.drop_plugin_state(NAME)
    return service.stop() if service is not None else None


@hookimpl
def security_agent_status(agent: Any) -> StatusSection:
    service = _service(agent)
    if service is None:
        return StatusSection(
            key="runtimeSecurityStatus",
            title="Runtime Security",
            data={"enabled": False},
            text="Not enabled",
        )
    data = service.status()
    return StatusSection(
        key="runtimeSecurityStatus", title="Runtime Security", data=data, text=render(data)
    )


@hookimpl
def security_agent_flare(agent: Any, flare: FlareBuilder) -> None:
    service = _service(agent)
    if service is not None:
        flare.add_file("runtime-security/status.json", json.dumps(service.status(), indent=2))
        flare.add_file(
            "runtime-security/policies.json",
            json.dumps(service.engine.policies.report(), indent=2),
        )


@hookimpl
def security_agent_cli_commands() -> Iterable[CliCommand]:
    return [cli.command()]


# -- API routes -------------------------------------------------------------------------------


def _not_running() -> ApiResponse:
    return ApiResponse(503, {"error": "runtime security is not running"})


def _error(prefix: str) -> Any:
    def handle(failure: Any) -> ApiResponse:
        return ApiResponse(500, {"error": f"{prefix}: {failure.getErrorMessage()}"})

    return handle


def _routes(agent: Any) -> list[ApiRoute]:
    def reload(_request: ApiRequest) -> ApiResponse | Deferred[ApiResponse]:
        service = _service(agent)
        if service is None:
            return _not_running()
        d = service.reload("api")

        def done(policies: PolicySet) -> ApiResponse:
            return ApiResponse(200, policies.report())

        return d.addCallbacks(done, _error("unable to reload policies"))

    def self_test(_request: ApiRequest) -> ApiResponse | Deferred[ApiResponse]:
        service = _service(agent)
        if service is None:
            return _not_running()

        def done(result: SelfTestResult) -> ApiResponse:
            return ApiResponse(200, result.as_dict())

        return service.self_test.run().addCallback(done)

    def process_cache(_request: ApiRequest) -> ApiResponse | Deferred[ApiResponse]:
        service = _service(agent)
        if service is None:
            return _not_running()
        d: Deferred[Any] = agent.workers.defer(service.process_cache_dump)
        return d.addCallbacks(
            lambda entries: ApiResponse(200, entries), _error("unable to dump the process cache")
        )

    return [
        ApiRoute(
            "/agent/runtime/policy/reload",
            ("POST",),
            reload,
            "reload the runtime security policies",
        ),
        ApiRoute("/agent/runtime/self-test", ("GET",), self_test, "run the runtime self-test"),
        ApiRoute(
            "/agent/runtime/process-cache",
            ("GET",),
            process_cache,
            "the runtime security process cache",
        ),
    ]


@hookimpl
def security_agent_api_routes(agent: Any) -> Iterable[ApiRoute]:
    if not agent.config.get_bool(settings.ENABLED):
        return []
    return _routes(agent)
