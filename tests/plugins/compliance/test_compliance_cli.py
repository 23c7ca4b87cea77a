"""`security-agent compliance check|list` through the real command line entry point."""

from __future__ import annotations

import json
import os

from support import entry_point

import plugins.compliance
from host import cli

BENCH = """\
name: CLI benchmark
framework: cli-fw
version: 0.1.0
rules:
  - id: cli-pass
    description: a passing rule
    input:
      - file: {path: /etc/hostname, parser: raw}
  - id: cli-skip
    description: needs docker
    input:
      - docker: {kind: network}
        type: array
    imports: [common.rego]
"""
REGO = """package datadog
import data.datadog as dd
findings contains dd.passed_finding("file", input.file.path, {"content": input.file.content})
"""


def setup(tmp_path, monkeypatch, bench=BENCH):
    d = tmp_path / "compliance.d"
    d.mkdir()
    (d / "cli-fw.yaml").write_text(bench)
    (d / "cli-pass.rego").write_text(REGO)
    (d / "common.rego").write_text(REGO)
    host = tmp_path / "host"
    (host / "etc").mkdir(parents=True)
    (host / "etc" / "hostname").write_text("box\n")
    cfg = tmp_path / "security-agent.yaml"
    cfg.write_text(
        f"run_path: {tmp_path}/run\nhostname: cli-host\ncompliance_config:\n  dir: {d}\n"
        f"  builtin_benchmarks: false\n  host_root: {host}\n"
    )
    monkeypatch.setattr(
        "host.discovery.installed_entry_points",
        lambda: [entry_point("compliance", plugins.compliance)],
    )
    return str(cfg), d


def test_compliance_cli_check_prints_events(tmp_path, monkeypatch, capsys):
    cfg, _d = setup(tmp_path, monkeypatch)
    dump = tmp_path / "reports.json"
    assert cli.main(["compliance", "check", "-c", cfg, "--dump-reports", str(dump)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    events = [json.loads(chunk) for chunk in out.replace("}\n{", "}\n\x00{").split("\x00")]
    assert [(e["agent_rule_id"], e["result"]) for e in events] == [
        ("cli-pass", "passed"),
        ("cli-skip", "skipped"),
    ]
    assert out.startswith('{\n\t"agent_version": ')
    assert events[0]["data"] == {"content": "box\n"}
    assert events[1]["data"] == {"error": "no Docker daemon: /var/run/docker.sock does not exist"}
    reports = json.loads(dump.read_text())
    assert list(reports) == ["cli-pass"]  # skipped events are left out of reports
    assert oct(os.stat(dump).st_mode & 0o777) == "0o644"


def test_compliance_cli_check_one_rule(tmp_path, monkeypatch, capsys):
    cfg, _d = setup(tmp_path, monkeypatch)
    assert cli.main(["compliance", "check", "cli-skip", "-c", cfg, "--verbose"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["agent_rule_id"] == "cli-skip"
    assert err == f"Running rule cli-skip of cli-fw ({tmp_path}/compliance.d/cli-fw.yaml)\n"


def test_compliance_cli_unknown_framework(tmp_path, monkeypatch, capsys):
    cfg, d = setup(tmp_path, monkeypatch)
    assert cli.main(["compliance", "check", "--framework", "nope", "-c", cfg]) == 1
    assert capsys.readouterr().err == f'could not find any benchmark in "{d}/nope.yaml"\n'


def test_compliance_cli_bad_benchmark_file(tmp_path, monkeypatch, capsys):
    cfg, d = setup(tmp_path, monkeypatch)
    bad = d / "broken.yaml"
    bad.write_text("framework: x\nrules: []\n")
    assert cli.main(["compliance", "check", "--file", str(bad), "-c", cfg]) == 1
    assert capsys.readouterr().err == (
        f'could not load benchmark files "{bad}": {bad}: bad benchmark: empty rule set\n'
    )


def test_compliance_cli_list(tmp_path, monkeypatch, capsys):
    cfg, d = setup(tmp_path, monkeypatch)
    assert cli.main(["compliance", "list", "-c", cfg]) == 0
    assert capsys.readouterr().out == (
        f"cli-fw 0.1.0 (CLI benchmark): {d}/cli-fw.yaml\n"
        "  cli-pass [rego] a passing rule\n"
        "  cli-skip [rego] needs docker\n"
    )


def test_compliance_cli_unknown_rule(tmp_path, monkeypatch, capsys):
    cfg, _d = setup(tmp_path, monkeypatch)
    assert cli.main(["compliance", "check", "nosuch", "-c", cfg]) == 1
    assert capsys.readouterr().err == "could not find rule nosuch in the loaded benchmarks\n"


def test_compliance_cli_report_sends_non_skipped_to_sinks(tmp_path, monkeypatch, capsys):
    from support import plugin_module

    cfg, _d = setup(tmp_path, monkeypatch)
    received = []

    class Sink:
        name = "cli-sink"
        tracks = frozenset({"compliance"})

        def send(self, event):
            received.append(event.payload)

        def stats(self):
            return {}

    sinks = plugin_module("clisink", security_agent_event_sinks=lambda agent: [Sink()])
    monkeypatch.setattr(
        "host.discovery.installed_entry_points",
        lambda: [entry_point("compliance", plugins.compliance), entry_point("clisink", sinks)],
    )
    assert cli.main(["compliance", "check", "--report", "-c", cfg]) == 0
    capsys.readouterr()
    assert [(e["agent_rule_id"], e["result"]) for e in received] == [("cli-pass", "passed")]


FILTERED = """\
name: Filtered benchmark
framework: cli-fw
version: 0.1.0
rules:
  - id: cli-debian
    filters: ['os.id == "debian" && os.version_id in ["11", "12"]']
    input:
      - file: {path: /etc/hostname, parser: raw}
    imports: [common.rego]
  - id: cli-ubuntu
    filters: ['os.id == "ubuntu"']
    input:
      - file: {path: /etc/hostname, parser: raw}
    imports: [common.rego]
  - id: cli-broken
    filters: ['os.version_id >= "11"']
    input:
      - file: {path: /etc/hostname, parser: raw}
    imports: [common.rego]
  - id: cli-pass
    input:
      - file: {path: /etc/hostname, parser: raw}
"""


def test_compliance_cli_check_applies_filters_on_host_root_os_release(
    tmp_path, monkeypatch, capsys
):
    cfg, _d = setup(tmp_path, monkeypatch, bench=FILTERED)
    (tmp_path / "host" / "etc" / "os-release").write_text('ID=debian\nVERSION_ID="12"\n')
    assert cli.main(["compliance", "check", "-c", cfg]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    events = [json.loads(chunk) for chunk in out.replace("}\n{", "}\n\x00{").split("\x00")]
    assert [(e["agent_rule_id"], e["result"]) for e in events] == [
        ("cli-debian", "passed"),
        ("cli-broken", "error"),
        ("cli-pass", "passed"),
    ]
    assert events[1]["data"] == {
        "error": "bad filter: rule cli-broken, line 1, column 1: expected an int, duration or "
        "time operand for '>=', got string field 'os.version_id'"
    }


def test_compliance_cli_bad_docker_host_is_one_line(tmp_path, monkeypatch, capsys):
    cfg, _d = setup(tmp_path, monkeypatch)
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:2375")
    assert cli.main(["compliance", "list", "-c", cfg]) == 1
    _out, err = capsys.readouterr()
    assert err.splitlines()[-1] == (
        "DOCKER_HOST (environment): compliance_config.docker_host: "
        "only unix:// sockets are supported, got 'tcp://127.0.0.1:2375'"
    )
