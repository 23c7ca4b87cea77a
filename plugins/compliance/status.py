"""What the plugin remembers of its runs, for ``status``, ``/debug/vars`` and telemetry."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

RESULTS = ("passed", "failed", "error", "skipped")


def rule_result(results: list[str]) -> str:
    """One result for a rule from its per-resource results (the most severe wins)."""
    for candidate in ("error", "failed", "passed"):
        if candidate in results:
            return candidate
    return "skipped"


@dataclass
class FrameworkStatus:
    framework: str
    name: str
    version: str
    rules: dict[str, str | None] = field(default_factory=dict)
    """Rule id to its last result, ``None`` when it has not run yet."""
    runs: int = 0

    def counts(self) -> dict[str, int]:
        values = list(self.rules.values())
        counts = {r: values.count(r) for r in RESULTS}
        counts["total"] = len(values)
        counts["not_run_yet"] = values.count(None)
        return counts

    def line(self) -> str:
        c = self.counts()
        return (
            f"Rules: {c['total']} total | {c['passed']} passed | {c['failed']} failed | "
            f"{c['error']} error | {c['skipped']} skipped | {c['not_run_yet']} not run yet"
        )


class ComplianceStatus:
    """Thread-safe: results are recorded from worker threads and read from the reactor."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.frameworks: dict[str, FrameworkStatus] = {}
        self.load_errors: list[str] = []
        self.events_sent = 0
        self.events_skipped = 0

    def declare(self, framework: str, name: str, version: str, rule_ids: list[str]) -> None:
        """The framework's current rules (after a reload): results of kept rules stay."""
        with self._lock:
            fw = self.frameworks.setdefault(framework, FrameworkStatus(framework, name, version))
            fw.name, fw.version = name, version
            fw.rules = {rule_id: fw.rules.get(rule_id) for rule_id in rule_ids}

    def keep_only(self, frameworks: set[str]) -> None:
        """Forget frameworks whose benchmark files are gone."""
        with self._lock:
            for framework in set(self.frameworks) - frameworks:
                del self.frameworks[framework]

    def record(self, framework: str, rule_id: str, results: list[str]) -> None:
        with self._lock:
            fw = self.frameworks.setdefault(framework, FrameworkStatus(framework, framework, ""))
            fw.rules[rule_id] = rule_result(results)

    def count_events(self, sent: int, skipped: int) -> None:
        with self._lock:
            self.events_sent += sent
            self.events_skipped += skipped

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            return {
                "frameworks": {
                    fid: {
                        "name": fw.name,
                        "version": fw.version,
                        "runs": fw.runs,
                        "counts": fw.counts(),
                        "rules": dict(sorted(fw.rules.items())),
                    }
                    for fid, fw in sorted(self.frameworks.items())
                },
                "load_errors": list(self.load_errors),
                "events_sent": self.events_sent,
                "events_skipped": self.events_skipped,
            }

    def text(self) -> str:
        with self._lock:
            lines: list[str] = []
            for fid, fw in sorted(self.frameworks.items()):
                header = f"{fid} {fw.version}".strip()
                lines += [header, "-" * len(header), fw.line()]
                for rule_id, result in sorted(fw.rules.items()):
                    lines.append(f"  {rule_id}: {result or 'not run yet'}")
                lines.append("")
            for error in self.load_errors:
                lines.append(f"Error: {error}")
            if not lines:
                lines.append("No benchmark loaded")
            return "\n".join(lines).rstrip()
