"""Findings of docker-scoped rules carry their container: a fake Docker API on a unix socket."""

from __future__ import annotations

import textwrap

import pytest
from compliance_test_support import (
    JSONHandler,
    UnixHTTPServer,
    agent_with_list_sink,
    serving,
)

from host.lifecycle import AgentService
from plugins.compliance.jitter import benchmark_jitter
from plugins.compliance.resolvers import split_image_reference
from plugins.compliance.service import EVAL_THROTTLING

WEB_ID = "4f1c2a9e" + "a" * 56
DB_ID = "9b0d7e11" + "b" * 56
WEB_IMAGE = "sha256:" + "1" * 64
DB_IMAGE = "sha256:" + "2" * 64

CONTAINERS = [
    {"Id": WEB_ID, "Names": ["/web"], "Image": "registry:5000/team/web:1.4", "ImageID": WEB_IMAGE},
    {"Id": DB_ID, "Names": ["/db"], "Image": "postgres", "ImageID": DB_IMAGE},
]
INSPECT = {
    WEB_ID: {
        "Id": WEB_ID,
        "Name": "/web",
        "Image": WEB_IMAGE,
        "Config": {"Image": "registry:5000/team/web:1.4"},
        "HostConfig": {"Privileged": True},
    },
    DB_ID: {
        "Id": DB_ID,
        "Name": "/db",
        "Image": DB_IMAGE,
        "Config": {"Image": "postgres"},
        "HostConfig": {"Privileged": False},
    },
}


class DockerAPI(JSONHandler):
    def do_GET(self):
        routes = {"/containers/json": CONTAINERS, "/info": {"ID": "D1"}}
        routes.update({f"/containers/{k}/json": v for k, v in INSPECT.items()})
        self.reply_from(routes)


@pytest.fixture
def docker_sock(tmp_path):
    sock = tmp_path / "d.sock"
    with serving(UnixHTTPServer(str(sock), DockerAPI)):
        yield sock


BENCH = """\
name: Docker containers
framework: test-docker
version: 1.0.0
rules:
  - id: test-privileged
    scope: [docker]
    input:
      - docker: {kind: container}
        type: array
  - id: test-host-only
    scope: [none]
    input:
      - docker: {kind: container}
        type: array
    imports: [test-privileged.rego]
"""
PRIVILEGED_REGO = """\
package datadog

import data.datadog as dd

findings contains f if {
\tc := input.docker[_]
\tnot c.inspect.HostConfig.Privileged
\tf := dd.passed_finding("docker_container", c.id, {"name": c.inspect.Name})
}

findings contains f if {
\tc := input.docker[_]
\tc.inspect.HostConfig.Privileged
\tf := dd.failing_finding("docker_container", c.id, {"name": c.inspect.Name})
}
"""


def make(tmp_path, docker_line="", env=None):
    bench_dir = tmp_path / "compliance.d"
    bench_dir.mkdir()
    (bench_dir / "docker.yaml").write_text(BENCH)
    (bench_dir / "test-privileged.rego").write_text(PRIVILEGED_REGO)
    (tmp_path / "host").mkdir()
    config = textwrap.dedent(
        f"""\
        hostname: test-host
        compliance_config:
          enabled: true
          dir: {bench_dir}
          check_interval: 60s
          builtin_benchmarks: false
          host_root: {tmp_path / "host"}
        """
    )
    if docker_line:
        config += f"  {docker_line}\n"
    return agent_with_list_sink(tmp_path, config, env)


def run_pass(agent, reactor):
    service = AgentService(agent, install_signal_handlers=False)
    service.startService()
    job = agent.scheduler.jobs["compliance"]
    reactor.advance(job.next_run - reactor.seconds())
    reactor.advance(benchmark_jitter(0, agent.hostname, "test-docker", 60.0))
    reactor.advance(EVAL_THROTTLING)
    return service


def test_compliance_docker_findings_carry_their_container(tmp_path, docker_sock):
    agent, reactor, sink = make(tmp_path, f"docker_host: unix://{docker_sock}")
    service = run_pass(agent, reactor)
    by_rule = {}
    for event in sink.events:
        p = event.payload
        by_rule.setdefault(p["agent_rule_id"], []).append(
            (p["result"], p["resource_id"], p["container"], p["data"])
        )
    assert sorted(by_rule["test-privileged"], key=lambda t: t[1]) == [
        (
            "failed",
            WEB_ID,
            {
                "container_id": WEB_ID,
                "image_id": WEB_IMAGE,
                "image_name": "registry:5000/team/web",
                "image_tag": "1.4",
            },
            {"name": "/web"},
        ),
        (
            "passed",
            DB_ID,
            {
                "container_id": DB_ID,
                "image_id": DB_IMAGE,
                "image_name": "postgres",
                "image_tag": "latest",
            },
            {"name": "/db"},
        ),
    ]
    # the same findings from a rule that is not docker-scoped: no container
    assert sorted(by_rule["test-host-only"], key=lambda t: t[1]) == [
        ("failed", WEB_ID, None, {"name": "/web"}),
        ("passed", DB_ID, None, {"name": "/db"}),
    ]
    service.stopService()


def test_compliance_docker_host_from_environment(tmp_path, docker_sock):
    agent, reactor, sink = make(tmp_path, env={"DOCKER_HOST": f"unix://{docker_sock}"})
    assert agent.config.get_str("compliance_config.docker_host") == f"unix://{docker_sock}"
    service = run_pass(agent, reactor)
    containers = [e.payload["container"] for e in sink.events]
    assert sorted(c["container_id"] for c in containers if c) == sorted([WEB_ID, DB_ID])
    service.stopService()


def test_compliance_docker_rule_skipped_without_daemon(tmp_path):
    agent, reactor, sink = make(tmp_path, f"docker_host: unix://{tmp_path}/none.sock")
    service = run_pass(agent, reactor)
    assert sink.events == []
    rules = agent.published["compliance"]()["frameworks"]["test-docker"]["rules"]
    assert rules == {"test-privileged": "skipped", "test-host-only": "skipped"}
    service.stopService()


def test_compliance_docker_host_must_be_a_unix_socket(tmp_path):
    from host.bootstrap import StartupError

    with pytest.raises((StartupError, ValueError)) as info:
        make(tmp_path, "docker_host: tcp://127.0.0.1:2375")
    assert str(info.value) == (
        f"plugin compliance: {tmp_path}/security-agent.yaml:9: compliance_config.docker_host: "
        "only unix:// sockets are supported, got 'tcp://127.0.0.1:2375'"
    )


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("nginx", ("nginx", "latest")),
        ("nginx:1.25", ("nginx", "1.25")),
        ("registry:5000/team/web", ("registry:5000/team/web", "latest")),
        ("registry:5000/team/web:1.4", ("registry:5000/team/web", "1.4")),
        ("app@sha256:" + "3" * 64, ("app", "")),
        ("app:2@sha256:" + "3" * 64, ("app", "2")),
        ("sha256:" + "3" * 64, ("", "")),
        ("", ("", "")),
    ],
)
def test_compliance_image_reference_split(ref, expected):
    assert split_image_reference(ref) == expected
