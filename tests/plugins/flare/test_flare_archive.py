"""create_archive against a real Agent built from fake entry points, real files and a real zip."""

from __future__ import annotations

import json
import os
import stat
import zipfile
from pathlib import Path

import pytest
from support import FakeReactor, entry_point, make_agent, plugin_module

from plugins.flare import ARCHIVE_MODE, archive_stem, create_archive

API = "aaaabbbbccccddddeeeeffff00001111"
ENV_API = "0123456789abcdef0123456789abcdef"
TOKEN = "9f3c" * 16  # a 64-hex IPC token, as the ipc_api plugin writes it
PEM_BODY = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj"
WHEN = 1763962245  # 2025-11-24T05:30:45Z
STEM = "security-agent-flare-flare-host-20251124T053045Z"


def _schema(schema):
    schema.declare("runtime_security_config.policies.dir", "", path=True)
    schema.declare("compliance_config.dir", "", path=True)


def _flare(agent, flare):
    flare.add_file("demo/notes.txt", f"connected with Authorization: Bearer {TOKEN}\n")


def _broken_flare(agent, flare):
    raise OSError("no such device")


@pytest.fixture
def layout(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    log = logs / "security-agent.log"
    log.write_text(f"INFO | started\nDEBUG | GET /agent/status Authorization: Bearer {TOKEN}\n")
    (logs / "security-agent.log.1").write_text(f"INFO | old line with api_key={API}\n")
    (logs / "security-agent.log.2").mkdir()  # a rotation that cannot be read
    os.mkfifo(logs / "security-agent.log.3")  # opening it must not block the flare

    policies = tmp_path / "policies"
    (policies / "sub").mkdir(parents=True)
    (policies / "default.policy").write_text(
        'rules:\n  - id: exec\n    expression: exec.file.path == "/bin/sh"\n'
    )
    (policies / "sub" / "extra.policy").write_text("password: policy-secret\n")
    outside = tmp_path / "outside.policy"
    outside.write_text("outside: should not be copied\n")
    (policies / "linked.policy").symlink_to(outside)
    (policies / "linked-dir").symlink_to(tmp_path / "logs", target_is_directory=True)

    sysprobe = tmp_path / "system-probe.yaml"
    sysprobe.write_text(f"runtime_security_config:\n  policies:\n    dir: {policies}\n")

    config = (
        "hostname: flare-host\n"
        f"api_key: {API}\n"
        "proxy:\n  https: http://bob:hunter2@proxy.corp:3128\n"
        "security_agent:\n"
        f"  log_file: {log}\n"
        "compliance_config:\n"
        f"  dir: {tmp_path / 'missing-benchmarks'}\n"
        "tls_key: |\n"
        "  -----BEGIN PRIVATE KEY-----\n"
        f"  {PEM_BODY}\n"
        "  -----END PRIVATE KEY-----\n"
    )
    return {"config": config, "sysprobe": sysprobe, "log": log, "policies": policies}


def _agent(tmp_path, layout):
    reactor = FakeReactor()
    reactor.advance(WHEN)
    agent = make_agent(
        reactor,
        [
            entry_point(
                "demo",
                plugin_module(
                    "demo", security_agent_config_schema=_schema, security_agent_flare=_flare
                ),
                version="4.5.6",
            ),
            entry_point("zz", plugin_module("zz", security_agent_flare=_broken_flare)),
        ],
        layout["config"],
        tmp_path=tmp_path,
        sysprobe_config=str(layout["sysprobe"]),
    )
    agent.publish("demo.events", lambda: {"received": 3})
    agent.publish("demo.broken", lambda: 1 / 0)
    return agent


def _read(path):
    with zipfile.ZipFile(path) as zf:
        return {info.filename: (zf.read(info), info) for info in zf.infolist()}


def test_archive_contents_modes_and_scrubbing(tmp_path, layout, monkeypatch):
    monkeypatch.setenv("DD_API_KEY", ENV_API)
    monkeypatch.setenv("DD_SITE", "datadoghq.eu")
    monkeypatch.setenv("DD_PROXY_HTTPS", "http://alice:s3cret@proxy:3128")
    agent = _agent(tmp_path, layout)

    path = create_archive(agent)

    assert path == tmp_path / "run" / "flares" / f"{STEM}.zip"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    entries = _read(path)
    names = {name.removeprefix(f"{STEM}/") for name in entries}
    assert all(name.startswith(f"{STEM}/") for name in entries)
    assert {
        "logs/security-agent.log",
        "logs/security-agent.log.1",
        "etc/security-agent.yaml",
        "etc/system-probe.yaml",
        "status.json",
        "status.log",
        "plugins.json",
        "runtime_config_dump.json",
        "health.json",
        "expvar.json",
        "envvars.log",
        "runtime-security.d/default.policy",
        "runtime-security.d/sub/extra.policy",
        "system/uname.log",
        "system/python.log",
        "system/packages.log",
        "demo/notes.txt",
        "flare_errors.log",
    } <= names
    assert "local" not in names
    assert not any("linked" in name for name in names)
    assert not any(name.startswith("compliance.d/") for name in names)
    for _data, info in entries.values():
        assert (info.external_attr >> 16) & 0o777 == ARCHIVE_MODE

    text = {name.removeprefix(f"{STEM}/"): data.decode() for name, (data, _) in entries.items()}
    everything = "\n".join(text.values())
    for secret in (API, ENV_API[:28], TOKEN[:59], "hunter2", "s3cret", PEM_BODY, "policy-secret"):
        assert secret not in everything

    assert text["logs/security-agent.log"] == (
        'INFO | started\nDEBUG | GET /agent/status Authorization: "********"\n'
    )
    assert text["logs/security-agent.log.1"] == (
        "INFO | old line with api_key=" + "*" * 28 + "1111\n"
    )
    assert "api_key: '" + "*" * 28 + "1111'" in text["etc/security-agent.yaml"]
    assert "https: http://bob:********@proxy.corp:3128" in text["etc/security-agent.yaml"]
    assert "tls_key: '********\n" in text["etc/security-agent.yaml"]
    assert f"dir: {layout['policies']}" in text["etc/system-probe.yaml"]
    assert "api_key: '" + "*" * 28 + "1111'" in text["config_effective.yaml"]
    assert "hostname: flare-host\n" in text["config_effective.yaml"]
    assert (
        text["envvars.log"]
        == (
            "Found the following environment variables:\n"
            "  - DD_API_KEY=" + "*" * 28 + "cdef\n"
            "  - DD_PROXY_HTTPS=http:********@proxy:3128\n"  # the URL rule takes the name too
            "  - DD_SITE=datadoghq.eu\n"
        )
    )
    assert text["runtime-security.d/sub/extra.policy"] == 'password: "********"\n'
    policy = (layout["policies"] / "default.policy").read_text()
    assert text["runtime-security.d/default.policy"] == policy  # nothing secret: unchanged
    assert text["demo/notes.txt"] == 'connected with Authorization: "********"\n'

    assert json.loads(text["expvar.json"]) == {
        "demo.broken": "<error: division by zero>",
        "demo.events": {"received": 3},
    }
    assert json.loads(text["health.json"]) == {"Healthy": [], "Unhealthy": []}
    plugins = {p["name"]: p for p in json.loads(text["plugins.json"])}
    assert plugins["demo"]["version"] == "4.5.6"
    assert "flare-host" in text["status.json"]
    assert "flare-host" in text["status.log"]

    logs = layout["log"]
    assert text["flare_errors.log"].splitlines() == [
        "zz: OSError: no such device",
        f"logs/security-agent.log.2: cannot read {logs}.2: Is a directory",
        f"logs/security-agent.log.3: cannot read {logs}.3: not a regular file",
        "expvar.json: variable demo.broken: ZeroDivisionError: division by zero",
        f"runtime-security.d: skipped symlink {layout['policies']}/linked-dir",
        f"runtime-security.d: skipped symlink {layout['policies']}/linked.policy",
        f"compliance.d: compliance_config.dir {tmp_path / 'missing-benchmarks'} is not a directory",
    ]


def test_local_flare_has_the_marker_and_goes_to_out_dir(tmp_path, layout):
    agent = _agent(tmp_path, layout)
    out = tmp_path / "out" / "flares"

    path = create_archive(agent, local=True, out_dir=out)

    assert path == out / f"{STEM}.zip"
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    entries = _read(path)
    assert entries[f"{STEM}/local"][0] == b""


def test_two_flares_in_the_same_second_do_not_overwrite(tmp_path, layout):
    agent = _agent(tmp_path, layout)
    first = create_archive(agent, out_dir=tmp_path)
    second = create_archive(agent, out_dir=tmp_path)
    assert first.name == f"{STEM}.zip"
    assert second.name == f"{STEM}-2.zip"
    assert all(name.startswith(f"{STEM}-2/") for name in _read(second))


def test_unreadable_config_file_is_listed_not_fatal(tmp_path, layout):
    agent = _agent(tmp_path, layout)
    agent.config.files.append(str(tmp_path / "security-agent.yaml" / "not-a-dir.yaml"))
    entries = _read(create_archive(agent, out_dir=tmp_path))
    errors = entries[f"{STEM}/flare_errors.log"][0].decode().splitlines()
    bad = tmp_path / "security-agent.yaml" / "not-a-dir.yaml"
    assert f"etc/not-a-dir.yaml: cannot read {bad}: Not a directory" in errors
    assert f"{STEM}/etc/security-agent.yaml" in entries


def test_broken_status_does_not_cost_the_rest(tmp_path, layout, monkeypatch):
    agent = _agent(tmp_path, layout)

    def boom(agent):
        raise RuntimeError("status exploded")

    monkeypatch.setattr("host.flare_files.collect_flare_files", boom)
    entries = _read(create_archive(agent, out_dir=tmp_path))
    errors = entries[f"{STEM}/flare_errors.log"][0].decode().splitlines()
    assert errors[0] == "status and plugin files: RuntimeError: status exploded"
    assert f"{STEM}/logs/security-agent.log" in entries
    assert f"{STEM}/status.json" not in entries


def test_archive_stem_sanitizes_the_hostname():
    assert archive_stem("web/01 x", 0) == "security-agent-flare-web_01_x-19700101T000000Z"
    assert archive_stem("", WHEN) == "security-agent-flare-unknown-20251124T053045Z"


def test_an_archive_that_cannot_be_written_raises(tmp_path, layout):
    # The only failure create_archive reports by raising: there is no archive to list it in.
    agent = _agent(tmp_path, layout)
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(NotADirectoryError):
        create_archive(agent, out_dir=Path(blocker) / "sub")


def test_a_failed_write_leaves_no_partial_archive(tmp_path, layout, monkeypatch):
    agent = _agent(tmp_path, layout)
    out = tmp_path / "out"

    def failing_scrub(scrubber, name, data):
        raise MemoryError("out of memory")

    monkeypatch.setattr("plugins.flare.archive._scrub", failing_scrub)
    with pytest.raises(MemoryError):
        create_archive(agent, out_dir=out)
    assert list(out.iterdir()) == []


def test_missing_log_file_is_listed_unless_file_logging_is_disabled(tmp_path):
    missing = tmp_path / "nowhere" / "security-agent.log"
    agent = make_agent(
        FakeReactor(), [], f"security_agent:\n  log_file: {missing}\n", tmp_path=tmp_path
    )
    entries = _read(create_archive(agent, out_dir=tmp_path / "a"))
    (name,) = [n for n in entries if n.endswith("/flare_errors.log")]
    assert (
        f"logs/security-agent.log: cannot read {missing}: No such file or directory"
        in entries[name][0].decode().splitlines()
    )

    quiet = make_agent(
        FakeReactor(),
        [],
        f"disable_file_logging: true\nsecurity_agent:\n  log_file: {missing}\n",
        tmp_path=tmp_path,
    )
    entries = _read(create_archive(quiet, out_dir=tmp_path / "b"))
    (name,) = [n for n in entries if n.endswith("/flare_errors.log")]
    assert "logs/" not in entries[name][0].decode()
    assert not any("/logs/" in n for n in entries)
