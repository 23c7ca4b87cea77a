"""The workload list follows runtime security's process events between /proc scans."""

from __future__ import annotations

from support import FakeReactor, make_agent

from plugins.ipc_api.workloads import WorkloadRefresher


def test_exec_and_exit_events_update_the_store(tmp_path):
    proc = tmp_path / "proc"
    proc.mkdir()  # an empty /proc: only events populate the store
    agent = make_agent(FakeReactor(), [], tmp_path=tmp_path)
    agent.workers.start()
    refresher = WorkloadRefresher(agent, proc_root=str(proc))
    refresher.start()
    refresher.on_process_event(
        {
            "type": "exec",
            "process": {
                "pid": 4242,
                "ppid": 1,
                "comm": "nginx",
                "uid": 33,
                "gid": 33,
                "file": {"path": "/usr/sbin/nginx"},
                "argv0": "nginx",
                "argv": ["-g", "daemon off;"],
                "container": {"id": "0123456789ab" * 5 + "0123"},
            },
        }
    )
    dump = refresher.dump(verbose=False)
    (info,) = dump["entities"]["process"]["infos"].values()
    assert "PID: 4242" in info
    assert "Comm: nginx" in info
    assert dump["entities"]["container"]["infos"]
    verbose = "\n".join(refresher.dump(verbose=True)["entities"]["process"]["infos"].values())
    assert "nginx -g daemon off;" in verbose
    refresher.on_process_event({"type": "exit", "process": {"pid": 4242}})
    assert refresher.dump(verbose=False)["entities"]["process"]["infos"] == {}
    refresher.on_process_event({"type": "exec", "process": {}})  # malformed: ignored
    refresher.stop(1.0)
