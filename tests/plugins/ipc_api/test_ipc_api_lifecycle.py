"""The plugin driven by the host's lifecycle on a fake reactor: listen, publish, stop."""

from __future__ import annotations

import io
import json
import sys
import types

from support import FakeReactor, entry_point, make_agent, plugin_module
from twisted.web.test.requesthelper import DummyRequest

import plugins.ipc_api
from host import ApiResponse, ApiRoute, PluginSpec
from host.lifecycle import AgentService


def _security():
    return plugin_module(
        "sec",
        security_agent_plugin_spec=lambda agent: PluginSpec(interval=60, security_component=True),
        security_agent_run=lambda agent: None,
    )


def _request(server, path, token, method=b"GET"):
    req = DummyRequest(path.strip("/").encode().split(b"/"))
    req.path, req.uri, req.method = path.encode(), path.encode(), method
    req.content = io.BytesIO(b"")
    if token is not None:
        req.requestHeaders.setRawHeaders(b"authorization", [b"Bearer " + token])
    body = server.resource.render(req)
    return req.responseCode or 200, body


def test_started_and_stopped_by_the_host(tmp_path, monkeypatch):
    store = types.ModuleType("plugins.workloadmeta")
    refreshed = []

    class WorkloadStore:
        def __init__(self, proc_root):
            assert proc_root == "/proc"

        def refresh(self):
            refreshed.append(True)

        def dump(self, verbose):
            return {"verbose": verbose}

    store.WorkloadStore = WorkloadStore
    monkeypatch.setitem(sys.modules, "plugins.workloadmeta", store)
    reactor = FakeReactor()
    extra = plugin_module(
        "extra",
        security_agent_api_routes=lambda agent: [
            ApiRoute("/agent/extra", ("GET",), lambda r: ApiResponse(200, {"ok": True}))
        ],
    )
    agent = make_agent(
        reactor,
        [
            entry_point("ipc_api", plugins.ipc_api),
            entry_point("sec", _security()),
            entry_point("extra", extra),
        ],
        "security_agent:\n  cmd_port: 5999\n",
        tmp_path=tmp_path,
    )
    service = AgentService(agent, install_signal_handlers=False)
    service.startService()
    assert service.ready
    port, _factory, _ctx, _backlog, interface = reactor.sslServers[0]
    assert (port, interface) == (5999, "127.0.0.1")
    server = plugins.ipc_api.server_of(agent)
    assert server is not None
    assert refreshed == [True]  # a first refresh at start, then every 30 s
    reactor.advance(30.0)
    assert len(refreshed) >= 2

    token = (tmp_path / "auth_token").read_bytes()
    assert _request(server, "/agent/extra", token) == (200, b'{"ok": true}')
    assert _request(server, "/agent/workload-list", token) == (200, b'{"verbose": false}')
    assert _request(server, "/agent/extra", None)[0] == 401
    assert _request(server, "/agent/extra", b"0" * 64)[0] == 403
    assert agent.published["api_requests"]() == {"200": 2, "401": 1, "403": 1}
    status = agent.call_one("ipc_api", "security_agent_status", agent=agent)
    assert status.data["requests"] == {"200": 2, "401": 1, "403": 1}
    assert "Requests by status code: 200: 2, 401: 1, 403: 1" in status.text

    stop = service.stopService()
    reactor.advance(1)
    assert stop.called
    assert plugins.ipc_api.server_of(agent) is None
    assert "ipc_api.workloads" not in agent.scheduler.jobs
    assert agent.published["api_requests"]() == {}
    assert json.loads(json.dumps(agent.published["api_requests"]())) == {}
