"""What goes into a flare: each ``add_*`` function gathers one part into a :class:`Contents`.

Nothing here raises for a part that cannot be collected: the reason is recorded with
:meth:`Contents.error` and ends up in ``flare_errors.log``. Contents are raw; the archive
writer scrubs every file.
"""

from __future__ import annotations

import json
import os
import platform
import stat
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import TYPE_CHECKING, Any

import yaml

from host import flare_files
from plugins.flare.reading import UnreadableFile, read_regular_file
from plugins.scrubber import scrub_data

if TYPE_CHECKING:
    from host.agent import Agent

MAX_LOG_BYTES = 32 * 1024 * 1024
"""Per log file; a longer log keeps its end, where the problem usually is."""
MAX_LOG_ROTATIONS = 20
MAX_CONFIG_BYTES = 4 * 1024 * 1024
MAX_DIRECTORY_FILE_BYTES = 2 * 1024 * 1024
"""Per file of a policy or benchmark directory."""
MAX_DIRECTORY_BYTES = 16 * 1024 * 1024
"""Per policy or benchmark directory, all files together."""

DIRECTORIES = (
    # (config key, folder in the archive) as in Datadog's security-agent flare.
    ("runtime_security_config.policies.dir", "runtime-security.d"),
    ("compliance_config.dir", "compliance.d"),
)


@dataclass
class Contents:
    """Files for the archive (relative name to raw bytes) and what could not be collected."""

    files: dict[str, bytes] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def add(self, name: str, content: bytes | str) -> None:
        """Add one file; a name already taken keeps its first content and notes the clash."""
        if name in self.files:
            self.error(f"{name}: added twice, the first one is kept")
            return
        self.files[name] = content.encode() if isinstance(content, str) else content

    def error(self, message: str) -> None:
        self.errors.append(message)

    def add_file(self, name: str, path: str, cap: int, *, keep_tail: bool = False) -> None:
        """Add the file at ``path`` as ``name``; an unreadable file is an error, not fatal."""
        try:
            content = read_regular_file(path, cap, keep_tail=keep_tail)
        except UnreadableFile as error:
            self.error(f"{name}: {error}")
            return
        if content.truncated:
            part = "last" if keep_tail else "first"
            self.error(
                f"{name}: {path} is {content.size} bytes, only the {part} {cap} are included"
            )
        self.add(name, content.data)


def _dumps(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str) + "\n"


def add_host_files(contents: Contents, agent: Agent) -> None:
    """Status (JSON and text), plugins, runtime settings and every plugin's flare files.

    A failure raises: :func:`~plugins.flare.archive.create_archive` notes it and goes on."""
    builder = flare_files.collect_flare_files(agent)
    for name, data in builder.files.items():
        contents.add(name, data)
    for message in builder.errors:
        contents.error(message)


def add_logs(contents: Contents, agent: Agent) -> None:
    """``security_agent.log_file`` and its rotations ``<file>.1``, ``<file>.2``..."""
    path = agent.config.get_str("security_agent.log_file")
    if not path:
        return
    base = os.path.basename(path)
    if not os.path.lexists(path) and agent.config.get_bool("disable_file_logging"):
        return  # no log file is expected: nothing is missing
    contents.add_file(f"logs/{base}", path, MAX_LOG_BYTES, keep_tail=True)
    for number in range(1, MAX_LOG_ROTATIONS + 1):
        rotated = f"{path}.{number}"
        if not os.path.lexists(rotated):
            break
        contents.add_file(f"logs/{base}.{number}", rotated, MAX_LOG_BYTES, keep_tail=True)


def add_config_files(contents: Contents, agent: Agent) -> None:
    """Every config file loaded (the agent's, then system-probe's), under ``etc/``."""
    seen: set[str] = set()
    for path in [*agent.config.files, *agent.sysprobe_config.files]:
        base = os.path.basename(path)
        name = base
        number = 2
        while name in seen:  # two -c files may share a base name
            stem, dot, suffix = base.rpartition(".")
            name = f"{stem}-{number}.{suffix}" if dot else f"{base}-{number}"
            number += 1
        seen.add(name)
        contents.add_file(f"etc/{name}", path, MAX_CONFIG_BYTES)


def add_effective_config(contents: Contents, agent: Agent) -> None:
    """The merged configuration (defaults, files, environment, runtime), as the agent sees it."""
    contents.add(
        "config_effective.yaml",
        yaml.safe_dump(agent.config.as_dict(), default_flow_style=False, sort_keys=True),
    )


def add_health(contents: Contents, agent: Agent) -> None:
    try:
        status = agent.health.get_ready_nonblocking()
    except Exception as error:
        contents.error(f"health.json: {error}")
        return
    contents.add("health.json", _dumps(status.to_json()))


