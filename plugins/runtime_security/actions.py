"""Running a matched rule's actions: ``kill``, ``hash``, ``set`` and ``log``.

Each action adds a report to the security event's ``agent.rule_actions`` (Datadog lists
what was done there). ``kill`` never signals pid 1 or the agent itself. ``hash`` reads the
file in the host's worker pool, capped at ``max_file_size``; the event waits for it.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Mapping
from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from plugins.runtime_security.policy_actions import ActionSpec
from plugins.secl import RUNTIME_MODEL, VariableStore

log = Logger(namespace="runtime_security.actions")


def read_field(event: Mapping[str, Any], name: str) -> Any:
    """The value of a (non-iterator) SECL field in an event, or ``None`` when absent."""
    spec = RUNTIME_MODEL.fields[name]
    value: Any = event
    for part in spec.path:
        try:
            value = value[part]
        except (KeyError, IndexError, TypeError):
            return None
    return spec.derive(value) if spec.derive is not None else value


def hash_file(path: str, max_size: int) -> dict[str, Any]:
    """sha256 of a regular file no bigger than ``max_size`` (blocking: run in a worker)."""
    report: dict[str, Any] = {"type": "hash", "path": path}
    try:
        with open(path, "rb", buffering=0) as f:
            st = os.fstat(f.fileno())
            report["size"] = st.st_size
            if not stat.S_ISREG(st.st_mode):
                report["state"] = "not a regular file"
            elif st.st_size > max_size:
                report["state"] = f"file too big ({st.st_size} > {max_size} bytes)"
            else:
                report["sha256"] = hashlib.file_digest(f, "sha256").hexdigest()
                report["state"] = "done"
    except OSError as exc:
        report["state"] = f"cannot read: {exc.strerror or exc}"
    return report


class ActionRunner:
    """Runs actions for one agent. ``workers`` is the host pool (``agent.workers``)."""

    def __init__(self, workers: Any, hash_max_size: int, own_pid: int | None = None) -> None:
        self.workers = workers
        self.hash_max_size = hash_max_size
        self.own_pid = os.getpid() if own_pid is None else own_pid
        self.counts: dict[str, int] = {"kill": 0, "kill_refused": 0, "hash": 0, "set": 0, "log": 0}

    def run(
        self,
        rule_id: str,
        action: ActionSpec,
        event: Mapping[str, Any],
        variables: VariableStore,
    ) -> dict[str, Any] | Deferred[dict[str, Any]] | None:
        """Run one action; returns its report (a Deferred for ``hash``), ``None`` when its
        filter did not match."""
        if action.filter is not None and not action.filter.matches(event):
            return None
        kind = action.kind
        if kind == "kill":
            return self._kill(action.params, event)
        if kind == "set":
            return self._set(action.params, event, variables)
        if kind == "hash":
            return self._hash(action.params, event)
        return self._log(rule_id, action.params, event)

    def _kill(self, params: Mapping[str, Any], event: Mapping[str, Any]) -> dict[str, Any]:
        pid = int((event.get("process") or {}).get("pid") or 0)
        report: dict[str, Any] = {
            "type": "kill",
            "signal": params["signal_name"],
            "scope": params["scope"],
            "pid": pid,
        }
        if pid <= 1 or pid == self.own_pid:
            self.counts["kill_refused"] += 1
            what = "pid 1" if pid == 1 else "the agent itself" if pid == self.own_pid else "no pid"
            report.update(status="refused", reason=f"refusing to signal {what}")
            return report
        try:
            os.kill(pid, params["signal"])
        except ProcessLookupError:
            report["status"] = "process_gone"
        except OSError as exc:
            report.update(status="error", reason=exc.strerror or str(exc))
        else:
            self.counts["kill"] += 1
            report["status"] = "performed"
        return report

    def _set(
        self, params: Mapping[str, Any], event: Mapping[str, Any], variables: VariableStore
    ) -> dict[str, Any]:
        value = params["value"] if "value" in params else read_field(event, params["field"])
        variables.set(
            params["variable"],
            value,
            event,
            ttl=params["ttl"],
            append=params["append"],
            size=params["size"],
        )
        self.counts["set"] += 1
        return {"type": "set", "variable": params["variable"], "value": value}

    def _hash(
        self, params: Mapping[str, Any], event: Mapping[str, Any]
    ) -> dict[str, Any] | Deferred[dict[str, Any]]:
        field_name = params["field"] or f"{event.get('type', '')}.file"
        path_field = f"{field_name}.path"
        if path_field not in RUNTIME_MODEL.fields:
            return {"type": "hash", "state": f"no file field {field_name} in this event"}
        path = read_field(event, path_field)
        if not path:
            return {"type": "hash", "state": "no file path in this event"}
        self.counts["hash"] += 1
        limit = params["max_file_size"] or self.hash_max_size
        deferred: Deferred[dict[str, Any]] = self.workers.defer(hash_file, str(path), limit)
        return deferred

    def _log(
        self, rule_id: str, params: Mapping[str, Any], event: Mapping[str, Any]
    ) -> dict[str, Any]:
        self.counts["log"] += 1
        message = params["message"] or f"rule {rule_id} matched"
        pid = (event.get("process") or {}).get("pid", 0)
        emit = {"debug": log.debug, "info": log.info, "warn": log.warn, "error": log.error}
        emit[params["level"]](
            "{message} (rule {rule_id}, event {event_type}, pid {pid})",
            message=message,
            rule_id=rule_id,
            event_type=event.get("type", ""),
            pid=pid,
        )
        return {"type": "log", "level": params["level"], "message": message}
