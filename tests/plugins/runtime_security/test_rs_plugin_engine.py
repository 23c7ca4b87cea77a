"""The plugin as the host runs it, fed events directly (no kernel sources): security event
shape, `every`, actions, drops, status, API routes and reload."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys

import pytest
from rs_plugin_support import CaptureSink, running_plugin, runtime_agent

from host.status import collect_status

POLICY = """\
version: 2.1.0
macros:
  - id: WATCHED
    values: ["/srv/app/config.yml", "/srv/app/secret"]
rules:
  - id: config_open
    description: The app config was opened
    expression: open.file.path in WATCHED
    tags: {team: secops}
    product_tags: ["policy:test"]
  - id: rate_limited
    expression: unlink.file.path == "/srv/app/tmp"
    every: 10s
  - id: mark_process
    expression: exec.file.name == "curl"
    actions:
      - set: {name: suspicious, value: true, scope: process, ttl: 60s}
      - log: {level: warning, message: curl ran}
  - id: suspicious_open
    expression: open.file.path == "/etc/shadow" && ${process.suspicious}
  - id: hash_it
    expression: open.file.name == "hash-me"
    actions:
      - hash: {}
  - id: kill_it
    expression: exec.file.name == "victim"
    actions:
      - kill: {signal: SIGKILL}
