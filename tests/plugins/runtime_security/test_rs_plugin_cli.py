"""`security-agent runtime policy check|eval` run locally, with exact output and exit codes."""

from __future__ import annotations

import argparse
import io
import json

import pytest
from support import FakeReactor, entry_point, make_agent

import plugins.ipc_api
import plugins.runtime_security
from host.bootstrap import AgentOptions
from host.cli_context import CliContext
from plugins.runtime_security import cli


def run_cli(tmp_path, *argv, config=""):
    parser = argparse.ArgumentParser(prog="runtime")
    cli.configure(parser)
    args = parser.parse_args(argv)
    # ipc_api declares the command API's settings the reload/self-test client reads
    plugins_ = [entry_point("runtime_security", plugins.runtime_security),
                entry_point("ipc_api", plugins.ipc_api)]  # fmt: skip
    agent = make_agent(FakeReactor(), plugins_, config, tmp_path=tmp_path)
    out, err = io.StringIO(), io.StringIO()
    ctx = CliContext(options=AgentOptions(), stdout=out, stderr=err, _agent=agent)
    code = cli.run(ctx, args)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def policies(tmp_path):
    d = tmp_path / "policies"
    d.mkdir()
    (d / "default.policy").write_text(
        "version: 1.2.3\n"
        "rules:\n"
        "  - id: shadow\n"
        '    expression: open.file.path == "/etc/shadow" && process.comm != "vipw"\n'
        '  - id: broken\n    expression: open.flags == "x"\n'
        "  - id: later\n    agent_version: '>= 99'\n    expression: exec.file.name == \"a\"\n"
    )
    return d


def test_policy_check_text_lists_each_rule_and_fails_on_errors(tmp_path, policies):
    code, out, _ = run_cli(tmp_path, "policy", "check", "--policies-dir", str(policies))
    assert code == 1
    assert out == (
        "Policy default.policy (file, version 1.2.3)\n"
        "  - shadow: loaded\n"
        "  - broken: error (rule broken, line 1, column 15: expected an int value after '==' to "
        "compare with int field 'open.flags', got string \"x\")\n"
        "  - later: filtered (agent_version >= 99 does not match 0.1.0)\n"
        "Rules: 1 loaded, 1 in error, 0 disabled, 1 filtered\n"
    )


def test_policy_check_json_reads_the_configured_dir(tmp_path, policies):
    config = f"runtime_security_config:\n  policies:\n    dir: {policies}\n"
    code, out, _ = run_cli(tmp_path, "policy", "check", "--json", config=config)
    report = json.loads(out)
    assert code == 1
    assert report["summary"] == {"loaded": 1, "error": 1, "disabled": 0, "filtered": 1}
    assert report["policies"][0]["rules"][0] == {"id": "shadow", "policy": "default.policy",
                                                 "status": "loaded"}  # fmt: skip


def test_the_shipped_policy_checks_clean(tmp_path):
    code, out, _ = run_cli(tmp_path, "policy", "check", "--policies-dir", str(tmp_path / "none"))
    assert code == 0
    assert out.startswith("Policy default.policy (built-in, version 1.0.0)\n")
    assert out.endswith(" loaded, 0 in error, 0 disabled, 0 filtered\n")
    assert ": error" not in out


def test_policy_eval_with_datadogs_flat_event_format(tmp_path, policies):
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"type": "open", "values": {
        "open.file.path": "/etc/shadow", "process.comm": "cat", "process.ancestors.comm": ["bash"],
        "process.parent.pid": 10.0}}))  # fmt: skip
    code, out, _ = run_cli(tmp_path, "policy", "eval", "--policies-dir", str(policies),
                           "--rule-id", "shadow", "--event-file", str(event))  # fmt: skip
    assert code == 0
    assert out == json.dumps({
        "Succeeded": True,
        "Approvers": {"open.file.path": [{"kind": "exact", "value": "/etc/shadow"}]},
        "Event": {"type": "open", "open": {"file": {"path": "/etc/shadow"}},
                  "process": {"comm": "cat", "ancestors": [{"comm": "bash", "pid": 10}]}},
        "Error": "",
    }, indent=4) + "\n"  # fmt: skip


def test_policy_eval_fails_with_exit_minus_one(tmp_path, policies):
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"type": "open", "values": {"open.file.path": "/etc/shadow",
                                                            "process.comm": "vipw"}}))  # fmt: skip
    code, out, _ = run_cli(tmp_path, "policy", "eval", "--policies-dir", str(policies),
                           "--rule-id", "shadow", "--event-file", str(event))  # fmt: skip
    assert (code, json.loads(out)["Succeeded"], json.loads(out)["Error"]) == (-1, False, "")
    code, out, _ = run_cli(tmp_path, "policy", "eval", "--policies-dir", str(policies),
                           "--rule-id", "nope", "--event-file", str(event))  # fmt: skip
    assert (code, json.loads(out)["Error"]) == (-1, "rule nope not found")
    event.write_text('{"type": "open", "values": {"open.file.nope": 1}}')
    code, out, _ = run_cli(tmp_path, "policy", "eval", "--policies-dir", str(policies),
                           "--rule-id", "shadow", "--event-file", str(event))  # fmt: skip
    assert (code, json.loads(out)["Error"]) == (-1, f"{event}: unknown field 'open.file.nope'")


def test_reload_without_a_running_agent_says_why(tmp_path):
    code, _out, err = run_cli(tmp_path, "policy", "reload")
    assert code == 1
    assert err.startswith("unable to reload policies: ")
    assert err.endswith(": cannot read the auth token: No such file or directory\n")
