"""The workload store against fake procfs trees written like the kernel writes them, and
once against the real /proc."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from plugins.workloadmeta import (
    WorkloadStore,
    container_from_cgroup_file,
    container_from_path,
)

CID = "4f3b9f9a1c0e8d7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b"
CID2 = "a" * 64
POD = "0f5c4b1e-2d3a-4b5c-8d9e-0a1b2c3d4e5f"
BOOT = 1_700_000_000
HZ = os.sysconf("SC_CLK_TCK")


def stat_line(pid, comm, ppid, start_ticks):
    # Fields 3..22 of /proc/<pid>/stat, with starttime as field 22.
    middle = " ".join(["0"] * 17)
    return f"{pid} ({comm}) S {ppid} {middle} {start_ticks} 2998272 408 0\n"


def write_proc(
    root,
    pid,
    *,
    comm="sleep",
    ppid=1,
    start_ticks=100,
    cmdline=("sleep", "100"),
    uid=(1000, 1001),
    gid=(100, 101),
    cgroup="0::/user.slice\n",
    exe="/usr/bin/sleep",
):
    d = root / str(pid)
    d.mkdir(parents=True)
    (d / "stat").write_text(stat_line(pid, comm, ppid, start_ticks))
    (d / "status").write_text(
        f"Name:\t{comm}\nUmask:\t0022\nState:\tS (sleeping)\nPid:\t{pid}\nPPid:\t{ppid}\n"
        f"Uid:\t{uid[0]}\t{uid[1]}\t{uid[1]}\t{uid[1]}\n"
        f"Gid:\t{gid[0]}\t{gid[1]}\t{gid[1]}\t{gid[1]}\n"
    )
    (d / "cmdline").write_bytes(b"".join(a.encode() + b"\0" for a in cmdline))
    if cgroup is not None:
        (d / "cgroup").write_text(cgroup)
    if exe is not None:
        os.symlink(exe, d / "exe")  # dangling is fine: readlink does not follow it
    return d


@pytest.fixture
def proc(tmp_path):
    root = tmp_path / "proc"
    root.mkdir()
    (root / "stat").write_text(f"cpu  1 2 3 4\nbtime {BOOT}\nprocesses 9\n")
    (root / "self").mkdir()  # non-numeric entries are not processes
    return root


class Ticker:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_refresh_reads_every_field(proc):
    write_proc(
        proc,
        42,
        comm="my (weird) cmd",
        ppid=7,
        start_ticks=5 * HZ,
        cmdline=("/bin/my", "", "--flag=a b"),
        uid=(1000, 0),
        gid=(100, 0),
        cgroup=f"0::/system.slice/docker-{CID}.scope\n",
        exe="/opt/bin/my",
    )
    store = WorkloadStore(str(proc))
    store.refresh()
    p = store.process(42)
    assert p is not None
    assert (p.pid, p.ppid, p.comm, p.exe) == (42, 7, "my (weird) cmd", "/opt/bin/my")
    assert p.cmdline == ("/bin/my", "", "--flag=a b")
    assert (p.uid, p.euid, p.gid, p.egid) == (1000, 0, 100, 0)
    assert p.start_time == BOOT + 5
    assert (p.container_id, p.container_runtime) == (CID, "docker")
    assert p.cgroup == f"/system.slice/docker-{CID}.scope"
    assert p.sources == frozenset({"procfs"})


def test_kernel_thread_without_exe_or_cmdline(proc):
    write_proc(proc, 2, comm="kthreadd", ppid=0, cmdline=(), exe=None, cgroup="0::/\n")
    store = WorkloadStore(str(proc))
    store.refresh()
    p = store.process(2)
    assert (p.exe, p.cmdline, p.container_id, p.cgroup) == ("", (), "", "/")


def test_process_vanishing_mid_read_is_counted_not_fatal(proc):
    write_proc(proc, 10)
    gone = proc / "11"
    gone.mkdir()
    (gone / "stat").write_text(stat_line(11, "gone", 1, 1))  # status etc. already gone
    (proc / "12").mkdir()  # listed, then everything vanished
    store = WorkloadStore(str(proc))
    store.refresh()
    assert [p.pid for p in store.processes()] == [10]
    stats = store.stats()
    assert (stats["vanished"], stats["unreadable"], stats["refreshes"]) == (2, 0, 1)


def test_malformed_stat_is_counted_with_the_file_named(proc):
    write_proc(proc, 10)
    bad = write_proc(proc, 13)
    (bad / "stat").write_text("13 no parentheses here\n")
    store = WorkloadStore(str(proc))
    store.refresh()
    assert [p.pid for p in store.processes()] == [10]
    stats = store.stats()
    assert stats["unreadable"] == 1
    assert stats["last_error"] == f"{proc}/13: ValueError: substring not found"


def test_refresh_removes_exited_and_adds_new(proc):
    import shutil

    write_proc(proc, 10)
    write_proc(proc, 11, cgroup=f"12:memory:/docker/{CID}\n0::/\n")
    clock = Ticker()
    store = WorkloadStore(str(proc), clock=clock)
    store.refresh()
    assert [c.id for c in store.containers()] == [CID]
    assert store.containers()[0].first_seen == 1000.0
    shutil.rmtree(proc / "11")
    write_proc(proc, 20)
    clock.now = 2000.0
    store.refresh()
    assert [p.pid for p in store.processes()] == [10, 20]
    assert store.containers() == []
    assert store.stats()["last_refresh"] == 2000.0


def test_events_set_and_remove_processes_and_containers(proc):
    clock = Ticker()
    store = WorkloadStore(str(proc), clock=clock)
    info = store.set_process(
        500,
        ppid=1,
        comm="nginx",
        exe="/usr/sbin/nginx",
        cmdline=["nginx", "-g", "daemon off;"],
        uid=33,
        gid=33,
        start_time=1234.5,
        cgroup=f"/kubepods.slice/kubepods-besteffort.slice/"
        f"kubepods-besteffort-pod{POD.replace('-', '_')}.slice/cri-containerd-{CID}.scope",
    )
    assert (info.container_id, info.container_runtime, info.pod_uid) == (CID, "containerd", POD)
    assert (info.euid, info.egid) == (33, 33)
    store.set_process(501, ppid=500, comm="nginx", container_id=CID)
    [container] = store.containers()
    assert (container.id, container.pids, container.runtime, container.pod_uid) == (
        CID,
        (500, 501),
        "containerd",
        POD,
    )
    assert store.remove_process(500) is True
    assert store.remove_process(500) is False
    assert store.containers()[0].pids == (501,)
    store.remove_process(501)
    assert store.containers() == []


def test_events_keep_first_seen_and_the_container_count(proc):
    clock = Ticker()
    store = WorkloadStore(str(proc), clock=clock)
    store.set_process(500, container_id=CID)
    clock.now = 1500.0
    store.set_process(501, container_id=CID)  # joins a known container: first_seen stays
    store.set_process(502)  # not in a container
    assert [(c.id, c.first_seen) for c in store.containers()] == [(CID, 1000.0)]
    store.set_process(501, container_id=CID2)  # the same pid, now in another container
    assert [(c.id, c.first_seen) for c in store.containers()] == [(CID, 1000.0), (CID2, 1500.0)]
    assert store.stats()["containers"] == 2
    store.set_process(500)  # the last process of CID leaves it
    assert [c.id for c in store.containers()] == [CID2]
    assert store.stats()["containers"] == 1
    clock.now = 2000.0
    store.set_process(500, container_id=CID)  # a container seen again is new again
    assert store.containers()[0].first_seen == 2000.0
    store.remove_process(500)
    store.remove_process(501)
    assert store.containers() == []
    assert store.stats()["containers"] == 0


def test_refresh_merges_sources_of_the_same_process(proc):
    write_proc(proc, 10, start_ticks=3 * HZ)
    store = WorkloadStore(str(proc))
    store.set_process(10, comm="sleep", start_time=BOOT + 3)
    store.refresh()
    assert store.process(10).sources == frozenset({"procfs", "runtime_security"})
    # Same pid, another process (pid reuse): the scan replaces it.
    store.set_process(10, comm="other", start_time=BOOT + 99)
    assert store.process(10).sources == frozenset({"runtime_security"})


def test_events_during_a_scan_win_over_what_the_scan_read(proc, monkeypatch):
    write_proc(proc, 10)
    write_proc(proc, 11)
    store = WorkloadStore(str(proc))
    import plugins.workloadmeta.store as store_module

    real_read = store_module.read_process

    def read_and_race(root, pid, boot, source):
        info = real_read(root, pid, boot, source)
        if pid == 11:
            # Events arrive while the scan is still reading.
            store.remove_process(10)
            store.set_process(11, comm="exec-ed", exe="/bin/new")
            store.set_process(99, comm="born")
        return info

    monkeypatch.setattr(store_module, "read_process", read_and_race)
    store.refresh()
    assert [p.pid for p in store.processes()] == [11, 99]
    assert store.process(11).comm == "exec-ed"
    # The next scan has nothing newer to respect and reflects procfs again.
    monkeypatch.setattr(store_module, "read_process", real_read)
    store.refresh()
    assert [p.pid for p in store.processes()] == [10, 11]
    assert store.process(11).comm == "sleep"


def test_dump_shape_short_and_verbose(proc):
    write_proc(
        proc,
        42,
        comm="redis-server",
        ppid=7,
        start_ticks=0,
        cmdline=("redis-server", "*:6379"),
        uid=(999, 999),
        gid=(999, 999),
        cgroup=f"0::/machine.slice/libpod-{CID}.scope/container\n",
        exe="/usr/bin/redis-server",
    )
    write_proc(proc, 1, comm="init", ppid=0, uid=(0, 0), gid=(0, 0), cgroup="0::/init.scope\n")
    store = WorkloadStore(str(proc), clock=lambda: 0.0)
    store.refresh()
    store.set_process(42, comm="redis-server", ppid=7, uid=999, gid=999, cgroup="/x")
    short = store.dump(verbose=False)
    assert short == {
        "entities": {
            "process": {
                "infos": {
                    "sources(merged):[procfs] id: 1": "PID: 1 PPID: 0 Comm: init UID: 0",
                    "sources(merged):[procfs runtime_security] id: 42": (
                        "PID: 42 PPID: 7 Comm: redis-server UID: 999"
                    ),
                }
            },
            "container": {"infos": {}},
        }
    }
    store.refresh()  # procfs knows the container
    verbose = store.dump(verbose=True)
    infos = verbose["entities"]["process"]["infos"]
    assert infos["sources(merged):[procfs runtime_security] id: 42"] == (
        "----------- Entity ID -----------\n"
        "Kind: process ID: 42\n"
        "----------- Entity Meta -----------\n"
        "Sources: procfs, runtime_security\n"
        "----------- Process Info -----------\n"
        "PID: 42\n"
        "PPID: 7\n"
        "Comm: redis-server\n"
        "Exe: /usr/bin/redis-server\n"
        "Cmdline: redis-server *:6379\n"
        "UID: 999 (effective 999)\n"
        "GID: 999 (effective 999)\n"
        "Start Time: 2023-11-14T22:13:20Z\n"
        f"Container ID: {CID}\n"
        f"Cgroup: /machine.slice/libpod-{CID}.scope/container\n"
    )
    assert verbose["entities"]["container"]["infos"] == {
        f"sources(merged):[procfs runtime_security] id: {CID}": (
            "----------- Entity ID -----------\n"
            f"Kind: container ID: {CID}\n"
            "----------- Entity Meta -----------\n"
            "Sources: procfs, runtime_security\n"
            "----------- Container Info -----------\n"
            "Runtime: podman\n"
            "Pod UID: \n"
            f"Cgroup: /machine.slice/libpod-{CID}.scope/container\n"
            "PIDs: 42\n"
            "First Seen: 1970-01-01T00:00:00Z\n"
        )
    }
    assert store.dump(verbose=False)["entities"]["container"]["infos"] == {
        f"sources(merged):[procfs runtime_security] id: {CID}": "Runtime: podman PIDs: 1"
    }


def test_concurrent_refresh_and_events_stay_consistent(proc):
    for pid in range(100, 140):
        write_proc(proc, pid, cgroup=f"0::/docker/{CID2}\n")
    store = WorkloadStore(str(proc))
    errors = []

    def refresher():
        try:
            for _ in range(20):
                store.refresh()
        except Exception as exc:
            errors.append(exc)

    thread = threading.Thread(target=refresher)
    thread.start()
    for i in range(400):
        store.set_process(1000 + i % 7, comm="evt", container_id=CID)
        store.dump(verbose=i % 2 == 0)
        store.remove_process(1000 + (i + 3) % 7)
    thread.join()
    assert errors == []
    # A scan that starts after the events reflects procfs alone: the event-only processes
    # (never in this fake procfs) are gone, and so is their container.
    store.refresh()
    assert [p.pid for p in store.processes()] == list(range(100, 140))
    assert [(c.id, c.pids) for c in store.containers()] == [(CID2, tuple(range(100, 140)))]


def test_real_proc_finds_this_test_process():
    store = WorkloadStore()
    store.refresh()
    me = store.process(os.getpid())
    assert me is not None
    assert me.ppid == os.getppid()
    assert me.uid == os.getuid()
    assert me.euid == os.geteuid()
    assert me.gid == os.getgid()
    # python -m pytest ...: the interpreter's own arguments come first, then sys.argv[1:].
    assert me.cmdline[len(me.cmdline) - len(sys.argv) + 1 :] == tuple(sys.argv[1:])
    assert me.exe == os.path.realpath(sys.executable)
    with open(f"/proc/{os.getpid()}/comm") as f:
        assert me.comm == f.read().rstrip("\n")
    with open("/proc/self/cgroup") as f:
        ref = container_from_cgroup_file(f.read())
    assert me.container_id == (ref.id if ref else "")
    assert store.process(1) is not None
    assert store.stats()["processes"] == len(store.processes()) > 1


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (f"/docker/{CID}", (CID, "docker", "")),
        (f"/system.slice/docker-{CID}.scope", (CID, "docker", "")),
        (f"/system.slice/docker-{CID}.scope/init.scope", (CID, "docker", "")),
        (f"/kubepods/burstable/pod{POD}/{CID}", (CID, "", POD)),
        (
            f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod"
            f"{POD.replace('-', '_')}.slice/cri-containerd-{CID}.scope",
            (CID, "containerd", POD),
        ),
        (
            f"/kubepods.slice/kubepods-pod{POD.replace('-', '_')}.slice/crio-{CID}.scope",
            (CID, "cri-o", POD),
        ),
        (f"/machine.slice/libpod-{CID}.scope", (CID, "podman", "")),
        (
            f"/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{CID}.scope/container",
            (CID, "podman", ""),
        ),
        (f"/libpod_parent/{CID}", (CID, "podman", "")),
        (f"/system.slice/nerdctl-{CID}.scope", (CID, "containerd", "")),
        (f"/default/{CID}", (CID, "containerd", "")),
        (f"/system.slice/crio-{CID}.scope", (CID, "cri-o", "")),
    ],
)
def test_container_ids_from_cgroup_paths(path, expected):
    ref = container_from_path(path)
    assert ref is not None
    assert (ref.id, ref.runtime, ref.pod_uid) == expected
    assert ref.cgroup_path == path


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/user.slice/user-1000.slice/session-3.scope",
        "/system.slice/sshd.service",
        f"/machine.slice/libpod-conmon-{CID}.scope",  # podman's monitor, outside the container
        "/process_api/d073808b49df9388bce5356873391eed",  # 32 hex digits: not a container id
        f"/docker/{CID[:-1]}",
        f"/docker/{CID.upper()}",
    ],
)
def test_host_cgroups_have_no_container(path):
    assert container_from_path(path) is None


def test_cgroup_file_first_container_line_wins():
    text = f"12:pids:/\n11:memory:/docker/{CID}\n0::/\nbroken line\n"
    ref = container_from_cgroup_file(text)
    assert (ref.id, ref.runtime, ref.cgroup_path) == (CID, "docker", f"/docker/{CID}")
    assert container_from_cgroup_file("0::/\n1:name=systemd:/init.scope\n") is None
