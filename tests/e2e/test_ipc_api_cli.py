"""The real daemon with the ipc_api plugin, driven by the project's CLI, Python's ssl and curl.

ipc_api is a built-in plugin, installed with the project: the daemon's environment is the one
every e2e test uses.
"""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path

from e2e_support import free_port, run_cli, tool

UNREACHABLE_TAIL = (
    "\t\tMake sure the agent is running before requesting the status.\n"
    "\t\tContact support if you continue having issues.\n"
)


def with_port(config: Path, port: int, name: str | None = None, run: str = "run") -> Path:
    text = config.read_text().replace("run_path: run", f"run_path: {run}")
    if "  cmd_port: 0\n" in text:
        text = text.replace("  cmd_port: 0\n", f"  cmd_port: {port}\n")
    else:
        text = text.replace("security_agent:\n", f"security_agent:\n  cmd_port: {port}\n")
    target = config if name is None else config.with_name(name)
    target.write_text(text)
    return target


def cli(
    cfg: Path, *argv: str, env: dict[str, str], stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return run_cli("-c", str(cfg), *argv, env=env, stdin=stdin)


def https_get(port: int, path: str, token: str | None, cafile: Path) -> tuple[int, bytes]:
    ctx = ssl.create_default_context(cafile=str(cafile))
    req = urllib.request.Request(f"https://localhost:{port}{path}")
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=20) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def test_cli_against_the_real_daemon(spawn, config, env, tmp_path):
    port = free_port()
    cfg = with_port(config, port)
    d = spawn(tool("security-agent"), "start", "-c", str(cfg))
    d.wait_for("Security Agent is now running.")
    d.wait_for(f"The command API listens on https://127.0.0.1:{port}")
    token = (tmp_path / "auth_token").read_text()
    assert len(token) == 64
    assert oct((tmp_path / "auth_token").stat().st_mode & 0o777) == "0o600"
    cert = tmp_path / "run" / "ipc_api_cert.pem"

    # Python's ssl, verifying the certificate for "localhost": the 401/403/200 matrix.
    assert https_get(port, "/agent/version", None, cert) == (
        401,
        b'{"error": "no session token provided"}',
    )
    assert https_get(port, "/agent/version", "0" * 64, cert) == (
        403,
        b'{"error": "invalid session token"}',
    )
    code, body = https_get(port, "/agent/hostname", token, cert)
    assert (code, json.loads(body)) == (200, socket.gethostname())

    # curl.
    curl = shutil.which("curl")
    assert curl, "curl is required (apt-get install curl)"
    out = subprocess.run(
        [
            curl,
            "-sS",
            "--cacert",
            str(cert),
            "-H",
            f"Authorization: Bearer {token}",
            "-w",
            "\n%{http_code}",
            f"https://127.0.0.1:{port}/agent/status/health",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    body, _, code = out.rpartition("\n")
    assert code == "200"
    assert set(json.loads(body)) == {"Healthy", "Unhealthy"}

    # The project's own client.
    r = cli(cfg, "status", env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("Getting the status from the agent.\n")
    assert "Command API\n===========\n" in r.stdout
    assert cli(cfg, "hostname", env=env).stdout == socket.gethostname() + "\n"
    r = cli(cfg, "config", "list-runtime", env=env)
    assert r.stdout.startswith("=== Settings that can be changed at runtime ===\nlog_level ")
    assert cli(cfg, "config", "get", "log_level", env=env).stdout == "log_level is set to: info\n"

    # log_level changes the live level: rejected requests are logged at debug level.
    log_file = tmp_path / "run" / "log" / "security-agent.log"
    https_get(port, "/agent/probe-before", "1" * 64, cert)
    r = cli(cfg, "config", "set", "log_level", "debug", env=env)
    assert (r.returncode, r.stdout) == (0, "Configuration setting log_level is now set to: debug\n")
    https_get(port, "/agent/probe-after", "1" * 64, cert)
    deadline = time.monotonic() + 10
    while "Rejected a request to /agent/probe-after" not in log_file.read_text():
        assert time.monotonic() < deadline, log_file.read_text()
        time.sleep(0.05)
    assert "/agent/probe-before" not in log_file.read_text()
    assert cli(cfg, "config", "get", "log_level", env=env).stdout == "log_level is set to: debug\n"

    # stop: a graceful stop through the host lifecycle, exit 0.
    r = cli(cfg, "stop", env=env)
    assert (r.returncode, r.stdout) == (0, "Security agent stopping\n")
    assert d.wait() == 0
    d.wait_for("Plugin ipc_api stopped")
    d.wait_for("See ya!")
    assert not any("Traceback" in line for line in d.lines)

    # With no agent running.
    r = cli(cfg, "status", env=env)
    assert r.returncode == 1
    assert r.stdout == "Getting the status from the agent.\n"
    assert r.stderr == (
        f"\n\t\tCould not reach security agent: connection refused on https://127.0.0.1:{port}\n"
        + UNREACHABLE_TAIL
    )


def test_non_loopback_address_refuses_to_start(spawn, config, env):
    cfg = with_port(config, free_port())
    cfg.write_text(cfg.read_text() + "cmd_host: 0.0.0.0\n")
    d = spawn(tool("security-agent"), "start", "-c", str(cfg))
    assert d.wait() == 1
    d.wait_for(
        "security-agent: plugin ipc_api: cmd_host: address was set to a non-loopback IP "
        "address: 0.0.0.0"
    )
    assert not any("is now running" in line for line in d.lines)


def test_two_agents_started_together_share_one_token(spawn, config, env, tmp_path):
    ports = [free_port(), free_port()]
    cfgs = [with_port(config, p, f"agent-{i}.yaml", f"run-{i}") for i, p in enumerate(ports)]
    daemons = [spawn(tool("security-agent"), "start", "-c", str(c)) for c in cfgs]
    for d, p in zip(daemons, ports, strict=True):
        d.wait_for(f"The command API listens on https://127.0.0.1:{p}")
    token = (tmp_path / "auth_token").read_text()
    created = sum("Created a new auth token" in line for d in daemons for line in d.lines)
    assert created == 1
    for i, p in enumerate(ports):
        code, body = https_get(
            p, "/agent/hostname", token, tmp_path / f"run-{i}" / "ipc_api_cert.pem"
        )
        assert (code, json.loads(body)) == (200, socket.gethostname())
    assert sorted(x.name for x in tmp_path.iterdir() if "auth_token" in x.name) == ["auth_token"]


def test_port_taken_stops_the_agent_with_exit_one(spawn, config, env):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cfg = with_port(config, port)
        d = spawn(tool("security-agent"), "start", "-c", str(cfg))
        assert d.wait() == 1
    line = d.wait_for("Error while starting api server, exiting: ")
    assert line.endswith(f"Couldn't listen on 127.0.0.1:{port}: [Errno 98] Address already in use.")
    d.wait_for("See ya!")
    assert not any("is now running" in line for line in d.lines)
    assert not any("Traceback" in line for line in d.lines)
