"""Input resolvers: turn a rule's ``input`` entries into the Rego ``input`` document.

Each resolver returns the value put under the input's ``tag`` (a list for ``type: array``,
otherwise one object, or ``None`` when nothing was found). :class:`IncompatibleEnvironment`
means the rule does not apply here (it becomes ``skipped``); any other exception becomes an
``error`` finding carrying its message.
"""

from __future__ import annotations

import glob as globlib
import grp
import http.client
import json
import os
import pwd
import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from plugins.compliance import audit_rules, packages
from plugins.compliance.benchmark import Rule, RuleInput
from plugins.compliance.environment import HostEnv
from plugins.compliance.kube_apiserver import KubeClient, KubeError, KubeUnavailable, parse_query


class IncompatibleEnvironment(Exception):
    """The input cannot exist in this environment (no Docker daemon, not on Kubernetes)."""


class ResolveError(Exception):
    pass


@dataclass
class ProcessInfo:
    pid: int
    name: str
    exe: str
    cmdline: list[str]
    environ: dict[str, str] = field(default_factory=dict)

    def flags(self) -> dict[str, str]:
        """``--flag value`` and ``--flag=value`` pairs of the command line (``""`` for bare)."""
        out: dict[str, str] = {}
        args = self.cmdline[1:]
        i = 0
        while i < len(args):
            arg = args[i]
            if arg.startswith("-"):
                if "=" in arg:
                    key, _, value = arg.partition("=")
                    out[key] = value
                elif i + 1 < len(args) and not args[i + 1].startswith("-"):
                    out[arg] = args[i + 1]
                    i += 1
                else:
                    out[arg] = ""
            i += 1
        return out


def list_processes(proc_root: str) -> list[ProcessInfo]:
    procs: list[ProcessInfo] = []
    try:
        entries = os.listdir(proc_root)
    except OSError:
        return procs
    for entry in entries:
        if not entry.isdigit():
            continue
        base = os.path.join(proc_root, entry)
        try:
            with open(os.path.join(base, "cmdline"), "rb") as f:
                cmdline = [a.decode("utf-8", "replace") for a in f.read().split(b"\0") if a]
            with open(os.path.join(base, "comm"), encoding="utf-8", errors="replace") as f:
                name = f.read().strip()
        except OSError:
            continue  # the process ended while we looked
        try:
            exe = os.readlink(os.path.join(base, "exe"))
        except OSError:
            exe = ""
        if len(name) == 15 and cmdline:  # the kernel truncates comm to 15 characters
            full = os.path.basename(cmdline[0])
            if full.startswith(name):
                name = full
        procs.append(ProcessInfo(int(entry), name, exe, cmdline))
    return procs


def _read_environ(proc_root: str, pid: int) -> dict[str, str]:
    try:
        with open(os.path.join(proc_root, str(pid), "environ"), "rb") as f:
            raw = f.read()
    except OSError:
        return {}
    env: dict[str, str] = {}
    for item in raw.split(b"\0"):
        key, sep, value = item.decode("utf-8", "replace").partition("=")
        if sep:
            env[key] = value
    return env


_PATH_EXPR = re.compile(r"""^process\.flag\(\s*"([^"]+)"\s*,\s*"([^"]+)"\s*\)$""")


