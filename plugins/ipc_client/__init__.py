"""A library (no entry point) for talking to the agent's command API from a CLI command.

The ``ipc_api`` plugin serves the API; any plugin whose CLI commands need a running agent
(``status``, ``runtime policy reload`` …) uses this client, so the token, TLS and address
rules live in one place::

    from plugins.ipc_client import UnreachableError, client_for

    reply = client_for(ctx.agent()).request("GET", "/agent/status/health")
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from plugins.ipc_client.address import listen_address
from plugins.ipc_client.auth_token import token_path
from plugins.ipc_client.client import IpcClient, Reply, UnreachableError
from plugins.ipc_client.files import cert_paths

if TYPE_CHECKING:
    from host.agent import Agent


def client_for(agent: Agent) -> IpcClient:
    """A client for the agent configured as ``agent`` is (address, token, certificate)."""
    cert, _key = cert_paths(agent.run_path)
    return IpcClient(
        listen_address(agent.config, warn=False),
        token_path(agent.config, agent.run_path),
        cert,
    )


__all__ = ["IpcClient", "Reply", "UnreachableError", "client_for"]
