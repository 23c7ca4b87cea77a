"""Time from start to "ready" and idle RSS of the real daemon with every installed plugin,
against ``python -c "import twisted.internet.reactor"`` measured in the same run."""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from plugins.expvar.memstats import read_proc_status

BIN = Path(sys.executable).parent
ROUNDS = 5
READY = "Security Agent is now running."

# A minimal security component, so the agent does not exit for having nothing enabled; it is
# installed as a real distribution (dist-info on PYTHONPATH), like any third-party plugin.
PLUGIN = """
from host import PluginSpec, hookimpl

@hookimpl
def security_agent_plugin_spec(agent):
    return PluginSpec(interval=60.0, security_component=True)

@hookimpl
def security_agent_run(agent):
    pass
"""


def _rss_mb(pid: int) -> float:
    return read_proc_status(f"/proc/{pid}/status")["rss_bytes"] / 2**20


def _time_to_line(
    argv: list[str], marker: str, env: dict[str, str], cwd: str
) -> tuple[float, float]:
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if marker in line:
                elapsed = time.perf_counter() - t0
                break
        else:
            raise RuntimeError(f"{argv[0]} exited before printing {marker!r}")
        time.sleep(1.0)  # idle
        rss = _rss_mb(proc.pid)
        return elapsed, rss
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run() -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "site"
        site.mkdir()
        (site / "bench_plugin.py").write_text(PLUGIN)
        info = site / "bench_plugin-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: bench-plugin\nVersion: 1.0\n")
        (info / "entry_points.txt").write_text("[security_agent]\nbench = bench_plugin\n")
        cfg = Path(tmp) / "security-agent.yaml"
        cfg.write_text(
            "run_path: run\nsecurity_agent:\n  log_file: run/agent.log\n"
            "  cmd_port: 0\n  expvar_port: 0\n"
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("DD_")}
        env["PYTHONPATH"] = str(site)

        agent_argv = [str(BIN / "security-agent"), "start", "-c", str(cfg)]
        base_argv = [
            sys.executable,
            "-c",
            "import twisted.internet.reactor, time; print('ready', flush=True); time.sleep(60)",
        ]
        agent = [_time_to_line(agent_argv, READY, env, tmp) for _ in range(ROUNDS)]
        base = [_time_to_line(base_argv, "ready", env, tmp) for _ in range(ROUNDS)]
        plugins = subprocess.run(
            [str(BIN / "security-agent"), "plugins", "-c", str(cfg)],
            env=env,
            cwd=tmp,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()[1:]
    names = sorted(line.split()[0] for line in plugins if line and ":" not in line.split()[0])
    ready = statistics.median(t for t, _ in agent)
    ready_base = statistics.median(t for t, _ in base)
    rss = statistics.median(r for _, r in agent)
    rss_base = statistics.median(r for _, r in base)
    common = {
        "plugins": names,
        "rounds": ROUNDS,
        "baseline_name": 'python -c "import twisted.internet.reactor"',
    }
    return [
        {
            "name": "host.startup.time_to_ready",
            "unit": "s",
            "value": round(ready, 3),
            "baseline": round(ready_base, 3),
            "ratio": round(ready / ready_base, 2),
            "target": "< 1 s",
            **common,
        },
        {
            "name": "host.idle_rss",
            "unit": "MB",
            "value": round(rss, 1),
            "baseline": round(rss_base, 1),
            "ratio": round(rss / rss_base, 2),
            "target": "< 80 MB",
            **common,
        },
    ]
