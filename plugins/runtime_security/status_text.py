"""The text form of the runtime security status section (Datadog's runtimesecurity.tmpl)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from host.status import status_date


def render(data: Mapping[str, Any]) -> str:
    lines = [
        f"Connected: {str(data['connected']).lower()} ({data['mode']})",
        f"Events received: {data['eventReceived']}",
        f"Events sent: {data['eventSent']}",
        f"Events rate-limited: {data['rateLimited']}",
        f"Drops: {data['drops']}",
        "",
        "Sources",
        "=======",
    ]
    for s in data["sources"]:
        state = "active" if s["active"] else f"inactive ({s['reason']})"
        lines.append(f"  {s['name']}: {state}, events {s['events']}, drops {s['drops']}")
        detail = s.get("detail") or {}
        if "kernel_events" in detail:
            lines.append(f"    kernel events: {', '.join(detail['kernel_events']) or 'none'}")
        discarders = detail.get("discarders")
        if discarders:
            lines.append(
                f"    discarders: {discarders['active']} active, {discarders['added']} added, "
                f"{discarders['lifted']} lifted, {discarders['evicted']} evicted"
            )
    if not data["sources"]:
        lines.append("  none in this process")
    st = data["selfTests"]
    lines += [
        "",
        "Self Tests",
        "==========",
        f"  Last execution: {status_date(st['LastTimestamp'])}",
        f"  Succeeded: {', '.join(st['Success']) or 'none'}",
        f"  Failed: {', '.join(st['Fails']) or 'none'}",
    ]
    if st["Error"]:
        lines.append(f"  Error: {st['Error']}")
    lines += ["", "Policies", "========"]
    for problem in data["policies"]["errors"]:
        lines.append(f"  Error: {problem}")
    for policy in data["policiesStatus"]:
        version = f", version {policy['Version']}" if policy["Version"] else ""
        lines.append(f"  {policy['Name']} ({policy['Source']}{version})")
        for rule in policy["Status"]:
            extra = f" ({rule['Error']})" if rule["Error"] else ""
            counts = (
                f", matched {rule['matched']}, sent {rule['sent']}"
                if rule["Status"] == "loaded"
                else ""
            )
            lines.append(f"    - {rule['ID']}: {rule['Status']}{extra}{counts}")
    return "\n".join(lines)