def add_expvar(contents: Contents, agent: Agent) -> None:
    """Every published variable, each getter called; a failing one is noted, not fatal."""
    values: dict[str, Any] = {}
    for name, getter in sorted(agent.published.items()):
        try:
            values[name] = getter()
        except Exception as error:
            values[name] = f"<error: {error}>"
            contents.error(f"expvar.json: variable {name}: {type(error).__name__}: {error}")
    contents.add("expvar.json", _dumps(values))


def add_environment(contents: Contents, environ: Mapping[str, str]) -> None:
    """``DD_*`` variables; values of sensitive-looking names are hidden by name as well."""
    lines = ["Found the following environment variables:"]
    for name in sorted(n for n in environ if n.startswith("DD_")):
        # DD_API_KEY reads as api_key: the same key rules as in config files apply.
        key = name[3:].lower()
        value = scrub_data({key: environ[name]})[key]
        lines.append(f"  - {name}={value}")
    contents.add("envvars.log", "\n".join(lines) + "\n")


def _directory_setting(agent: Agent, key: str) -> str | None:
    configs = (agent.sysprobe_config, agent.config)
    if not any(config.schema.is_declared(key) for config in configs):
        return None
    for config in configs:
        if config.is_set(key):
            return config.get_str(key) or None
    for config in configs:
        if config.schema.is_declared(key):
            return config.get_str(key) or None
    return None


def add_directories(contents: Contents, agent: Agent) -> None:
    """The runtime security policies and compliance benchmarks, symlinks skipped."""
    for key, folder in DIRECTORIES:
        directory = _directory_setting(agent, key)
        if directory is None:
            continue
        if not os.path.isdir(directory):
            contents.error(f"{folder}: {key} {directory} is not a directory")
            continue
        _add_directory(contents, directory, folder)


def _add_directory(contents: Contents, root: str, folder: str) -> None:
    total = 0

    def walk_error(error: OSError) -> None:
        contents.error(f"{folder}: cannot list {error.filename}: {error.strerror or error}")

    for current, dirs, files in os.walk(root, onerror=walk_error):
        for entry in sorted(dirs):  # os.walk does not enter symlinked dirs, but say so
            if os.path.islink(os.path.join(current, entry)):
                contents.error(f"{folder}: skipped symlink {os.path.join(current, entry)}")
        dirs.sort()
        for entry in sorted(files):
            path = os.path.join(current, entry)
            relative = os.path.relpath(path, root)
            try:
                info = os.lstat(path)
            except OSError as error:
                contents.error(f"{folder}/{relative}: cannot read {path}: {error.strerror}")
                continue
            if stat.S_ISLNK(info.st_mode):
                contents.error(f"{folder}: skipped symlink {path}")
                continue
            if total + min(info.st_size, MAX_DIRECTORY_FILE_BYTES) > MAX_DIRECTORY_BYTES:
                contents.error(
                    f"{folder}/{relative}: skipped, the folder is over {MAX_DIRECTORY_BYTES} bytes"
                )
                continue
            total += min(info.st_size, MAX_DIRECTORY_FILE_BYTES)
            contents.add_file(f"{folder}/{relative}", path, MAX_DIRECTORY_FILE_BYTES)


def add_system_info(contents: Contents) -> None:
    """OS, kernel, Python and installed packages."""
    uname = os.uname()
    contents.add(
        "system/uname.log",
        "\n".join(
            f"{field_name}: {getattr(uname, field_name)}"
            for field_name in ("sysname", "nodename", "release", "version", "machine")
        )
        + "\n",
    )
    # os-release(5): /etc/os-release, else /usr/lib/os-release.
    os_release = "/etc/os-release"
    if not os.path.lexists(os_release) and os.path.exists("/usr/lib/os-release"):
        os_release = "/usr/lib/os-release"
    contents.add_file("system/os-release", os_release, MAX_CONFIG_BYTES)
    if os.path.exists("/proc/version"):
        contents.add_file("system/proc-version", "/proc/version", MAX_CONFIG_BYTES)
    contents.add(
        "system/python.log",
        f"version: {sys.version}\n"
        f"implementation: {platform.python_implementation()}\n"
        f"executable: {sys.executable}\n"
        f"platform: {platform.platform()}\n",
    )
    packages = sorted(
        {
            f"{dist.metadata['Name']}=={dist.version}"
            for dist in metadata.distributions()
            if dist.metadata["Name"]
        },
        key=str.lower,
    )
    contents.add("system/packages.log", "\n".join(packages) + "\n")
