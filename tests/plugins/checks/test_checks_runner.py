"""The plugin as the host runs it: scheduling, flushes to the sinks, status, bad checks."""

from __future__ import annotations

import json
import sys
import threading
import types
import uuid

import pytest
from checks_test_support import MetricsSink, pump
from support import FakeReactor
from support import start_service as start

from plugins.checks import runner_of

GOOD = """
    from datadog_checks.base import AgentCheck

    class GoodCheck(AgentCheck):
        def check(self, instance):
            self.gauge("good.gauge", 1, tags=instance.get("tags", []))
            self.monotonic_count("good.total", self.read_count())
            self.service_check("good.up", self.OK)

        def read_count(self):
            self.n = getattr(self, "n", 0) + 10
            return self.n
"""


@pytest.fixture
def reactor():
    r = FakeReactor()
    r.running = True
    return r


def stop(svc, reactor):
    d = svc.stopService()
    pump(reactor, lambda: d.called)


def test_instances_run_on_schedule_and_flush_to_sinks(checks_env, reactor):
    name = checks_env.name()
    checks_env.write_check(name, GOOD)
    checks_env.write_conf(name, "instances:\n  - tags: [x:1]\n    service: web\n")
    sink = MetricsSink()
    agent = checks_env.agent(reactor, sink=sink)
    svc = start(agent)
    runner = runner_of(agent)
    (instance,) = runner.instances
    pump(reactor, lambda: instance.stats.total_runs >= 2, step=0.25)
    assert reactor.seconds() >= 15  # the second run waited for its turn
    # Keep the clock going until a periodic flush has carried the second run's output.
    pump(
        reactor, lambda: any(s["metric"] == "good.total" for s in sink.of_kind("series")), step=0.25
    )
    series = sink.of_kind("series")
    assert [(s["metric"], s["type"], s["points"][0][1]) for s in series][:3] == [
        ("good.gauge", "gauge", 1.0),
        ("good.gauge", "gauge", 1.0),
        ("good.total", "count", 10.0),
    ]
    assert series[0]["tags"] == ["service:web", "x:1"]
    assert series[0]["host"] == agent.hostname
    # One per run flushed so far (the clock may have reached a third run by now).
    checks = [sc["check"] for sc in sink.of_kind("service_checks")]
    assert checks[:2] == ["good.up", "good.up"]
    assert set(checks) == {"good.up"}
    stats = agent.published["runner"]()
    snap = stats["Checks"][name][instance.check_id]
    assert snap["TotalRuns"] >= 2
    assert snap["State"] == "OK"
    assert snap["TotalErrors"] == 0
    assert agent.published["aggregator"]()["payloads_emitted"] >= 2
    stop(svc, reactor)
    assert "aggregator" not in sys.modules


def test_failing_checks_are_listed_and_others_keep_their_schedule(checks_env, reactor):
    good, raising, bad_return, broken, bad_yaml = (checks_env.name() for _ in range(5))
    checks_env.write_check(good, GOOD)
    checks_env.write_check(
        raising,
        """
        from datadog_checks.base import AgentCheck

        class RaisingCheck(AgentCheck):
            def check(self, instance):
                self.warning("about to fail")
                raise RuntimeError("boom")
    """,
    )
    checks_env.write_check(
        bad_return,
        """
        from datadog_checks.base import AgentCheck

        class IntCheck(AgentCheck):
            def run(self):
                return 42
    """,
    )
    checks_env.write_check(broken, "def (:\n")
    for name in (good, raising, bad_return, broken):
        checks_env.write_conf(name, "instances: [{}]\n")
    yaml_path = checks_env.write_conf(bad_yaml, "instances: [\n")
    agent = checks_env.agent(reactor)
    svc = start(agent)
    runner = runner_of(agent)
    by_name = {i.name: i for i in runner.instances}
    pump(reactor, lambda: all(i.stats.total_runs >= 2 for i in runner.instances), step=0.25)
    assert by_name[raising].stats.last_error == "boom"
    assert by_name[raising].stats.last_traceback.startswith("Traceback (most recent call last):")
    assert by_name[raising].stats.last_traceback.endswith("RuntimeError: boom\n")
    assert by_name[raising].stats.last_warnings == ["about to fail"]
    assert by_name[bad_return].stats.last_error == (
        "error invoking 'run' method: unknown error (run() returned int, not str)"
    )
    assert by_name[good].state() == "OK"
    errors = runner.runner_stats()["LoadErrors"]
    assert errors[broken][1] == (
        f"unable to import module '{broken}': invalid syntax "
        f"({checks_env.checksd / broken}.py, line 1)"
    )
    assert errors[bad_yaml] == [
        f"{yaml_path}:2: invalid YAML: expected the node content, but found '<stream end>'"
    ]
    pump(reactor, lambda: reactor.seconds() > 16, step=0.25)
    assert agent.health.get_ready_nonblocking().unhealthy == ()
    stop(svc, reactor)


