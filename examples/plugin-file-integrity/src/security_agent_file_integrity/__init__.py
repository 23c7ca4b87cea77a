"""Example plugin: watch a few files and report changes to their content, mode or owner."""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from twisted.logger import Logger

from host import FlareBuilder, PluginSpec, StatusSection, hookimpl

log = Logger(namespace="file_integrity")

STATE = "file_integrity"
"""The name of this plugin's state on the agent. State lives with the agent, not in this
module, so two agents in one process (tests) stay apart."""


def _state(agent: Any) -> dict[str, Any]:
    state: dict[str, Any] = agent.plugin_state(
        STATE, lambda: {"baseline": {}, "runs": 0, "changes": []}
    )
    return state


@hookimpl
def security_agent_config_schema(schema: Any) -> None:
    schema.declare("file_integrity.enabled", True)
    schema.declare("file_integrity.interval", "60s")
    schema.declare("file_integrity.paths", ["/etc/passwd", "/etc/group"])


@hookimpl
def security_agent_plugin_spec(agent: Any) -> PluginSpec:
    return PluginSpec(
        enabled=agent.config.get_bool("file_integrity.enabled"),
        interval=agent.config.get_duration("file_integrity.interval"),
        blocking=True,  # hashing files is disk I/O: keep it off the reactor thread
        security_component=True,
    )


def _fingerprint(path: str) -> dict[str, Any] | None:
    try:
        st = os.stat(path)
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(65536), b""):
                digest.update(chunk)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return {"error": exc.strerror}
    return {
        "sha256": digest.hexdigest(),
        "mode": oct(st.st_mode & 0o7777),
        "uid": st.st_uid,
        "gid": st.st_gid,
    }


@hookimpl
def security_agent_run(agent: Any) -> None:
    state = _state(agent)
    state["runs"] += 1
    baseline: dict[str, Any] = state["baseline"]
    for path in agent.config.get_list("file_integrity.paths"):
        current = _fingerprint(str(path))
        if path in baseline and baseline[path] != current:
            change = {"path": path, "before": baseline[path], "after": current}
            state["changes"].append(change)
            log.warn("file_integrity: {path} changed", path=path, change=json.dumps(change))
        baseline[path] = current
    log.info(
        "file_integrity: run {runs} checked {count} file(s)",
        runs=state["runs"],
        count=len(baseline),
    )


@hookimpl
def security_agent_stop(agent: Any) -> None:
    runs = _state(agent)["runs"]
    agent.drop_plugin_state(STATE)
    log.info("file_integrity: stopped after {runs} run(s)", runs=runs)


@hookimpl
def security_agent_status(agent: Any) -> StatusSection:
    state = _state(agent)
    text = f"Runs: {state['runs']}\nWatched files: {len(state['baseline'])}\n"
    text += f"Changes seen: {len(state['changes'])}"
    return StatusSection(
        key="file_integrity",
        title="File Integrity",
        data={"runs": state["runs"], "changes": state["changes"][-20:]},
        text=text,
    )


@hookimpl
def security_agent_flare(agent: Any, flare: FlareBuilder) -> None:
    flare.add_file(
        "file_integrity/baseline.json",
        json.dumps(_state(agent)["baseline"], indent=2, sort_keys=True),
    )
