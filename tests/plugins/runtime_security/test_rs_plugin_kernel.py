"""Real kernel events through the plugin as the host runs it: the process connector, fanotify
(or inotify) and audit sources feed the engine, rules match, security events reach a sink
with the acting process; a kill action ends a test process; the self-test passes."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest
from rs_plugin_support import CaptureSink, ThreadedFakeReactor, runtime_agent, service_of, start
from rs_support import ignored_on
from rs_support import run_child as _run_child

from plugins.runtime_security.status_text import render


def run_child(action):
    """Run ``action`` in a forked child that stays alive a moment afterwards, so the
    process cache can read its /proc entry whichever source thread sees it first."""

    def act_and_linger():
        action()
        time.sleep(0.3)

    return _run_child(act_and_linger)


NOBODY = 65534


def policy(tmp_path, watched, binaries, port):
    me = os.getpid()
    return f"""\
version: 9.9.9
rules:
  - id: test_exec
    expression: exec.file.path == "{binaries}/rs-exec-probe"
  - id: test_open
    expression: open.file.path == "{watched}/opened"
  - id: test_create
    expression: open.file.path == "{watched}/created" && open.flags & O_CREAT > 0
  - id: test_chmod
    expression: chmod.file.path == "{watched}/mode" && chmod.file.destination.mode == 0640
  - id: test_chown
    expression: chown.file.path == "{watched}/owner" && chown.file.destination.uid == {NOBODY}
  - id: test_rename
    expression: >-
      rename.file.path == "{watched}/old" && rename.file.destination.path == "{watched}/new"
  - id: test_unlink
    expression: unlink.file.path == "{watched}/gone"
  - id: test_connect
    expression: connect.addr.port == {port} && connect.addr.family == AF_INET
  - id: test_setuid
    expression: setuid.uid == {NOBODY} && process.ppid == {me}
  - id: test_kill
    expression: exec.file.path == "{binaries}/rs-kill-probe"
    actions:
      - kill: {{signal: SIGKILL}}