class Resolver:
    """Resolves the inputs of one rule against a :class:`HostEnv` (one instance per run)."""

    def __init__(self, env: HostEnv) -> None:
        self.env = env
        self._processes: list[ProcessInfo] | None = None
        self._packages: dict[str, packages.Package] | None = None
        self._audit: list[audit_rules.AuditWatch] | None = None
        self._tables: dict[str, list[list[str]]] = {}
        self._kube: KubeClient | None = None
        self.containers: dict[str, dict[str, str]] = {}
        """Containers the docker input listed this run, by id: their CheckEvent metadata."""
        self.kinds: dict[str, Callable[[RuleInput], Any]] = {
            "file": self.file,
            "process": self.process,
            "group": self.group,
            "package": self.package,
            "audit": self.audit,
            "constants": self.constants,
            "docker": self.docker,
            "kubeApiserver": self.kube_apiserver,
        }

    def resolve(self, rule: Rule, context: Mapping[str, Any]) -> dict[str, Any]:
        """The Rego input document of ``rule``: resolved inputs plus ``context``."""
        doc: dict[str, Any] = {}
        for rule_input in rule.inputs:
            if rule_input.tag == "context":
                raise ResolveError("the input tag `context` is reserved")
            value = self.kinds[rule_input.kind](rule_input)
            if value is None or value == []:
                if rule_input.array:
                    doc.setdefault(rule_input.tag, [])
                continue
            if rule_input.array and isinstance(doc.get(rule_input.tag), list):
                doc[rule_input.tag].extend(value)
            else:
                doc[rule_input.tag] = value
        doc["context"] = dict(context, input=dict(doc))
        return doc

    # --- processes -------------------------------------------------------------------------

    def processes(self) -> list[ProcessInfo]:
        if self._processes is None:
            self._processes = list_processes(self.env.proc_root)
        return self._processes

    def process(self, spec: RuleInput) -> Any:
        name = str(spec.spec.get("name") or "")
        wanted_envs = [str(e) for e in spec.spec.get("envs") or []]
        found: list[dict[str, Any]] = []
        for proc in self.processes():
            if proc.name != name:
                continue
            env = _read_environ(self.env.proc_root, proc.pid) if wanted_envs else {}
            found.append(
                {
                    "name": proc.name,
                    "pid": proc.pid,
                    "exe": proc.exe,
                    "cmdLine": proc.cmdline,
                    "flags": proc.flags(),
                    "envs": {k: env[k] for k in wanted_envs if k in env},
                }
            )
        found.sort(key=lambda p: p["pid"])
        if spec.array:
            return found
        return found[0] if found else None

    def expand_path(self, path: str) -> str | None:
        """A path or a path expression (``process.flag("dockerd", "--tlskey")``)."""
        m = _PATH_EXPR.match(path.strip())
        if m is None:
            return path
        for proc in self.processes():
            if proc.name == m.group(1):
                value = proc.flags().get(m.group(2))
                if value:
                    return value
        return None

    # --- files -----------------------------------------------------------------------------

    def _file_entry(self, host_path: str, parser: str) -> dict[str, Any]:
        local = self.env.path(host_path)
        st = (
            os.lstat(local)
            if os.path.islink(local) and not os.path.exists(local)
            else os.stat(local)
        )
        entry: dict[str, Any] = {
            "path": host_path,
            "permissions": st.st_mode & 0o7777,
            "user": self._user_name(st.st_uid),
            "group": self._group_name(st.st_gid),
            "uid": st.st_uid,
            "gid": st.st_gid,
            "type": _file_type(local),
        }
        if parser and os.path.isfile(local):
            with open(local, encoding="utf-8", errors="replace") as f:
                text = f.read()
            entry["content"] = _parse_content(text, parser, host_path)
        return entry

    def file(self, spec: RuleInput) -> Any:
        raw = str(spec.spec.get("glob") or spec.spec.get("path") or "")
        if not raw:
            raise ResolveError("file input needs a path or a glob")
        parser = str(spec.spec.get("parser") or "")
        if parser not in ("", "raw", "json", "yaml"):
            raise ResolveError(f"unknown file parser {parser!r}")
        expanded = self.expand_path(raw)
        if expanded is None:
            return [] if spec.array else None
        if globlib.has_magic(expanded):
            matches = sorted(globlib.glob(self.env.path(expanded)))
            paths = [self.env.strip_root(m) for m in matches]
        else:
            paths = [expanded] if os.path.lexists(self.env.path(expanded)) else []
        entries = []
        for path in paths:
            try:
                entries.append(self._file_entry(path, parser))
            except FileNotFoundError:
                continue  # removed since the glob listed it
        if spec.array:
            return entries
        return entries[0] if entries else None

    # --- users and groups (from the evaluated host's files, not this process's NSS) ---------

    def _table(self, name: str) -> list[list[str]]:
        # Read once per run: every file entry looks up its owner and group here.
        if name not in self._tables:
            try:
                with open(self.env.path(f"/etc/{name}"), encoding="utf-8", errors="replace") as f:
                    self._tables[name] = [
                        line.rstrip("\n").split(":")
                        for line in f
                        if line.strip() and not line.startswith("#")
                    ]
            except OSError:
                self._tables[name] = []
        return self._tables[name]

    def _user_name(self, uid: int) -> str:
        for row in self._table("passwd"):
            if len(row) > 2 and row[2] == str(uid):
                return row[0]
        if self.env.host_root in ("", "/"):
            try:
                return pwd.getpwuid(uid).pw_name
            except KeyError:
                pass
        return str(uid)

    def _group_name(self, gid: int) -> str:
        for row in self._table("group"):
            if len(row) > 2 and row[2] == str(gid):
                return row[0]
        if self.env.host_root in ("", "/"):
            try:
                return grp.getgrgid(gid).gr_name
            except KeyError:
                pass
        return str(gid)

    def group(self, spec: RuleInput) -> Any:
        name = str(spec.spec.get("name") or "")
        for row in self._table("group"):
            if row[0] == name and len(row) >= 4:
                users = [u for u in row[3].split(",") if u]
                value = {
                    "name": name,
                    "id": int(row[2]) if row[2].isdigit() else row[2],
                    "users": users,
                }
                return [value] if spec.array else value
        return [] if spec.array else None

    # --- packages --------------------------------------------------------------------------

    def installed_packages(self) -> dict[str, packages.Package]:
        if self._packages is None:
            self._packages = {}
            for db, reader in packages.DATABASES:
                local = self.env.path(db)
                if os.path.exists(local):
                    for pkg in reader(local):
                        self._packages.setdefault(pkg.name, pkg)
        return self._packages

    def package(self, spec: RuleInput) -> Any:
        names = [str(n) for n in spec.spec.get("names") or []]
        if spec.spec.get("name"):
            names.append(str(spec.spec["name"]))
        installed = self.installed_packages()
        found = [installed[n].as_dict() for n in names if n in installed]
        if spec.array:
            return found
        return found[0] if found else None

    # --- audit -----------------------------------------------------------------------------

    def audit(self, spec: RuleInput) -> Any:
        path = self.expand_path(str(spec.spec.get("path") or ""))
        if not path:
            return []
        if self._audit is None:
            try:
                self._audit = audit_rules.list_watches()
            except OSError as exc:
                raise ResolveError(
                    f"cannot list the kernel's audit rules: {exc.strerror}"
                ) from None
        return [
            {
                "path": w.path,
                "enabled": True,
                "permission.read": bool(w.permissions & audit_rules.PERM_READ),
                "permission.write": bool(w.permissions & audit_rules.PERM_WRITE),
                "permission.execute": bool(w.permissions & audit_rules.PERM_EXEC),
                "permission.attribute": bool(w.permissions & audit_rules.PERM_ATTR),
                "key": w.key,
            }
            for w in self._audit
            if w.path == path
        ]

    # --- the rest --------------------------------------------------------------------------

    def constants(self, spec: RuleInput) -> Any:
        return dict(spec.spec)

    def docker(self, spec: RuleInput) -> Any:
        socket_path = self.env.docker_socket_path()
        if not os.path.exists(socket_path):
            raise IncompatibleEnvironment(
                "no Docker daemon: " + self.env.docker_socket_name() + " does not exist"
            )
        kind = str(spec.spec.get("kind") or "")
        listing = {
            "info": "/info",
            "container": "/containers/json",
            "image": "/images/json",
            "network": "/networks",
        }
        if kind not in listing:
            raise ResolveError(f"unknown docker kind {kind!r}")
        result = _docker_get(socket_path, listing[kind])
        if kind == "info":
            return [{"id": result.get("ID", ""), "inspect": result}]
        items = []
        for item in result:
            ident = str(item.get("Id") or item.get("ID") or "")
            inspect = item
            if kind == "container":
                inspect = _docker_get(socket_path, f"/containers/{ident}/json")
                self.containers[ident] = container_meta(item, inspect)
            elif kind == "image":
                inspect = _docker_get(socket_path, f"/images/{ident}/json")
            items.append({"id": ident, "name": item.get("Name", ""), "inspect": inspect})
        return items

    def container_of(self, resource_id: str) -> dict[str, str] | None:
        """The CheckEvent ``container`` of a finding about a container this run resolved
        (by full id, or by an id prefix of at least 12 characters as ``docker ps`` shows)."""
        if resource_id in self.containers:
            return dict(self.containers[resource_id])
        if len(resource_id) >= 12:
            for ident, meta in self.containers.items():
                if ident.startswith(resource_id):
                    return dict(meta)
        return None

    def kube_apiserver(self, spec: RuleInput) -> Any:
        if not self.env.kubernetes:
            raise IncompatibleEnvironment("not running on Kubernetes")
        try:
            if self._kube is None:
                self._kube = KubeClient(self.env.kube_target)
            return self._kube.resolve(parse_query(spec.spec))
        except KubeUnavailable as exc:
            raise IncompatibleEnvironment(str(exc)) from None
        except KubeError as exc:
            raise ResolveError(str(exc)) from None


