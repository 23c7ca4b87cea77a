"""NEEDS NETWORK ACCESS TO PyPI. Upstream's ``datadog-checks-base`` on this host.

A fresh virtual environment gets this project and, on top of it, Datadog's own
``datadog-checks-base`` from PyPI (with ``lazy-loader`` and ``cachetools``, the import-time
dependencies its bare install lacks: it declares them only in its ``deps`` extra, whose exact
pins do not all resolve). Upstream's files then take ``datadog_checks.base`` over, as they would
for a user who installs a check wheel. A check built on that base runs through the host's
``checks`` plugin (``security-agent check`` code path: builtin modules, loader, aggregator),
and its submissions reach our aggregator through our builtin ``aggregator`` and
``datadog_agent`` modules — upstream's base sees a running agent, not its stubs.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UPSTREAM = ("datadog-checks-base>=37,<39", "lazy-loader>=0.4,<1", "cachetools>=5,<8")
# A real third-party check wheel built on upstream's base (github.com/Xof/monitor_uwsgi).
CHECK_WHEEL = "uwsgi-stats==1.1.1"

UPSTREAM_CHECK = """
    from datadog_checks.base import AgentCheck, ConfigurationError

    __version__ = "3.1.4"

    class UpstreamBasedCheck(AgentCheck):
        __NAMESPACE__ = "upstream"

        def __init__(self, name, init_config, instances):
            super().__init__(name, init_config, instances)
            if "port" not in self.instance:
                raise ConfigurationError("port is required")

        def check(self, _):
            tags = ["port:%s" % self.instance["port"]] + self.instance.get("tags", [])
            self.gauge("connections", 7, tags=tags)
            self.monotonic_count("requests", 100, tags=tags, flush_first_value=True)
            self.service_check("can_connect", self.OK, tags=tags)
            self.set_metadata("version", "2.5.0")
            self.log.info("collected from port %s", self.instance["port"])
"""

# Runs inside the venv: the `security-agent check` command, on an agent built from entry
# points we name here (the project's own entry points are the lead's to declare).
DRIVER = """
    import io, json, sys, argparse
    from types import SimpleNamespace
    from twisted.internet import reactor
    from host.bootstrap import AgentOptions, build_agent
    from host.cli_context import CliContext
    import plugins.checks
    from plugins.checks.cli import configure_check, run_check

    class EntryPoint:
        name = "checks"
        value = "plugins.checks"
        dist = SimpleNamespace(name="security-agent-host", version="0", metadata={"Name": "x"})
        def load(self):
            return plugins.checks

    options = AgentOptions(cfgpaths=[sys.argv[1]])
    agent = build_agent(options, reactor, entry_points=lambda: [EntryPoint()], env={})
    out, err = io.StringIO(), io.StringIO()
    parser = argparse.ArgumentParser()
    configure_check(parser)
    code = run_check(CliContext(options, stdout=out, stderr=err, _agent=agent),
                     parser.parse_args([sys.argv[2], "--json"]))
    import datadog_checks.base as base
    import datadog_checks.base.agent as base_agent
    print(json.dumps({
        "code": code, "stderr": err.getvalue(), "result": json.loads(out.getvalue() or "null"),
        "base_file": base.__file__, "agent_running": base_agent.AGENT_RUNNING,
        "hostname": agent.hostname,
    }))
