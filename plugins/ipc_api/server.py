"""The command API server of one agent: token, certificate, routes, listener, counters."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet import defer
from twisted.logger import Logger

from host.plugin_types import ApiRoute
from plugins.ipc_api.certificate import load_or_create
from plugins.ipc_api.endpoints import Endpoints
from plugins.ipc_api.routes import RouteTable
from plugins.ipc_api.tls import server_options
from plugins.ipc_api.web import ApiResource, ApiSite
from plugins.ipc_api.workloads import WorkloadRefresher
from plugins.ipc_client.address import ListenAddress, listen_address
from plugins.ipc_client.auth_token import fetch_or_create_token, token_path

if TYPE_CHECKING:
    from host.agent import Agent

log = Logger(namespace="ipc_api")

OWN_NAME = "ipc_api"


class IpcServer:
    """Built in ``run()``, torn down in ``stop()``; reachable from the plugin's hooks."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.address: ListenAddress = listen_address(agent.config, warn=False)
        self.routes = RouteTable()
        self.workloads = WorkloadRefresher(agent)
        self.token = b""
        self.resource = ApiResource(self.routes, lambda: self.token)
        self.site: ApiSite | None = None
        self.port: Any = None
        self.refused_routes: list[str] = []

    @property
    def bound_port(self) -> int | None:
        return None if self.port is None else int(self.port.getHost().port)

    def add_routes(self, owner: str, routes: Any) -> None:
        for route in routes or ():
            if not isinstance(route, ApiRoute):
                message = f"plugin {owner}: not an ApiRoute: {route!r}"
                log.error("{message}", message=message)
                self.refused_routes.append(message)
                continue
            try:
                self.routes.add(route, owner)
            except ValueError as exc:
                message = f"plugin {owner}: {exc}; refused"
                log.error("{message}", message=message)
                self.refused_routes.append(message)

    def collect_routes(self) -> None:
        self.add_routes(OWN_NAME, Endpoints(self.agent, self.workloads).routes())
        for owner, routes in self.agent.call_each("security_agent_api_routes", agent=self.agent):
            if owner == OWN_NAME:
                continue
            if isinstance(routes, Exception):
                self.refused_routes.append(f"plugin {owner}: routes failed: {routes}")
                continue
            self.add_routes(owner, routes)

    def start(self) -> None:
        agent = self.agent
        path = token_path(agent.config, agent.run_path)
        self.token = fetch_or_create_token(path).encode()
        pair = load_or_create(agent.run_path)
        self.collect_routes()
        self.site = ApiSite(self.resource)
        self.port = agent.reactor.listenSSL(
            self.address.port,
            self.site,
            server_options(pair),
            interface=self.address.interface,
        )
        log.info(
            "The command API listens on https://{host}:{port} ({routes} routes)",
            host=self.address.interface,
            port=self.bound_port,
            routes=len(self.routes),
        )
        self.workloads.start()

    def stop(self) -> defer.Deferred[Any]:
        waits: list[defer.Deferred[Any]] = []
        stopping = self.workloads.stop(5.0)
        if isinstance(stopping, defer.Deferred):
            waits.append(stopping)
        if self.port is not None:
            waits.append(defer.maybeDeferred(self.port.stopListening))
            self.port = None
        if self.site is not None:
            waits.append(self.site.connections.close_all(abort=True))
        return defer.gatherResults(waits, consumeErrors=True)

    def stats(self) -> dict[str, int]:
        return {str(code): n for code, n in sorted(self.resource.counts.items())}
