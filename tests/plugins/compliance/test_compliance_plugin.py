"""The compliance plugin as the host runs it: schedule, jitter, throttling, events, status, stop."""

from __future__ import annotations

import textwrap
from pathlib import Path

from compliance_test_support import agent_with_list_sink

import plugins.compliance
from host.lifecycle import AgentService
from plugins.compliance.jitter import benchmark_jitter
from plugins.compliance.service import EVAL_THROTTLING

BENCH = """\
schema: {version: 1.0.0}
name: Test benchmark
framework: test-fw
version: 1.2.3
tags: ["framework:test-fw"]
rules:
  - id: test-pass
    description: passes
    scope: [none]
    input:
      - constants: {limit: 3}
  - id: test-fail
    description: fails
    scope: [none]
    input:
      - constants: {limit: 1}
  - id: test-docker
    description: needs docker
    scope: [docker]
    input:
      - docker: {kind: info}
        type: array
    imports: [always-pass.rego]
"""

LIMIT_REGO = """\
package datadog

import data.datadog as dd

findings contains f if {
\tinput.constants.limit >= 2
\tf := dd.passed_finding("host", input.context.hostname, {"limit": input.constants.limit})
}

findings contains f if {
\tinput.constants.limit < 2
\tf := dd.failing_finding("host", input.context.hostname, {"limit": input.constants.limit})
}
"""


def setup(tmp_path, extra="", interval="60s"):
    bench_dir = tmp_path / "compliance.d"
    bench_dir.mkdir()
    (bench_dir / "test.yaml").write_text(BENCH)
    (bench_dir / "test-pass.rego").write_text(LIMIT_REGO)
    (bench_dir / "test-fail.rego").write_text(LIMIT_REGO)
    (bench_dir / "always-pass.rego").write_text(
        "package datadog\nimport data.datadog as dd\n"
        'findings contains dd.passed_finding("a", "b", {})\n'
    )
    host = tmp_path / "host"
    host.mkdir()
    config = (
        textwrap.dedent(
            f"""\
        hostname: test-host
        compliance_config:
          enabled: true
          dir: {bench_dir}
          check_interval: {interval}
          builtin_benchmarks: false
          host_root: {host}
        """
        )
        + extra
    )
    return agent_with_list_sink(tmp_path, config)


def test_compliance_plugin_spec_from_config(tmp_path):
    agent, _reactor, _sink = setup(tmp_path)
    spec = agent.runtimes["compliance"].spec
    assert (spec.enabled, spec.interval, spec.security_component, spec.stop_timeout) == (
        True,
        60.0,
        True,
        10.0,
    )


def test_compliance_runs_rules_with_jitter_and_throttling(tmp_path):
    agent, reactor, sink = setup(tmp_path)
    service = AgentService(agent, install_signal_handlers=False)
    service.startService()
    job = agent.scheduler.jobs["compliance"]
    reactor.advance(job.next_run - reactor.seconds())  # the host's turn: run() starts
    jitter = benchmark_jitter(0, agent.hostname, "test-fw", 60.0)
    assert 0 < jitter < 6.0
    start = reactor.seconds()
    reactor.advance(jitter - 0.001)
    assert sink.events == []
    reactor.advance(0.001)
    assert [e.payload["agent_rule_id"] for e in sink.events] == ["test-pass"]
    first = sink.events[0].payload
    assert first == {
        "agent_version": agent.version,
        "agent_rule_id": "test-pass",
        "agent_rule_version": 0,
        "agent_framework_id": "test-fw",
        "evaluator": "rego",
        "expire_at": first["expire_at"],
        "result": "passed",
        "resource_type": "host",
        "resource_id": agent.hostname,
        "container": None,
        "k8s_managed": None,
        "tags": ["framework:test-fw", f"host:{agent.hostname}"],
        "data": {"limit": 3},
    }
    assert first["expire_at"] == f"1970-01-01T00:02:{int(start + jitter):02d}Z"
    reactor.advance(EVAL_THROTTLING - 0.001)
    assert len(sink.events) == 1
    reactor.advance(0.001)
    assert [e.payload["result"] for e in sink.events] == ["passed", "failed"]
    reactor.advance(EVAL_THROTTLING)
    # test-docker is skipped (no Docker daemon under host_root): counted, not sent.
    assert len(sink.events) == 2
    status = agent.call_each("security_agent_status", agent=agent)
    section = dict(status)["compliance"]
    assert section.text.splitlines()[:3] == [
        "test-fw 1.2.3",
        "-------------",
        "Rules: 3 total | 1 passed | 1 failed | 0 error | 1 skipped | 0 not run yet",
    ]
    assert section.data["frameworks"]["test-fw"]["rules"] == {
        "test-docker": "skipped",
        "test-fail": "failed",
        "test-pass": "passed",
    }
    assert agent.published["compliance"]()["events_skipped"] == 1
    # the next run, one interval later, jitters with run count 1
    reactor.advance(job.next_run - reactor.seconds())
    reactor.advance(benchmark_jitter(1, agent.hostname, "test-fw", 60.0))
    assert len(sink.events) == 3
    service.stopService()


