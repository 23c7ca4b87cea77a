"""What rules are evaluated against: the host (or a mounted host root) and its OS identity.

Every resolver reads files through :meth:`HostEnv.path`, so tests (and containerised agents
with the host mounted at ``/host``) point the whole plugin at another root.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from plugins.compliance.kube_apiserver import KubeTarget


def parse_os_release(text: str) -> dict[str, str]:
    """``KEY=value`` lines of ``os-release(5)``, quotes removed, keys lower-cased."""
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key.strip().lower()] = value
    return values


@dataclass
class HostEnv:
    """The evaluated host: ``host_root`` prefix for files, ``proc_root`` for processes."""

    hostname: str
    host_root: str = "/"
    proc_root: str = "/proc"
    docker_socket: str = "/var/run/docker.sock"
    docker_host: str = ""
    """``unix:///path`` (``compliance_config.docker_host``, ``DOCKER_HOST``): the Docker API
    socket as this process sees it, instead of ``docker_socket`` under ``host_root``."""
    kubernetes: bool = False
    kube_target: KubeTarget = field(default_factory=KubeTarget)
    """The API server and the pod's credentials for the ``kubeApiserver`` input."""
    os_release: dict[str, str] = field(default_factory=dict)
    xccdf_enabled: bool = False
    ssg_content_dir: str = "/usr/share/xml/scap/ssg/content"

    def path(self, path: str) -> str:
        """``path`` of the evaluated host as seen from this process."""
        if self.host_root in ("", "/"):
            return path
        return os.path.join(self.host_root, path.lstrip("/"))

    def strip_root(self, path: str) -> str:
        """The inverse of :meth:`path`: the path as the evaluated host names it."""
        if self.host_root in ("", "/"):
            return path
        root = self.host_root.rstrip("/")
        return path[len(root) :] or "/" if path.startswith(root + "/") or path == root else path

    def docker_socket_path(self) -> str:
        """Where this process connects to reach the evaluated host's Docker daemon."""
        if self.docker_host:
            return self.docker_host.removeprefix("unix://")
        return self.path(self.docker_socket)

    def docker_socket_name(self) -> str:
        """The socket as messages name it: the configured one, or the host's path."""
        return self.docker_host.removeprefix("unix://") or self.docker_socket

    def load_os_release(self) -> None:
        for candidate in ("/etc/os-release", "/usr/lib/os-release"):
            try:
                with open(self.path(candidate), encoding="utf-8") as f:
                    self.os_release = parse_os_release(f.read())
                return
            except OSError:
                continue


def docker_host_problem(value: str) -> str | None:
    """Why ``value`` is not a usable ``docker_host``, or ``None`` when it is (or is empty)."""
    if not value:
        return None
    if not value.startswith("unix://"):
        return f"only unix:// sockets are supported, got {value!r}"
    if not value.removeprefix("unix://").startswith("/"):
        return f"the socket path must be absolute, got {value!r}"
    return None
