"""Input resolvers against real files, processes, package databases and a Docker-API socket."""

from __future__ import annotations

import os
import sqlite3
import struct
import subprocess
import sys
from typing import Any, ClassVar

import pytest
from compliance_test_support import JSONHandler, UnixHTTPServer, serving

from plugins.compliance.benchmark import RuleInput, load_benchmark
from plugins.compliance.checker import Checker
from plugins.compliance.environment import HostEnv, parse_os_release
from plugins.compliance.packages import parse_rpm_header, read_apk, read_dpkg, read_rpm_sqlite
from plugins.compliance.rego_eval import Finding
from plugins.compliance.resolvers import IncompatibleEnvironment, ResolveError, Resolver


def env_for(tmp_path, **kw):
    return HostEnv(hostname="h", host_root=str(tmp_path), **kw)


def inp(input_kind, array=False, tag=None, **spec):
    return RuleInput(kind=input_kind, spec=spec, tag=tag or input_kind, array=array)


def test_compliance_file_parsers_and_metadata(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text(
        "root:x:0:0::/root:/bin/sh\nsvc:x:1234:1234::/:/bin/false\n"
    )
    (tmp_path / "etc" / "group").write_text("root:x:0:\nsvc:x:1234:\n")
    cfg = tmp_path / "etc" / "daemon.json"
    cfg.write_text('{"icc": false, "log-level": "info"}')
    os.chown(cfg, 1234, 1234)
    os.chmod(cfg, 0o640)
    (tmp_path / "etc" / "conf.yaml").write_text("a: [1, 2]\n")
    r = Resolver(env_for(tmp_path))
    assert r.file(inp("file", path="/etc/daemon.json", parser="json")) == {
        "path": "/etc/daemon.json",
        "permissions": 0o640,
        "user": "svc",
        "group": "svc",
        "uid": 1234,
        "gid": 1234,
        "type": "file",
        "content": {"icc": False, "log-level": "info"},
    }
    assert r.file(inp("file", path="/etc/conf.yaml", parser="yaml"))["content"] == {"a": [1, 2]}
    assert r.file(inp("file", path="/etc/missing")) is None
    assert [f["path"] for f in r.file(inp("file", array=True, glob="/etc/*.json"))] == [
        "/etc/daemon.json"
    ]
    (tmp_path / "etc" / "broken.json").write_text("{nope")
    with pytest.raises(ResolveError) as info:
        r.file(inp("file", path="/etc/broken.json", parser="json"))
    assert str(info.value).startswith(
        "cannot parse /etc/broken.json as json: Expecting property name"
    )


def test_compliance_group_input(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "group").write_text("docker:x:999:alice,bob\n")
    r = Resolver(env_for(tmp_path))
    assert r.group(inp("group", name="docker")) == {
        "name": "docker",
        "id": 999,
        "users": ["alice", "bob"],
    }
    assert r.group(inp("group", name="nope")) is None


@pytest.fixture
def fake_dockerd(tmp_path):
    """A process named dockerd with TLS flags (a renamed Python interpreter)."""
    exe = tmp_path / "dockerd"
    os.symlink(sys.executable, exe)
    key = tmp_path / "key.pem"
    key.write_text("secret")
    os.chmod(key, 0o400)
    proc = subprocess.Popen(
        [
            str(exe),
            "-c",
            "import time; time.sleep(60)",
            "--tlskey",
            str(key),
            "--icc=false",
            "--debug",
        ],
        env={"DOCKER_OPTS": "--tls", "OTHER": "x"},
    )
    yield proc, key
    proc.kill()
    proc.wait()


def test_compliance_process_input_and_path_expression(tmp_path, fake_dockerd):
    proc, key = fake_dockerd
    import time

    r = Resolver(HostEnv(hostname="h"))
    for _ in range(100):  # the child may not have exec'd yet
        r._processes = None
        found = r.process(inp("process", name="dockerd", envs=["DOCKER_OPTS", "MISSING"]))
        if found and found["cmdLine"][-1] == "--debug":
            break
        time.sleep(0.02)
    assert found["pid"] == proc.pid
    assert found["flags"] == {
        "-c": "import time; time.sleep(60)",
        "--tlskey": str(key),
        "--icc": "false",
        "--debug": "",
    }
    assert found["envs"] == {"DOCKER_OPTS": "--tls"}
    got = r.file(inp("file", path='process.flag("dockerd", "--tlskey")'))
    assert (got["path"], got["permissions"]) == (str(key), 0o400)
    assert r.file(inp("file", path='process.flag("dockerd", "--tlscert")')) is None


def rpm_header(tags):
    index, data = b"", b""
    for tag, value in tags:
        if isinstance(value, str):
            index += struct.pack(">IIiI", tag, 6, len(data), 1)
            data += value.encode() + b"\0"
        else:
            while len(data) % 4:
                data += b"\0"
            index += struct.pack(">IIiI", tag, 4, len(data), 1)
            data += struct.pack(">i", value)
    return struct.pack(">II", len(tags), len(data)) + index + data


def test_compliance_package_databases(tmp_path):
    dpkg = tmp_path / "var/lib/dpkg/status"
    dpkg.parent.mkdir(parents=True)
    dpkg.write_text(
        "Package: telnet\nStatus: install ok installed\nVersion: 0.17-44\nArchitecture: amd64\n"
        "Description: client\n multi-line: continued\n\n"
        "Package: gone\nStatus: deinstall ok config-files\nVersion: 1\n"
    )
    assert [p.as_dict() for p in read_dpkg(str(dpkg))] == [
        {"name": "telnet", "version": "0.17-44", "arch": "amd64"}
    ]
    apk = tmp_path / "lib/apk/db/installed"
    apk.parent.mkdir(parents=True)
    apk.write_text("C:Q1abc=\nP:musl\nV:1.2.4-r2\nA:x86_64\n\nP:busybox\nV:1.36.1-r5\nA:x86_64\n")
    assert [p.name for p in read_apk(str(apk))] == ["musl", "busybox"]
    rpmdb = tmp_path / "var/lib/rpm/rpmdb.sqlite"
    rpmdb.parent.mkdir(parents=True)
    conn = sqlite3.connect(rpmdb)
    conn.execute("CREATE TABLE Packages (hnum INTEGER PRIMARY KEY, blob BLOB)")
    blob = rpm_header(
        [(1000, "openssh-server"), (1003, 1), (1001, "8.7p1"), (1002, "34.el9"), (1022, "x86_64")]
    )
    conn.execute("INSERT INTO Packages (blob) VALUES (?)", (blob,))
    conn.commit()
    conn.close()
    assert parse_rpm_header(blob)[1000] == "openssh-server"
    assert [p.as_dict() for p in read_rpm_sqlite(str(rpmdb))] == [
        {"name": "openssh-server", "version": "1:8.7p1-34.el9", "arch": "x86_64"}
    ]
    r = Resolver(env_for(tmp_path))
    assert r.package(inp("package", names=["nope", "telnet"])) == {
        "name": "telnet",
        "version": "0.17-44",
        "arch": "amd64",
    }
    assert [
        p["name"]
        for p in r.package(inp("package", array=True, names=["musl", "openssh-server", "x"]))
    ] == [
        "musl",
        "openssh-server",
    ]


class DockerAPI(JSONHandler):
    routes: ClassVar[dict[str, Any]] = {
        "/networks": [
            {
                "Id": "n1",
                "Name": "bridge",
                "Options": {"com.docker.network.bridge.enable_icc": "true"},
            },
            {"Id": "n2", "Name": "host", "Options": {}},
        ],
        "/info": {"ID": "D1", "SecurityOptions": ["name=seccomp"]},
    }

    def do_GET(self):
        self.reply_from(self.routes)


@pytest.fixture
def docker_socket(tmp_path):
    sock = tmp_path / "var/run/docker.sock"
    sock.parent.mkdir(parents=True)
    with serving(UnixHTTPServer(str(sock), DockerAPI)):
        yield sock


ICC_BENCH = """\
name: Docker
framework: cis-docker
version: 1.2.0
rules:
  - id: cis-docker-1.2.0-2.1
    scope: [docker]
    input:
      - docker: {kind: network}
        type: array
"""
ICC_REGO = """package datadog

import data.datadog as dd

compliant(network) {
\tnetwork.inspect.Name == "bridge"
\tnot network.inspect.Options["com.docker.network.bridge.enable_icc"] == "true"
}

findings[f] {
\tnetwork := input.docker[_]
\tnetwork.inspect.Name == "bridge"
\tcompliant(network)
\tf := dd.passed_finding("docker_network", network.id, {})
}

findings[f] {
\tnetwork := input.docker[_]
\tnetwork.inspect.Name == "bridge"
\tnot compliant(network)
\tf := dd.failing_finding("docker_network", network.id, {"name": network.inspect.Name})
}
"""


def test_compliance_docker_network_icc_rule(tmp_path, docker_socket):
    d = tmp_path / "bench"
    d.mkdir()
    (d / "docker.yaml").write_text(ICC_BENCH)
    (d / "cis-docker-1.2.0-2.1.rego").write_text(ICC_REGO)
    bench = load_benchmark(str(d / "docker.yaml"))
    checker = Checker(env_for(tmp_path), "7", 60)
    assert checker.findings(bench, bench.rules[0]) == [
        Finding("failed", "docker_network", "n1", {"name": "bridge"})
    ]
    assert Resolver(env_for(tmp_path)).docker(inp("docker", array=True, kind="info")) == [
        {"id": "D1", "inspect": {"ID": "D1", "SecurityOptions": ["name=seccomp"]}}
    ]
    os.unlink(docker_socket)
    assert checker.findings(bench, bench.rules[0]) == [
        Finding(
            "skipped",
            "host",
            "h",
            {"error": "no Docker daemon: /var/run/docker.sock does not exist"},
        )
    ]


def test_compliance_kube_apiserver_skipped_outside_kubernetes(tmp_path):
    with pytest.raises(IncompatibleEnvironment) as info:
        Resolver(env_for(tmp_path)).kube_apiserver(inp("kubeApiserver", array=True, kind="pods"))
    assert str(info.value) == "not running on Kubernetes"


def test_compliance_os_release_parsing():
    text = '# comment\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n'
    assert parse_os_release(text) == {
        "pretty_name": "Debian GNU/Linux 12 (bookworm)",
        "id": "debian",
        "version_id": "12",
    }


def test_compliance_process_long_names_are_not_truncated(tmp_path):
    exe = tmp_path / "kube-controller-manager"
    os.symlink(sys.executable, exe)
    proc = subprocess.Popen([str(exe), "-c", "import time; time.sleep(60)", "--bind-address=0"])
    try:
        import time

        r = Resolver(HostEnv(hostname="h"))
        found = None
        for _ in range(100):
            r._processes = None
            found = r.process(inp("process", name="kube-controller-manager"))
            if found and found["flags"].get("--bind-address") == "0":
                break
            time.sleep(0.02)
        assert found["pid"] == proc.pid
    finally:
        proc.kill()
        proc.wait()