def test_compliance_status_before_first_run(tmp_path):
    agent, _reactor, _sink = setup(tmp_path)
    section = dict(agent.call_each("security_agent_status", agent=agent))["compliance"]
    assert (
        "Rules: 3 total | 0 passed | 0 failed | 0 error | 0 skipped | 3 not run yet" in section.text
    )


def test_compliance_status_loads_the_benchmarks_in_a_worker(tmp_path):
    agent, _reactor, _sink = setup(tmp_path)
    workers = HeldWorkers(agent.workers, held="_read")
    agent.workers = workers
    section = dict(agent.call_each("security_agent_status", agent=agent))["compliance"]
    assert section.text == "Loading the benchmarks"
    assert len(workers.held) == 1  # the reactor did not parse them; a worker will
    section = dict(agent.call_each("security_agent_status", agent=agent))["compliance"]
    assert len(workers.held) == 1  # one load at a time
    d, f, args = workers.held.pop()
    d.callback(f(*args))
    section = dict(agent.call_each("security_agent_status", agent=agent))["compliance"]
    assert (
        "Rules: 3 total | 0 passed | 0 failed | 0 error | 0 skipped | 3 not run yet" in section.text
    )
    assert workers.held == []


def test_compliance_stop_cancels_pending_timers(tmp_path):
    agent, reactor, sink = setup(tmp_path)
    service = AgentService(agent, install_signal_handlers=False)
    service.startService()
    job = agent.scheduler.jobs["compliance"]
    reactor.advance(job.next_run - reactor.seconds())
    reactor.advance(benchmark_jitter(0, agent.hostname, "test-fw", 60.0))
    assert len(sink.events) == 1
    stopped = service.stopService()
    reactor.advance(0)
    results = []
    stopped.addBoth(results.append)
    reactor.advance(1)
    assert results == [None]
    reactor.advance(100)
    assert len(sink.events) == 1
    assert [c for c in reactor.getDelayedCalls() if c.active()] == []


def test_compliance_bad_interval_refused(tmp_path):
    import pytest

    from host.bootstrap import StartupError

    with pytest.raises((StartupError, ValueError)) as info:
        setup(tmp_path, interval="-5s")
    assert str(info.value) == (
        f"plugin compliance: {tmp_path}/security-agent.yaml:6: "
        "compliance_config.check_interval: must be positive, got -5s"
    )


XCCDF_BENCH = """\
name: SSG
framework: ssg-test
version: 0.1.65
rules:
  - id: ssg-passwd
    input:
      - xccdf:
          name: ssg-debian11-ds.xml
          profile: xccdf_org.ssgproject.content_profile_standard
          rule: xccdf_org.ssgproject.content_rule_file_permissions_etc_passwd
"""


def test_compliance_xccdf_runs_every_three_hours(tmp_path):
    import shutil

    import pytest

    if shutil.which("oscap") is None:
        pytest.skip("oscap is not installed (apt-get install openscap-scanner ssg-debian)")
    agent, reactor, sink = setup(tmp_path)
    (tmp_path / "compliance.d" / "ssg.yaml").write_text(XCCDF_BENCH)
    service = AgentService(agent, install_signal_handlers=False)
    service.startService()
    job = agent.scheduler.jobs["compliance"]
    reactor.advance(job.next_run - reactor.seconds())
    xccdf = agent.scheduler.jobs["compliance-xccdf"]
    assert xccdf.interval == 3 * 3600.0
    reactor.advance(xccdf.next_run - reactor.seconds())
    reactor.advance(benchmark_jitter(0, agent.hostname, "ssg-test", 3 * 3600.0))
    rules = agent.published["compliance"]()["frameworks"]["ssg-test"]["rules"]
    sent = [e.payload for e in sink.events if e.payload["agent_framework_id"] == "ssg-test"]
    try:
        debian11 = Path("/etc/debian_version").read_text().startswith("11")
    except OSError:
        debian11 = False
    if debian11:
        assert rules["ssg-passwd"] in ("passed", "failed")
        assert [e["evaluator"] for e in sent] == ["xccdf"]
    else:
        # SSG's Debian 11 content does not apply elsewhere: skipped, counted, not sent.
        assert rules["ssg-passwd"] == "skipped"
        assert sent == []
    service.stopService()


