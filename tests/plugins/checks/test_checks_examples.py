"""The shipped examples, and a check written against Datadog's documented custom-check API,
run unchanged on this host."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from test_checks_cli import invoke

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "checks"


def copy_examples(checks_env):
    for sub in ("conf.d", "checks.d"):
        shutil.copytree(EXAMPLES / sub, checks_env.tmp_path / sub, dirs_exist_ok=True)
    checks_env.names.extend(["hello", "every_submission"])


def test_hello_world_example(checks_env):
    copy_examples(checks_env)
    agent = checks_env.agent()
    code, out, err = invoke(agent, "check", ["hello", "--json"])
    assert (code, err) == (0, "")
    (result,) = json.loads(out)
    (serie,) = result["aggregator"]["series"]
    assert serie["metric"] == "hello.world"
    assert serie["points"][0][1] == 1.0
    assert serie["tags"] == ["TAG_KEY:TAG_VALUE", "env:example"]
    assert serie["host"] == agent.hostname
    assert result["runner"]["CheckVersion"] == "1.0.0"


def test_every_submission_example(checks_env):
    copy_examples(checks_env)
    from twisted.internet import reactor  # a moving clock, for the rate (nothing is started)

    agent = checks_env.agent(reactor=reactor)
    code, out, err = invoke(
        agent, "check", ["every_submission", "--times", "2", "--pause", "20", "--json"]
    )
    assert (code, err) == (0, "")
    (result,) = json.loads(out)
    metrics = {(s["metric"], s["type"]) for s in result["aggregator"]["series"]}
    assert metrics == {
        ("demo.load.1", "gauge"),
        ("demo.runs.count", "count"),
        ("demo.runs.total", "count"),
        ("demo.cpu.time", "gauge"),
        ("demo.load.spread.max", "gauge"),
        ("demo.load.spread.median", "gauge"),
        ("demo.load.spread.avg", "gauge"),
        ("demo.load.spread.count", "rate"),
        ("demo.load.spread.95percentile", "gauge"),
        ("demo.runs.historate.max", "gauge"),
        ("demo.runs.historate.median", "gauge"),
        ("demo.runs.historate.avg", "gauge"),
        ("demo.runs.historate.count", "rate"),
        ("demo.runs.historate.95percentile", "gauge"),
        ("demo.legacy.counter", "rate"),
    }
    total = [s for s in result["aggregator"]["series"] if s["metric"] == "demo.runs.total"]
    assert [s["points"][0][1] for s in total] == [1.0]  # only the delta of the second run
    assert all("service:demo-service" in s["tags"] for s in result["aggregator"]["series"])
    (sc1, _sc2) = result["aggregator"]["service_checks"]
    assert (sc1["check"], sc1["status"]) == ("demo.can_read", 0)
    (event,) = result["aggregator"]["events"]
    assert event["msg_title"] == "every_submission started"
    assert event["source_type_name"] == "demo"
    assert result["inventories"]["version.raw"] == "0.2.0"
    assert result["runner"]["CheckVersion"] == "0.2.0"


def test_documented_api_with_the_legacy_import(checks_env):
    """Datadog's guide: ``from checks import AgentCheck``, ``check(self, instance)``,
    ``self.gauge``, ``self.instance`` — with nothing of ours imported by the check."""
    name = checks_env.name("custom")
    checks_env.write_check(
        name,
        """
        from checks import AgentCheck

        __version__ = "1.0.0"

        class MyCheck(AgentCheck):
            def check(self, instance):
                tags = ["TAG_KEY:TAG_VALUE"] + self.instance.get("tags", [])
                self.gauge("custom.metric", 42, tags=tags)
                self.service_check("custom.ok", AgentCheck.OK)
    """,
    )
    checks_env.write_conf(name, "init_config:\n\ninstances:\n  - tags: [x:y]\n")
    code, out, _ = invoke(checks_env.agent(), "check", [name, "--json"])
    assert code == 0
    (result,) = json.loads(out)
    assert [
        (s["metric"], s["points"][0][1], s["tags"]) for s in result["aggregator"]["series"]
    ] == [("custom.metric", 42.0, ["TAG_KEY:TAG_VALUE", "x:y"])]
    assert [sc["check"] for sc in result["aggregator"]["service_checks"]] == ["custom.ok"]