def test_a_check_that_never_returns_is_not_stacked_and_is_cancelled(checks_env, reactor):
    gate_name = f"gate_{uuid.uuid4().hex[:8]}"
    gate = types.ModuleType(gate_name)
    gate.release = threading.Event()
    gate.started = threading.Event()
    gate.cancelled = []
    sys.modules[gate_name] = gate
    try:
        stuck, good = checks_env.name(), checks_env.name()
        checks_env.write_check(
            stuck,
            f"""
            import {gate_name} as gate
            from datadog_checks.base import AgentCheck

            class StuckCheck(AgentCheck):
                def check(self, instance):
                    gate.started.set()
                    gate.release.wait(30)

                def cancel(self):
                    gate.cancelled.append(self.check_id)
        """,
        )
        checks_env.write_check(good, GOOD)
        checks_env.write_conf(stuck, "instances: [{min_collection_interval: 1}]\n")
        checks_env.write_conf(good, "instances: [{min_collection_interval: 1}]\n")
        agent = checks_env.agent(reactor, extra_config="check_runners: 2\n")
        svc = start(agent)
        runner = runner_of(agent)
        by_name = {i.name: i for i in runner.instances}
        pump(reactor, gate.started.is_set, step=0.05)
        pump(reactor, lambda: by_name[good].stats.total_runs >= 4, step=0.05)
        assert by_name[stuck].stats.total_runs == 0
        job = runner.jobs[by_name[stuck].check_id]
        assert job.stats.skipped >= 2
        assert (
            runner.runner_stats()["Checks"][stuck][job.name.split(":", 1)[1]]["SkippedTurns"]
            == job.stats.skipped
        )
        # Past the first health tick, every component (the checks plugin included) is healthy.
        pump(reactor, lambda: reactor.seconds() > 16, step=0.25)
        assert agent.health.get_ready_nonblocking().unhealthy == ()
        d = svc.stopService()
        gate.release.set()
        pump(reactor, lambda: d.called)
        assert gate.cancelled == [by_name[stuck].check_id]
    finally:
        gate.release.set()
        sys.modules.pop(gate_name, None)


def test_status_section_text(checks_env, reactor):
    name = checks_env.name()
    checks_env.write_check(name, GOOD)
    conf = checks_env.write_conf(name, "instances: [{}]\n")
    missing = checks_env.name()
    checks_env.write_conf(missing, "instances: [{}]\n")
    agent = checks_env.agent(reactor)
    svc = start(agent)
    runner = runner_of(agent)
    pump(reactor, lambda: runner.instances[0].stats.total_runs == 1, step=0.05)
    from plugins.checks import security_agent_status

    section = security_agent_status(agent)
    assert section.key == "runnerStats"
    text = section.text
    check_id = runner.instances[0].check_id
    assert f"    Instance ID: {check_id} [OK]\n" in text
    assert f"    Configuration Source: file:{conf}\n" in text
    assert "    Total Runs: 1\n" in text
    assert "    Metric Samples: Last Run: 2, Total: 2\n" in text
    assert "    Service Checks: Last Run: 1, Total: 1\n" in text
    assert f"    Error: could not load {missing}:\n" in text
    assert f"    * python: unable to import module '{missing}': No module named '{missing}'" in text
    stop(svc, reactor)


def test_check_runners_must_be_positive(checks_env, reactor):
    from host.bootstrap import StartupError

    with pytest.raises(StartupError) as raised:
        checks_env.agent(reactor, extra_config="check_runners: 0\n")
    config = checks_env.tmp_path / "security-agent.yaml"
    assert str(raised.value) == f"plugin checks: {config}:4: check_runners: must be at least 1"


def test_flare_has_runner_figures_and_check_configs(checks_env, reactor):
    from host.plugin_types import FlareBuilder
    from plugins.checks import security_agent_flare

    name = checks_env.name()
    checks_env.write_check(name, GOOD)
    checks_env.write_conf(name, "instances: [{password: hunter2}]\n")
    agent = checks_env.agent(reactor)
    svc = start(agent)
    flare = FlareBuilder()
    security_agent_flare(agent, flare)
    assert flare.files[f"checks/conf.d/{name}.d/conf.yaml"] == b"instances: [{password: hunter2}]\n"
    assert name in json.loads(flare.files["checks/runner.json"])["Checks"]
    stop(svc, reactor)


def test_runner_pool_is_a_named_host_pool_with_the_agent_status_keys(reactor):
    from plugins.checks.runner_pool import RunnerPool

    with pytest.raises(ValueError, match=r"^check_runners must be at least 1, got 0$"):
        RunnerPool(reactor, 0)
    pool = RunnerPool(reactor, 3)
    assert pool.stats() == {"Workers": 3, "Busy": 0}
    pool.start()
    d = pool.defer(threading.current_thread)
    pump(reactor, lambda: d.called)
    assert d.result.name.startswith("PoolThread-check-runner")
    pool.stop()
    failures = []
    pool.defer(lambda: None).addErrback(failures.append)
    assert [f.type for f in failures] == [RuntimeError]
