"""The ``ipc_api`` plugin: the agent's command API over HTTPS on loopback, and the CLI
commands that use it (``status``, ``health``, ``flare``, ``config``, ``hostname``,
``workload-list``, ``stop``).

The server listens on ``cmd_host`` (default ``localhost``; ``ipc_address`` is a deprecated
alias) and ``security_agent.cmd_port`` (default 5010), TLS only, with a self-signed
certificate kept in the run path, and answers only requests that carry the bearer token of
the ``auth_token`` file. Other plugins add endpoints through ``security_agent_api_routes``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from twisted.logger import Logger

from host import CliCommand, FatalStartError, PluginSpec, StatusSection, hookimpl
from plugins.ipc_api import cli
from plugins.ipc_api.server import IpcServer
from plugins.ipc_client.address import listen_address
from plugins.ipc_client.auth_token import read_token, token_path

if TYPE_CHECKING:
    from host.agent import Agent
    from host.config import ConfigSchema

log = Logger(namespace="ipc_api")

START_ORDER = 20
"""Early, so the API answers (status, health, stop) while the security components start."""

STATE = "ipc_api"
"""The name of this plugin's state on the agent (``agent.plugin_state``)."""


@dataclass
class _State:
    """What this plugin keeps per agent: the server while it runs (dropped at stop)."""

    server: IpcServer | None = None


def _state(agent: Agent) -> _State:
    return agent.plugin_state(STATE, _State)


def server_of(agent: Agent) -> IpcServer | None:
    """The running server of ``agent`` (for tests and status)."""
    return _state(agent).server


@hookimpl
def security_agent_config_schema(schema: ConfigSchema) -> None:
    schema.declare("cmd_host", "localhost", description="the command API's address (loopback)")
    schema.declare("ipc_address", "", description="deprecated alias of cmd_host")
    schema.declare("security_agent.cmd_port", 5010, description="the command API's port")
    schema.declare(
        "auth_token_file_path",
        "",
        path=True,
        description="the API token file; default: auth_token next to the config file",
    )


@hookimpl
def security_agent_plugin_spec(agent: Agent) -> PluginSpec:
    # A non-loopback address or a bad port stops the start here, with one line.
    listen_address(agent.config)
    path = token_path(agent.config, agent.run_path)
    if path.exists():
        read_token(path)  # a token that is too short is refused before anything starts
    return PluginSpec(interval=None, start_order=START_ORDER, security_component=False)


@hookimpl
def security_agent_run(agent: Agent) -> None:
    server = IpcServer(agent)
    try:
        server.start()
    except Exception as exc:
        # As Datadog's agent: without its API (no token, port taken) the agent is not
        # manageable, so it stops, with exit code 1, rather than run half-blind.
        server.stop()
        raise FatalStartError(f"Error while starting api server, exiting: {exc}") from exc
    _state(agent).server = server
    if "api_requests" not in agent.published:
        agent.publish("api_requests", lambda: _request_counts(agent))


def _request_counts(agent: Agent) -> dict[str, int]:
    server = server_of(agent)
    return server.stats() if server is not None else {}


@hookimpl
def security_agent_stop(agent: Agent) -> Any:
    server = server_of(agent)
    agent.drop_plugin_state(STATE)
    if server is not None:
        return server.stop()
    return None


@hookimpl
def security_agent_process_event(agent: Agent, event: Mapping[str, Any]) -> None:
    server = server_of(agent)
    if server is not None:
        server.workloads.on_process_event(event)


@hookimpl
def security_agent_status(agent: Agent) -> StatusSection | None:
    server = server_of(agent)
    if server is None:
        return None
    counts = server.stats()
    data = {
        "address": server.address.interface,
        "port": server.bound_port,
        "routes": [e.route.path for e in server.routes.entries()],
        "requests": counts,
        "refused_routes": list(server.refused_routes),
    }
    requests = ", ".join(f"{code}: {n}" for code, n in counts.items()) or "none"
    text = (
        f"Listening on: https://{server.address.interface}:{server.bound_port}\n"
        f"Routes: {len(server.routes)}\n"
        f"Requests by status code: {requests}"
    )
    for refused in server.refused_routes:
        text += f"\nRefused route: {refused}"
    return StatusSection(key="ipcApi", title="Command API", data=data, text=text)


@hookimpl
def security_agent_cli_commands() -> Iterable[CliCommand]:
    return cli.commands()
