"""The text of a check instance's status block, as ``datadog-agent status``/``check`` print it."""

from __future__ import annotations

from typing import Any

from host.status import status_date


def instance_block(snapshot: dict[str, Any]) -> str:
    title = f"{snapshot['CheckName']} ({snapshot['CheckVersion']})"
    lines = [
        f"  {title}",
        f"  {'-' * len(title)}",
        f"    Instance ID: {snapshot['CheckID']} [{snapshot['State']}]",
        f"    Configuration Source: {snapshot['CheckConfigSource']}",
        f"    Total Runs: {snapshot['TotalRuns']:,}",
        f"    Metric Samples: Last Run: {snapshot['MetricSamples']:,}, "
        f"Total: {snapshot['TotalMetricSamples']:,}",
        f"    Events: Last Run: {snapshot['Events']:,}, Total: {snapshot['TotalEvents']:,}",
        f"    Service Checks: Last Run: {snapshot['ServiceChecks']:,}, "
        f"Total: {snapshot['TotalServiceChecks']:,}",
        f"    Average Execution Time : {snapshot['AverageExecutionTime']}ms",
        f"    Last Execution Date : {status_date(snapshot['LastExecutionDate'])}",
        f"    Last Successful Execution Date : {status_date(snapshot['LastSuccessDate'])}",
    ]
    if snapshot.get("SkippedTurns"):
        lines.append(f"    Skipped Turns (previous run still going): {snapshot['SkippedTurns']}")
    if snapshot["LastError"]:
        lines.append(f"    Error: {snapshot['LastError']}")
        lines.extend(f"      {line}" for line in snapshot["LastTraceback"].rstrip().splitlines())
    for warning in snapshot["LastWarnings"]:
        lines.append(f"    Warning: {warning}")
    return "\n".join(lines)


def load_error_block(name: str, errors: list[str]) -> str:
    lines = [f"  {name}", f"  {'-' * len(name)}", f"    Error: could not load {name}:"]
    for error in errors:
        first, *rest = error.rstrip().splitlines() or [""]
        lines.append(f"    * python: {first}")
        lines.extend(f"      {line}" for line in rest)
    return "\n".join(lines)


def runner_text(stats: dict[str, Any]) -> str:
    parts = [
        f"  Check Runners: {stats['Workers']['Workers']}",
        f"  Total Runs: {stats['Runs']:,}, Errors: {stats['Errors']:,}, "
        f"Skipped Turns: {stats['SkippedTurns']:,}",
        "",
    ]
    for instances in stats["Checks"].values():
        parts.extend(instance_block(snap) + "\n" for snap in instances.values())
    if stats["LoadErrors"]:
        parts.append("  Loading Errors\n  ==============")
        parts.extend(load_error_block(n, e) + "\n" for n, e in stats["LoadErrors"].items())
    return "\n".join(parts).rstrip() + "\n"
