"""The workload store behind ``/agent/workload-list``, refreshed on a schedule.

The store itself belongs to ``plugins.workloadmeta`` (a library); this plugin owns one
instance, refreshes it every :data:`REFRESH_INTERVAL` seconds in the worker pool (reading
``/proc`` blocks) and serves its dump.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from twisted.logger import Logger

if TYPE_CHECKING:
    from host.agent import Agent
    from host.scheduler import Job

log = Logger(namespace="ipc_api")

REFRESH_INTERVAL = 30.0
JOB_NAME = "ipc_api.workloads"


class WorkloadRefresher:
    def __init__(self, agent: Agent, proc_root: str = "/proc") -> None:
        self.agent = agent
        self.proc_root = proc_root
        self.store: Any = None
        self.unavailable: str | None = None
        self.job: Job | None = None

    def start(self) -> None:
        try:
            module = importlib.import_module("plugins.workloadmeta")
            self.store = module.WorkloadStore(proc_root=self.proc_root)
        except Exception as exc:
            self.unavailable = f"{type(exc).__name__}: {exc}"
            log.warn("The workload list is unavailable: {error}", error=self.unavailable)
            return
        self.job = self.agent.scheduler.add(
            JOB_NAME, self.store.refresh, interval=REFRESH_INTERVAL, blocking=True
        )
        self.job.start()
        # The first refresh now, so the list is not empty for the first 30 seconds; through
        # the job, so it is counted, never overlaps a scheduled one and stop waits for it.
        self.job.fire()

    def on_process_event(self, event: Mapping[str, Any]) -> None:
        """Follow runtime security's process events between two /proc scans."""
        if self.store is None:
            return
        process = event.get("process") or {}
        pid = process.get("pid")
        if not isinstance(pid, int) or pid <= 0:
            return
        if event.get("type") == "exit":
            self.store.remove_process(pid)
            return
        argv0 = process.get("argv0")
        argv = [argv0, *process.get("argv", [])] if argv0 else list(process.get("argv", []))
        self.store.set_process(
            pid,
            ppid=int(process.get("ppid") or 0),
            comm=str(process.get("comm") or ""),
            exe=str((process.get("file") or {}).get("path") or ""),
            cmdline=[str(a) for a in argv],
            uid=int(process.get("uid") or 0),
            gid=int(process.get("gid") or 0),
            container_id=str((process.get("container") or {}).get("id") or ""),
            cgroup=str(process.get("cgroup") or ""),
        )

    def dump(self, verbose: bool) -> Any:
        if self.store is None:
            raise RuntimeError(f"the workload store is not available ({self.unavailable})")
        return self.store.dump(verbose)

    def stop(self, timeout: float) -> Any:
        job, self.job = self.job, None
        if job is None:
            return None
        self.agent.scheduler.remove(JOB_NAME)
        return job.stop(timeout)
