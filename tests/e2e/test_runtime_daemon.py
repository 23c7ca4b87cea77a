"""The real daemon with the runtime_security plugin: kernel events become security events in
the sinks' file, the policy directory is watched, and `security-agent runtime ...` talks to
the running agent through its command API."""

from __future__ import annotations

import fcntl
import importlib.metadata
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_support import free_port, run_cli, tool

MAIN = Path(__file__).resolve().parents[2]


def dist_info(site: Path, name: str, module: str) -> None:
    info = site / f"{name}_e2e-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}-e2e\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[security_agent]\n{name} = {module}\n")


@pytest.fixture(autouse=True)
def audit_lock() -> Iterator[None]:
    """The daemon's audit source changes kernel-wide state: take the same cross-process lock
    as the audit tests in tests/plugins/runtime_security, so no two runs overlap."""
    with open("/tmp/rs-audit-tests.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@pytest.fixture
def rs_env(site: Path, env: dict[str, str]) -> dict[str, str]:
    installed = {ep.name for ep in importlib.metadata.entry_points(group="security_agent")}
    for name in ("runtime_security", "ipc_api", "sinks"):
        if name not in installed:
            dist_info(site, name, f"plugins.{name}")
    return {**env, "PYTHONPATH": f"{MAIN}{os.pathsep}{site}"}


def cli(cfg: Path, *argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_cli("-c", str(cfg), *argv, env=env)


def wait_event(path: Path, rule_id: str, timeout: float = 15.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            for line in path.read_text().splitlines():
                payload = json.loads(line)["payload"]
                if payload["agent"]["rule_id"] == rule_id:
                    return payload
        time.sleep(0.1)
    raise AssertionError(f"no {rule_id} event in {path}")


def test_runtime_security_in_the_real_daemon(spawn, config, rs_env, tmp_path):
    port = free_port()
    watched = tmp_path / "watched"
    watched.mkdir()
    policies = tmp_path / "policies"
    policies.mkdir()
    probe = tmp_path / "rs-e2e-probe"
    shutil.copy("/bin/true", probe)
    (policies / "e2e.policy").write_text(
        f'rules:\n  - id: e2e_exec\n    expression: exec.file.path == "{probe}"\n'
    )
    text = config.read_text().replace("  cmd_port: 0\n", f"  cmd_port: {port}\n")
    config.write_text(
        text + "runtime_security_config:\n  enabled: true\n"
        f"  policies:\n    dir: {policies}\n"
        f"  fim:\n    paths: [{watched}]\n"
        "  sources:\n    audit: false\n"  # audit is kernel-wide: its own tests cover it
    )
    d = spawn(tool("security-agent"), "start", "-c", str(config), extra_env=rs_env)
    d.wait_for("Security Agent is now running.")
    d.wait_for("runtime security self-test succeeded")
    events = tmp_path / "run" / "events" / "runtime.jsonl"

    subprocess.run([str(probe)], check=True)
    event = wait_event(events, "e2e_exec")
    assert event["process"]["executable"]["path"] == str(probe)
    assert event["agent"]["policy_name"] == "e2e.policy"

    # The directory is watched: a new policy file is loaded without asking.
    (policies / "more.policy").write_text(
        f'rules:\n  - id: e2e_create\n    expression: open.file.path == "{watched}/made"\n'
    )
    d.wait_for("runtime security policies loaded (policy file changed)")
    subprocess.run(["touch", str(watched / "made")], check=True)
    assert wait_event(events, "e2e_create")["file"]["path"] == str(watched / "made")

    r = cli(config, "runtime", "self-test", env=rs_env)
    assert (r.returncode, r.stdout) == (0, "Runtime self test: OK\n"), r.stderr
    r = cli(config, "runtime", "policy", "reload", env=rs_env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("Policies reloaded: ")
    assert r.stdout.endswith(" rules loaded, 0 in error\n")
    r = cli(config, "runtime", "process-cache", "dump", env=rs_env)
    assert r.returncode == 0, r.stderr
    dump = Path(r.stdout.removeprefix("Process dump file: ").strip())
    assert oct(dump.stat().st_mode & 0o777) == "0o600"
    assert d.proc.pid in {entry["pid"] for entry in json.loads(dump.read_text())}
    r = cli(config, "status", env=rs_env)
    assert "Runtime Security\n================\n" in r.stdout
    assert "    e2e.policy (file)\n      - e2e_exec: loaded, matched 1, sent 1\n" in r.stdout

    d.signal()
    assert d.wait() == 0


def test_events_through_the_event_monitoring_socket(spawn, config, rs_env, tmp_path):
    policies = tmp_path / "policies"
    policies.mkdir()
    probe = tmp_path / "rs-socket-probe"
    shutil.copy("/bin/true", probe)
    (policies / "e2e.policy").write_text(
        f'rules:\n  - id: via_socket\n    expression: exec.file.path == "{probe}"\n'
    )
    sock = tmp_path / "run" / "event-monitor.sock"
    config.write_text(
        config.read_text() + "runtime_security_config:\n  enabled: true\n"
        f"  policies:\n    dir: {policies}\n"
        f"  fim:\n    paths: [{tmp_path / 'watched'}]\n"
        "  sources:\n    audit: false\n"
        f"event_monitoring_config:\n  socket: {sock}\n"
    )
    (tmp_path / "watched").mkdir()
    (tmp_path / "run").mkdir()
    monitor = spawn(tool("security-agent"), "runtime", "event-monitor", "-c", str(config),
                    extra_env=rs_env)  # fmt: skip
    monitor.wait_for(f"Serving runtime security events on {sock}")
    d = spawn(tool("security-agent"), "start", "-c", str(config), extra_env=rs_env)
    d.wait_for("Successfully connected to the event monitoring module")
    d.wait_for("runtime security self-test succeeded")
    subprocess.run([str(probe)], check=True)
    event = wait_event(tmp_path / "run" / "events" / "runtime.jsonl", "via_socket")
    assert event["process"]["executable"]["path"] == str(probe)
    d.signal()
    assert d.wait() == 0
    monitor.signal()
    assert monitor.wait() == 0
    assert not sock.exists()
