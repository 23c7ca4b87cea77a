"""What rules are evaluated against: the host (or a mounted host root) and its OS identity.

Every resolver reads files through :meth:`HostEnv.path`, so tests (and containerised agents
with the host mounted at ``/host``) point the whole plugin at another root.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field


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
    kubernetes: bool = False
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

    def load_os_release(self) -> None:
        for candidate in ("/etc/os-release", "/usr/lib/os-release"):
            try:
                with open(self.path(candidate), encoding="utf-8") as f:
                    self.os_release = parse_os_release(f.read())
                return
            except OSError:
                continue


def detect_kubernetes(environ: dict[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return bool(env.get("KUBERNETES_SERVICE_HOST"))
