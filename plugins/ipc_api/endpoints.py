"""The agent's own endpoints (``/agent/...``), as routes like any plugin's.

Handlers run in the reactor thread; whatever may block (the flare, a process scan) goes to
``agent.workers``. Modules of other plugins (flare, scrubber, workload store) are imported
when a request needs them, so the API works, with a clear 500, when one is not installed.
"""

from __future__ import annotations

import html
import importlib
import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import yaml
from twisted.internet import defer
from twisted.logger import Logger

from host.config import Source
from host.plugin_types import ApiRequest, ApiResponse, ApiRoute
from host.runtime_settings import SettingNotFoundError, get_setting, set_setting
from host.status import collect_status, render_text

if TYPE_CHECKING:
    from host.agent import Agent
    from plugins.ipc_api.workloads import WorkloadRefresher

log = Logger(namespace="ipc_api")

JSON = "application/json"
YAML = "text/yaml; charset=utf-8"


def error(status: int, message: str) -> ApiResponse:
    return ApiResponse(status, {"error": message})


def version_struct(version: str) -> dict[str, Any]:
    """Datadog's version object from a PEP 440-ish ``1.2.3rc1+meta`` string."""
    core, _, meta = version.partition("+")
    m = re.match(r"(\d+)(?:\.(\d+))?(?:\.(\d+))?(.*)", core)
    major, minor, patch, pre = m.groups() if m else ("0", "0", "0", core)
    return {
        "Major": int(major),
        "Minor": int(minor or 0),
        "Patch": int(patch or 0),
        "Pre": (pre or "").lstrip(".-"),
        "Meta": meta,
        "Commit": "",
    }


def _lazy(module: str) -> Any:
    return importlib.import_module(module)


def _scrubbed_yaml(data: Any) -> str:
    # Never serve the configuration unscrubbed: without the scrubber the import fails and
    # the request gets a 500.
    scrubber = _lazy("plugins.scrubber")
    text = yaml.safe_dump(data, default_flow_style=False, sort_keys=True)
    return str(scrubber.scrub_yaml(text))


def _config_response(read: Callable[[], Any]) -> ApiResponse:
    try:
        text = _scrubbed_yaml(read())
    except Exception as exc:
        return error(500, f"unable to scrub the configuration: {exc}")
    return ApiResponse(200, text, YAML)


class Endpoints:
    """The built-in handlers for one agent."""

    def __init__(self, agent: Agent, workloads: WorkloadRefresher) -> None:
        self.agent = agent
        self.workloads = workloads
        self._health_cache: tuple[Any, bytes] | None = None

    def routes(self) -> list[ApiRoute]:
        r = ApiRoute
        return [
            r("/agent/version", ("GET",), self.version, "the agent version"),
            r("/agent/flare", ("POST",), self.flare, "build a flare archive"),
            r("/agent/hostname", ("GET",), self.hostname, "the hostname"),
            r("/agent/stop", ("POST",), self.stop, "stop the agent"),
            r("/agent/status", ("GET",), self.status, "status, ?format=json|text"),
            r("/agent/status/health", ("GET",), self.health, "readiness health"),
            r("/agent/config", ("GET",), self.config, "the scrubbed configuration"),
            r("/agent/config/by-source", ("GET",), self.config_by_source, "config by layer"),
            r("/agent/config/list-runtime", ("GET",), self.list_runtime, "runtime settings"),
            r("/agent/config/{setting}", ("GET", "POST"), self.setting, "get/set a setting"),
            r("/agent/workload-list", ("GET",), self.workload_list, "processes, containers"),
        ]

    def version(self, _req: ApiRequest) -> ApiResponse:
        return ApiResponse(200, version_struct(self.agent.version))

    def hostname(self, _req: ApiRequest) -> ApiResponse:
        return ApiResponse(200, json.dumps(self.agent.hostname).encode(), JSON)

    def health(self, _req: ApiRequest) -> ApiResponse:
        # No per-request log line (Datadog logs unhealthy components here at debug level):
        # the host already logs every health change once, and probes poll this often.
        # The encoding is reused while the status stays the same.
        status = self.agent.health.get_ready()
        cached = self._health_cache
        if cached is None or cached[0] != status:
            cached = (status, json.dumps(status.to_json()).encode())
            self._health_cache = cached
        return ApiResponse(200, cached[1], JSON)

    def stop(self, _req: ApiRequest) -> ApiResponse:
        # After this answer is on its way: the stop closes our own listener.
        self.agent.reactor.callLater(0, self.agent.request_stop)
        log.info("Stop requested through the API")
        return ApiResponse(200, b'""', JSON)  # the JSON empty string, as Datadog answers

    def status(self, req: ApiRequest) -> ApiResponse:
        fmt = req.arg("format", "json")
        if fmt not in ("json", "text"):
            return error(400, f"unknown format {fmt!r}: use json or text")
        data = collect_status(self.agent)
        if fmt == "text":
            return ApiResponse(200, render_text(data), "text/plain; charset=utf-8")
        return ApiResponse(200, json.dumps(data, default=str).encode(), JSON)

    def flare(self, _req: ApiRequest) -> defer.Deferred[ApiResponse]:
        log.info("Making a flare")

        def build() -> str:
            flare = _lazy("plugins.flare")
            return str(flare.create_archive(self.agent, local=False))

        d: defer.Deferred[str] = self.agent.workers.defer(build)

        def done(path: str) -> ApiResponse:
            if not path:
                return error(500, "the flare archive was not created")
            return ApiResponse(200, path, "text/plain; charset=utf-8")

        def failed(failure: Any) -> ApiResponse:
            log.error("Making the flare failed: {error}", error=failure.getErrorMessage())
            return error(500, failure.getErrorMessage())

        return d.addCallbacks(done, failed)

    def config(self, _req: ApiRequest) -> ApiResponse:
        return _config_response(self.agent.config.as_dict)

    def config_by_source(self, _req: ApiRequest) -> ApiResponse:
        return _config_response(self.agent.config.by_source)

    def list_runtime(self, _req: ApiRequest) -> ApiResponse:
        return ApiResponse(
            200,
            {
                name: {"Description": s.description, "Hidden": s.hidden}
                for name, s in sorted(self.agent.runtime_settings.items())
            },
        )

    def setting(self, req: ApiRequest) -> ApiResponse:
        name = req.params["setting"]
        try:
            if req.method == "POST":
                form = req.form()
                if "value" not in form:
                    return error(400, "the form field 'value' is required")
                set_setting(self.agent, name, html.unescape(form["value"]), Source.CLI)
                log.info("Runtime setting {name} changed through the API", name=name)
                return ApiResponse(200, b"")
            body: dict[str, Any] = {"value": get_setting(self.agent, name)}
        except (SettingNotFoundError, ValueError) as exc:
            return error(400, str(exc))
        if req.arg("sources") == "true":
            body["sources_value"] = self.agent.config.all_sources(name)
        return ApiResponse(200, json.dumps(body, default=str).encode(), JSON)

    def workload_list(self, req: ApiRequest) -> ApiResponse:
        verbose = req.arg("verbose", "false")
        if verbose not in ("true", "false"):
            return error(400, f"verbose must be true or false, got {verbose!r}")
        try:
            dump = self.workloads.dump(verbose == "true")
        except Exception as exc:
            return error(500, f"Unable to get the workload list: {exc}")
        try:
            body = json.dumps(dump).encode()
        except (TypeError, ValueError) as exc:
            return error(500, f"Unable to marshal workload list response: {exc}")
        return ApiResponse(200, body, JSON)
