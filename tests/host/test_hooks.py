"""Every hook of host/hookspecs.py, exercised through the host the way a plugin author uses it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from support import FakeReactor, entry_point, make_agent, plugin_module
from twisted.logger import capturedLogs, formatEvent

import host.hookspecs
from host import CliCommand, FlareBuilder, PluginSpec, RuntimeSetting, StatusSection
from host.bootstrap import StartupError
from host.config import Source
from host.flare_files import collect_flare_files
from host.logs import LogControl
from host.runtime_settings import SettingNotFoundError, get_setting, set_setting
from host.status import collect_status, render_text

HOOKS = sorted(n for n in dir(host.hookspecs) if n.startswith("security_agent_"))


def test_every_hook_is_tested_here():
    # As datasette does: a new hook without a test here fails this test.
    source = Path(__file__).read_text()
    untested = [
        h for h in HOOKS if f"def test_hook_{h.removeprefix('security_agent_')}" not in source
    ]
    assert untested == []


def test_every_hook_is_documented():
    for name in HOOKS:
        doc = getattr(host.hookspecs, name).__doc__
        assert doc, name
        assert len(doc.split()) >= 8, name


def test_hook_config_schema(tmp_path):
    def schema(schema):
        schema.declare("demo.interval", "30s")
        schema.declare("demo.paths", ["a"], path=True)

    ep = entry_point("demo", plugin_module("demo", security_agent_config_schema=schema))
    agent = make_agent(
        FakeReactor(),
        [ep],
        "demo:\n  paths: [rel/x]\n",
        tmp_path=tmp_path,
        env={"DD_DEMO_INTERVAL": "5m"},
    )
    assert agent.config.get_duration("demo.interval") == 300.0
    assert agent.config.source("demo.interval") is Source.ENV
    assert agent.config.get_list("demo.paths") == [str(tmp_path / "rel" / "x")]
    assert agent.config.schema.spec("demo.interval").owner == "demo"


def test_hook_config_schema_clash_names_both_plugins(tmp_path):
    a = plugin_module("a", security_agent_config_schema=lambda schema: schema.declare("k", 1))
    b = plugin_module("b", security_agent_config_schema=lambda schema: schema.declare("k", 2))
    with pytest.raises(StartupError) as exc:
        make_agent(FakeReactor(), [entry_point("a", a), entry_point("b", b)], tmp_path=tmp_path)
    assert str(exc.value) == (
        "plugin b: k: declared twice with different defaults: 1 by plugin 'a' and 2 by plugin 'b'"
    )


def test_hook_plugin_spec(tmp_path):
    ep = entry_point(
        "p",
        plugin_module(
            "p", security_agent_plugin_spec=lambda agent: PluginSpec(interval=7.0, start_order=3)
        ),
    )
    agent = make_agent(FakeReactor(), [ep], tmp_path=tmp_path)
    assert agent.runtimes["p"].spec == PluginSpec(interval=7.0, start_order=3)


def test_hook_plugin_spec_must_return_a_spec(tmp_path):
    ep = entry_point("p", plugin_module("p", security_agent_plugin_spec=lambda agent: {"x": 1}))
    with pytest.raises(StartupError) as exc:
        make_agent(FakeReactor(), [ep], tmp_path=tmp_path)
    assert (
        str(exc.value) == "plugin p: security_agent_plugin_spec returned dict, expected PluginSpec"
    )


def test_hook_run(tmp_path):
    seen = []
    # pluggy matches hook arguments by name, so the hook must be a function taking `agent`.
    ep = entry_point("p", plugin_module("p", security_agent_run=lambda agent: seen.append(agent)))  # noqa: PLW0108
    agent = make_agent(FakeReactor(), [ep], tmp_path=tmp_path)
    agent.scheduler.add("p", lambda: agent.call_one("p", "security_agent_run", agent=agent)).start()
    assert seen == [agent]


def test_hook_stop(tmp_path):
    seen = []
    ep = entry_point("p", plugin_module("p", security_agent_stop=lambda agent: seen.append(1)))
    agent = make_agent(FakeReactor(), [ep], tmp_path=tmp_path)
    assert agent.call_one("p", "security_agent_stop", agent=agent) is None
    assert seen == [1]
    assert agent.call_one("nosuch", "security_agent_stop", agent=agent) is None


def test_hook_status(tmp_path):
    def good(agent):
        return StatusSection(key="demo", title="Demo", data={"events": 3}, text="Events: 3")

    def bad(agent):
        raise KeyError("boom")

    agent = make_agent(
        FakeReactor(),
        [
            entry_point("good", plugin_module("good", security_agent_status=good)),
            entry_point("bad", plugin_module("bad", security_agent_status=bad)),
        ],
        tmp_path=tmp_path,
    )
    status = collect_status(agent)
    assert status["sections"]["demo"] == {
        "title": "Demo",
        "data": {"events": 3},
        "text": "Events: 3",
        "plugin": "good",
    }
    assert status["section_errors"] == {"bad": "KeyError: 'boom'"}
    assert [p["name"] for p in status["plugins"]] == ["bad", "good"]
    json.dumps(status)  # JSON-ready as promised
    text = render_text(status)
    assert "Demo\n====\n  Events: 3" in text
    assert "bad: status unavailable: KeyError: 'boom'" in text
    assert re.search(r"good \(fake-dist 1\.2\.3\): loaded", text)


def test_hook_flare(tmp_path):
    def add(agent, flare: FlareBuilder):
        flare.add_file("demo/state.json", '{"ok": true}')

    def broken(agent, flare):
        raise OSError("no such device")

    agent = make_agent(
        FakeReactor(),
        [
            entry_point("demo", plugin_module("demo", security_agent_flare=add)),
            entry_point("zz", plugin_module("zz", security_agent_flare=broken)),
        ],
        tmp_path=tmp_path,
    )
    flare = collect_flare_files(agent)
    assert flare.files["demo/state.json"] == b'{"ok": true}'
    assert {"status.json", "status.log", "plugins.json", "runtime_config_dump.json"} <= set(
        flare.files
    )
    assert json.loads(flare.files["runtime_config_dump.json"]) == {"log_level": "info"}
    assert flare.errors == ["zz: OSError: no such device"]


def test_flare_names_must_stay_inside_the_archive():
    flare = FlareBuilder()
    for bad in ("/etc/passwd", "../x", "a/../../b", ""):
        with pytest.raises(ValueError, match="relative path inside the archive"):
            flare.add_file(bad, b"")


def test_hook_runtime_settings(tmp_path):
    store = {"v": 1}

    def setter(value, source):
        if not str(value).isdigit():
            raise ValueError(f"expected a number, got {value!r}")
        store["v"] = int(value)

    settings = [RuntimeSetting("demo_rate", "events per second", lambda: store["v"], setter)]
    ep = entry_point(
        "demo", plugin_module("demo", security_agent_runtime_settings=lambda agent: settings)
    )
    agent = make_agent(FakeReactor(), [ep], tmp_path=tmp_path)
    assert sorted(agent.runtime_settings) == ["demo_rate", "log_level"]
    set_setting(agent, "demo_rate", "12")
    assert get_setting(agent, "demo_rate") == 12
    with pytest.raises(ValueError, match="expected a number, got 'x'"):
        set_setting(agent, "demo_rate", "x")
    with pytest.raises(SettingNotFoundError) as exc:
        get_setting(agent, "nosuch")
    assert str(exc.value) == "setting nosuch not found"


def test_runtime_setting_names_must_be_unique(tmp_path):
    dup = [RuntimeSetting("log_level", "mine", lambda: 1, lambda v, s: None)]
    ep = entry_point(
        "demo", plugin_module("demo", security_agent_runtime_settings=lambda agent: dup)
    )
    with pytest.raises(StartupError) as exc:
        make_agent(FakeReactor(), [ep], tmp_path=tmp_path)
    assert str(exc.value) == "plugin demo: runtime setting 'log_level' is already provided"


def test_log_level_runtime_setting_changes_the_live_level(tmp_path):
    import io

    from twisted.logger import Logger, LogPublisher

    agent = make_agent(FakeReactor(), [], tmp_path=tmp_path)
    out = io.StringIO()
    agent.logs = LogControl(console=out, level="info")
    publisher = LogPublisher(*agent.logs.observers())
    log = Logger(namespace="t", observer=publisher)
    log.debug("hidden")
    set_setting(agent, "log_level", "debug")
    log.debug("shown")
    assert "hidden" not in out.getvalue()
    assert out.getvalue().endswith("| DEBUG | (t) | shown\n")
    assert agent.config.get_str("log_level") == "debug"
    assert agent.config.source("log_level") is Source.CLI
    assert get_setting(agent, "log_level") == "debug"
    with pytest.raises(ValueError, match="unknown log level 'loud'"):
        set_setting(agent, "log_level", "loud")
    assert agent.runtime_settings["log_level"].description == (
        "Set/get the log level, valid values are: trace, debug, info, warn, error, critical and off"
    )


def test_hook_cli_commands(monkeypatch, capsys, tmp_path):
    from host import cli

    def run(ctx, args):
        ctx.print(f"hello {args.who} from {ctx.config().get_str('run_path')}")
        return 3

    def commands():
        return [
            CliCommand(
                name="hello", help="Say hello", run=run, configure=lambda p: p.add_argument("who")
            )
        ]

    def taken():
        return [CliCommand(name="version", help="clash", run=run)]

    eps = [
        entry_point("greeter", plugin_module("greeter", security_agent_cli_commands=commands)),
        entry_point("clasher", plugin_module("clasher", security_agent_cli_commands=taken)),
    ]
    monkeypatch.setattr("host.discovery.installed_entry_points", lambda: eps)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"run_path: {tmp_path}\n")
    assert cli.main(["hello", "world", "-c", str(cfg)]) == 3
    out, err = capsys.readouterr()
    assert out == f"hello world from {tmp_path}\n"
    assert "plugin clasher: command 'version' is already taken; ignored" in err
    assert cli.main(["version"]) == 0
    assert capsys.readouterr().out.startswith("Security agent ")


class ListSink:
    def __init__(self, name, tracks=()):
        self.name = name
        self.tracks = frozenset(tracks)
        self.events = []

    def send(self, event):
        self.events.append(event)

    def stats(self):
        return {"sent": len(self.events)}


def test_hook_event_sinks(tmp_path):
    from host.lifecycle import AgentService

    runtime_sink, all_sink = ListSink("runtime-only", ["runtime"]), ListSink("everything")

    class Broken(ListSink):
        def send(self, event):
            raise OSError("disk full")

    broken = Broken("broken", ["metrics"])
    eps = [
        entry_point(
            "sinks",
            plugin_module(
                "sinks",
                security_agent_event_sinks=lambda agent: [runtime_sink, all_sink, broken],
                security_agent_plugin_spec=lambda agent: PluginSpec(security_component=True),
            ),
        ),
    ]
    reactor = FakeReactor()
    reactor.running = True
    agent = make_agent(reactor, eps, tmp_path=tmp_path)
    AgentService(agent, install_signal_handlers=False).startService()
    e1 = agent.events.emit("runtime", {"rule": "r1"})
    agent.events.emit("compliance", {"rule": "c1"})
    agent.events.emit("metrics", {"m": 1})
    assert runtime_sink.events == [e1]
    assert [e.track for e in all_sink.events] == ["runtime", "compliance", "metrics"]
    assert len({e.id for e in all_sink.events}) == 3
    stats = agent.events.stats()
    assert stats["emitted"] == {"runtime": 1, "compliance": 1, "metrics": 1}
    assert stats["failed"] == {"metrics": 1}
    assert stats["sinks"]["runtime-only"] == {"sent": 1}


def test_events_without_a_sink_are_counted_not_lost_silently(tmp_path):
    agent = make_agent(FakeReactor(), [], tmp_path=tmp_path)
    with capturedLogs() as events:
        agent.events.emit("runtime", {"x": 1})
        agent.events.emit("runtime", {"x": 2})
    assert agent.events.stats()["unrouted"] == {"runtime": 2}
    assert [formatEvent(e) for e in events] == [
        "No event sink takes runtime events; they are counted and dropped"
    ]
    assert "runtime: 2 emitted, 0 delivered, 2 with no sink" in render_text(collect_status(agent))


def test_events_from_a_worker_thread_are_delivered_in_the_reactor_thread(tmp_path):
    import threading

    agent = make_agent(FakeReactor(), [], tmp_path=tmp_path)
    sink = ListSink("s")
    agent.events.add_sink(sink)
    t = threading.Thread(target=agent.events.emit, args=("runtime", {"x": 1}))
    t.start()
    t.join()
    assert sink.events == []  # not delivered from the worker thread itself
    agent.reactor.advance(0)
    assert [e.payload for e in sink.events] == [{"x": 1}]


def test_hook_api_routes(tmp_path):
    from host import ApiRequest, ApiResponse, ApiRoute

    def hello(request: ApiRequest) -> ApiResponse:
        return ApiResponse(body={"hello": request.params["name"], "v": request.arg("v")})

    route = ApiRoute("/agent/hello/{name}", ("GET",), hello, "say hello")
    ep = entry_point(
        "greeter", plugin_module("greeter", security_agent_api_routes=lambda agent: [route])
    )
    agent = make_agent(FakeReactor(), [ep], tmp_path=tmp_path)
    ((plugin, routes),) = agent.call_each("security_agent_api_routes", agent=agent)
    assert plugin == "greeter"
    response = routes[0].handler(
        ApiRequest("GET", "/agent/hello/bob", {"name": "bob"}, {"v": ["2"]})
    )
    assert response.encoded() == (b'{"hello": "bob", "v": "2"}', "application/json")
    assert ApiRequest("POST", "/x", body=b"value=debug&x=").form() == {"value": "debug", "x": ""}


def test_hook_process_event(tmp_path):
    seen = []
    ep = entry_point(
        "watcher",
        plugin_module(
            "watcher", security_agent_process_event=lambda agent, event: seen.append(event["type"])
        ),
    )
    agent = make_agent(FakeReactor(), [ep], tmp_path=tmp_path)
    agent.call_each(
        "security_agent_process_event", agent=agent, event={"type": "exec", "process": {"pid": 42}}
    )
    assert seen == ["exec"]
