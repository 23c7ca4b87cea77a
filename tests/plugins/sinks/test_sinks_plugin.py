"""The sinks plugin as the host runs it (make_agent + AgentService on a fake reactor)."""

from __future__ import annotations

import json
import os
import stat

import pytest
from sinks_support import producer
from support import FakeReactor, entry_point, make_agent
from support import start_service as start
from twisted.logger import capturedLogs, formatEvent

import plugins.sinks
from host import FlareBuilder
from host.bootstrap import StartupError
from host.status import collect_status


@pytest.fixture
def reactor():
    r = FakeReactor()
    r.running = True
    return r


def agent_with(reactor, tmp_path, config="", env=None):
    eps = [entry_point("sinks", plugins.sinks), producer()]
    base = "security_agent:\n  disabled_exit_delay: 1s\n"
    return make_agent(reactor, eps, base + config, tmp_path=tmp_path, env=env)


def test_by_default_events_go_to_one_json_lines_file_per_track(reactor, tmp_path):
    agent = agent_with(reactor, tmp_path)
    assert agent.runtimes["sinks"].spec.requires_api_key is False
    svc = start(agent)
    assert [s.name for s in agent.events.sinks] == ["file"]
    first = agent.events.emit("runtime", {"rule": "r1"})
    agent.events.emit("compliance", {"result": "failed"})
    agent.events.emit("metrics", {"metric": "m", "value": 1})
    events_dir = tmp_path / "run" / "events"
    lines = (events_dir / "runtime.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [
        {
            "id": first.id,
            "track": "runtime",
            "timestamp": first.timestamp,
            "payload": {"rule": "r1"},
        }
    ]
    assert sorted(p.name for p in events_dir.iterdir()) == [
        "compliance.jsonl",
        "metrics.jsonl",
        "runtime.jsonl",
    ]
    assert stat.S_IMODE(os.stat(events_dir / "runtime.jsonl").st_mode) == 0o600
    section = collect_status(agent)["sections"]["sinks"]
    assert section["title"] == "Event Sinks"
    assert section["data"]["file"]["written"] == 3
    assert section["text"] == (
        f"file: 3 written ({section['data']['file']['written_bytes']} bytes) to {events_dir}, "
        "0 rotation(s)"
    )
    assert agent.published["sinks"]()["file"]["written"] == 3
    svc.stopService()


def test_event_files_rotate_by_size(reactor, tmp_path):
    agent = agent_with(reactor, tmp_path, "sinks:\n  file:\n    max_size: 1KB\n    max_rolls: 2\n")
    start(agent)
    for i in range(40):
        agent.events.emit("runtime", {"seq": i, "pad": "x" * 60})
    events_dir = tmp_path / "run" / "events"
    names = sorted(p.name for p in events_dir.iterdir())
    assert names == ["runtime.jsonl", "runtime.jsonl.1", "runtime.jsonl.2"]
    for name in names:
        assert (events_dir / name).stat().st_size <= 1024
    newest = [json.loads(x)["payload"]["seq"] for x in (events_dir / "runtime.jsonl").open()]
    assert newest[-1] == 39
    assert agent.published["sinks"]()["file"]["rotations"] >= 2


def test_an_endpoint_without_api_key_stops_the_start(reactor, tmp_path):
    agent = agent_with(
        reactor,
        tmp_path,
        "runtime_security_config:\n  endpoints:\n    logs_dd_url: 127.0.0.1:9\n",
    )
    assert agent.runtimes["sinks"].spec.requires_api_key is True
    with capturedLogs() as events:
        start(agent)
        reactor.advance(1)
    assert "No API key configured, exiting" in [formatEvent(e) for e in events]
    assert not reactor.running


