"""The process cache: /proc reading, container ids, envs on demand, ancestors."""

from __future__ import annotations

import os
import subprocess
import sys

from rs_support import fake_proc

from plugins.runtime_security.sources.process_cache import ProcessCache, container_id_of

CID = "0123456789abcdef" * 4


def test_container_id_from_docker_and_systemd_cgroup_paths():
    assert container_id_of(f"/docker/{CID}") == CID
    assert container_id_of(f"/system.slice/docker-{CID}.scope") == CID
    assert container_id_of(f"/kubepods/burstable/pod1/{CID}") == CID
    assert container_id_of("/user.slice/user-0.slice/session-1.scope") == ""


def test_cgroup_v2_line_is_preferred():
    assert ProcessCache._cgroup_path("0::/system.slice/x.service\n") == "/system.slice/x.service"
    v1 = "12:pids:/docker/abc\n11:memory:/docker/def\n1:name=systemd:/init.scope\n"
    assert ProcessCache._cgroup_path(v1) == "/init.scope"


def test_own_process_from_proc():
    cache = ProcessCache()
    me = cache.process(os.getpid())
    assert me["pid"] == os.getpid()
    assert me["ppid"] == os.getppid()
    assert me["file"]["path"] == os.path.realpath(sys.executable)
    with open("/proc/self/cmdline", "rb") as f:
        argv = f.read().decode().split("\0")[:-1]
    assert (me["argv0"], me["argv"], me["args"]) == (argv[0], argv[1:], " ".join(argv[1:]))
    assert me["uid"] == os.getuid()
    assert me["user"] == "root"
    assert me["ancestors"][0]["pid"] == os.getppid()
    assert me["parent"] is me["ancestors"][0]
    assert "envs" not in me
    with open("/proc/self/cgroup") as f:
        assert me["cgroup"] == ProcessCache._cgroup_path(f.read())


def test_envs_on_demand_and_with_envs():
    child = subprocess.Popen(["/bin/sleep", "30"], env={"RS_SECRET_NAME": "v", "PATH": "/bin"})
    try:
        cache = ProcessCache()
        assert "envs" not in cache.process(child.pid)
        assert cache.envs(child.pid) == ["RS_SECRET_NAME=v", "PATH=/bin"]
        process = cache.process(child.pid)
        assert process["envs"] == ["RS_SECRET_NAME", "PATH"]
        assert process["envp"] == ["RS_SECRET_NAME=v", "PATH=/bin"]
        eager = ProcessCache(with_envs=True)
        assert eager.process(child.pid)["envs"] == ["RS_SECRET_NAME", "PATH"]
    finally:
        child.kill()
        child.wait()


def test_fork_copies_the_parent_and_exit_forgets():
    cache = ProcessCache()
    cache.seed()
    parent = os.getpid()
    entry = cache.on_fork(parent, 999_999_1, 1.0)
    assert entry.ppid == parent
    assert entry.path == cache.entry(parent).path
    child = cache.process(999_999_1)
    assert child["ancestors"][0]["pid"] == parent
    assert cache.on_exit(999_999_1) is entry
    assert 999_999_1 not in cache


def test_a_gone_process_is_an_empty_entry():
    cache = ProcessCache()
    process = cache.process(2**22 - 3)
    assert (process["pid"], process["file"]["path"], process["ancestors"]) == (2**22 - 3, "", [])


def test_a_container_is_alive_while_a_cached_process_runs_in_it(tmp_path):
    proc = tmp_path / "proc"
    fake_proc(proc, 101, f"/system.slice/docker-{CID}.scope")
    fake_proc(proc, 102, f"/system.slice/docker-{CID}.scope")
    fake_proc(proc, 103, "/user.slice/session-1.scope")
    cache = ProcessCache(proc=str(proc))
    assert cache.seed() == 3
    assert cache.container_alive(CID)
    cache.on_fork(101, 104, 1.0)  # the child is in its parent's container
    cache.on_exit(101)
    cache.on_exit(102)
    assert cache.container_alive(CID)
    cache.on_ids(104, 1000, 1000, None, None)  # a new version of an entry is not a new process
    cache.on_exit(104)
    assert not cache.container_alive(CID)
    assert not cache.container_alive("")
