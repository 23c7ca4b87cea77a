"""Process cache pids and late-resolved processes, `set` variables across a reload, and the
configurable fanotify event mask (runtime_security_config.fim.events)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from rs_plugin_support import CaptureSink, running_plugin, runtime_agent
from rs_support import fake_proc
from support import FakeReactor

from host.bootstrap import StartupError
from plugins.runtime_security.service import RESOLVE_RETRY
from plugins.runtime_security.sources.fanotify_backend import (
    DEFAULT_MASK,
    FAN_CLOSE_WRITE,
    FAN_CREATE,
    FAN_DELETE,
    FAN_MODIFY,
    FAN_ONDIR,
    FAN_OPEN,
    FAN_RENAME,
)
from plugins.runtime_security.sources.file_source import FileSource, event_mask
from plugins.runtime_security.sources.process_cache import ProcessCache, is_unresolved
from plugins.runtime_security.variable_carry import carry_variables
from plugins.secl import VariableStore

GONE = 2**22 - 7  # above any pid_max default: never a live process here

POLICY = """\
rules:
  - id: config_open
    expression: open.file.path == "/srv/app/config.yml"
  - id: mark_process
    expression: exec.file.name == "curl"
    actions:
      - set: {name: suspicious, value: true, scope: process}
  - id: suspicious_open
    expression: open.file.path == "/etc/shadow" && ${process.suspicious}
  - id: mark_container
    expression: exec.file.name == "nc"
    actions:
      - set: {name: tainted, value: true, scope: container}
  - id: tainted_open
    expression: open.file.path == "/etc/passwd" && ${container.tainted}
"""

RETYPED = """\
rules:
  - id: mark_process
    expression: exec.file.name == "curl"
    actions:
      - set: {name: suspicious, value: 1, scope: process}
  - id: suspicious_open
    expression: open.file.path == "/etc/shadow" && ${process.suspicious} == 1
