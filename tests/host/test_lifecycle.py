"""The seed's RunAgent/StopAgent, driven on a fake reactor with fake plugins."""

from __future__ import annotations

import signal

import pytest
from support import FakeReactor, entry_point, make_agent, plugin_module
from support import start_service as start
from twisted.internet import defer
from twisted.logger import capturedLogs, formatEvent

from host import PluginSpec
from host.bootstrap import StartupError


def messages(events):
    return [formatEvent(e) for e in events]


def component(name, order, calls, *, security=True, run=None, stop=None, **spec):
    def _run(agent):
        calls.append(("run", name))
        return run() if run else None

    def _stop(agent):
        calls.append(("stop", name))
        return stop() if stop else None

    return entry_point(
        name,
        plugin_module(
            name,
            security_agent_plugin_spec=lambda agent: PluginSpec(
                start_order=order, security_component=security, **spec
            ),
            security_agent_run=_run,
            security_agent_stop=_stop,
        ),
    )


@pytest.fixture
def reactor():
    r = FakeReactor()
    r.running = True
    return r


def test_start_in_declared_order_stop_in_reverse(reactor, tmp_path):
    calls = []
    agent = make_agent(
        reactor,
        [
            component("runtime_security", 10, calls),
            component("compliance", 50, calls),
            component("ipc_api", 20, calls, security=False),
        ],
        tmp_path=tmp_path,
    )
    with capturedLogs() as events:
        svc = start(agent)
        assert svc.ready
        d = svc.stopService()
        assert d.called
    assert calls == [
        ("run", "runtime_security"),
        ("run", "ipc_api"),
        ("run", "compliance"),
        ("stop", "compliance"),
        ("stop", "ipc_api"),
        ("stop", "runtime_security"),
    ]
    text = messages(events)
    assert text.index("Security Agent is now running.") > text.index("Plugin compliance started")
    assert text[-1] == "See ya!"


def test_all_components_deactivated_exits_zero_after_the_delay(reactor, tmp_path):
    calls = []
    agent = make_agent(
        reactor,
        [
            component("ipc_api", 20, calls, security=False),
            component("compliance", 50, calls, enabled=False),
        ],
        tmp_path=tmp_path,
    )
    with capturedLogs() as events:
        start(agent)
        reactor.advance(4.9)
        assert reactor.running
        reactor.advance(0.1)
    assert not reactor.running
    assert agent.exit_code == 0
    assert calls == []
    assert "All security-agent components are deactivated, exiting" in messages(events)


def test_exit_delay_is_configurable(reactor, tmp_path):
    agent = make_agent(
        reactor, [], "security_agent:\n  disabled_exit_delay: 0s\n", tmp_path=tmp_path
    )
    start(agent)
    assert not reactor.running


def test_no_api_key_exits_zero_when_a_plugin_needs_one(reactor, tmp_path):
    calls = []
    eps = [component("sinks", 30, calls, requires_api_key=True)]
    agent = make_agent(
        reactor, eps, "security_agent:\n  disabled_exit_delay: 1s\n", tmp_path=tmp_path
    )
    with capturedLogs() as events:
        start(agent)
        reactor.advance(1)
    assert not reactor.running
    assert agent.exit_code == 0
    assert calls == []
    assert "No API key configured, exiting" in messages(events)
    critical = [e for e in events if formatEvent(e) == "No API key configured, exiting"]
    assert critical[0]["log_level"].name == "critical"

    reactor2 = FakeReactor()
    reactor2.running = True
    agent = make_agent(reactor2, eps, env={"DD_API_KEY": "0123456789abcdef"}, tmp_path=tmp_path)
    start(agent)
    assert calls == [("run", "sinks")]


def test_a_plugin_failing_at_start_does_not_stop_the_others(reactor, tmp_path):
    calls = []

    def boom():
        raise OSError("address already in use")

    agent = make_agent(
        reactor, [component("a", 1, calls, run=boom), component("b", 2, calls)], tmp_path=tmp_path
    )
    with capturedLogs() as events:
        svc = start(agent)
    assert svc.ready
    assert calls == [("run", "a"), ("run", "b")]
    assert agent.runtimes["a"].start_error == "OSError: address already in use"
    assert agent.runtimes["b"].started
    assert "Plugin a failed to start: OSError: address already in use" in messages(events)
    assert "a" in agent.health.get_ready().unhealthy


