"""Fixtures for the end-to-end tests: a site with a real plugin distribution, the daemon's
environment and config, and daemons that are killed at the end of each test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_support import AGENT_CONFIG, E2E_PLUGIN, Daemon, make_distribution


@pytest.fixture
def site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    make_distribution(site, "e2e-plugin", "e2e_plugin", E2E_PLUGIN, "e2e")
    return site


@pytest.fixture
def env(site: Path, tmp_path: Path) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("DD_")}
    e["PYTHONPATH"] = str(site)
    e["HOME"] = str(tmp_path)
    return e


@pytest.fixture
def config(tmp_path: Path) -> Path:
    (tmp_path / "markers").mkdir()
    cfg = tmp_path / "security-agent.yaml"
    cfg.write_text(
        AGENT_CONFIG + "  log_file: run/log/security-agent.log\n"
        "  disabled_exit_delay: 0.2s\n"
        "  health_ping_frequency: 0.5s\n"
        "e2e:\n"
        "  marker_dir: markers\n"
    )
    return cfg


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    started: list[Daemon] = []
    yield started
    for d in started:
        d.stop()


@pytest.fixture
def spawn(daemons: list[Daemon], env: dict[str, str], tmp_path: Path):
    def spawn(*argv: str, extra_env: dict[str, str] | None = None) -> Daemon:
        d = Daemon(argv, {**env, **(extra_env or {})}, tmp_path)
        daemons.append(d)
        return d

    return spawn
