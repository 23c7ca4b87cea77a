"""A third-party plugin, as users get one: built into a wheel, pip-installed into a fresh
virtual environment next to the agent's own wheel, discovered, scheduled, healthy, stopped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest
from e2e_support import AGENT_CONFIG, Daemon

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "plugin-file-integrity"


def run(argv: list[str], **kw) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DD_", "PIP_NO_CACHE"))}
    env.pop("PYTHONPATH", None)
    result = subprocess.run(
        argv, env=env, text=True, capture_output=True, timeout=600, check=False, **kw
    )
    assert result.returncode == 0, f"{argv} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("third-party")
    wheels = base / "wheels"
    for project in (ROOT, EXAMPLE):
        run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "-q",
                "--no-deps",
                "-w",
                str(wheels),
                str(project),
            ]
        )
    built = sorted(p.name for p in wheels.iterdir())
    assert built[0].startswith("security_agent_file_integrity-1.0.0-")
    assert built[1].startswith("security_agent_host-")
    env_dir = base / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    run(
        [
            str(py),
            "-m",
            "pip",
            "install",
            "-q",
            "--prefer-binary",
            *[str(wheels / name) for name in built],
        ]
    )
    run([str(py), "-m", "host.dropin"])
    return env_dir


def test_wheel_contents_and_dropin_cache(fresh_venv: Path):
    wheel = next((fresh_venv.parent / "wheels").glob("security_agent_host-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "twisted/plugins/security_agent.py" in names
    # Twisted owns these: shipping either would break Twisted's own plugin package.
    assert "twisted/__init__.py" not in names
    assert "twisted/plugins/__init__.py" not in names
    assert not any(n.endswith("dropin.cache") for n in names)
    site = next((fresh_venv / "lib").glob("python3*/site-packages"))
    assert (site / "twisted" / "plugins" / "dropin.cache").exists()
    for package in ("host", "plugins", "datadog_checks", "security_agent_file_integrity"):
        assert (site / package / "__init__.py").exists(), package


def test_plugin_is_discovered_with_its_distribution(fresh_venv: Path, tmp_path: Path):
    out = run(
        [
            str(fresh_venv / "bin" / "security-agent"),
            "plugins",
            "--json",
            "-c",
            str(config(tmp_path)),
        ]
    ).stdout
    (record,) = [p for p in json.loads(out) if p["name"] == "file_integrity"]
    assert record["state"] == "loaded"
    assert record["distribution"] == "security-agent-file-integrity"
    assert record["version"] == "1.0.0"
    assert "security_agent_run" in record["hooks"]


def config(tmp_path: Path) -> Path:
    watched = tmp_path / "watched.conf"
    watched.write_text("PermitRootLogin no\n")
    cfg = tmp_path / "security-agent.yaml"
    cfg.write_text(
        AGENT_CONFIG + "  log_file: run/security-agent.log\n"
        "  health_ping_frequency: 0.5s\n"
        "file_integrity:\n"
        "  interval: 1s\n"
        f"  paths: [{watched}]\n"
    )
    return cfg


def test_plugin_runs_on_schedule_is_healthy_and_stops(fresh_venv: Path, tmp_path: Path):
    cfg = config(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DD_")}
    env.pop("PYTHONPATH", None)
    daemon = Daemon(
        [str(fresh_venv / "bin" / "security-agent"), "start", "-c", str(cfg)], env, tmp_path
    )
    try:
        daemon.wait_for("Plugin file_integrity started")
        daemon.wait_for("Security Agent is now running.")
        daemon.wait_for("file_integrity: run 1 checked 1 file(s)")
        daemon.wait_for("Component file_integrity is healthy")
        daemon.wait_for("file_integrity: run 2 checked 1 file(s)")
        (tmp_path / "watched.conf").write_text("PermitRootLogin yes\n")
        daemon.wait_for(f"file_integrity: {tmp_path / 'watched.conf'} changed")
        daemon.signal(signal.SIGTERM)
        assert daemon.wait() == 0
        daemon.wait_for("file_integrity: stopped after ")
        daemon.wait_for("Plugin file_integrity stopped")
        daemon.wait_for("See ya!")
        assert not any("unhealthy" in line for line in daemon.lines)
    finally:
        daemon.stop()