def test_unhealthy_components_are_reported_before_stopping(reactor, tmp_path):
    calls = []

    def boom():
        raise RuntimeError("nope")

    agent = make_agent(
        reactor, [component("a", 1, calls, run=boom), component("b", 2, calls)], tmp_path=tmp_path
    )
    svc = start(agent)
    with capturedLogs() as events:
        svc.stopService()
    # b has not been through a health tick yet, so it is not healthy either (Datadog's
    # pre-filled channel); a is failing.
    assert messages(events)[0] == "Some components were unhealthy: ['a', 'b']"


def test_a_plugin_that_does_not_stop_in_time_is_abandoned(reactor, tmp_path):
    calls = []
    agent = make_agent(
        reactor,
        [
            component("first", 1, calls),
            component("stuck", 2, calls, stop=defer.Deferred, stop_timeout=3.0),
        ],
        tmp_path=tmp_path,
    )
    svc = start(agent)
    with capturedLogs() as events:
        d = svc.stopService()
        assert not d.called
        reactor.advance(3.0)
        assert d.called
    text = messages(events)
    assert "Plugin stuck did not stop within 3.0s; abandoning it" in text
    assert ("stop", "first") in calls
    assert text[-1] == "See ya!"


def test_periodic_plugin_runs_on_its_interval(reactor, tmp_path):
    calls = []
    agent = make_agent(reactor, [component("p", 1, calls, interval=10.0)], tmp_path=tmp_path)
    start(agent)
    reactor.pump([1.0] * 35)
    assert calls.count(("run", "p")) == 4  # at 0, 10, 20 and 30 s plus jitter
    job = agent.scheduler.jobs["p"]
    assert job.stats.runs == 4
    assert job.stats.errors == 0


def test_bad_plugin_spec_is_a_startup_error(reactor, tmp_path):
    def spec(agent):
        raise ValueError("compliance_config.dir: /nope is not a directory")

    ep = entry_point("c", plugin_module("c", security_agent_plugin_spec=spec))
    with pytest.raises(StartupError) as exc:
        make_agent(reactor, [ep], tmp_path=tmp_path)
    assert str(exc.value) == "plugin c: compliance_config.dir: /nope is not a directory"


def test_stop_request_goes_through_the_lifecycle(reactor, tmp_path):
    calls = []
    agent = make_agent(reactor, [component("a", 1, calls)], tmp_path=tmp_path)
    start(agent)
    agent.request_stop()
    reactor.advance(0)
    assert not reactor.running


def test_second_signal_forces_exit(reactor, tmp_path, monkeypatch):
    exits = []
    monkeypatch.setattr("os._exit", exits.append)
    agent = make_agent(reactor, [component("a", 1, [])], tmp_path=tmp_path)
    svc = start(agent)
    with capturedLogs() as events:
        svc._on_signal(signal.SIGTERM, None)
        reactor.advance(0)
    assert "Received signal 'SIGTERM', shutting down..." in messages(events)
    assert not reactor.running
    assert exits == []
    svc._on_signal(signal.SIGINT, None)
    assert exits == [1]


def test_health_changes_are_logged_after_the_start_grace(reactor, tmp_path):
    calls = []
    runs = iter([None, None, RuntimeError("disk full"), None, None, None, None])

    def run():
        exc = next(runs)
        if exc:
            raise exc

    agent = make_agent(
        reactor,
        [component("a", 1, calls, interval=5.0, run=run)],
        "security_agent:\n  health_ping_frequency: 3s\n",
        tmp_path=tmp_path,
    )
    with capturedLogs() as events:
        start(agent)
        reactor.pump([0.5] * 44)
    text = [m for m in messages(events) if m.startswith("Component a")]
    # No false alarm for the start-up ticks; the failure and the recovery are both logged.
    assert text == [
        "Component a is healthy",
        "Component a is unhealthy: last run failed: RuntimeError: disk full",
        "Component a is healthy",
    ]


def test_core_dumps_are_enabled_when_asked(monkeypatch):
    import resource

    from host.lifecycle import setup_core_dumps

    calls = []
    monkeypatch.setattr(resource, "setrlimit", lambda which, limits: calls.append((which, limits)))
    setup_core_dumps(False)
    assert calls == []
    setup_core_dumps(True)
    assert calls == [(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))]


