"""The configuration keys of runtime security and the settings read from them.

Policy and event-monitoring keys are read from the system-probe configuration when it sets
them (that is where Datadog keeps them), else from the agent's own configuration.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from plugins.runtime_security.sources.file_source import EVENT_BITS, event_mask

ENABLED = "runtime_security_config.enabled"
POLICIES_DIR = "runtime_security_config.policies.dir"
POLICIES_WATCH = "runtime_security_config.policies.watch"
RS_SOCKET = "runtime_security_config.socket"
EM_SOCKET = "event_monitoring_config.socket"
FIM_PATHS = "runtime_security_config.fim.paths"
SOURCE_PROCESS = "runtime_security_config.sources.process"
SOURCE_FILE = "runtime_security_config.sources.file"
SOURCE_AUDIT = "runtime_security_config.sources.audit"
FILE_BACKEND = "runtime_security_config.fim.backend"
FIM_EVENTS = "runtime_security_config.fim.events"
ENFORCEMENT = "runtime_security_config.enforcement.enabled"
SELF_TEST = "runtime_security_config.self_test.enabled"
HASH_MAX_SIZE = "runtime_security_config.hash.max_file_size"
DROPS_INTERVAL = "runtime_security_config.drops.poll_interval"
# Datadog's switch for in-kernel approvers and discarders; here it narrows the file source's
# kernel events to the rules' types and enables discarders (fanotify ignore marks).
KERNEL_FILTERS = "runtime_security_config.enable_kernel_filters"
MAX_DISCARDERS = "runtime_security_config.fim.max_discarders"

DEFAULT_POLICIES_DIR = "/etc/security-agent/runtime-security.d"
# Directories whose changes matter and change rarely: watching a busy tree (/tmp, /var)
# would cost CPU on every write for no detection value.
DEFAULT_FIM_PATHS = ["/etc", "/usr/bin", "/usr/sbin"]
# Every file event by default; on a busy host, dropping "open" spares the agent every open on
# the watched filesystems (fanotify marks whole filesystems, filtered to the paths in here).
DEFAULT_FIM_EVENTS = [*EVENT_BITS]


def declare(schema: Any) -> None:
    """Declare every key this plugin reads (the ``security_agent_config_schema`` hook)."""
    schema.declare(ENABLED, False, description="run the runtime security (CWS) plugin")
    schema.declare(
        POLICIES_DIR, DEFAULT_POLICIES_DIR, path=True, description="directory of *.policy files"
    )
    schema.declare(POLICIES_WATCH, True, description="reload when a policy file changes")
    schema.declare(RS_SOCKET, "", description="deprecated alias of event_monitoring_config.socket")
    schema.declare(EM_SOCKET, "", description="event-monitoring socket; empty: sources in-process")
    schema.declare(FIM_PATHS, list(DEFAULT_FIM_PATHS), description="paths the file source watches")
    schema.declare(FILE_BACKEND, "auto", description="auto, fanotify or inotify")
    schema.declare(
        FIM_EVENTS,
        list(DEFAULT_FIM_EVENTS),
        description=f"file events the file source asks for: some of {', '.join(EVENT_BITS)}",
    )
    schema.declare(SOURCE_PROCESS, True, description="netlink process connector source")
    schema.declare(SOURCE_FILE, True, description="fanotify/inotify file source")
    schema.declare(SOURCE_AUDIT, True, description="audit netlink syscall source")
    schema.declare(ENFORCEMENT, True, description="allow the 'kill' action")
    schema.declare(SELF_TEST, True, description="run the self-test at start")
    schema.declare(HASH_MAX_SIZE, "5MB", description="largest file the 'hash' action reads")
    schema.declare(DROPS_INTERVAL, "1s", description="how often source drop counters are read")
    schema.declare(
        KERNEL_FILTERS,
        True,
        description="ask the kernel only for file events the loaded rules can match, and "
        "have it drop the events of files no rule can match (discarders)",
    )
    schema.declare(
        MAX_DISCARDERS, 4096, description="files that may carry a discarder at once (0: none)"
    )


def _pick(agent: Any, key: str) -> Any:
    sysprobe = getattr(agent, "sysprobe_config", None)
    if sysprobe is not None and sysprobe.is_set(key):
        return sysprobe
    return agent.config


@dataclass(frozen=True)
class RuntimeSettings:
    """The settings of one agent, read once at start (``from_agent``)."""

    policies_dir: str
    watch_policies: bool
    socket: str
    fim_paths: tuple[str, ...]
    file_backend: str
    file_mask: int
    process_source: bool
    file_source: bool
    audit_source: bool
    enforcement: bool
    self_test: bool
    hash_max_size: int
    drops_interval: float
    run_path: str
    kernel_filters: bool = True
    max_discarders: int = 4096

    @property
    def self_test_dir(self) -> str:
        """Where the self-test's child creates its file (watched by the file source)."""
        return os.path.join(self.run_path, "runtime-security", "self-test")

    @classmethod
    def from_agent(cls, agent: Any) -> RuntimeSettings:
        config = agent.config
        socket = _pick(agent, EM_SOCKET).get_str(EM_SOCKET) or _pick(agent, RS_SOCKET).get_str(
            RS_SOCKET
        )
        backend = config.get_str(FILE_BACKEND)
        if backend not in ("auto", "fanotify", "inotify"):
            raise config.value_error(
                FILE_BACKEND, f"expected auto, fanotify or inotify, got {backend!r}"
            )
        interval = config.get_duration(DROPS_INTERVAL)
        if interval <= 0:
            raise config.value_error(DROPS_INTERVAL, f"must be positive, got {interval:g}s")
        max_size = config.get_size(HASH_MAX_SIZE)
        if max_size <= 0:
            raise config.value_error(HASH_MAX_SIZE, f"must be positive, got {max_size}")
        paths = tuple(str(p) for p in config.get_list(FIM_PATHS))
        for path in paths:
            if not os.path.isabs(path):
                raise config.value_error(FIM_PATHS, f"expected absolute paths, got {path!r}")
        events = [str(e) for e in config.get_list(FIM_EVENTS)]
        if not events:
            raise config.value_error(
                FIM_EVENTS,
                f"expected some of {', '.join(EVENT_BITS)}; to watch no file, set "
                f"{SOURCE_FILE} to false",
            )
        max_discarders = config.get_int(MAX_DISCARDERS)
        if max_discarders < 0:
            raise config.value_error(MAX_DISCARDERS, f"must be 0 or more, got {max_discarders}")
        try:
            file_mask = event_mask(events)
        except ValueError as exc:
            raise config.value_error(FIM_EVENTS, str(exc)) from None
        return cls(
            policies_dir=str(_pick(agent, POLICIES_DIR).get_str(POLICIES_DIR)),
            watch_policies=config.get_bool(POLICIES_WATCH),
            socket=socket,
            fim_paths=paths,
            file_backend=backend,
            file_mask=file_mask,
            process_source=config.get_bool(SOURCE_PROCESS),
            file_source=config.get_bool(SOURCE_FILE),
            audit_source=config.get_bool(SOURCE_AUDIT),
            enforcement=config.get_bool(ENFORCEMENT),
            self_test=config.get_bool(SELF_TEST),
            hash_max_size=max_size,
            drops_interval=interval,
            run_path=agent.run_path,
            kernel_filters=config.get_bool(KERNEL_FILTERS),
            max_discarders=max_discarders,
        )
