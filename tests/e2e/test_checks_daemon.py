"""The real daemon runs custom checks: the hello-world example and a failing check, metrics
flushed to a sink, the failing check reported without hurting the agent."""

from __future__ import annotations

import json
import shutil
import signal
from pathlib import Path

from e2e_support import FILE_SINK_PLUGIN, make_distribution, tool

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "checks"


def test_daemon_runs_checks_and_flushes_on_stop(spawn, config, site, tmp_path):
    for sub in ("conf.d", "checks.d"):
        shutil.copytree(EXAMPLES / sub, tmp_path / sub)
    (tmp_path / "conf.d" / "every_submission.d").rename(tmp_path / "every_submission.d.off")
    (tmp_path / "checks.d" / "failing.py").write_text(
        "from datadog_checks.base import AgentCheck\n\n"
        "class FailingCheck(AgentCheck):\n"
        "    def check(self, instance):\n"
        "        raise RuntimeError('cannot reach the service')\n"
    )
    (tmp_path / "conf.d" / "failing.yaml").write_text("instances: [{}]\n")
    sink = FILE_SINK_PLUGIN.format(track="metrics")
    make_distribution(site, "e2e-metrics-sink", "e2e_metrics_sink", sink, "e2e_sink")
    with config.open("a") as f:
        f.write(
            "confd_path: conf.d\nadditional_checksd: checks.d\ne2e_sink:\n  path: metrics.jsonl\n"
        )
    extra_env = {"PYTHONPATH": f"{site}:{ROOT}"}
    d = spawn(tool("security-agent"), "start", "-c", str(config), extra_env=extra_env)
    d.wait_for("Security Agent is now running.")
    d.wait_for("checks: 2 instance(s) scheduled on 4 runner(s), 0 check(s) failed")
    d.wait_for("Error running check failing:")
    d.wait_for("Component checks is healthy")
    d.signal(signal.SIGTERM)
    assert d.wait() == 0
    payloads = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    series = [s for p in payloads if p["kind"] == "series" for s in p["series"]]
    hello = [s for s in series if s["metric"] == "hello.world"]
    assert hello, payloads
    assert hello[0]["tags"] == ["TAG_KEY:TAG_VALUE", "env:example"]
    assert hello[0]["points"][0][1] == 1.0
    assert hello[0]["type"] == "gauge"