def test_core_dump_failure_is_a_warning(monkeypatch):
    import resource

    from host.lifecycle import setup_core_dumps

    def refuse(which, limits):
        raise ValueError("not allowed to raise the hard limit")

    monkeypatch.setattr(resource, "setrlimit", refuse)
    with capturedLogs() as events:
        setup_core_dumps(True)
    assert messages(events) == [
        "Can't setup core dumps: not allowed to raise the hard limit, "
        "core dumps might not be available after a crash"
    ]
    assert events[0]["log_level"].name == "warn"


def test_run_path_is_created_owner_only(reactor, tmp_path):
    agent = make_agent(reactor, [component("a", 1, [])], tmp_path=tmp_path)
    start(agent)
    run_path = tmp_path / "run"
    assert run_path.is_dir()
    assert oct(run_path.stat().st_mode & 0o777) == "0o700"


def test_a_plugin_that_never_finishes_starting_does_not_hold_back_the_others(reactor, tmp_path):
    calls = []
    agent = make_agent(
        reactor,
        [
            component("slow", 1, calls, run=defer.Deferred, run_deadline=5.0),
            component("next", 2, calls),
        ],
        tmp_path=tmp_path,
    )
    with capturedLogs() as events:
        svc = start(agent)
        assert calls == [("run", "slow")]
        reactor.advance(5.0)
    assert calls == [("run", "slow"), ("run", "next")]
    assert svc.ready
    assert "Plugin slow did not start within 5.0s; starting the others" in messages(events)
    assert agent.runtimes["slow"].start_error == "did not start within 5.0s"
    assert agent.health.get_ready().unhealthy[:1] == ("slow",)


def test_stop_is_called_before_waiting_for_a_run_in_progress(reactor, tmp_path):
    calls = []
    running = []

    def run():
        d = defer.Deferred()
        running.append(d)
        return d

    def stop():
        # The plugin cuts its long run short when asked to stop.
        running[0].callback(None)

    agent = make_agent(
        reactor, [component("long", 1, calls, run=run, stop=stop, interval=60.0)], tmp_path=tmp_path
    )
    svc = start(agent)
    reactor.advance(agent.scheduler.jobs["long"].next_run)
    assert len(running) == 1
    d = svc.stopService()
    assert d.called  # no waiting for the stop timeout
    assert calls[-1] == ("stop", "long")


def test_plugin_state_is_kept_per_agent(reactor, tmp_path):
    a = make_agent(reactor, [], tmp_path=tmp_path)
    b = make_agent(FakeReactor(), [], tmp_path=tmp_path)
    sa = a.plugin_state("demo", dict)
    sa["x"] = 1
    assert a.plugin_state("demo", dict) is sa
    assert b.plugin_state("demo", dict) == {}
    a.drop_plugin_state("demo")
    assert a.plugin_state("demo", dict) == {}


def test_fatal_start_error_stops_the_agent_with_exit_code_one(reactor, tmp_path):
    from host import FatalStartError

    calls = []

    def refuse():
        raise FatalStartError("Error while starting api server, exiting: port 5010 in use")

    agent = make_agent(
        reactor,
        [component("api", 1, calls, run=refuse, security=False), component("later", 2, calls)],
        tmp_path=tmp_path,
    )
    with capturedLogs() as events:
        svc = start(agent)
        reactor.advance(0)
    assert not svc.ready
    assert agent.exit_code == 1
    assert not reactor.running
    assert calls == [("run", "api")]  # nothing after it started
    text = messages(events)
    assert "Error while starting api server, exiting: port 5010 in use" in text
    assert "Security Agent is now running." not in text
    assert not any(e.get("log_failure") for e in events)  # one line, no traceback


def test_a_plugin_can_start_early_and_stop_first(reactor, tmp_path):
    calls = []
    agent = make_agent(
        reactor,
        [
            component("sinks", -1000, calls),
            component("runtime_security", -100, calls, stop_order=-10_000),
            component("compliance", 50, calls),
        ],
        tmp_path=tmp_path,
    )
    svc = start(agent)
    svc.stopService()
    assert calls == [
        ("run", "sinks"),
        ("run", "runtime_security"),
        ("run", "compliance"),
        ("stop", "runtime_security"),
        ("stop", "compliance"),
        ("stop", "sinks"),
    ]