"""


def process(pid=4242, path="/usr/bin/cat", uid=1000, user="alice", container=""):
    return {
        "pid": pid, "ppid": 1, "uid": uid, "gid": uid, "user": user, "group": user,
        "comm": os.path.basename(path), "file": {"path": path, "name": os.path.basename(path)},
        "argv": ["x"], "args": "x", "container": {"id": container},
        "ancestors": [{"pid": 1, "ppid": 0, "comm": "systemd",
                       "file": {"path": "/sbin/init", "name": "init"}}],
    }  # fmt: skip


def open_event(path, pid=4242, ts=1700000000.5):
    return {
        "type": "open", "timestamp": ts, "source": "file", "process": process(pid),
        "open": {"file": {"path": path, "name": os.path.basename(path), "mode": 0o100644},
                 "flags": 0, "retval": 0},
    }  # fmt: skip


@pytest.fixture
def env_dirs(tmp_path):
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "test.policy").write_text(POLICY)
    return policies


@pytest.fixture
def running(tmp_path, env_dirs):
    with running_plugin(tmp_path, env_dirs) as started:
        yield started


def test_spec_starts_early_as_a_security_component(running):
    agent, _service, _sink, _reactor = running
    spec = agent.runtimes["runtime_security"].spec
    assert (spec.enabled, spec.interval, spec.start_order, spec.security_component) == (
        True, None, -100, True,
    )  # fmt: skip


def test_a_match_becomes_a_security_event_in_datadogs_shape(running):
    agent, service, sink, _ = running
    service.on_event(open_event("/srv/app/config.yml"))
    service.on_event(open_event("/srv/app/other"))
    [event] = sink.events
    assert event["agent"] == {
        "rule_id": "config_open", "rule_version": "", "rule_actions": [],
        "policy_name": "test.policy", "policy_version": "2.1.0", "version": agent.version,
        "os": "linux", "arch": os.uname().machine, "origin": "python",
    }  # fmt: skip
    assert event["evt"] == {
        "name": "open", "category": "File Activity", "outcome": "Success", "source": "file",
    }  # fmt: skip
    assert event["date"] == "2023-11-14T22:13:20.500Z"
    assert event["title"] == "The app config was opened"
    assert event["tags"] == ["rule_id:config_open", "team:secops", "policy:test"]
    assert event["file"] == {"path": "/srv/app/config.yml", "name": "config.yml", "mode": 0o100644}
    assert event["process"]["pid"] == 4242
    assert event["process"]["executable"] == {"path": "/usr/bin/cat", "name": "cat"}
    assert event["process"]["ancestors"] == [
        {
            "pid": 1,
            "ppid": 0,
            "comm": "systemd",
            "executable": {"path": "/sbin/init", "name": "init"},
        }
    ]
    assert event["usr"] == {"id": "1000", "name": "alice"}
    assert event["container"] == {"id": ""}
    assert event["open"] == {"flags": 0, "retval": 0}
    status = service.status()
    assert (status["eventReceived"], status["eventSent"]) == (2, 1)


def test_every_rate_limits_a_rule_on_the_reactor_clock(running):
    _agent, service, sink, reactor = running
    unlink = {"type": "unlink", "process": process(), "unlink": {"file": {"path": "/srv/app/tmp"}}}
    service.on_event(unlink)
    service.on_event(unlink)
    reactor.advance(9.9)
    service.on_event(unlink)
    assert len(sink.by_rule("rate_limited")) == 1
    reactor.advance(0.1)
    service.on_event(unlink)
    assert len(sink.by_rule("rate_limited")) == 2
    rule = next(r for p in service.status()["policiesStatus"] for r in p["Status"]
                if r["ID"] == "rate_limited")  # fmt: skip
    assert (rule["matched"], rule["sent"], rule["rate_limited"]) == (4, 2, 2)


def test_set_action_feeds_a_later_rule_in_process_scope_until_the_ttl(running):
    _agent, service, sink, reactor = running
    service.on_event(open_event("/etc/shadow", pid=7))
    assert sink.by_rule("suspicious_open") == []
    curl = {"type": "exec", "process": process(pid=7, path="/usr/bin/curl"),
            "exec": process(pid=7, path="/usr/bin/curl")}  # fmt: skip
    service.on_event(curl)
    [marked] = sink.by_rule("mark_process")
    assert marked["agent"]["rule_actions"] == [
        {"type": "set", "variable": "process.suspicious", "value": True},
        {"type": "log", "level": "warn", "message": "curl ran"},
    ]
    service.on_event(open_event("/etc/shadow", pid=8))  # another process: not marked
    service.on_event(open_event("/etc/shadow", pid=7))
    assert [e["process"]["pid"] for e in sink.by_rule("suspicious_open")] == [7]
    reactor.advance(60)
    service.on_event(open_event("/etc/shadow", pid=7))
    assert len(sink.by_rule("suspicious_open")) == 1


def test_hash_action_adds_the_sha256_and_caps_the_size(running, tmp_path):
    _agent, service, sink, _ = running
    target = tmp_path / "hash-me"
    target.write_bytes(b"hello world\n")
    service.on_event(open_event(str(target)))
    [event] = sink.by_rule("hash_it")
    assert event["agent"]["rule_actions"] == [
        {"type": "hash", "path": str(target), "size": 12, "state": "done",
         "sha256": hashlib.sha256(b"hello world\n").hexdigest()}
    ]  # fmt: skip
    service.runner.hash_max_size = 4
    service.on_event(open_event(str(target)))
    assert sink.by_rule("hash_it")[1]["agent"]["rule_actions"] == [
        {"type": "hash", "path": str(target), "size": 12, "state": "file too big (12 > 4 bytes)"}
    ]


def test_kill_action_ends_the_process_but_never_pid_1_or_the_agent(running):
    _agent, service, sink, _ = running
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        for pid in (1, os.getpid(), child.pid):
            service.on_event({"type": "exec", "process": process(pid=pid, path="/opt/victim"),
                              "exec": process(pid=pid, path="/opt/victim")})  # fmt: skip
        assert child.wait(timeout=10) == -signal.SIGKILL
    finally:
        child.kill()
        child.wait()
    reports = [e["agent"]["rule_actions"][0] for e in sink.by_rule("kill_it")]
    assert [(r["pid"], r["status"], r.get("reason")) for r in reports] == [
        (1, "refused", "refusing to signal pid 1"),
        (os.getpid(), "refused", "refusing to signal the agent itself"),
        (child.pid, "performed", None),
    ]


class FakeSource:
    def __init__(self, name):
        self.name = name
        self.drops = 0

    def stats(self):
        from plugins.runtime_security.sources import SourceStats

        return SourceStats(self.name, True, "", 10, self.drops)

    def stop(self):
        pass


def test_a_new_drop_raises_a_security_event_of_its_own(running):
    _agent, service, sink, reactor = running
    source = FakeSource("file")
    service.sources = [source]
    reactor.advance(1.5)
    assert sink.by_rule("runtime_security_dropped_events") == []
    source.drops = 3
    reactor.advance(1.0)
    reactor.advance(1.0)  # no new drop: no second event
    [event] = sink.by_rule("runtime_security_dropped_events")
    assert event["title"] == "Agent internal: 3 events dropped by the file source"
    assert event["dropped"] == {"source": "file", "count": 3, "total": 3}
    assert event["evt"]["name"] == "dropped_events"
    service.sources = []


def test_status_section_lists_policies_rules_and_counters(running):
    agent, service, _sink, _ = running
    service.on_event(open_event("/srv/app/secret"))
    section = collect_status(agent)["sections"]["runtimeSecurityStatus"]
    assert section["title"] == "Runtime Security"
    text = section["text"]
    assert text.startswith("Connected: false (in-process)\nEvents received: 1\nEvents sent: 1\n")
    assert (
        "  test.policy (file, version 2.1.0)\n    - config_open: loaded, matched 1, sent 1" in text
    )
    assert "  Last execution: never\n  Succeeded: none\n  Failed: none" in text
    names = [p["Name"] for p in section["data"]["policiesStatus"]]
    assert names == ["default.policy", "test.policy"]


def routes(agent):
    found = {}
    for _name, result in agent.call_each("security_agent_api_routes", agent=agent):
        for route in result:
            found[route.path] = route
    return found


def respond(result):
    out = []
    if hasattr(result, "addCallback"):
        result.addCallback(out.append)
        return out[0]
    return result


def test_api_reload_swaps_in_a_new_set_only_once_built(running, env_dirs):
    from host import ApiRequest

    agent, service, sink, _ = running
    before = service.engine.policies
    (env_dirs / "more.policy").write_text(
        'rules:\n  - id: extra\n    expression: open.file.path == "/x"\n'
        '  - id: broken\n    expression: open.file.pth == "/x"\n'
    )
    route = routes(agent)["/agent/runtime/policy/reload"]
    assert route.methods == ("POST",)
    response = respond(route.handler(ApiRequest("POST", route.path)))
    assert response.status == 200
    assert response.body["summary"]["error"] == 1
    assert service.engine.policies is not before
    assert service.reloads == 2
    service.on_event(open_event("/x"))
    assert [e["agent"]["rule_id"] for e in sink.events] == ["extra"]
    more = next(p for p in response.body["policies"] if p["name"] == "more.policy")
    assert more["rules"] == [
        {"id": "extra", "policy": "more.policy", "status": "loaded"},
        {"id": "broken", "policy": "more.policy", "status": "error",
         "error": "rule broken, line 1, column 1: expected a field, constant or macro, "
                   "got unknown identifier 'open.file.pth'"},
    ]  # fmt: skip


def test_api_process_cache_and_self_test_routes(running):
    from host import ApiRequest

    agent, _service, _sink, _reactor = running
    found = routes(agent)
    assert sorted(found) == [
        "/agent/runtime/policy/reload", "/agent/runtime/process-cache", "/agent/runtime/self-test",
    ]  # fmt: skip
    cache = respond(found["/agent/runtime/process-cache"].handler(ApiRequest("GET", "/")))
    assert cache.status == 200
    assert cache.body == []  # no process source: nothing cached


class ManualWorkers:
    """Runs deferred work only when the test says so, to look at the world in between."""

    def __init__(self):
        self.jobs = []

    def defer(self, f, *args):
        from twisted.internet.defer import Deferred

        d = Deferred()
        self.jobs.append((d, f, args))
        return d

    def run_next(self):
        d, f, args = self.jobs.pop(0)
        d.callback(f(*args))


def test_reload_builds_aside_and_coalesces_requests_made_meanwhile(running, env_dirs):
    agent, service, sink, _ = running
    workers = ManualWorkers()
    agent.workers = workers
    (env_dirs / "test.policy").write_text(
        'rules:\n  - id: config_open\n    expression: open.file.path == "/new"\n'
    )
    first = service.reload("first")
    second, third = service.reload("second"), service.reload("third")
    assert len(workers.jobs) == 1  # one load at a time
    service.on_event(open_event("/srv/app/config.yml"))  # still the old set
    service.on_event(open_event("/new"))
    assert [e["file"]["path"] for e in sink.events] == ["/srv/app/config.yml"]
    results = []
    first.addCallback(results.append)
    second.addCallback(results.append)
    third.addCallback(results.append)
    workers.run_next()
    assert results == [service.engine.policies]
    service.on_event(open_event("/new"))
    assert [e["file"]["path"] for e in sink.events] == ["/srv/app/config.yml", "/new"]
    assert len(workers.jobs) == 1  # one more load serves both waiting requests
    workers.run_next()
    assert results[1] is results[2] is service.engine.policies
    assert (service.reloads, service.last_reload_reason) == (3, "third")


def test_disabled_plugin_shows_not_enabled_and_offers_no_routes(tmp_path):
    from support import FakeReactor

    agent = runtime_agent(FakeReactor(), tmp_path, "", CaptureSink())
    assert agent.runtimes["runtime_security"].spec.enabled is False
    section = collect_status(agent)["sections"]["runtimeSecurityStatus"]
    assert (section["text"], section["data"]) == ("Not enabled", {"enabled": False})
    assert routes(agent) == {}


def test_a_bad_setting_stops_the_start_with_its_file_and_line(tmp_path):
    from support import FakeReactor

    from host.bootstrap import StartupError

    config = "runtime_security_config:\n  enabled: true\n  fim:\n    backend: magic\n"
    with pytest.raises(StartupError) as caught:
        runtime_agent(FakeReactor(), tmp_path, config, CaptureSink())
    assert str(caught.value) == (
        f"plugin runtime_security: {tmp_path}/security-agent.yaml:7: "
        "runtime_security_config.fim.backend: "
        "expected auto, fanotify or inotify, got 'magic'"
    )


def test_expvar_and_flare_carry_the_counters_and_policies(running):
    from host.flare_files import collect_flare_files

    agent, service, _sink, _ = running
    service.on_event(open_event("/srv/app/secret"))
    assert agent.published["runtime_security"]() == {
        "running": True, "eventReceived": 1, "eventSent": 1, "rateLimited": 0, "drops": 0,
        "dropEvents": 0,
    }  # fmt: skip
    flare = collect_flare_files(agent)
    status = json.loads(flare.files["runtime-security/status.json"])
    assert status["eventSent"] == 1
    report = json.loads(flare.files["runtime-security/policies.json"])
    assert [p["name"] for p in report["policies"]] == ["default.policy", "test.policy"]
