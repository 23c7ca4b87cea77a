"""``security-agent check NAME`` and ``security-agent checks list``."""

from __future__ import annotations

import argparse
import io
import json

import pytest

from host.bootstrap import AgentOptions
from host.cli_context import CliContext
from plugins.checks import security_agent_cli_commands

EVERYTHING = """
    from datadog_checks.base import AgentCheck

    __version__ = "2.0.0"

    class EveryCheck(AgentCheck):
        __NAMESPACE__ = "every"

        def check(self, instance):
            self.gauge("gauge", 3, tags=["a:b"])
            self.rate("rate", self.tick(10))
            self.service_check("can_connect", self.CRITICAL, message="refused")
            self.event({"msg_title": "hi", "msg_text": "there", "timestamp": 5})
            self.set_metadata("version", "1.2.3")

        def tick(self, step):
            self.n = getattr(self, "n", 0) + step
            return self.n
"""


def command(name):
    return next(c for c in security_agent_cli_commands() if c.name == name)


def invoke(agent, name, argv):
    cmd = command(name)
    parser = argparse.ArgumentParser()
    if cmd.configure is not None:
        cmd.configure(parser)
    out, err = io.StringIO(), io.StringIO()
    ctx = CliContext(AgentOptions(cfgpaths=[]), stdout=out, stderr=err, _agent=agent)
    code = cmd.run(ctx, parser.parse_args(argv))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def every(checks_env):
    name = checks_env.name()
    checks_env.write_check(name, EVERYTHING)
    conf = checks_env.write_conf(name, "instances: [{}]\n")
    return name, conf


def test_check_prints_sections_status_and_hint(checks_env, every):
    name, conf = every
    code, out, err = invoke(checks_env.agent(), "check", [name])
    assert (code, err) == (0, "")
    sections = [line for line in out.splitlines() if line.startswith("=== ")]
    assert sections == [
        "=== Series ===",
        "=== Service Checks ===",
        "=== Events ===",
        "=== Sketches ===",
    ]
    series = json.loads(out.split("=== Series ===\n")[1].split("=== Service Checks ===")[0])
    assert [(s["metric"], s["type"]) for s in series] == [("every.gauge", "gauge")]
    checks = json.loads(out.split("=== Service Checks ===\n")[1].split("=== Events ===")[0])
    assert [(c["check"], c["status"], c["message"]) for c in checks] == [
        ("every.can_connect", 2, "refused")
    ]
    events = json.loads(out.split("=== Events ===\n")[1].split("=== Sketches ===")[0])
    assert [(e["msg_title"], e["source_type_name"]) for e in events] == [("hi", "every")]
    assert f"  {name} (2.0.0)\n" in out
    assert f"    Configuration Source: file:{conf}\n" in out
    assert "    Total Runs: 1\n" in out
    assert "    version.raw: 1.2.3\n" in out
    assert out.rstrip().endswith(
        "Check has run only once, if some metrics are missing you can try again with "
        "--check-rate argument"
    )


def test_check_times_and_json(checks_env, every):
    name, _ = every
    # As from the command line: the agent is built on the real reactor, whose clock moves
    # during --pause (the rate is computed from it). Nothing is started on it.
    from twisted.internet import reactor

    agent = checks_env.agent(reactor=reactor)
    code, out, _ = invoke(agent, "check", [name, "--times", "3", "--pause", "20", "--json"])
    assert code == 0
    (result,) = json.loads(out)
    assert result["runner"]["TotalRuns"] == 3
    assert result["runner"]["State"] == "OK"
    rates = [s for s in result["aggregator"]["series"] if s["metric"] == "every.rate"]
    assert len(rates) == 2  # a rate needs two runs: the first gives nothing
    assert result["inventories"]["version.major"] == "1"


def test_check_exits_non_zero_when_a_run_fails(checks_env):
    name = checks_env.name()
    checks_env.write_check(
        name,
        """
        from datadog_checks.base import AgentCheck

        class FailCheck(AgentCheck):
            def check(self, instance):
                raise Exception("boom")
    """,
    )
    checks_env.write_conf(name, "instances: [{}]\n")
    code, out, err = invoke(checks_env.agent(), "check", [name])
    assert code == 1
    assert "[ERROR]" in out
    assert "    Error: boom\n" in out
    assert "      Exception: boom" in out
    assert err == ""


def test_check_reports_both_load_errors(checks_env):
    name = checks_env.name()
    checks_env.write_conf(name, "instances: [{}]\n")
    code, _out, err = invoke(checks_env.agent(), "check", [name])
    assert code == 1
    assert err == (
        f"Error: could not load {name}:\n"
        f"* python: unable to import module 'datadog_checks.{name}': "
        f"No module named 'datadog_checks.{name}'\n"
        f"* python: unable to import module '{name}': No module named '{name}'\n"
    )


def test_check_unknown_name(checks_env):
    code, _out, err = invoke(checks_env.agent(), "check", ["nothing_here"])
    assert code == 1
    assert err == f"Error: no check named 'nothing_here' is configured in {checks_env.confd}\n"


def test_checks_list(checks_env, every):
    name, conf = every
    broken = checks_env.name()
    checks_env.write_conf(broken, "instances: [\n")
    code, out, _err = invoke(checks_env.agent(), "checks", ["list"])
    assert code == 0
    lines = out.splitlines()
    assert f"{name} [loaded] 2.0.0" in lines
    assert any(
        line.startswith(f"  {name}:") and line.endswith(f"every 15s (file:{conf})")
        for line in lines
    )
    assert f"{broken} [failed]" in lines
    code, out, _ = invoke(checks_env.agent(), "checks", ["list", "--json"])
    data = json.loads(out)
    assert data[name]["state"] == "loaded"
    assert data[broken]["state"] == "failed"
    assert data[broken]["errors"][0].endswith(
        "invalid YAML: expected the node content, but found '<stream end>'"
    )