"""


def _process(pid, path="/usr/bin/cat"):
    return {"pid": pid, "ppid": 1, "uid": 0, "gid": 0, "comm": os.path.basename(path),
            "file": {"path": path, "name": os.path.basename(path)}, "argv": [], "args": "",
            "container": {"id": ""}, "ancestors": []}  # fmt: skip


def _open(path, process):
    return {"type": "open", "timestamp": 1.7e9, "source": "file", "process": process,
            "open": {"file": {"path": path, "name": os.path.basename(path)}, "flags": 0,
                     "retval": 0}}  # fmt: skip


@pytest.fixture
def policies(tmp_path):
    directory = tmp_path / "policies"
    directory.mkdir()
    (directory / "test.policy").write_text(POLICY)
    return directory


@pytest.fixture
def running(tmp_path, policies):
    with running_plugin(tmp_path, policies, "    watch: false\n") as started:
        _agent, service, sink, reactor = started
        yield service, sink, reactor


# -- the process cache's pids ----------------------------------------------------------------


def test_pids_lists_the_cached_processes_without_reading_proc():
    cache = ProcessCache()
    assert cache.pids() == []
    cache.seed()
    assert os.getpid() in cache.pids()
    cache.on_fork(os.getpid(), GONE, 1.0)
    reads = cache.proc_reads
    pids = cache.pids()
    assert pids == sorted(pids)
    assert pids[-1] == GONE
    assert cache.cached(GONE).ppid == os.getpid()
    assert cache.cached(GONE + 1) is None
    assert cache.proc_reads == reads
    cache.on_exit(GONE)
    assert GONE not in cache.pids()


def test_process_cache_dump_lists_the_cache_not_proc(running):
    service, _sink, _reactor = running
    service.cache.on_fork(os.getpid(), GONE, 1.0)  # known to the cache, absent from /proc
    dump = service.process_cache_dump()
    assert [e["pid"] for e in dump] == service.cache.pids()
    [entry] = [e for e in dump if e["pid"] == GONE]
    assert entry["ppid"] == os.getpid()
    assert "ancestors" not in entry


# -- processes gone before their fork was read ----------------------------------------------


def test_a_forked_child_is_its_parent_but_for_the_ids():
    cache = ProcessCache()
    cache.seed()
    me = os.getpid()
    parent = cache.process(me)  # builds the parent's snapshot, which the fork reuses
    cache.on_fork(me, GONE, 1.0)
    child = cache.process(GONE)
    assert (child["pid"], child["tid"], child["ppid"]) == (GONE, GONE, me)
    same = ("uid", "gid", "user", "comm", "file", "argv", "args", "container", "exec_time")
    assert {k: child[k] for k in same} == {k: parent[k] for k in same}
    assert child["ancestors"][0]["pid"] == me
    assert (parent["pid"], parent["ppid"]) == (me, os.getppid())  # the parent's is untouched


def test_an_exited_process_is_still_known_after_its_exit_record():
    cache = ProcessCache()
    cache.seed()
    assert is_unresolved(cache.process(GONE))
    cache.on_fork(os.getpid(), GONE, 1.0)
    cache.on_exit(GONE)
    assert GONE not in cache
    process = cache.process(GONE)
    assert not is_unresolved(process)
    assert (process["pid"], process["ppid"]) == (GONE, os.getpid())
    assert process["ancestors"][0]["pid"] == os.getpid()


def test_exited_processes_are_bounded():
    from plugins.runtime_security.sources import process_cache

    cache = ProcessCache()
    cache.seed()
    first = GONE - process_cache.MAX_EXITED - 10
    for pid in range(first, GONE + 1):
        cache.on_fork(os.getpid(), pid, 1.0)
        cache.on_exit(pid)
    assert is_unresolved(cache.process(first))  # the oldest are forgotten
    assert not is_unresolved(cache.process(GONE))


def test_sources_that_overtake_the_fork_record_do_not_read_proc_while_followed():
    cache = ProcessCache()
    me = os.getpid()
    assert cache.process_if_known(me)["ppid"] == os.getppid()  # not followed: read /proc
    other = ProcessCache()
    other.followed = True  # what ProcessSource sets while it runs
    reads = other.proc_reads
    assert is_unresolved(other.process_if_known(me))  # the fork record will tell
    assert other.proc_reads == reads
    other.on_fork(os.getppid(), me, 1.0)
    assert other.process_if_known(me)["ppid"] == os.getppid()
    other.on_exit(me)
    assert other.process_if_known(me)["ppid"] == os.getppid()  # recently exited


def test_unresolved_is_only_the_empty_stand_in():
    cache = ProcessCache()
    assert is_unresolved(cache.process(GONE))
    assert not is_unresolved(cache.process(os.getpid()))
    assert not is_unresolved(cache.process(1))  # init: no parent, but a name
    assert not is_unresolved({"pid": 0, "ancestors": []})  # inotify: no pid at all


def test_an_event_of_an_unknown_process_waits_for_its_fork_record(running):
    service, sink, reactor = running
    event = _open("/srv/app/config.yml", service.cache.process(GONE))
    service.on_event(event)
    assert sink.by_rule("config_open") == []  # held back, not evaluated without its process
    # The process source reads the fork and the exit meanwhile.
    service.cache.on_fork(os.getpid(), GONE, 1.0)
    service.cache.on_exit(GONE)
    reactor.advance(RESOLVE_RETRY)
    [fired] = sink.by_rule("config_open")
    assert (fired["process"]["pid"], fired["process"]["ppid"]) == (GONE, os.getpid())
    assert fired["process"]["ancestors"][0]["pid"] == os.getpid()
    status = service.status()
    assert (status["processResolvedLate"], status["processUnresolved"]) == (1, 0)
    assert status["eventReceived"] == 1


def test_an_event_whose_process_never_shows_up_is_evaluated_anyway(running):
    service, sink, reactor = running
    service.on_event(_open("/srv/app/config.yml", service.cache.process(GONE)))
    reactor.advance(RESOLVE_RETRY)
    [fired] = sink.by_rule("config_open")
    assert (fired["process"]["pid"], fired["process"]["ppid"]) == (GONE, 0)
    status = service.status()
    assert (status["processResolvedLate"], status["processUnresolved"]) == (0, 1)


def test_held_back_events_are_evaluated_in_order_each_after_the_delay(running):
    service, sink, reactor = running
    first = _open("/srv/app/config.yml", service.cache.process(GONE))
    second = _open("/srv/app/config.yml", service.cache.process(GONE - 1))
    service.on_event(first)
    reactor.advance(RESOLVE_RETRY / 2)
    service.on_event(second)
    timers = [c for c in reactor.getDelayedCalls() if c.func == service._retry_due]
    assert len(timers) == 1  # one timer for both
    reactor.advance(RESOLVE_RETRY / 2)
    assert [e["process"]["pid"] for e in sink.by_rule("config_open")] == [GONE]
    reactor.advance(RESOLVE_RETRY / 2)
    assert [e["process"]["pid"] for e in sink.by_rule("config_open")] == [GONE, GONE - 1]
    assert service.status()["processUnresolved"] == 2


def test_known_processes_and_lifecycle_events_are_not_held_back(running):
    service, sink, _reactor = running
    service.on_event(_open("/srv/app/config.yml", _process(4242)))
    assert len(sink.by_rule("config_open")) == 1
    service.on_event({"type": "exit", "process": service.cache.process(GONE),
                      "exit": {"cause": "EXITED", "code": 0}})  # fmt: skip
    assert service.status()["eventReceived"] == 2


# -- `set` variables across a reload ---------------------------------------------------------


def _reload(service, reactor):
    done = []
    service.reload("test").addCallback(done.append)
    reactor.pump(lambda: done)
    return done[0]


def test_set_values_survive_a_reload_that_keeps_the_variable(running):
    service, sink, reactor = running
    curl = _process(7, "/usr/bin/curl")
    service.on_event({"type": "exec", "process": curl, "exec": curl})
    assert len(sink.by_rule("mark_process")) == 1
    before = service.engine.policies
    _reload(service, reactor)
    assert service.engine.policies is not before
    service.on_event(_open("/etc/shadow", _process(7)))
    service.on_event(_open("/etc/shadow", _process(8)))
    assert [e["process"]["pid"] for e in sink.by_rule("suspicious_open")] == [7]


def test_container_values_go_when_the_containers_last_process_exits(running, tmp_path):
    service, sink, _reactor = running
    cid = "ab" * 32
    proc = tmp_path / "proc"
    fake_proc(proc, 22, f"/docker/{cid}")
    service.cache = ProcessCache(proc=str(proc))  # no source runs: the cache is the test's
    service.cache.seed()
    nc, peer = _process(21, "/usr/bin/nc"), _process(22)
    nc["container"] = peer["container"] = {"id": cid}
    service.on_event({"type": "exec", "process": nc, "exec": nc})
    service.on_event({"type": "exit", "process": nc, "exit": {"cause": "EXITED", "code": 0}})
    service.on_event(_open("/etc/passwd", peer))
    assert len(sink.by_rule("tainted_open")) == 1  # another process still runs there
    service.cache.on_exit(22)
    service.on_event({"type": "exit", "process": peer, "exit": {"cause": "EXITED", "code": 0}})
    service.on_event(_open("/etc/passwd", peer))
    assert len(sink.by_rule("tainted_open")) == 1  # the container is gone: so is its value


def test_set_values_are_dropped_when_the_variable_changes_type(running, policies):
    service, sink, reactor = running
    curl = _process(7, "/usr/bin/curl")
    service.on_event({"type": "exec", "process": curl, "exec": curl})
    (policies / "test.policy").write_text(RETYPED)
    policy_set = _reload(service, reactor)
    assert policy_set.rules["suspicious_open"].status == "loaded"
    service.on_event(_open("/etc/shadow", _process(7)))
    assert sink.by_rule("suspicious_open") == []  # the old bool is not read as an int


def test_carry_keeps_expiry_and_skips_other_types_and_gone_variables():
    now = [100.0]
    old = VariableStore(clock=lambda: now[0])
    for name, kind in (("kept", "int"), ("retyped", "int"), ("gone", "bool")):
        old.declare(name, kind)
    event = {"process": {"pid": 1}}
    old.set("kept", 5, ttl=10)
    old.set("retyped", 5)
    old.set("gone", True)
    new = VariableStore(clock=lambda: now[0])
    new.declare("kept", "int")
    new.declare("retyped", "string")
    new.declare("fresh", "bool")
    assert carry_variables(old, new) == ["kept"]
    assert (new.get("kept", event), new.get("retyped"), new.get("fresh")) == (5, "", False)
    old.set("kept", 6)  # the old store is no longer shared with the new one
    assert new.get("kept") == 5
    now[0] = 110.0
    assert new.get("kept") == 0  # the ttl kept running across the reload


# -- runtime_security_config.fim.events ------------------------------------------------------


def test_event_names_map_to_the_fanotify_mask():
    names = ["open", "open_exec", "modify", "close_write", "create", "delete", "rename",
             "attrib"]  # fmt: skip
    assert event_mask(names) == DEFAULT_MASK
    assert event_mask(["modify", "create"]) == FAN_MODIFY | FAN_CREATE | FAN_ONDIR
    with pytest.raises(ValueError, match="unknown file event") as caught:
        event_mask(["modify", "read"])
    assert str(caught.value) == (
        "unknown file event 'read', expected one of open, open_exec, modify, close_write, "
        "create, delete, rename, attrib"
    )
    with pytest.raises(ValueError, match=r"^no file event asked for$"):
        FileSource(ProcessCache(), ["/tmp"], mask=FAN_ONDIR)


@pytest.mark.parametrize(
    ("events", "error"),
    [
        ("[open, read]", "unknown file event 'read', expected one of open, open_exec, modify, "
                         "close_write, create, delete, rename, attrib"),
        ("[]", "expected some of open, open_exec, modify, close_write, create, delete, rename, "
               "attrib; to watch no file, set runtime_security_config.sources.file to false"),
    ],
)  # fmt: skip
def test_bad_fim_events_stop_the_start_with_file_and_line(tmp_path, events, error):
    config = f"runtime_security_config:\n  enabled: true\n  fim:\n    events: {events}\n"
    with pytest.raises(StartupError) as caught:
        runtime_agent(FakeReactor(), tmp_path, config, CaptureSink())
    assert str(caught.value) == (
        f"plugin runtime_security: {tmp_path}/security-agent.yaml:7: "
        f"runtime_security_config.fim.events: {error}"
    )


def test_fim_events_default_to_every_event_and_reach_the_settings(tmp_path):
    from plugins.runtime_security.settings import RuntimeSettings

    agent = runtime_agent(FakeReactor(), tmp_path, "", CaptureSink())
    assert RuntimeSettings.from_agent(agent).file_mask == DEFAULT_MASK
    config = "runtime_security_config:\n  fim:\n    events: [modify, create]\n"
    (tmp_path / "x").mkdir()
    agent = runtime_agent(FakeReactor(), tmp_path / "x", config, CaptureSink())
    assert RuntimeSettings.from_agent(agent).file_mask == FAN_MODIFY | FAN_CREATE | FAN_ONDIR


def _fanotify_masks() -> list[int]:
    """The masks of the fanotify marks this process holds (from /proc/self/fdinfo)."""
    masks = []
    for fd in os.listdir("/proc/self/fdinfo"):
        try:
            with open(f"/proc/self/fdinfo/{fd}") as f:
                lines = [line for line in f if line.startswith("fanotify ") and "mask:" in line]
        except OSError:
            continue
        for line in lines:
            fields = dict(p.split(":", 1) for p in line.split() if ":" in p)
            masks.append(int(fields["mask"], 16))
    return masks


def test_without_open_the_kernel_is_not_asked_for_opens(tmp_path):
    watched = tmp_path / "watched"
    watched.mkdir()
    existing = watched / "existing"
    existing.write_text("x")
    events: list[dict] = []
    before = _fanotify_masks()
    src = FileSource(ProcessCache(), [str(watched)], backend="fanotify",
                     mask=event_mask(["modify", "create", "close_write"]))  # fmt: skip
    src.start(events.append)
    try:
        stats = src.stats()
        if not stats.active:
            pytest.skip(f"the kernel refuses fanotify filesystem marks: {stats.reason}")
        [mask] = [m for m in _fanotify_masks() if m not in before] or [None]
        assert mask is not None
        assert not mask & FAN_OPEN
        # Renames and deletions are always asked for: the directory cache depends on them.
        assert mask & (FAN_RENAME | FAN_DELETE | FAN_MODIFY | FAN_CLOSE_WRITE | FAN_CREATE) == (
            FAN_RENAME | FAN_DELETE | FAN_MODIFY | FAN_CLOSE_WRITE | FAN_CREATE
        )
        assert stats.detail["events"] == ["modify", "close_write", "create"]
        script = (
            "import os, sys\n"
            "open(sys.argv[1]).read()\n"  # an open: not asked for
            "os.unlink(sys.argv[1])\n"  # a deletion: asked of the kernel, not reported
            "with open(sys.argv[2], 'w') as f: f.write('y')\n"
        )
        made = watched / "made"
        child = subprocess.run([sys.executable, "-c", script, str(existing), str(made)],
                               check=True)  # fmt: skip
        assert child.returncode == 0
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if any(e["type"] == "close_write" for e in events):
                break
            time.sleep(0.02)
        src.stop()
        kinds = sorted({(e["type"], e[e["type"]]["file"]["path"]) for e in events})
        assert kinds == [
            ("close_write", str(made)),
            ("modify", str(made)),
            ("open", str(made)),  # a new file is reported as open with O_CREAT
        ]
        [created] = [e for e in events if e["type"] == "open"]
        assert created["open"]["flags"] == 0o100
    finally:
        src.stop()
    assert _fanotify_masks() == before


def test_the_process_source_follows_the_cache_while_it_runs():
    from plugins.runtime_security.sources.process_source import ProcessSource

    cache = ProcessCache()
    src = ProcessSource(cache, exec_paths=False)
    src.start(lambda _event: None)
    try:
        stats = src.stats()
        if not stats.active:
            pytest.skip(f"the kernel refuses the process connector: {stats.reason}")
        assert cache.followed
    finally:
        src.stop()
    assert not cache.followed
