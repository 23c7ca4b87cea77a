"""The expvar server as the host runs it, with real sockets on 127.0.0.1.

Each test starts an agent (expvar plus a small security plugin) through AgentService with
``security_agent.expvar_port: 0`` and reads the bound port from the plugin object. The agent
runs on a reactor of its own in a background thread, not the global one: the test talks to it
with a blocking HTTP client, as a user would, and no state leaks into other tests' reactors
(trial's or pytest-twisted's).
"""

from __future__ import annotations

import errno
import http.client
import json
import socket
import sys
import threading
import tracemalloc

import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families
from support import entry_point, make_agent, plugin_module
from twisted.internet.pollreactor import PollReactor
from twisted.internet.threads import blockingCallFromThread
from twisted.logger import formatEvent

import plugins.expvar
from host import PluginSpec
from host.lifecycle import AgentService
from host.status import collect_status
from plugins.expvar import expvar_plugin


def boom():
    raise RuntimeError("boom")


def fake_security_plugin(published):
    """A security component that runs once at start and publishes variables."""
    state = {"runs": 0}

    def spec(agent):
        return PluginSpec(security_component=True)

    def run(agent):
        state["runs"] += 1
        if state["runs"] == 1:
            for name, getter in published.items():
                agent.publish(name, getter)

    return plugin_module("fake", security_agent_plugin_spec=spec, security_agent_run=run)


class RunningAgent:
    """An agent on a private reactor in a thread; ``call`` runs code in that thread."""

    def __init__(self, tmp_path, config, published):
        tmp_path.mkdir()
        self.reactor = PollReactor()
        self.thread = threading.Thread(
            target=self.reactor.run, kwargs={"installSignalHandlers": False}, daemon=True
        )
        self.thread.start()
        self.agent = self.call(
            make_agent,
            self.reactor,
            [
                entry_point("expvar", plugins.expvar),
                entry_point("fake", fake_security_plugin(published or {})),
            ],
            config if "expvar_port" in config else "security_agent.expvar_port: 0\n" + config,
            tmp_path=tmp_path,
        )
        self.service = AgentService(self.agent, install_signal_handlers=False)

        def start():
            self.service.startService()
            return self.service._starting

        self.call(start)
        assert self.service.ready
        self.plugin = expvar_plugin(self.agent)
        self.stopped = False

    def call(self, f, *args, **kwargs):
        return blockingCallFromThread(self.reactor, f, *args, **kwargs)

    def stop_agent(self):
        if not self.stopped:
            self.stopped = True
            self.call(self.service.stopService)

    def close(self):
        self.stop_agent()
        self.reactor.callFromThread(self.reactor.stop)
        self.thread.join(timeout=30)
        assert not self.thread.is_alive()
        self.reactor.waker.connectionLost(None)  # the reactor's own pipe

    def get(self, path="/debug/vars", method="GET", headers=None):
        connection = http.client.HTTPConnection("127.0.0.1", self.plugin.port, timeout=30)
        try:
            connection.request(method, path, headers=headers or {})
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()


@pytest.fixture
def start_agent(tmp_path):
    started = []

    def start(config="", published=None):
        running = RunningAgent(tmp_path / f"agent{len(started)}", config, published)
        started.append(running)
        return running

    yield start
    for running in started:
        running.close()


def test_debug_vars_reflects_plugin_activity(start_agent):
    running = start_agent(
        published={
            "fake_counts": lambda: {"count": 7, "nested": {"ratio": 0.5}},
            "broken": boom,
            "unencodable": object,
        }
    )
    agent = running.agent
    running.call(agent.scheduler.jobs["fake"].fire)  # a second run of the fake plugin
    running.call(agent.events.emit, "runtime", {"rule": "r1"})
    status, headers, body = running.get()
    assert status == 200
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    page = json.loads(body)
    assert list(page) == [
        "cmdline",
        "memstats",
        "scheduler",
        "events",
        "workers",
        "expvar",
        "fake_counts",
        "broken",
        "unencodable",
    ]
    assert page["cmdline"] == sys.orig_argv
    fake = page["scheduler"]["fake"]
    assert (fake["runs"], fake["errors"], fake["skipped"], fake["overruns"]) == (2, 0, 0, 0)
    assert fake["interval"] is None
    assert fake["last_duration"] >= 0
    assert page["scheduler"]["expvar"]["runs"] == 1
    assert page["events"]["emitted"] == {"runtime": 1}
    assert page["events"]["unrouted"] == {"runtime": 1}
    assert page["workers"] == {"size": 1, "busy": 0, "queued": 0}
    assert page["fake_counts"] == {"count": 7, "nested": {"ratio": 0.5}}
    assert page["broken"] == {"error": "RuntimeError: boom"}
    assert page["unencodable"] == {
        "error": "TypeError: Object of type object is not JSON serializable"
    }
    mem = page["memstats"]
    assert mem["rss_bytes"] > 1_000_000
    assert mem["rss_peak_bytes"] >= mem["rss_bytes"]
    assert mem["open_fds"] > 3
    assert mem["os_threads"] >= mem["python_threads"] >= 2  # this thread and the reactor's
    assert len(mem["gc"]["generations"]) == 3
    assert set(mem["gc"]["generations"][0]) == {"collections", "collected", "uncollectable"}
    assert mem["tracemalloc"] == {"tracing": False}
    # The request itself is counted on the next page.
    _, _, body = running.get()
    assert json.loads(body)["expvar"] == {
        "requests": {"by_code": {"200": 1}, "by_path": {"/debug/vars": 1}},
        "shadowed": [],
    }