"""


def _run(argv, **kw):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DD_", "PYTHON"))}
    result = subprocess.run(
        argv, env=env, text=True, capture_output=True, timeout=900, check=False, **kw
    )
    assert result.returncode == 0, f"{argv} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def upstream_venv(tmp_path_factory):
    env_dir = tmp_path_factory.mktemp("upstream-base") / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = str(env_dir / "bin" / "python")
    _run([py, "-m", "pip", "install", "-q", "--prefer-binary", str(ROOT)])
    _run([py, "-m", "pip", "install", "-q", "--prefer-binary", *UPSTREAM, CHECK_WHEEL])
    return env_dir


def run_check_in_venv(venv_dir, tmp_path, name, conf):
    """``security-agent check NAME --json`` in the venv; the driver's JSON report."""
    confd, checksd = tmp_path / "conf.d", tmp_path / "checks.d"
    (confd / f"{name}.d").mkdir(parents=True)
    checksd.mkdir(exist_ok=True)
    (confd / f"{name}.d" / "conf.yaml").write_text(conf)
    cfg = tmp_path / "security-agent.yaml"
    cfg.write_text(
        f"run_path: {tmp_path / 'run'}\nconfd_path: {confd}\nadditional_checksd: {checksd}\n"
    )
    driver = tmp_path / "driver.py"
    driver.write_text(textwrap.dedent(DRIVER))
    done = _run([str(venv_dir / "bin" / "python"), str(driver), str(cfg), name], cwd=tmp_path)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_upstream_base_check_reaches_our_aggregator(upstream_venv, tmp_path):
    (tmp_path / "checks.d").mkdir()
    (tmp_path / "checks.d" / "upstream_demo.py").write_text(textwrap.dedent(UPSTREAM_CHECK))
    conf = "init_config:\ninstances:\n  - port: 8080\n    tags: [team:x]\n"
    report = run_check_in_venv(upstream_venv, tmp_path, "upstream_demo", conf)

    # Upstream's base answered, and it saw our builtin modules, not its stubs.
    site = next((upstream_venv / "lib").glob("python3*/site-packages"))
    assert report["base_file"] == str(site / "datadog_checks" / "base" / "__init__.py")
    assert (site / "datadog_checks" / "base" / "__init__.pyi").exists()  # upstream's lazy stub
    assert report["agent_running"] is True
    assert (report["code"], report["stderr"]) == (0, ""), report

    (result,) = report["result"]
    series = {(s["metric"], s["type"]): s for s in result["aggregator"]["series"]}
    assert set(series) == {("upstream.connections", "gauge"), ("upstream.requests", "count")}
    gauge = series[("upstream.connections", "gauge")]
    assert gauge["points"][0][1] == 7.0
    assert gauge["tags"] == ["port:8080", "team:x"]
    assert gauge["host"] == report["hostname"]
    assert series[("upstream.requests", "count")]["points"][0][1] == 100.0  # flush_first_value
    (sc,) = result["aggregator"]["service_checks"]
    assert (sc["check"], sc["status"], sc["tags"]) == (
        "upstream.can_connect",
        0,
        ["port:8080", "team:x"],
    )
    assert result["runner"]["CheckVersion"] == "3.1.4"
    assert result["runner"]["State"] == "OK"
    assert result["runner"]["TotalMetricSamples"] == 2
    assert result["inventories"]["version.raw"] == "2.5.0"
    assert result["inventories"]["version.major"] == "2"


def test_upstream_base_stays_out_of_the_running_python(upstream_venv):
    # It went into the test's own venv only: the interpreter running the tests is untouched.
    leaked = list(Path(sys.prefix).glob("lib/python3*/site-packages/datadog_checks/base/*.pyi"))
    assert leaked == []


STATS = {
    "version": "2.0.28",
    "listen_queue": 3,
    "listen_queue_errors": 12,
    "signal_queue": 0,
    "load": 0,
    "pid": 4242,
    "sockets": [{"name": "127.0.0.1:8000", "proto": "uwsgi", "queue": 3, "max_queue": 100}],
    "workers": [
        {
            "id": 1,
            "pid": 4243,
            "status": "idle",
            "requests": 120,
            "running_time": 5000,
            "exceptions": 0,
            "harakiri_count": 0,
            "signals": 0,
            "respawn_count": 1,
            "tx": 1000,
            "avg_rt": 900,
            "rss": 0,
            "vsz": 0,
            "apps": [],
            "cores": [],
        },
        {
            "id": 2,
            "pid": 4244,
            "status": "busy",
            "requests": 80,
            "running_time": 4000,
            "exceptions": 1,
            "harakiri_count": 0,
            "signals": 0,
            "respawn_count": 1,
            "tx": 800,
            "avg_rt": 1100,
            "rss": 0,
            "vsz": 0,
            "apps": [],
            "cores": [],
        },
    ],
}


@pytest.fixture
def stats_server():
    """uWSGI's stats server: each connection gets one JSON document, then EOF."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.sendall(json.dumps(STATS).encode())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(5)
    server.close()


def test_real_check_wheel_runs_unchanged(upstream_venv, tmp_path, stats_server):
    conf = f"init_config:\ninstances:\n  - stats_url: tcp://127.0.0.1:{stats_server}\n"
    report = run_check_in_venv(upstream_venv, tmp_path, "uwsgi_stats", conf)
    assert (report["code"], report["stderr"]) == (0, ""), report
    (result,) = report["result"]
    assert result["runner"]["CheckVersion"] not in ("", "unversioned")
    assert result["runner"]["State"] in ("OK", "WARNING")
    series = {s["metric"]: s for s in result["aggregator"]["series"]}
    assert series["uwsgi.listen_queue"]["points"][0][1] == 3.0
    assert series["uwsgi.listen_queue"]["type"] == "gauge"
    checks = {sc["check"]: sc for sc in result["aggregator"]["service_checks"]}
    assert checks["uwsgi.can_connect"]["status"] == 0


def test_real_check_wheel_failure_exits_non_zero(upstream_venv, tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]  # closed again below: nothing listens there
    conf = f"init_config:\ninstances:\n  - stats_url: tcp://127.0.0.1:{port}\n"
    report = run_check_in_venv(upstream_venv, tmp_path, "uwsgi_stats", conf)
    assert report["code"] == 1
    (result,) = report["result"]
    assert result["runner"]["State"] == "ERROR"
    assert "Connection refused" in result["runner"]["LastError"]
    (sc,) = result["aggregator"]["service_checks"]
    assert (sc["check"], sc["status"]) == ("uwsgi.can_connect", 2)