def split_image_reference(ref: str) -> tuple[str, str]:
    """``(name, tag)`` of an image reference: ``registry:5000/app:v1`` gives
    ``("registry:5000/app", "v1")``, ``nginx`` gives ``("nginx", "latest")``, a reference by
    digest (``app@sha256:...``) has no tag, and an image id (``sha256:...``) has no name."""
    if not ref or ref.startswith("sha256:"):
        return "", ""
    name, at, _digest = ref.partition("@")
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        return name[:colon], name[colon + 1 :]
    return name, "" if at else "latest"


def container_meta(listed: Mapping[str, Any], inspect: Any) -> dict[str, str]:
    """The CheckEvent ``container`` object of one container: from its inspect document
    (``Image`` is the image id, ``Config.Image`` the reference it was started from), falling
    back on the listing's ``ImageID``/``Image``."""
    inspect = inspect if isinstance(inspect, Mapping) else {}
    config = inspect.get("Config") if isinstance(inspect.get("Config"), Mapping) else {}
    ref = str(config.get("Image") or listed.get("Image") or "")
    name, tag = split_image_reference(ref)
    return {
        "container_id": str(inspect.get("Id") or listed.get("Id") or ""),
        "image_id": str(inspect.get("Image") or listed.get("ImageID") or ""),
        "image_name": name,
        "image_tag": tag,
    }


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=10)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(10)
        sock.connect(self._path)
        self.sock = sock


def _docker_get(socket_path: str, url: str) -> Any:
    conn = _UnixHTTPConnection(socket_path)
    try:
        try:
            conn.request("GET", url)
            response = conn.getresponse()
            body = response.read()
        except OSError as exc:
            raise IncompatibleEnvironment(f"no Docker daemon on {socket_path}: {exc}") from None
        if response.status != 200:
            raise ResolveError(f"docker API {url}: HTTP {response.status}")
        return json.loads(body)
    finally:
        conn.close()


def _parse_content(text: str, parser: str, path: str) -> Any:
    if parser == "raw":
        return text
    try:
        if parser == "json":
            return json.loads(text)
        return yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ResolveError(f"cannot parse {path} as {parser}: {exc}") from None


def _file_type(local: str) -> str:
    if os.path.isdir(local):
        return "dir"
    if os.path.isfile(local):
        return "file"
    if os.path.islink(local):
        return "symlink"  # a dangling link: lstat's 0777 says nothing about the target
    return "other"
