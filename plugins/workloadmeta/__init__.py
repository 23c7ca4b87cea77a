"""The workload store shared by the plugins that show or use processes and containers.

A library, not a plugin (no entry point): the ``ipc_api`` plugin serves
``GET /agent/workload-list`` from it and runtime security feeds it process events::

    from plugins.workloadmeta import WorkloadStore

    store = WorkloadStore()                      # reads /proc
    agent.workers.defer(store.refresh)           # blocking scan, in a worker thread
    store.set_process(4242, ppid=1, comm="nginx", exe="/usr/sbin/nginx",
                      cgroup="/system.slice/docker-<64 hex>.scope")
    store.remove_process(4242)
    store.dump(verbose=False)
    # {"entities": {"process": {"infos": {"sources(merged):[procfs] id: 1": "PID: 1 ..."}},
    #               "container": {"infos": {...}}}}

Container ids come from cgroup paths (:mod:`plugins.workloadmeta.cgroups`).
"""

from __future__ import annotations

from plugins.workloadmeta.cgroups import (
    ContainerRef,
    container_from_cgroup_file,
    container_from_path,
)
from plugins.workloadmeta.procfs import ProcessInfo, ProcessVanished, read_process
from plugins.workloadmeta.store import (
    EVENT_SOURCE,
    PROCFS_SOURCE,
    ContainerInfo,
    WorkloadStore,
    entity_key,
)

__all__ = [
    "EVENT_SOURCE",
    "PROCFS_SOURCE",
    "ContainerInfo",
    "ContainerRef",
    "ProcessInfo",
    "ProcessVanished",
    "WorkloadStore",
    "container_from_cgroup_file",
    "container_from_path",
    "entity_key",
    "read_process",
]
