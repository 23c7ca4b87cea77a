"""Event delivery: events per second through the spool and the Datadog HTTP sink to a loopback
intake, against the file sink in the same run; and the agent's RSS while the intake is down
for a while at 1,000 events/s, which the spool's byte bound (not the outage) must limit.

Each measurement runs in a child process of its own (the reactor runs once per process); the
intake is a third process so that parsing requests does not share the agent's CPU.
``BENCH_SINKS_OUTAGE_SECONDS`` shortens the 60 s outage for a quick look.
"""

from __future__ import annotations

import gzip
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
ROOT = HERE.parents[1]
EVENTS = 20_000
OUTAGE_SECONDS = float(os.environ.get("BENCH_SINKS_OUTAGE_SECONDS", "60"))
RATE = 1000
SPOOL_MAX = "4MB"
PAYLOAD = {
    "agent": {"rule_id": "bench_rule", "policy_name": "default", "version": "7.0.0"},
    "evt": {"name": "open", "category": "File Activity", "outcome": "Allowed"},
    "file": {"path": "/etc/shadow", "mode": 416, "uid": 0, "gid": 42},
    "process": {"pid": 4242, "comm": "cat", "args": ["cat", "/etc/shadow"]},
}


# --- child processes ---------------------------------------------------------------------------


def _intake(port_file: str) -> None:
    """A counting intake: accepts any POST, counts the events it carries."""
    from twisted.web import resource, server

    reactor = _reactor()

    class Count(resource.Resource):
        isLeaf = True
        events = 0

        def render_GET(self, request: Any) -> bytes:
            return str(self.events).encode()

        def render_POST(self, request: Any) -> bytes:
            body = request.content.read()
            if request.getHeader("content-encoding") == "gzip":
                body = gzip.decompress(body)
            Count.events += len(json.loads(body))
            request.setResponseCode(202)
            return b"{}"

    site = server.Site(Count())  # type: ignore[no-untyped-call]
    port = reactor.listenTCP(0, site, interface="127.0.0.1")
    Path(port_file + ".tmp").write_text(str(port.getHost().port))
    os.replace(port_file + ".tmp", port_file)
    reactor.run()


@dataclass
class _EntryPoint:
    name: str
    target: Any

    @property
    def value(self) -> str:
        return f"bench:{self.name}"

    def load(self) -> Any:
        return self.target


def _agent(reactor: Any, workdir: Path, config: str) -> Any:
    import types

    import plugins.sinks
    from host import PluginSpec, hookimpl
    from host.bootstrap import AgentOptions, build_agent

    producer = types.ModuleType("bench_producer")

    @hookimpl
    def security_agent_plugin_spec(agent: Any) -> PluginSpec:
        return PluginSpec(security_component=True)

    producer.security_agent_plugin_spec = security_agent_plugin_spec  # type: ignore[attr-defined]
    workdir.mkdir(parents=True, exist_ok=True)
    cfg = workdir / "security-agent.yaml"
    cfg.write_text(f"run_path: {workdir / 'run'}\nlog_level: warn\n" + config)
    return build_agent(
        AgentOptions(cfgpaths=[str(cfg)]),
        reactor,
        entry_points=lambda: [
            _EntryPoint("sinks", plugins.sinks),
            _EntryPoint("producer", producer),
        ],
        env={},
    )


def _endpoint_config(port: int, spool_max: str) -> str:
    endpoint = f"    logs_dd_url: 127.0.0.1:{port}\n    logs_no_ssl: true\n    batch_wait: 0.1\n"
    return (
        "api_key: bench\n"
        "runtime_security_config:\n  endpoints:\n" + endpoint + "compliance_config:\n"
        "  endpoints:\n" + endpoint + "sinks:\n  file:\n    enabled: false\n"
        f"  spool:\n    max_size: {spool_max}\n"
        "  retry:\n    initial_backoff: 0.2s\n    max_backoff: 2s\n"
    )


def _reactor() -> Any:
    from twisted.internet import reactor

    return reactor


def _run(reactor: Any, measure: Any) -> None:
    """Run ``measure()`` on the reactor and print its result as one JSON line."""
    from twisted.internet import defer

    def done(result: dict[str, Any]) -> None:
        print(json.dumps(result), flush=True)
        reactor.stop()

    def failed(failure: Any) -> None:
        failure.printTraceback()
        reactor.stop()

    defer.ensureDeferred(measure()).addCallbacks(done, failed)
    reactor.run()


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS")