def test_compliance_status_follows_benchmark_changes_and_flare(tmp_path):
    from host.plugin_types import FlareBuilder

    agent, _reactor, _sink = setup(tmp_path)
    service = plugins.compliance.service_for(agent)
    service.load()
    service.status.record("test-fw", "test-pass", ["passed", "failed"])
    bench = tmp_path / "compliance.d" / "test.yaml"
    bench.write_text(BENCH.replace("  - id: test-fail", "  - id: test-renamed"))
    (tmp_path / "compliance.d" / "broken.yaml").write_text("framework: x\nrules: []\n")
    service.load()
    section = dict(agent.call_each("security_agent_status", agent=agent))["compliance"]
    assert section.data["frameworks"]["test-fw"]["rules"] == {
        "test-docker": None,
        "test-pass": "failed",
        "test-renamed": None,
    }
    error = f"{tmp_path}/compliance.d/broken.yaml: bad benchmark: empty rule set"
    assert section.text.splitlines()[-1] == f"Error: {error}"
    assert section.data["load_errors"] == [error]
    flare = FlareBuilder()
    agent.call_each("security_agent_flare", agent=agent, flare=flare)
    assert flare.files["compliance/status.txt"].decode() == section.text
    bench.unlink()
    service.load()
    assert service.status.as_dict()["frameworks"] == {}


def test_compliance_pass_is_the_hosts_run(tmp_path):
    """The host's job holds the whole pass: a turn coming during it is skipped and counted
    by the host, and the run counts once the last rule is reported."""
    agent, reactor, sink = setup(tmp_path, interval="2s")
    service = AgentService(agent, install_signal_handlers=False)
    service.startService()
    job = agent.scheduler.jobs["compliance"]
    assert (job.interval, job.blocking) == (2.0, False)
    reactor.advance(job.next_run - reactor.seconds())
    assert job.running is True
    jitter = benchmark_jitter(0, agent.hostname, "test-fw", 2.0)
    reactor.advance(jitter)
    assert [e.payload["agent_rule_id"] for e in sink.events] == ["test-pass"]
    # the pass needs 2 x 2 s more; the host's next turn (2 s after the first) finds it going
    reactor.advance(EVAL_THROTTLING)
    assert job.running is True
    reactor.advance(EVAL_THROTTLING)
    assert job.running is False
    assert (job.stats.runs, job.stats.errors) == (1, 0)
    assert job.stats.skipped >= 1
    assert [e.payload["agent_rule_id"] for e in sink.events] == ["test-pass", "test-fail"]
    service.stopService()


def test_compliance_stop_ends_the_pass_without_waiting(tmp_path):
    """The host asks the plugin to stop before waiting for the pass: the pass ends at once
    (its throttling wait is cancelled), so the agent stops without the 10 s stop timeout."""
    agent, reactor, sink = setup(tmp_path)
    service = AgentService(agent, install_signal_handlers=False)
    service.startService()
    job = agent.scheduler.jobs["compliance"]
    reactor.advance(job.next_run - reactor.seconds())
    reactor.advance(benchmark_jitter(0, agent.hostname, "test-fw", 60.0))
    assert job.running is True  # waiting 2 s before test-fail
    results = []
    service.stopService().addBoth(results.append)
    reactor.advance(0)
    assert results == [None]
    assert job.running is False
    assert (job.stats.runs, job.stats.errors) == (1, 0)
    assert [e.payload["agent_rule_id"] for e in sink.events] == ["test-pass"]


def test_compliance_stop_during_jitter_ends_the_pass(tmp_path):
    agent, reactor, sink = setup(tmp_path)
    service = AgentService(agent, install_signal_handlers=False)
    service.startService()
    job = agent.scheduler.jobs["compliance"]
    reactor.advance(job.next_run - reactor.seconds())
    assert job.running is True  # in the framework's jitter
    results = []
    service.stopService().addBoth(results.append)
    reactor.advance(0)
    assert results == [None]
    reactor.advance(3600)
    assert sink.events == []
    assert [c for c in reactor.getDelayedCalls() if c.active()] == []


class HeldWorkers:
    """Workers whose rule evaluations (or other calls named ``held``) wait until the test
    lets them finish."""

    def __init__(self, inner, held="events"):
        self.inner = inner
        self.held = []
        self.held_name = held

    def defer(self, f, *args):
        from twisted.internet import defer

        if getattr(f, "__name__", "") != self.held_name:
            return self.inner.defer(f, *args)
        d = defer.Deferred()
        self.held.append((d, f, args))
        return d

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_compliance_stop_during_a_rule_evaluation_ends_after_it(tmp_path):
    agent, reactor, _sink = setup(tmp_path)
    service = plugins.compliance.service_for(agent)
    workers = HeldWorkers(agent.workers)
    agent.workers = workers
    done = []
    service.run().addBoth(done.append)
    reactor.advance(benchmark_jitter(0, agent.hostname, "test-fw", 60.0))
    assert len(workers.held) == 1  # test-pass is being evaluated
    service.stop()
    d, f, args = workers.held.pop()
    d.callback(f(*args))
    # the finished rule is still reported; no throttling wait, no further rule
    assert done == [None]
    rules = service.status.as_dict()["frameworks"]["test-fw"]["rules"]
    assert rules == {"test-pass": "passed", "test-fail": None, "test-docker": None}
    assert workers.held == []
    assert [c for c in reactor.getDelayedCalls() if c.active()] == []