def test_the_datadog_sink_uses_the_product_intakes_of_the_site(reactor, tmp_path):
    agent = agent_with(
        reactor, tmp_path, "site: datadoghq.eu\n", env={"DD_API_KEY": "0123456789abcdef"}
    )
    assert agent.runtimes["sinks"].spec.requires_api_key is False
    with capturedLogs() as events:
        svc = start(agent)
    sinks = {s.name: s for s in agent.events.sinks}
    assert sorted(sinks) == ["datadog", "file"]
    urls = {t: loop.url for t, loop in sinks["datadog"].routes.items()}
    assert urls == {
        "compliance": "https://cspm-intake.datadoghq.eu/api/v2/logs",
        "runtime": "https://runtime-security-http-intake.logs.datadoghq.eu/api/v2/logs",
        "metrics": "https://api.datadoghq.eu/api/v1/series",
    }
    assert "Event sink datadog from sinks takes compliance, metrics, runtime" in [
        formatEvent(e) for e in events
    ]
    assert (tmp_path / "run" / "spool" / "datadog-runtime").is_dir()
    # several sinks at once: the event goes to each sink that takes its track
    agent.events.emit("runtime", {"rule": "r1"})
    assert len((tmp_path / "run" / "events" / "runtime.jsonl").read_text().splitlines()) == 1
    assert sinks["datadog"].stats()["destinations"]["runtime"]["queued_records"] == 1
    flare = FlareBuilder()
    plugins.sinks.security_agent_flare(agent, flare)
    stats = json.loads(flare.files["sinks/stats.json"])
    assert stats["datadog"]["queued_records"] == 1
    assert stats["datadog"]["destinations"]["runtime"]["url"] == (
        "https://runtime-security-http-intake.logs.datadoghq.eu/api/v2/logs"
    )
    svc.stopService()


def test_an_endpoint_sets_host_port_and_scheme(reactor, tmp_path):
    agent = agent_with(
        reactor,
        tmp_path,
        "api_key: k\ncompliance_config:\n  endpoints:\n    logs_dd_url: '[::1]:8443'\n"
        "runtime_security_config:\n  endpoints:\n    logs_dd_url: intake.example:10516\n"
        "    logs_no_ssl: true\n",
    )
    with capturedLogs() as events:
        svc = start(agent)
    sink = next(s for s in agent.events.sinks if s.name == "datadog")
    assert sink.routes["compliance"].url == "https://[::1]:8443/api/v2/logs"
    assert sink.routes["runtime"].url == "http://intake.example:10516/api/v2/logs"
    assert "Events to http://intake.example:10516/api/v2/logs are sent without TLS" in [
        formatEvent(e) for e in events
    ]
    svc.stopService()


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            "api_key: k\nruntime_security_config:\n  endpoints:\n    logs_dd_url: nope\n",
            "security-agent.yaml:7: runtime_security_config.endpoints.logs_dd_url: "
            "expected host:port, got 'nope'",
        ),
        (
            "api_key: k\ncompliance_config:\n  endpoints:\n    logs_dd_url: h:70000\n",
            "security-agent.yaml:7: compliance_config.endpoints.logs_dd_url: "
            "port must be between 1 and 65535, got 70000",
        ),
        (
            "sinks:\n  spool:\n    max_size: 1KB\n",
            "security-agent.yaml:6: sinks.spool.max_size: must be at least 64KB, got 1024 bytes",
        ),
        (
            "sinks:\n  otlp:\n    endpoint: collector:4318\n",
            "security-agent.yaml:6: sinks.otlp.endpoint: expected an http(s) URL, "
            "got 'collector:4318'",
        ),
        (
            "sinks:\n  retry:\n    initial_backoff: 5s\n    max_backoff: 1s\n",
            "security-agent.yaml:7: sinks.retry.max_backoff: must be at least "
            "sinks.retry.initial_backoff (5s), got 1s",
        ),
    ],
)
def test_bad_values_are_one_line_errors_naming_file_line_and_key(
    reactor, tmp_path, config, message
):
    with pytest.raises(StartupError) as info:
        agent_with(reactor, tmp_path, config)
    assert str(info.value) == f"plugin sinks: {tmp_path}/{message}"


def test_a_bad_metrics_event_is_counted_and_logged(reactor, tmp_path):
    agent = agent_with(reactor, tmp_path, "api_key: k\nsinks:\n  file:\n    enabled: false\n")
    svc = start(agent)
    with capturedLogs() as events:
        agent.events.emit("metrics", {"value": 3})
    assert (
        "Sink datadog-metrics: dropping an event: a series needs a 'metric' name, "
        "got {'value': 3}" in [formatEvent(e) for e in events]
    )
    stats = agent.published["sinks"]()["datadog"]
    assert stats["dropped"] == 1
    assert stats["destinations"]["metrics"]["dropped_invalid"] == 1
    svc.stopService()


def test_nothing_enabled_disables_the_plugin(reactor, tmp_path):
    agent = agent_with(
        reactor, tmp_path, "sinks:\n  file:\n    enabled: false\n  datadog:\n    enabled: false\n"
    )
    assert agent.runtimes["sinks"].spec.enabled is False
