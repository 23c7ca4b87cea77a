"""The CLI commands against a real agent process (and against none)."""

from __future__ import annotations

import argparse
import io
import json
import socket
import sys
import types

import pytest
from ipc_api_helpers import running_server, stop_process
from support import FakeReactor, entry_point

import plugins.ipc_api
from host.bootstrap import AgentOptions, build_agent
from host.cli_context import CliContext
from plugins.ipc_api.cli import commands


@pytest.fixture
def served(tmp_path):
    yield from running_server(tmp_path / "agent")


UNREACHABLE = (
    "\n\t\tCould not reach security agent: {}\n"
    "\t\tMake sure the agent is running before requesting the status.\n"
    "\t\tContact support if you continue having issues.\n"
)


def run_cli(served, *argv, port=None):
    command = {c.name: c for c in commands()}[argv[0]]
    parser = argparse.ArgumentParser()
    if command.configure is not None:
        command.configure(parser)
    args = parser.parse_args(list(argv[1:]))
    options = AgentOptions(cfgpaths=[str(served.dir / "security-agent.yaml")])
    ctx = CliContext(options=options, stdout=io.StringIO(), stderr=io.StringIO())
    ctx._agent = build_agent(
        options,
        FakeReactor(),
        entry_points=lambda: [entry_point("ipc_api", plugins.ipc_api)],
        env={"DD_SECURITY_AGENT_CMD_PORT": str(port or served.port)},
    )
    code = command.run(ctx, args)
    return code, ctx.stdout.getvalue(), ctx.stderr.getvalue()


def test_status_text_json_pretty_and_file(served, tmp_path):
    code, out, err = run_cli(served, "status")
    assert (code, err) == (0, "")
    assert out.startswith("Getting the status from the agent.\n====")
    assert "Command API\n===========\n" in out
    code, out, _ = run_cli(served, "status", "-j")
    first, raw = out.split("\n", 1)
    assert first == "Getting the status from the agent."
    assert json.loads(raw)["sections"]["ipcApi"]["data"]["port"] == served.port
    assert "\n  " not in raw
    code, out, _ = run_cli(served, "status", "-p")
    assert '\n  "header": {\n' in out
    target = tmp_path / "status.json"
    code, out, _ = run_cli(served, "status", "-j", "-o", str(target))
    assert (code, out) == (0, "Getting the status from the agent.\n")
    assert json.loads(target.read_text())["header"]["version"] == "0.1.0"
    assert oct(target.stat().st_mode & 0o777) == "0o644"


def test_health_hostname_workload_list(served):
    code, out, _ = run_cli(served, "health")
    assert out.startswith("Agent health: ")
    assert "healthy components ===" in out
    assert code == (0 if out.startswith("Agent health: PASS") else 1)
    assert run_cli(served, "hostname") == (0, socket.gethostname() + "\n", "")
    code, out, _ = run_cli(served, "workload-list", "-v")
    assert code == 0
    assert json.loads(out)["entities"]["process"]["infos"]["1"]["cmdline"] == ["/sbin/init"]
    code, out, _ = run_cli(served, "workload-list")
    assert "cmdline" not in json.loads(out)["entities"]["process"]["infos"]["1"]


def test_config_commands(served):
    code, out, _ = run_cli(served, "config")
    assert code == 0
    assert 'api_key: "********"\n' in out
    code, out, _ = run_cli(served, "config", "by-source")
    assert out.startswith("agent-runtime: {}\n")
    assert run_cli(served, "config", "list-runtime") == (
        0,
        "=== Settings that can be changed at runtime ===\n"
        "log_level                      Set/get the log level, valid values are: trace, "
        "debug, info, warn, error, critical and off\n",
        "",
    )
    assert run_cli(served, "config", "get", "log_level") == (0, "log_level is set to: info\n", "")
    assert run_cli(served, "config", "set", "log_level", "debug") == (
        0,
        "Configuration setting log_level is now set to: debug\n",
        "",
    )
    assert run_cli(served, "config", "get", "log_level") == (0, "log_level is set to: debug\n", "")
    assert run_cli(served, "config", "get", "nope") == (1, "", "setting nope not found\n")
    assert run_cli(served, "config", "get") == (1, "", "a single setting name must be specified\n")
    assert run_cli(served, "config", "set", "log_level") == (
        1,
        "",
        "exactly two parameters are required: the setting name and its value\n",
    )


def test_flare_from_the_agent_then_locally(served, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("n\n"))
    path = served.dir / "flare-agent.zip"
    assert run_cli(served, "flare", "1234") == (
        0,
        "Asking the Security Agent to build the flare archive.\n"
        f"{path} is going to be uploaded to Datadog\n"
        "Are you sure you want to upload a flare? [y/N]\n"
        f"Aborting. (You can still use {path})\n",
        "",
    )
    (served.dir / "flare-fails").touch()
    local = types.ModuleType("plugins.flare")
    local.create_archive = lambda agent, local=False: served.dir / f"local-{local}.zip"
    sent = []
    local.send_flare = lambda agent, p, case, email: sent.append((p, case, email)) or "sent!"
    monkeypatch.setitem(sys.modules, "plugins.flare", local)
    code, out, err = run_cli(served, "flare", "99", "-s", "-e", "a@b.c")
    assert (code, err) == (0, "")
    assert out == (
        "Asking the Security Agent to build the flare archive.\n"
        "The agent ran into an error while making the flare: disk full\n"
        "Initiating flare locally, some logs will be missing.\n"
        f"{served.dir / 'local-True.zip'} is going to be uploaded to Datadog\n"
        "sent!\n"
    )
    assert sent == [(served.dir / "local-True.zip", "99", "a@b.c")]


def test_wrong_token_is_reported(served):
    (served.dir / "auth_token").write_text("f" * 64)
    code, out, err = run_cli(served, "hostname")
    assert (code, out, err) == (1, "", UNREACHABLE.format("invalid session token"))


@pytest.mark.parametrize(
    "argv", [("status",), ("health",), ("hostname",), ("config",), ("stop",), ("workload-list",)]
)
def test_no_agent_running(served, argv):
    port = served.port
    stop_process(served.proc)
    code, out, err = run_cli(served, *argv, port=port)
    assert code == 1
    assert out == ("Getting the status from the agent.\n" if argv == ("status",) else "")
    assert err == UNREACHABLE.format(f"connection refused on https://127.0.0.1:{port}")


def test_flare_with_no_agent_builds_locally(served, monkeypatch):
    port = served.port
    stop_process(served.proc)
    local = types.ModuleType("plugins.flare")
    local.create_archive = lambda agent, local=False: served.dir / "local.zip"
    monkeypatch.setitem(sys.modules, "plugins.flare", local)
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n"))
    code, out, err = run_cli(served, "flare", port=port)
    assert (code, err) == (0, "")
    assert out == (
        "Asking the Security Agent to build the flare archive.\n"
        "The agent was unable to make a full flare: "
        f"connection refused on https://127.0.0.1:{port}.\n"
        "Initiating flare locally, some logs will be missing.\n"
        f"{served.dir / 'local.zip'} is going to be uploaded to Datadog\n"
        "Are you sure you want to upload a flare? [y/N]\n"
        f"Aborting. (You can still use {served.dir / 'local.zip'})\n"
    )


def test_stop_command_stops_the_agent(served):
    assert run_cli(served, "stop") == (0, "Security agent stopping\n", "")
    assert served.proc.wait(timeout=20) == 0
