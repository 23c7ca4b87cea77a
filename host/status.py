"""The agent's status: a header, plugins, scheduled runs, health, then each plugin's section.

The IPC API serves it and ``security-agent status`` prints it; both get the same JSON from
:func:`collect_status` and the same text from :func:`render_text`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from host.health import HealthTimeout
from host.plugin_types import StatusSection

if TYPE_CHECKING:
    from host.agent import Agent


def collect_status(agent: Agent) -> dict[str, Any]:
    """Everything status shows, JSON-ready. A plugin whose section fails shows the error."""
    jobs = agent.scheduler.snapshot()
    plugins = []
    for record in agent.plugins:
        entry = record.to_json()
        runtime = agent.runtimes.get(record.name)
        if runtime is not None:
            entry["enabled"] = runtime.spec.enabled
            entry["started"] = runtime.started
            entry["start_error"] = runtime.start_error
            entry["schedule"] = jobs.get(record.name)
        plugins.append(entry)
    try:
        health: dict[str, Any] = agent.health.get_ready_nonblocking().to_json()
    except HealthTimeout as exc:
        health = {"error": str(exc)}
    sections: dict[str, Any] = {}
    section_errors: dict[str, str] = {}
    for plugin_name, section in agent.call_each("security_agent_status", agent=agent):
        if isinstance(section, Exception):
            section_errors[plugin_name] = f"{type(section).__name__}: {section}"
        elif isinstance(section, StatusSection):
            sections[section.key] = {
                "title": section.title,
                "data": dict(section.data),
                "text": section.text,
                "plugin": plugin_name,
            }
    return {
        "header": agent.header(),
        "plugins": plugins,
        "workers": agent.workers.stats(),
        "events": agent.events.stats(),
        "health": health,
        "sections": sections,
        "section_errors": section_errors,
    }


def status_date(value: float | None) -> str:
    """A time as status pages show it (UTC), ``never`` for ``None``; plugins' sections too."""
    if value is None:
        return "never"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(value))


def render_text(status: dict[str, Any]) -> str:
    """The human rendering of :func:`collect_status`."""
    h = status["header"]
    title = f"Security Agent ({h['version']})"
    lines = [
        "=" * len(title),
        title,
        "=" * len(title),
        "",
        f"  Status date: {status_date(time.time())}",
        f"  Agent start: {status_date(h['started_at'])}",
        f"  Pid: {h['pid']}",
        f"  Hostname: {h['hostname']}",
        f"  Python Version: {h['python_version']}",
        f"  Config files: {', '.join(h['config_files']) or 'none'}",
        f"  Run path: {h['run_path']}",
        "",
        "Plugins",
        "=======",
    ]
    for p in status["plugins"]:
        state = p["state"]
        if state == "loaded" and not p.get("enabled", True):
            state = "loaded, not enabled by configuration"
        lines.append(f"  {p['name']} ({p['distribution']} {p['version']}): {state}")
        if p.get("error"):
            lines.append(f"    Error: {p['error']}")
        sched = p.get("schedule")
        if sched:
            every = f"every {sched['interval']:g}s" if sched["interval"] else "once at start"
            lines.append(
                f"    Runs: {sched['runs']} ok, {sched['errors']} failed, "
                f"{sched['skipped']} skipped, {sched['overruns']} overran ({every})"
            )
            if sched["last_error"]:
                lines.append(f"    Last error: {sched['last_error']}")
    health = status["health"]
    lines += ["", "Health", "======"]
    if "error" in health:
        lines.append(f"  {health['error']}")
    else:
        lines.append(f"  Healthy: {', '.join(health['Healthy']) or 'none'}")
        lines.append(f"  Unhealthy: {', '.join(health['Unhealthy']) or 'none'}")
    w = status["workers"]
    lines.append(f"  Worker pool: {w['busy']}/{w['size']} busy, {w['queued']} queued")
    ev = status["events"]
    # Per-sink detail is the sink plugin's own status section; the host shows what it routed.
    if ev["emitted"]:
        lines += ["", "Events", "======"]
        for track in sorted(ev["emitted"]):
            lines.append(
                f"  {track}: {ev['emitted'][track]} emitted, "
                f"{ev['delivered'].get(track, 0)} delivered, "
                f"{ev['unrouted'].get(track, 0)} with no sink, {ev['failed'].get(track, 0)} failed"
            )
    for section in status["sections"].values():
        lines += ["", section["title"], "=" * len(section["title"])]
        lines += [f"  {line}" if line else "" for line in section["text"].splitlines()]
    for plugin_name, error in status["section_errors"].items():
        lines += ["", f"{plugin_name}: status unavailable: {error}"]
    return "\n".join(lines) + "\n"