def test_tracemalloc_figures_appear_while_tracing(start_agent):
    running = start_agent()
    tracemalloc.start()
    try:
        _, _, body = running.get()
    finally:
        tracemalloc.stop()
    heap = json.loads(body)["memstats"]["tracemalloc"]
    assert heap["tracing"] is True
    assert heap["peak_bytes"] >= heap["current_bytes"] > 0
    assert heap["overhead_bytes"] > 0


def test_a_published_builtin_name_is_reported_not_shown(start_agent):
    running = start_agent(published={"memstats": lambda: "mine"})
    page = json.loads(running.get()[2])
    assert isinstance(page["memstats"], dict)
    assert page["expvar"]["shadowed"] == ["memstats"]


def test_unknown_path_is_404_and_other_methods_405(start_agent):
    running = start_agent()
    status, headers, body = running.get("/debug/pprof")
    assert status == 404
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    assert json.loads(body) == {"error": "no such page: /debug/pprof"}
    status, _, body = running.get("/telemetry")  # telemetry is off by default
    assert status == 404
    assert json.loads(body) == {"error": "no such page: /telemetry"}
    for method in ("POST", "PUT", "DELETE", "HEAD"):
        status, headers, body = running.get(method=method)
        assert status == 405
        assert headers["Allow"] == "GET"
        if method != "HEAD":
            assert json.loads(body) == {
                "error": f"method {method} not allowed on /debug/vars; use GET"
            }
    assert running.get("/debug/vars?x=1")[0] == 200
    requests = json.loads(running.get()[2])["expvar"]["requests"]
    assert requests["by_code"] == {"404": 2, "405": 4, "200": 1}


def test_listens_on_ipv4_loopback_only(start_agent):
    running = start_agent()
    port = running.plugin.port
    assert running.plugin.server.address == "127.0.0.1"
    assert port != 0
    # 127.0.0.2 is loopback too, but the socket is bound to 127.0.0.1 alone.
    with socket.socket() as other:
        other.settimeout(5)
        assert other.connect_ex(("127.0.0.2", port)) == errno.ECONNREFUSED
    assert listening_addresses(port) == ["127.0.0.1"]


def test_status_section_and_stop_closes_the_port_and_connections(start_agent):
    running = start_agent()
    plugin = running.plugin
    port = plugin.port
    section = running.call(collect_status, running.agent)["sections"]["expvar"]
    assert section["title"] == "Expvar"
    assert section["data"]["url"] == f"http://127.0.0.1:{port}/debug/vars"
    assert section["data"]["telemetry_url"] is None
    assert section["data"]["internal_profiling"] == {"enabled": False}
    assert section["text"] == (
        f"Debug variables: http://127.0.0.1:{port}/debug/vars\n"
        "Telemetry: disabled\n"
        "Internal profiling: disabled"
    )
    # A keep-alive connection left open must not survive the stop.
    idle = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    idle.request("GET", "/debug/vars")
    response = idle.getresponse()
    response.read()
    assert response.getheader("Connection") != "close"
    running.stop_agent()
    assert plugin.port is None
    assert listening_addresses(port) == []
    assert idle.sock.recv(1) == b""  # closed by the server
    idle.close()


