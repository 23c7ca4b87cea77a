"""The compliance plugin in the real agent: `security-agent compliance check` and the daemon.

When the project is not installed with its entry points (a source checkout), the test puts a
distribution declaring ``compliance = plugins.compliance`` on PYTHONPATH, as pip would.
"""

from __future__ import annotations

import json
import os
import signal
import socketserver
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from e2e_support import make_distribution, tool

SINK = """
import json
from pathlib import Path
from host import hookimpl

class FileSink:
    name = "e2e-file"
    tracks = frozenset({"compliance"})

    def __init__(self, path):
        self.path = Path(path)

    def send(self, event):
        with self.path.open("a") as f:
            f.write(json.dumps(dict(event.payload)) + "\\n")

    def stats(self):
        return {}

@hookimpl
def security_agent_config_schema(schema):
    schema.declare("e2e_sink.file", "", path=True)

@hookimpl
def security_agent_event_sinks(agent):
    return [FileSink(agent.config.get_str("e2e_sink.file"))]
"""

BENCH = """\
name: E2E
framework: e2e-fw
version: 1.0.0
rules:
  - id: e2e-passwd
    description: /etc/passwd permissions
    input:
      - file: {path: /etc/passwd}
      - constants: {path: /etc/passwd, max_permissions: "644", users: [root], groups: [root]}
    imports: [files.rego]
  - id: e2e-passwd-strict
    description: /etc/passwd permissions 600
    input:
      - file: {path: /etc/passwd}
      - constants: {path: /etc/passwd, max_permissions: "600", users: [root], groups: [root]}
    imports: [files.rego]
"""


MAIN = Path(__file__).resolve().parents[2]


def add_compliance_distribution(site: Path, env: dict[str, str]) -> None:
    # The daemon imports this source tree (not an older installed copy of the project).
    env["PYTHONPATH"] = f"{site}{os.pathsep}{MAIN}"


def host_root(tmp_path: Path) -> Path:
    root = tmp_path / "host"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\n")
    os.chmod(root / "etc" / "passwd", 0o644)
    return root


def write_config(tmp_path: Path, config: Path, extra: str) -> Path:
    bench = tmp_path / "compliance.d"
    bench.mkdir()
    (bench / "e2e.yaml").write_text(BENCH)
    shipped = MAIN / "plugins/compliance/benchmarks"
    (bench / "files.rego").write_text((shipped / "linux-baseline-files.rego").read_text())
    config.write_text(
        config.read_text()
        + f"hostname: e2e-host\ncompliance_config:\n  dir: {bench}\n"
        + f"  host_root: {host_root(tmp_path)}\n"
        + extra
    )
    return bench


def test_compliance_check_command(tmp_path, site, env, config):
    add_compliance_distribution(site, env)
    write_config(tmp_path, config, "  builtin_benchmarks: false\n")
    cmd = [tool("security-agent"), "compliance", "check", "e2e-passwd", "-c", str(config)]
    proc = subprocess.run(
        cmd, check=False, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    event = json.loads(proc.stdout)
    assert (event["agent_rule_id"], event["result"], event["resource_id"]) == (
        "e2e-passwd",
        "passed",
        "/etc/passwd",
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text("framework: x\nrules: []\n")
    cmd = [tool("security-agent"), "compliance", "check", "--file", str(bad), "-c", str(config)]
    proc = subprocess.run(
        cmd, check=False, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[-1] == (
        f'could not load benchmark files "{bad}": {bad}: bad benchmark: empty rule set'
    )


def test_compliance_daemon_sends_findings_and_stops(tmp_path, site, env, config, spawn):
    add_compliance_distribution(site, env)
    make_distribution(site, "e2e-sink", "e2e_sink", SINK, "e2e_sink")
    findings = tmp_path / "findings.jsonl"
    write_config(
        tmp_path,
        config,
        "  enabled: true\n  check_interval: 5s\n  builtin_benchmarks: false\n"
        f"e2e_sink:\n  file: {findings}\n",
    )
    daemon = spawn(tool("security-agent"), "start", "-c", str(config))
    daemon.wait_for("is now running", timeout=30)
    deadline = time.monotonic() + 30
    events: list[dict] = []
    while time.monotonic() < deadline and len(events) < 2:
        time.sleep(0.2)
        if findings.exists():
            events = [json.loads(line) for line in findings.read_text().splitlines()]
    assert [(e["agent_rule_id"], e["result"]) for e in events[:2]] == [
        ("e2e-passwd", "passed"),
        ("e2e-passwd-strict", "failed"),
    ]
    assert events[1]["data"]["permissions"] == "644"
    started = time.monotonic()
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(timeout=20) == 0
    assert time.monotonic() - started < 10
    daemon.wait_for("Plugin compliance stopped", timeout=1)
    daemon.wait_for("See ya!", timeout=1)


DOCKER_BENCH = """\
name: E2E Docker
framework: e2e-docker
version: 1.0.0
rules:
  - id: e2e-privileged
    scope: [docker]
    input:
      - docker: {kind: container}
        type: array
"""
PRIVILEGED_REGO = """\
package datadog

import data.datadog as dd

findings contains f if {
\tc := input.docker[_]
\tnot c.inspect.HostConfig.Privileged
\tf := dd.passed_finding("docker_container", c.id, {})
}

findings contains f if {
\tc := input.docker[_]
\tc.inspect.HostConfig.Privileged
\tf := dd.failing_finding("docker_container", c.id, {})
}
"""
CONTAINER_ID = "c0ffee" + "0" * 58
IMAGE_ID = "sha256:" + "e" * 64


class _DockerAPI(BaseHTTPRequestHandler):
    def do_GET(self):
        listed = {"Id": CONTAINER_ID, "Image": "nginx:1.25", "ImageID": IMAGE_ID}
        inspect = {
            "Id": CONTAINER_ID,
            "Name": "/web",
            "Image": IMAGE_ID,
            "Config": {"Image": "nginx:1.25"},
            "HostConfig": {"Privileged": True},
        }
        routes = {"/containers/json": [listed], f"/containers/{CONTAINER_ID}/json": inspect}
        body = json.dumps(routes.get(self.path, {"message": "not found"})).encode()
        self.send_response(200 if self.path in routes else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class _UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def get_request(self):
        request, _ = super().get_request()
        return request, ("local", 0)


def test_compliance_check_fills_container_from_docker(tmp_path, site, env, config):
    """DOCKER_HOST points the docker input at a (fake) daemon; the finding of the
    docker-scoped rule names the container and its image."""
    add_compliance_distribution(site, env)
    bench = write_config(tmp_path, config, "  builtin_benchmarks: false\n")
    (bench / "docker.yaml").write_text(DOCKER_BENCH)
    (bench / "e2e-privileged.rego").write_text(PRIVILEGED_REGO)
    sock = tmp_path / "d.sock"
    server = _UnixHTTPServer(str(sock), _DockerAPI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        reports = tmp_path / "reports.json"
        cmd = [
            tool("security-agent"),
            "compliance",
            "check",
            "e2e-privileged",
            "--dump-reports",
            str(reports),
            "-c",
            str(config),
        ]
        proc = subprocess.run(
            cmd,
            check=False,
            env={**env, "DOCKER_HOST": f"unix://{sock}"},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert proc.returncode == 0, proc.stderr
    [event] = json.loads(reports.read_text())["e2e-privileged"]
    assert (event["result"], event["resource_id"], event["container"]) == (
        "failed",
        CONTAINER_ID,
        {
            "container_id": CONTAINER_ID,
            "image_id": IMAGE_ID,
            "image_name": "nginx",
            "image_tag": "1.25",
        },
    )