"""


@pytest.fixture
def kernel_agent(tmp_path, audit_guard):
    watched = tmp_path / "watched"
    watched.mkdir()
    binaries = tmp_path / "bin"
    binaries.mkdir()
    shutil.copy("/bin/true", binaries / "rs-exec-probe")
    shutil.copy("/bin/sleep", binaries / "rs-kill-probe")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "kernel.policy").write_text(policy(tmp_path, watched, binaries, port))
    reactor = ThreadedFakeReactor()
    sink = CaptureSink()
    config = (
        "runtime_security_config:\n"
        "  enabled: true\n"
        f"  policies: {{dir: {policies}}}\n"
        f"  fim: {{paths: [{watched}]}}\n"
    )
    agent = runtime_agent(reactor, tmp_path, config, sink)
    svc = start(agent)
    reactor.pump(lambda: service_of(agent) is not None and service_of(agent).started)
    service = service_of(agent)
    inactive = {s.stats().name: s.stats().reason for s in service.sources if not s.stats().active}
    if inactive:
        svc.stopService()
        reactor.pump(timeout=0.2)
        listener.close()
        pytest.skip(f"the kernel refuses a source here: {inactive}")
    yield agent, service, sink, reactor, watched, binaries, listener
    svc.stopService()
    reactor.pump(lambda: not service.sources and service._drops_job is None, timeout=10)
    listener.close()


def wait_rule(reactor, sink, rule_id, pid=None, timeout=10.0):
    def found():
        for event in sink.by_rule(rule_id):
            if pid is None or event["process"]["pid"] == pid:
                return event
        return None

    return reactor.pump(found, timeout=timeout)


def test_self_test_passes_at_start(kernel_agent):
    _agent, service, _sink, reactor, *_ = kernel_agent
    result = reactor.pump(
        lambda: service.self_test.result.last_timestamp and service.self_test.result
    )
    assert (result.succeeded, result.failed, result.error) == (["open"], [], "")


def test_exec_of_a_test_binary(kernel_agent):
    _agent, _service, sink, reactor, _watched, binaries, _ = kernel_agent
    child = subprocess.run([str(binaries / "rs-exec-probe"), "--flag"], check=True)
    assert child.returncode == 0
    event = wait_rule(reactor, sink, "test_exec")
    assert event["evt"] == {"name": "exec", "category": "Process Activity", "outcome": "Success",
                            "source": "process"}  # fmt: skip
    assert event["process"]["executable"]["path"] == str(binaries / "rs-exec-probe")
    assert event["process"]["ppid"] == os.getpid()
    assert event["process"]["ancestors"][0]["pid"] == os.getpid()
    assert event["agent"]["policy_name"] == "kernel.policy"


def test_open_and_create_of_watched_files(kernel_agent):
    _agent, _service, sink, reactor, watched, *_ = kernel_agent
    (watched / "opened").write_text("x")

    def work():
        with open(watched / "opened", "a") as f:
            f.write("more")
        with open(watched / "created", "w") as f:
            f.write("new")

    pid = run_child(work)
    opened = wait_rule(reactor, sink, "test_open", pid)
    assert opened["file"]["path"] == str(watched / "opened")
    assert opened["process"]["ppid"] == os.getpid()
    created = wait_rule(reactor, sink, "test_create", pid)
    assert created["file"]["name"] == "created"


def _read_in_child(*paths):
    def read():
        for path in paths:
            with open(path) as f:
                f.read()

    return run_child(read)


def test_files_no_rule_can_match_are_discarded_and_reload_lifts_them(kernel_agent):
    _agent, service, sink, reactor, watched, *_ = kernel_agent
    reactor.pump(lambda: service.self_test.result.last_timestamp)  # probes see every event
    plain, near, opened = watched / "plain", watched / "created", watched / "opened"
    for f in (plain, near, opened):
        f.write_text("x")
    file_source = next(s for s in service.sources if s.name == "file")
    detail = file_source.stats().detail
    # No rule names open_exec, modify, close_write or attrib: the kernel is not asked.
    assert detail["restricted_to_rules"] is True
    assert set(detail["kernel_events"]) == {"open", "create", "delete", "rename"}

    first = _read_in_child(plain, near, opened)
    wait_rule(reactor, sink, "test_open", first)
    reactor.pump(lambda: ignored_on(plain))
    # "created" is approved by test_create's path (only its flags differ): kept.
    assert ignored_on(near) == 0
    assert ignored_on(opened) == 0
    # A rule's file still fires every time.
    second = _read_in_child(plain, opened)
    wait_rule(reactor, sink, "test_open", second)
    text = render(service.status())
    assert "    kernel events: open, create, delete, rename\n" in text
    assert re.search(r"    discarders: [1-9]\d* active, [1-9]\d* added, 0 lifted", text)

    reloaded = []
    service.reload("test").addCallback(reloaded.append)
    reactor.pump(lambda: reloaded)
    assert ignored_on(plain) == 0
    assert file_source.stats().detail["discarders"]["active"] == 0


def test_chmod_with_mode_and_chown(kernel_agent):
    _agent, _service, sink, reactor, watched, *_ = kernel_agent
    (watched / "mode").write_text("")
    (watched / "owner").write_text("")
    pid = run_child(lambda: (os.chmod(watched / "mode", 0o640),
                             os.chown(watched / "owner", NOBODY, NOBODY)))  # fmt: skip
    chmod = wait_rule(reactor, sink, "test_chmod", pid)
    assert chmod["chmod"]["retval"] == 0
    assert chmod["file"]["destination"]["mode"] == 0o640
    chown = wait_rule(reactor, sink, "test_chown", pid)
    assert chown["file"]["destination"]["uid"] == NOBODY
    assert chown["process"]["ppid"] == os.getpid()


def test_rename_and_unlink(kernel_agent):
    _agent, _service, sink, reactor, watched, *_ = kernel_agent
    (watched / "old").write_text("")
    (watched / "gone").write_text("")
    pid = run_child(lambda: (os.rename(watched / "old", watched / "new"),
                             os.unlink(watched / "gone")))  # fmt: skip
    renamed = wait_rule(reactor, sink, "test_rename", pid)
    assert renamed["file"]["destination"]["path"] == str(watched / "new")
    gone = wait_rule(reactor, sink, "test_unlink", pid)
    assert gone["evt"]["name"] == "unlink"


def test_connect_to_loopback(kernel_agent):
    _agent, _service, sink, reactor, _w, _b, listener = kernel_agent
    port = listener.getsockname()[1]
    pid = run_child(lambda: socket.create_connection(("127.0.0.1", port), timeout=5).close())
    event = wait_rule(reactor, sink, "test_connect", pid)
    assert event["connect"]["addr"]["port"] == port
    assert event["connect"]["addr"]["ip"] == "127.0.0.1"
    assert event["evt"]["category"] == "Network Activity"


def test_setuid_change(kernel_agent):
    _agent, _service, sink, reactor, *_ = kernel_agent
    pid = run_child(lambda: os.setuid(NOBODY))
    event = wait_rule(reactor, sink, "test_setuid", pid)
    assert event["setuid"]["uid"] == NOBODY


def test_kill_action_ends_the_test_process(kernel_agent):
    _agent, _service, sink, reactor, _watched, binaries, _ = kernel_agent
    child = subprocess.Popen([str(binaries / "rs-kill-probe"), "60"])
    try:
        event = wait_rule(reactor, sink, "test_kill", child.pid)
        assert child.wait(timeout=10) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert event["agent"]["rule_actions"] == [
        {"type": "kill", "signal": "SIGKILL", "scope": "process", "pid": child.pid,
         "status": "performed"}
    ]  # fmt: skip
    assert sys.platform == "linux"
