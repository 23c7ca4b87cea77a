"""The real daemon: start, signals, exit codes and messages, under every launcher."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from pathlib import Path

import pytest
from e2e_support import make_distribution, run_cli, tool, wait_until


def markers(tmp_path: Path) -> list[str]:
    f = tmp_path / "markers" / "events"
    return f.read_text().split() if f.exists() else []


def test_start_runs_plugins_and_sigterm_stops_them_with_exit_zero(spawn, config, tmp_path):
    d = spawn(tool("security-agent"), "start", "-c", str(config))
    d.wait_for("Security Agent is now running.")
    wait_until(lambda: markers(tmp_path).count("run") >= 3)  # on schedule, every 0.5 s
    d.wait_for("Component e2e is healthy")
    d.signal(signal.SIGTERM)
    assert d.wait() == 0
    d.wait_for("Received signal 'SIGTERM', shutting down...")
    d.wait_for("Plugin e2e stopped")
    assert d.lines[-2].endswith("See ya!") or d.lines[-1].endswith("See ya!")
    assert markers(tmp_path)[-1] == "stop"
    log_file = tmp_path / "run" / "log" / "security-agent.log"
    assert "See ya!" in log_file.read_text()
    assert oct(log_file.stat().st_mode & 0o777) == "0o600"
    assert not any("Traceback" in line for line in d.lines)


def test_sigint_also_stops_gracefully(spawn, config):
    d = spawn(tool("security-agent"), "start", "-c", str(config))
    d.wait_for("Security Agent is now running.")
    d.signal(signal.SIGINT)
    assert d.wait() == 0
    d.wait_for("Received signal 'SIGINT', shutting down...")
    d.wait_for("See ya!")


def test_all_components_disabled_exits_zero(spawn, config):
    d = spawn(
        tool("security-agent"), "start", "-c", str(config), extra_env={"DD_E2E_SECURITY": "false"}
    )
    assert d.wait() == 0
    d.wait_for("All security-agent components are deactivated, exiting")
    assert not any("is now running" in line for line in d.lines)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "run_path: [unclosed\n",
            "security-agent.yaml:2:1: invalid YAML: expected ',' or ']', but got '<stream end>'",
        ),
        (
            "plugins:\n  disabled: [off]\n",
            "security-agent.yaml:2: plugins.disabled: expected a list of plugin names, got False "
            "(quote names such as 'off')",
        ),
        (
            "security_agent:\n  worker_pool_size: lots\n",
            "security-agent.yaml:2: security_agent.worker_pool_size: "
            "expected an integer, got 'lots'",
        ),
        (
            "plugins:\n  enabled: [e2e, nosuch]\n",
            "plugins.enabled: unknown plugin(s) nosuch; installed: ",
        ),
        ("- a list\n", "the top level must be a mapping"),
    ],
)
def test_bad_config_is_one_line_and_a_non_zero_exit(env, tmp_path, text, expected):
    cfg = tmp_path / "security-agent.yaml"
    cfg.write_text(text)
    result = run_cli("start", "-c", str(cfg), env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("security-agent: ")
    assert expected in lines[0]


def test_missing_explicit_config_file_is_an_error(env, tmp_path):
    result = run_cli("start", "-c", str(tmp_path / "nope.yaml"), env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == f"security-agent: {tmp_path / 'nope.yaml'}: no such config file"


def test_empty_cfgpath_is_refused_as_in_the_reference(env, tmp_path):
    result = run_cli("-c", "", "start", env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert (
        result.stderr.strip() == "security-agent: no Security Agent config files to load, exiting"
    )


def test_plugins_lists_loaded_failed_and_disabled(env, site, tmp_path, config):
    make_distribution(
        site, "broken-plugin", "broken_plugin", "raise ImportError('no libfoo')\n", "broken"
    )
    make_distribution(site, "quiet-plugin", "quiet_plugin", "", "quiet")
    config.write_text(config.read_text() + "plugins:\n  disabled: [quiet]\n")
    result = run_cli("plugins", "--json", "-c", str(config), env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    listing = {p["name"]: p for p in json.loads(result.stdout)}
    assert listing["e2e"]["state"] == "loaded"
    assert listing["e2e"]["distribution"] == "e2e-plugin"
    assert listing["e2e"]["version"] == "1.0"
    assert listing["e2e"]["hooks"] == [
        "security_agent_config_schema",
        "security_agent_plugin_spec",
        "security_agent_run",
        "security_agent_stop",
    ]
    assert listing["broken"]["state"] == "failed"
    assert listing["broken"]["error"] == "import failed: ImportError: no libfoo"
    assert listing["quiet"]["state"] == "disabled"

    table = run_cli("plugins", "-c", str(config), env=env, cwd=tmp_path).stdout.splitlines()
    assert table[0].split() == ["NAME", "DISTRIBUTION", "VERSION", "STATE", "HOOKS"]
    assert "broken: import failed: ImportError: no libfoo" in table


def test_a_broken_plugin_is_reported_and_the_others_run(spawn, site, config, tmp_path):
    make_distribution(site, "broken-plugin", "broken_plugin", "1/0\n", "broken")
    d = spawn(tool("security-agent"), "start", "-c", str(config))
    d.wait_for(
        "Plugin broken (broken-plugin 1.0) failed to load: "
        "import failed: ZeroDivisionError: division by zero"
    )
    d.wait_for("Security Agent is now running.")
    wait_until(lambda: "run" in markers(tmp_path))
    d.signal()
    assert d.wait() == 0


def test_strict_mode_makes_a_broken_plugin_stop_the_start(env, site, config, tmp_path):
    make_distribution(site, "broken-plugin", "broken_plugin", "1/0\n", "broken")
    result = run_cli("start", "--strict-plugins", "-c", str(config), env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "security-agent: strict plugin mode: 1 plugin(s) failed: broken (broken-plugin): "
        "import failed: ZeroDivisionError: division by zero"
    )
    assert markers(tmp_path) == []


def test_version_and_help(env, tmp_path):
    result = run_cli("version", env=env, cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.startswith("Security agent 0.1.0 - Python ")
    result = run_cli("--help", env=env, cwd=tmp_path)
    assert result.returncode == 0
    for command in ("start", "version", "plugins"):
        assert f"    {command}" in result.stdout


@pytest.mark.parametrize("launcher", ["twistd", "twist"])
def test_twistd_and_twist_run_the_same_service_tree(spawn, config, tmp_path, launcher):
    argv = (
        [tool("twistd"), "-n", "--pidfile", ""]
        if launcher == "twistd"
        else [tool("twist"), "--log-format", "text"]
    )
    d = spawn(*argv, "security-agent", "-c", str(config))
    d.wait_for("Security Agent is now running.")
    wait_until(lambda: markers(tmp_path).count("run") >= 2)
    d.signal(signal.SIGTERM)
    assert d.wait() == 0
    d.wait_for("See ya!")
    assert markers(tmp_path)[-1] == "stop"


def twistd_daemon(env, tmp_path, config, pidfile, logfile):
    return subprocess.run(
        [tool("twistd"), "--pidfile", str(pidfile), "--logfile", str(logfile),
         "security-agent", "-c", str(config)],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_twistd_daemonizes_with_pidfile_and_logfile(env, config, tmp_path):
    pidfile, logfile = tmp_path / "agent.pid", tmp_path / "twistd.log"
    result = twistd_daemon(env, tmp_path, config, pidfile, logfile)
    assert result.returncode == 0, result.stderr
    wait_until(pidfile.exists)
    pid = int(pidfile.read_text())
    try:
        wait_until(lambda: "Security Agent is now running." in logfile.read_text())
        wait_until(lambda: "run" in markers(tmp_path))
        os.kill(pid, signal.SIGTERM)
        wait_until(lambda: not pidfile.exists())
        wait_until(lambda: "See ya!" in logfile.read_text())
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert markers(tmp_path)[-1] == "stop"


def test_twistd_reports_a_bad_config_before_daemonizing(env, tmp_path):
    cfg = tmp_path / "security-agent.yaml"
    cfg.write_text("security_agent:\n  worker_pool_size: lots\n")
    result = twistd_daemon(env, tmp_path, cfg, tmp_path / "p.pid", tmp_path / "t.log")
    assert result.returncode == 1
    assert "security_agent.worker_pool_size: expected an integer, got 'lots'" in result.stderr
    assert not (tmp_path / "p.pid").exists()


def test_dropin_imports_no_reactor(env, tmp_path):
    code = (
        "import sys\n"
        "from twisted.plugin import getPlugins, IPlugin\n"
        "from twisted import plugins\n"
        "names = [p.tapname for p in getPlugins(IPlugin, plugins) if hasattr(p, 'tapname')]\n"
        "assert 'security-agent' in names, names\n"
        "assert 'twisted.internet.reactor' not in sys.modules\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [tool("python"), "-c", code],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.stdout.strip() == "ok", result.stderr


def test_json_log_format_is_one_flat_object_per_line(spawn, config, tmp_path):
    d = spawn(
        tool("security-agent"),
        "start",
        "-c",
        str(config),
        extra_env={"DD_LOG_FORMAT_JSON": "true", "DD_LOG_LEVEL": "debug"},
    )
    d.wait_for('"message":"Security Agent is now running."')
    d.signal(signal.SIGTERM)
    assert d.wait() == 0
    records = [json.loads(line) for line in d.lines]
    running = next(r for r in records if r["message"] == "Security Agent is now running.")
    assert set(running) == {"time", "level", "logger", "namespace", "message", "product"}
    assert running["level"] == "info"
    assert running["logger"] == "SECURITY"
    started = next(r for r in records if r["message"] == "Plugin e2e started")
    assert started["plugin"] == "e2e"
    assert records[-2]["message"] == "See ya!" or records[-1]["message"] == "See ya!"
    file_lines = (tmp_path / "run" / "log" / "security-agent.log").read_text().splitlines()
    assert all(json.loads(line)["logger"] == "SECURITY" for line in file_lines)


def test_repeated_cfgpath_merges_files_later_ones_winning(spawn, config, tmp_path):
    first = tmp_path / "datadog.yaml"
    first.write_text("e2e:\n  security: false\n")
    config.write_text(config.read_text().replace("e2e:\n", "e2e:\n  security: true\n"))
    d = spawn(tool("security-agent"), "start", "-c", str(first), "-c", str(config))
    d.wait_for("Security Agent is now running.")
    d.signal()
    assert d.wait() == 0
    # The other way round, the first file's value stands where the later one is silent.
    later = tmp_path / "later.yaml"
    later.write_text("e2e:\n  security: false\n")
    config.write_text(config.read_text().replace("  security: true\n", ""))
    d = spawn(tool("security-agent"), "start", "-c", str(config), "-c", str(later))
    assert d.wait() == 0
    d.wait_for("All security-agent components are deactivated, exiting")


@pytest.mark.parametrize("argv", [["version"], ["plugins"], ["--help"]])
def test_a_closed_pipe_is_not_a_traceback(env, tmp_path, argv):
    # `security-agent ... | head -1`: the reader is gone before anything is written.
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run(
            [tool("security-agent"), *argv],
            env=env,
            cwd=tmp_path,
            stdout=write_end,
            stderr=subprocess.PIPE,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    assert b"Traceback" not in result.stderr, result.stderr.decode()
