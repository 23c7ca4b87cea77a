"""Finding the container a process runs in from the paths in ``/proc/<pid>/cgroup``.

Container runtimes name a container's cgroup after its 64-hex-digit id, in one of a few
layouts (cgroup v1 hierarchies and the unified v2 one look alike for this purpose)::

    /docker/<id>                                              docker, cgroupfs driver
    /system.slice/docker-<id>.scope                           docker, systemd driver
    /kubepods/burstable/pod<uid>/<id>                         kubelet, cgroupfs driver
    /kubepods.slice/.../kubepods-besteffort-pod<uid>.slice/cri-containerd-<id>.scope
    /kubepods.slice/.../crio-<id>.scope                       cri-o
    /machine.slice/libpod-<id>.scope[/container]              podman (rootful or rootless)
    /system.slice/nerdctl-<id>.scope, /default/<id>           containerd (nerdctl, ctr)

The id is the last path component that looks like one, so nested cgroups a runtime creates
below the container (``.../libpod-<id>.scope/container``, ``init.scope``) still resolve. A
``libpod-conmon-<id>.scope`` holds podman's monitor, which is not inside the container, so it
is deliberately not matched.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

_ID = r"[0-9a-f]{64}"
_SCOPED = re.compile(rf"^(docker|cri-containerd|crio|libpod|nerdctl)-({_ID})(?:\.scope)?$")
_BARE = re.compile(rf"^({_ID})$")
_POD = re.compile(r"pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})")

_RUNTIME_OF_PREFIX = {
    "docker": "docker",
    "cri-containerd": "containerd",
    "crio": "cri-o",
    "libpod": "podman",
    "nerdctl": "containerd",
}


@dataclass(frozen=True)
class ContainerRef:
    """The container a cgroup path points at.

    ``runtime`` is ``docker``, ``containerd``, ``cri-o``, ``podman`` or ``""`` when the layout
    does not say (a kubelet cgroupfs path holds only the bare id); ``pod_uid`` is the
    Kubernetes pod UID when the path is under ``kubepods``.
    """

    id: str
    runtime: str
    cgroup_path: str
    pod_uid: str = ""


def _runtime_of_parents(parents: list[str]) -> str:
    # A bare id: the directory above it names the runtime when there is one.
    for part in reversed(parents):
        if part == "docker":
            return "docker"
        if part == "libpod_parent":
            return "podman"
        if part.startswith("crio"):
            return "cri-o"
        if part == "default" or part.startswith("containerd"):
            return "containerd"
    return ""


@functools.lru_cache(maxsize=1024)
def container_from_path(path: str) -> ContainerRef | None:
    """The container named by one cgroup path, or ``None`` for a host cgroup. Memoised: a
    host has few cgroups and process events ask for the same ones over and over."""
    parts = [p for p in path.split("/") if p]
    for index in range(len(parts) - 1, -1, -1):
        part = parts[index]
        scoped = _SCOPED.match(part)
        if scoped is not None:
            runtime, cid = _RUNTIME_OF_PREFIX[scoped.group(1)], scoped.group(2)
        else:
            bare = _BARE.match(part)
            if bare is None:
                continue
            cid, runtime = bare.group(1), _runtime_of_parents(parts[:index])
        pod = _POD.search("/".join(parts[:index]))
        pod_uid = pod.group(1).replace("_", "-") if pod is not None else ""
        return ContainerRef(cid, runtime, path, pod_uid)
    return None


def container_from_cgroup_file(text: str) -> ContainerRef | None:
    """The container named in the content of a ``/proc/<pid>/cgroup`` file.

    Each line is ``hierarchy-id:controllers:path``; the first line naming a container wins
    (all of a containerised process's hierarchies name the same one).
    """
    for line in text.splitlines():
        fields = line.split(":", 2)
        if len(fields) != 3:
            continue
        ref = container_from_path(fields[2])
        if ref is not None:
            return ref
    return None


def unified_path(text: str) -> str:
    """The cgroup path to show for a process: the v2 (``0::``) one, else the first v1 path."""
    first = ""
    for line in text.splitlines():
        fields = line.split(":", 2)
        if len(fields) != 3:
            continue
        if fields[0] == "0" and fields[1] == "":
            return fields[2]
        first = first or fields[2]
    return first
