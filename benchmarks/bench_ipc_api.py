"""Requests per second and p50/p99 latency of ``GET /agent/status/health`` over TLS with
keep-alive, at 1 and 32 concurrent clients, against a bare Twisted TLS resource serving a
body of the same size, measured in the same run.

Each server runs in its own process; the load comes from this process: one thread of
non-blocking TLS sockets, each connection sending its next request as soon as the previous
answer is complete (closed loop), so latency includes no client-side queueing beyond the
event loop's.
"""

from __future__ import annotations

import json
import os
import selectors
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

MAIN = Path(__file__).resolve().parents[1]
WARMUP = 0.2
DURATION = 1.0
ROUNDS = 6
CONCURRENCY = (1, 32)

SERVER = r"""
import json, sys
from pathlib import Path
from twisted.internet import reactor
mode, directory = sys.argv[1], Path(sys.argv[2])

class EP:
    def __init__(self, name, target):
        self.name, self.target, self.value, self.dist = name, target, "bench:" + name, None
    def load(self):
        return self.target

def announce(port):
    sys.stdout.write(json.dumps({"port": port}) + "\n")
    sys.stdout.flush()

if mode == "bare":
    from twisted.web import resource, server
    from plugins.ipc_api.certificate import load_or_create
    from plugins.ipc_api.tls import server_options
    body = json.dumps({"Healthy": ["healthcheck", "ipc_api", "bench"], "Unhealthy": []}).encode()
    class Health(resource.Resource):
        isLeaf = True
        def render_GET(self, request):
            request.setHeader(b"content-type", b"application/json")
            return body
    site = server.Site(Health())
    site.log = lambda request: None
    port = reactor.listenSSL(0, site, server_options(load_or_create(str(directory))),
                             interface="127.0.0.1")
    reactor.callWhenRunning(announce, port.getHost().port)
else:
    import types
    import plugins.ipc_api
    from host import PluginSpec, hookimpl
    from host.bootstrap import AgentOptions, build_agent
    from host.lifecycle import AgentService
    bench = types.ModuleType("bench")
    bench.security_agent_plugin_spec = hookimpl(
        lambda agent: PluginSpec(interval=3600, security_component=True))
    bench.security_agent_plugin_spec.__name__ = "security_agent_plugin_spec"
    cfg = directory / "security-agent.yaml"
    cfg.write_text("run_path: run\nlog_level: warn\nsecurity_agent:\n  cmd_port: 0\n")
    eps = [EP("ipc_api", plugins.ipc_api), EP("bench", bench)]
    agent = build_agent(AgentOptions(cfgpaths=[str(cfg)]), reactor, entry_points=lambda: eps)
    svc = AgentService(agent, install_signal_handlers=False)
    def wait_ready():
        srv = plugins.ipc_api.server_of(agent)
        if svc.ready and srv is not None:
            announce(srv.bound_port)
        else:
            reactor.callLater(0.02, wait_ready)
    reactor.callWhenRunning(svc.startService)
    reactor.callWhenRunning(wait_ready)
reactor.run()
"""


def _start(mode: str, directory: Path) -> tuple[subprocess.Popen[str], int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DD_")}
    env["PYTHONPATH"] = str(MAIN)
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER, mode, str(directory)],
        cwd=directory,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.wait()
        raise RuntimeError(f"the {mode} server did not start (exit {proc.returncode})")
    return proc, int(json.loads(line)["port"])


class _Conn:
    def __init__(self, port: int, ctx: ssl.SSLContext, request: bytes) -> None:
        raw = socket.create_connection(("127.0.0.1", port))
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = ctx.wrap_socket(raw, server_hostname="localhost")
        self.sock.setblocking(False)
        self.request = request
        self.buffer = b""
        self.sent_at = 0.0

    def send(self) -> None:
        self.buffer = b""
        self.sent_at = time.perf_counter()
        self.sock.sendall(self.request)  # small: fits the socket buffer at once

    def receive(self) -> bool:
        """Read what is there; True once a whole response is in."""
        while True:
            try:
                chunk = self.sock.recv(65536)
            except ssl.SSLWantReadError:
                break
            if not chunk:
                raise ConnectionError("the server closed the connection")
            self.buffer += chunk
        head, sep, body = self.buffer.partition(b"\r\n\r\n")
        if not sep:
            return False
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(head.split(b"\r\n", 1)[0].decode())
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return len(body) >= length


