"""Helpers for the ipc_api tests: a real agent process serving the API on 127.0.0.1.

Not a conftest.py: the e2e tests import their own ``conftest`` by that name, and a second
module of that name in the test run would shadow it.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
MAIN = HERE.parents[2]
SERVE = HERE / "ipc_api_serve.py"

BASE_CONFIG = """\
run_path: run
cmd_host: localhost
log_to_console: false
security_agent:
  cmd_port: 0
  log_file: run/agent.log
  health_ping_frequency: 0.5s
  disabled_exit_delay: 0.1s
"""


def client_context(cert: Path | None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if cert is None:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx.load_verify_locations(cafile=str(cert))
    return ctx


@dataclass
class Served:
    """A running API: where it is and the means to talk to it."""

    proc: subprocess.Popen[bytes]
    port: int
    dir: Path
    token: str
    cert: Path
    log: Path
    stderr: Path
    connections: list[http.client.HTTPSConnection] = field(default_factory=list)

    def connect(self, host: str = "127.0.0.1") -> http.client.HTTPSConnection:
        conn = http.client.HTTPSConnection(
            host, self.port, timeout=20, context=client_context(self.cert)
        )
        self.connections.append(conn)
        return conn

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        auth: str | None = "token",
    ) -> tuple[int, dict[str, str], bytes]:
        hdrs = dict(headers or {})
        if auth == "token":
            hdrs["Authorization"] = f"Bearer {self.token}"
        elif auth is not None:
            hdrs["Authorization"] = auth
        conn = self.connect()
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data

    def get_json(self, path: str) -> object:
        status, _, body = self.request("GET", path)
        assert status == 200, body
        return json.loads(body)

    def alive(self) -> bool:
        return self.proc.poll() is None


def start_server(directory: Path, extra_config: str = "", timeout: float = 30.0) -> Served:
    directory.mkdir(parents=True, exist_ok=True)
    cfg = directory / "security-agent.yaml"
    cfg.write_text(BASE_CONFIG + extra_config)
    ready = directory / "ready.json"
    ready.unlink(missing_ok=True)  # left by an earlier run in the same directory
    stderr = directory / "stderr.txt"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DD_")}
    env["PYTHONPATH"] = f"{MAIN}{os.pathsep}{MAIN / 'tests'}"
    with stderr.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, str(SERVE), str(cfg), str(ready)],
            cwd=directory,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_process(proc)
            raise AssertionError("the API did not start:\n" + stderr.read_text())
        time.sleep(0.02)
    port = json.loads(ready.read_text())["port"]
    return Served(
        proc=proc,
        port=port,
        dir=directory,
        token=(directory / "auth_token").read_text(),
        cert=directory / "run" / "ipc_api_cert.pem",
        log=directory / "run" / "agent.log",
        stderr=stderr,
    )


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def running_server(directory: Path) -> Iterator[Served]:
    """For a fixture: ``yield from running_server(path)``."""
    s = start_server(directory)
    try:
        yield s
    finally:
        for conn in s.connections:
            conn.close()
        stop_process(s.proc)
