"""Turning a matched kernel event into a security event in Datadog's shape.

The shape follows Datadog's backend event (``agent``, ``evt``, ``date``, ``process`` with
``ancestors``, ``file``, ``container``, ``usr``, the event type's own section), so a receiver
written for CWS events reads ours.
"""

from __future__ import annotations

import datetime
import platform
from collections.abc import Mapping
from typing import Any

from plugins.runtime_security.policy_loader import RuleState

FILE_EVENTS = frozenset(
    {
        "open",
        "chmod",
        "chown",
        "rename",
        "unlink",
        "link",
        "utimes",
        "mkdir",
        "rmdir",
        "modify",
        "close_write",
        "attrib",
        "open_exec",
    }
)
PROCESS_EVENTS = frozenset({"exec", "fork", "exit", "setuid", "setgid", "ptrace", "signal"})
NETWORK_EVENTS = frozenset({"connect", "bind", "dns"})
KERNEL_EVENTS = frozenset({"load_module", "mount"})
EPERM, EACCES = 1, 13
_PROCESS_KEYS = (
    "pid",
    "ppid",
    "tid",
    "uid",
    "gid",
    "euid",
    "egid",
    "user",
    "group",
    "comm",
    "argv0",
    "args",
    "argv",
    "exec_time",
)
MAX_ANCESTORS = 16


def category_of(event_type: str) -> str:
    if event_type in FILE_EVENTS:
        return "File Activity"
    if event_type in PROCESS_EVENTS:
        return "Process Activity"
    if event_type in NETWORK_EVENTS:
        return "Network Activity"
    if event_type in KERNEL_EVENTS:
        return "Kernel Activity"
    return "Security Agent"


def outcome_of(section: Any) -> str:
    retval = section.get("retval", 0) if isinstance(section, Mapping) else 0
    if not isinstance(retval, int) or retval >= 0:
        return "Success"
    return "Refused" if -retval in (EPERM, EACCES) else "Error"


def iso_date(timestamp: float) -> str:
    moment = datetime.datetime.fromtimestamp(timestamp, tz=datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def serialize_process(process: Mapping[str, Any]) -> dict[str, Any]:
    """One process as Datadog shows it: ids, names, ``executable`` and ``container``."""
    out = {k: process[k] for k in _PROCESS_KEYS if k in process}
    executable = process.get("file")
    if isinstance(executable, Mapping):
        out["executable"] = {"path": executable.get("path", ""), "name": executable.get("name", "")}
    container = process.get("container")
    if isinstance(container, Mapping) and container.get("id"):
        out["container"] = {"id": container["id"]}
    return out


def _with_ancestors(process: Mapping[str, Any]) -> dict[str, Any]:
    out = serialize_process(process)
    ancestors = process.get("ancestors") or []
    out["ancestors"] = [serialize_process(a) for a in ancestors[:MAX_ANCESTORS]]
    parent = process.get("parent")
    if isinstance(parent, Mapping) and parent:
        out["parent"] = serialize_process(parent)
    return out


def build_security_event(
    event: Mapping[str, Any], rule: RuleState, *, agent_version: str, hostname: str
) -> dict[str, Any]:
    etype = str(event.get("type", ""))
    section = event.get(etype)
    process = event.get("process") if isinstance(event.get("process"), Mapping) else {}
    assert isinstance(process, Mapping)
    timestamp = event.get("timestamp") or 0.0
    out: dict[str, Any] = {
        "agent": {
            "rule_id": rule.id,
            "rule_version": rule.version,
            "rule_actions": [],
            "policy_name": rule.policy,
            "policy_version": rule.policy_version,
            "version": agent_version,
            "os": "linux",
            "arch": platform.machine(),
            "origin": "python",
        },
        "evt": {"name": etype, "category": category_of(etype), "outcome": outcome_of(section)},
        "date": iso_date(float(timestamp)),
        "hostname": hostname,
        "title": rule.description or f"Rule {rule.id} matched",
        "tags": [
            f"rule_id:{rule.id}",
            *(f"{k}:{v}" for k, v in rule.tags.items()),
            *rule.product_tags,
        ],
        "process": _with_ancestors(process),
        "container": {"id": (process.get("container") or {}).get("id", "")},
        "usr": {"id": str(process.get("uid", "")), "name": process.get("user", "")},
    }
    if isinstance(section, Mapping):
        if isinstance(section.get("file"), Mapping):
            out["file"] = dict(section["file"])
        if etype in ("exec", "fork"):
            out[etype] = serialize_process(section)
        else:
            out[etype] = {k: v for k, v in section.items() if k != "file"}
    if event.get("source"):
        out["evt"]["source"] = event["source"]
    return out