def _throughput(port: int, workdir: str) -> None:
    from twisted.internet import task

    from host.lifecycle import AgentService

    reactor = _reactor()

    async def measure() -> dict[str, Any]:
        base = Path(workdir)
        file_agent = _agent(reactor, base / "file", "")
        file_service = AgentService(file_agent, install_signal_handlers=False)
        file_service.startService()
        t0 = time.perf_counter()
        for _ in range(EVENTS):
            file_agent.events.emit("runtime", PAYLOAD)
        file_eps = EVENTS / (time.perf_counter() - t0)
        await file_service.stopService()

        http_agent = _agent(reactor, base / "http", _endpoint_config(port, "256MB"))
        http_service = AgentService(http_agent, install_signal_handlers=False)
        http_service.startService()
        await task.deferLater(reactor, 0.2, lambda: None)
        t0 = time.perf_counter()
        for i in range(EVENTS):
            http_agent.events.emit("runtime", PAYLOAD)
            if i % 500 == 0:  # let the delivery loop interleave, as real producers do
                await task.deferLater(reactor, 0, lambda: None)
        while http_agent.published["sinks"]()["datadog"]["sent"] < EVENTS:
            await task.deferLater(reactor, 0.005, lambda: None)
        http_eps = EVENTS / (time.perf_counter() - t0)
        await http_service.stopService()
        return {"file_eps": file_eps, "http_eps": http_eps}

    _run(reactor, measure)


def _outage(workdir: str, seconds: float) -> None:
    from twisted.internet import task

    from host.lifecycle import AgentService

    reactor = _reactor()

    with socket.socket() as s:  # a port nobody listens on: every send is refused
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]

    async def measure() -> dict[str, Any]:
        agent = _agent(reactor, Path(workdir), _endpoint_config(dead_port, SPOOL_MAX))
        service = AgentService(agent, install_signal_handlers=False)
        service.startService()
        await task.deferLater(reactor, 0.5, lambda: None)
        before = _rss_mb()
        peak = before
        emitted = 0
        start = time.monotonic()
        while (elapsed := time.monotonic() - start) < seconds:
            # catch up with the wall clock, so the rate holds whatever a tick costs
            while emitted < int(elapsed * RATE):
                agent.events.emit("runtime", PAYLOAD)
                emitted += 1
            peak = max(peak, _rss_mb())
            await task.deferLater(reactor, 0.05, lambda: None)
        stats = agent.published["sinks"]()["datadog"]
        spool = Path(workdir) / "run" / "spool" / "datadog-runtime"
        disk = sum(p.stat().st_size for p in spool.glob("*.seg"))
        await service.stopService()
        return {
            "before": before,
            "peak": peak,
            "emitted": emitted,
            "queued_bytes": stats["queued_bytes"],
            "dropped": stats["dropped"],
            "spool_disk_bytes": disk,
        }

    _run(reactor, measure)


# --- the parent --------------------------------------------------------------------------------


def _child(*args: str, timeout: float) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, str(HERE), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"bench_sinks {args[0]} failed:\n{proc.stdout}\n{proc.stderr}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def run() -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        port_file = os.path.join(tmp, "intake.port")
        intake = subprocess.Popen(
            [sys.executable, str(HERE), "intake", port_file], env={**os.environ}
        )
        try:
            deadline = time.monotonic() + 30
            while not os.path.exists(port_file):
                if time.monotonic() > deadline or intake.poll() is not None:
                    raise RuntimeError("the benchmark intake did not start")
                time.sleep(0.05)
            port = Path(port_file).read_text()
            speed = _child("throughput", port, os.path.join(tmp, "tp"), timeout=300)
        finally:
            intake.kill()
            intake.wait()
        outage = _child(
            "outage", os.path.join(tmp, "outage"), str(OUTAGE_SECONDS), timeout=OUTAGE_SECONDS + 120
        )
    return [
        {
            "name": "sinks.http_throughput",
            "unit": "events/s",
            "value": round(speed["http_eps"]),
            "baseline": round(speed["file_eps"]),
            "baseline_name": "file sink, same events, same run",
            "ratio": round(speed["http_eps"] / speed["file_eps"], 3),
            "events": EVENTS,
        },
        {
            "name": "sinks.rss_during_outage",
            "unit": "MB",
            "value": round(outage["peak"], 1),
            "baseline": round(outage["before"], 1),
            "baseline_name": "RSS once started, before the outage",
            "outage_seconds": OUTAGE_SECONDS,
            "events_per_second": RATE,
            "emitted": outage["emitted"],
            "spool_max_size": SPOOL_MAX,
            "spool_queued_bytes": outage["queued_bytes"],
            "spool_disk_bytes": outage["spool_disk_bytes"],
            "dropped": outage["dropped"],
        },
    ]


if __name__ == "__main__":
    mode, rest = sys.argv[1], sys.argv[2:]
    if mode == "intake":
        _intake(rest[0])
    elif mode == "throughput":
        _throughput(int(rest[0]), rest[1])
    elif mode == "outage":
        _outage(rest[0], float(rest[1]))
    else:
        for result in run():
            print(json.dumps(result))