def _load(port: int, cafile: Path, token: str, clients: int) -> tuple[float, list[float]]:
    ctx = ssl.create_default_context(cafile=str(cafile))
    request = (
        "GET /agent/status/health HTTP/1.1\r\nHost: localhost\r\n"
        f"Authorization: Bearer {token}\r\n\r\n"
    ).encode()
    conns = [_Conn(port, ctx, request) for _ in range(clients)]
    sel = selectors.DefaultSelector()
    for c in conns:
        sel.register(c.sock, selectors.EVENT_READ, c)
        c.send()
    latencies: list[float] = []
    start = time.perf_counter()
    measure_from = start + WARMUP
    end = measure_from + DURATION
    while True:
        now = time.perf_counter()
        if now >= end:
            break
        for key, _ in sel.select(timeout=1.0):
            c = key.data
            # TLS may hold decrypted bytes the selector cannot see; receive() drains them.
            if c.receive():
                done = time.perf_counter()
                if c.sent_at >= measure_from:
                    latencies.append(done - c.sent_at)
                c.send()
    for c in conns:
        sel.unregister(c.sock)
        c.sock.close()
    return len(latencies) / DURATION, latencies


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000.0


def run() -> list[dict[str, Any]]:
    """Both servers run side by side and are loaded in alternating short rounds, so that
    load from elsewhere on the machine hits both alike; rates are medians of rounds and
    latencies are pooled over rounds."""
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        bare_dir, ipc_dir = Path(tmp) / "bare", Path(tmp) / "ipc"
        bare_dir.mkdir()
        ipc_dir.mkdir()
        bare_proc, bare_port = _start("bare", bare_dir)
        try:
            ipc_proc, ipc_port = _start("ipc", ipc_dir)
            try:
                targets = {
                    "bare": (bare_proc.pid, bare_port, bare_dir / "ipc_api_cert.pem", "x" * 64),
                    "ipc": (
                        ipc_proc.pid,
                        ipc_port,
                        ipc_dir / "run" / "ipc_api_cert.pem",
                        (ipc_dir / "auth_token").read_text(),
                    ),
                }
                for clients in CONCURRENCY:
                    results += _compare(targets, clients)
            finally:
                ipc_proc.terminate()
                ipc_proc.wait(timeout=15)
        finally:
            bare_proc.terminate()
            bare_proc.wait(timeout=15)
    return results


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _compare(targets: dict[str, tuple[int, int, Path, str]], clients: int) -> list[dict[str, Any]]:
    rates: dict[str, list[float]] = {"bare": [], "ipc": []}
    latencies: dict[str, list[float]] = {"bare": [], "ipc": []}
    cpu: dict[str, float] = {"bare": 0.0, "ipc": 0.0}
    for index in range(ROUNDS):
        order = ("bare", "ipc") if index % 2 == 0 else ("ipc", "bare")
        for mode in order:
            pid, port, cafile, token = targets[mode]
            before = _cpu_seconds(pid)
            rps, lat = _load(port, cafile, token, clients)
            cpu[mode] += _cpu_seconds(pid) - before
            rates[mode].append(rps)
            latencies[mode] += lat
    # Server CPU per request (warm-up requests included): steadier than rates when other
    # work shares the machine.
    cpu_us = {m: cpu[m] / max(1.0, sum(rates[m]) * (DURATION + WARMUP)) * 1e6 for m in cpu}
    ipc_rps, bare_rps = statistics.median(rates["ipc"]), statistics.median(rates["bare"])
    results: list[dict[str, Any]] = [
        {
            "name": f"ipc_api_health_rps_c{clients}",
            "unit": "requests/s",
            "value": round(ipc_rps, 1),
            "baseline": round(bare_rps, 1),
            "ratio": round(ipc_rps / bare_rps, 3),
            "target": ">= 0.8 x bare twisted TLS resource",
        }
    ]
    results.append(
        {
            "name": f"ipc_api_health_server_cpu_c{clients}",
            "unit": "us/request",
            "value": round(cpu_us["ipc"], 1),
            "baseline": round(cpu_us["bare"], 1),
            "ratio": round(cpu_us["ipc"] / cpu_us["bare"], 3) if cpu_us["bare"] else None,
            "target": "report only (<= 1.25 x bare matches the 0.8 rate target)",
        }
    )
    for name, q in (("p50", 0.5), ("p99", 0.99)):
        ipc_q, bare_q = _percentile(latencies["ipc"], q), _percentile(latencies["bare"], q)
        results.append(
            {
                "name": f"ipc_api_health_{name}_c{clients}",
                "unit": "ms",
                "value": round(ipc_q, 3),
                "baseline": round(bare_q, 3),
                "ratio": round(ipc_q / bare_q, 3),
                "target": "< 10 ms" if (name == "p99" and clients == 32) else "report only",
            }
        )
    return results


if __name__ == "__main__":
    for result in run():
        sys.stdout.write(json.dumps(result) + "\n")