def test_port_in_use_is_logged_and_the_agent_runs_on(start_agent, log_events):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        running = start_agent(f"security_agent:\n  expvar_port: {port}\n")
    plugin = running.plugin
    assert plugin.port is None
    assert plugin.listen_error == "[Errno 98] Address already in use"
    errors = [formatEvent(e) for e in log_events if e.get("log_namespace") == "expvar"]
    assert errors == [
        f"Error creating expvar server on port {port}: [Errno 98] Address already in use"
    ]
    assert running.agent.scheduler.jobs["expvar"].stats.errors == 0
    section = running.call(collect_status, running.agent)["sections"]["expvar"]
    assert section["text"].startswith(
        "Debug variables: not serving\nError: [Errno 98] Address already in use\n"
    )


def samples(families, name, suffix=""):
    return [(s.labels, s.value) for s in families[name].samples if s.name == name + suffix]


def test_telemetry_serves_the_same_figures_as_prometheus_text(start_agent):
    running = start_agent(
        "telemetry:\n  enabled: true\n",
        published={"fake_counts": lambda: {"count": 7, "flag": True, "label": "x"}},
    )
    running.call(running.agent.scheduler.jobs["fake"].fire)
    running.call(running.agent.events.emit, "compliance", {"rule": "r"})
    running.get()  # one 200 before the scrape
    status, headers, body = running.get("/telemetry")
    assert status == 200
    assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    assert families["security_agent_scheduler_runs"].type == "counter"
    assert samples(families, "security_agent_scheduler_runs", "_total") == [
        ({"plugin": "expvar"}, 1.0),
        ({"plugin": "fake"}, 2.0),
    ]
    assert samples(families, "security_agent_scheduler_errors", "_total") == [
        ({"plugin": "expvar"}, 0.0),
        ({"plugin": "fake"}, 0.0),
    ]
    assert samples(families, "security_agent_scheduler_running") == [
        ({"plugin": "expvar"}, 0.0),
        ({"plugin": "fake"}, 0.0),
    ]
    assert samples(families, "security_agent_events_emitted", "_total") == [
        ({"track": "compliance"}, 1.0)
    ]
    assert samples(families, "security_agent_events_unrouted", "_total") == [
        ({"track": "compliance"}, 1.0)
    ]
    assert samples(families, "security_agent_expvar_requests", "_total") == [({"code": "200"}, 1.0)]
    # Numbers only: the boolean and the string of the published variable are left out.
    assert samples(families, "security_agent_var") == [
        ({"name": "fake_counts", "path": "count"}, 7.0)
    ]
    assert samples(families, "security_agent_var_dropped") == [({}, 0.0)]
    assert samples(families, "security_agent_workers_size") == [({}, 1.0)]
    [(_, rss)] = samples(families, "security_agent_process_resident_memory_bytes")
    assert rss > 1_000_000
    [(_, fds)] = samples(families, "security_agent_process_open_fds")
    assert fds > 3
    generations = samples(families, "security_agent_python_gc_collections", "_total")
    assert [labels for labels, _ in generations] == [
        {"generation": "0"},
        {"generation": "1"},
        {"generation": "2"},
    ]


def test_openmetrics_is_negotiated_from_accept(start_agent):
    running = start_agent("telemetry:\n  enabled: true\n")
    status, headers, body = running.get(
        "/telemetry", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert status == 200
    assert headers["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
    assert body.endswith(b"# EOF\n")
    names = {f.name for f in openmetrics_families(body.decode())}
    assert {"security_agent_scheduler_runs", "security_agent_var"} <= names


def test_telemetry_is_get_only_and_in_status(start_agent):
    running = start_agent("telemetry:\n  enabled: true\n")
    status, _, body = running.get("/telemetry", method="POST")
    assert status == 405
    assert json.loads(body) == {"error": "method POST not allowed on /telemetry; use GET"}
    section = running.call(collect_status, running.agent)["sections"]["expvar"]
    port = running.plugin.port
    assert section["data"]["telemetry_url"] == f"http://127.0.0.1:{port}/telemetry"
    assert f"Telemetry: http://127.0.0.1:{port}/telemetry\n" in section["text"]


def listening_addresses(port):
    """Local addresses with a socket listening on ``port`` (from /proc/net/tcp and tcp6)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            next(f)
            for line in f:
                fields = line.split()
                address, hex_port = fields[1].rsplit(":", 1)
                if fields[3] != "0A" or int(hex_port, 16) != port:  # 0A: LISTEN
                    continue
                if len(address) == 8:
                    found.append(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
                else:
                    found.append(f"ipv6:{address}")
    return found
