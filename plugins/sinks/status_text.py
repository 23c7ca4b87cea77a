"""The sinks' part of ``security-agent status``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _counts(s: Mapping[str, Any]) -> str:
    """A network sink's or one destination's delivery figures."""
    return (
        f"{s['sent']} sent | {s['retried']} retried | {s['queued_records']} queued "
        f"({s['queued_bytes']} bytes) | {s['dropped']} dropped"
    )


def render(stats: Mapping[str, Mapping[str, Any]]) -> str:
    lines: list[str] = []
    for name, s in stats.items():
        if s.get("kind") == "file":
            lines.append(
                f"{name}: {s['written']} written ({s['written_bytes']} bytes) to "
                f"{s['directory']}, {s['rotations']} rotation(s)"
            )
        else:
            lines.append(f"{name}: {_counts(s)}")
            for track, d in s.get("destinations", {}).items():
                lines.append(f"  {track} -> {d['url']}: {_counts(d)}")
        if s.get("last_error"):
            lines.append(f"  last error: {s['last_error']}")
    return "\n".join(lines) if lines else "No event sinks enabled"
