"""``security-agent check NAME`` and ``security-agent checks list``.

``check`` runs a check without a running agent, the way ``datadog-agent check`` does: the
builtin modules, the loader and the aggregator are the daemon's, only the scheduling is a
plain loop. Unlike upstream it exits 1 when a run failed or the check could not be loaded, so
scripts can rely on the exit status.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import TYPE_CHECKING, Any

from plugins.checks.instance import CheckInstance, RunResult
from plugins.checks.runner import ChecksSetup
from plugins.checks.status_text import instance_block, load_error_block

if TYPE_CHECKING:
    from host.cli_context import CliContext

ONE_RUN_HINT = (
    "Check has run only once, if some metrics are missing you can try again with "
    "--check-rate argument"
)


def configure_check(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="the check to run (its conf.d name)")
    parser.add_argument(
        "-r",
        "--check-rate",
        action="store_true",
        help="run the check twice, 1 s apart, so rates show",
    )
    parser.add_argument(
        "-t",
        "--check-times",
        "--times",
        dest="times",
        type=int,
        default=1,
        help="number of runs (default 1)",
    )
    parser.add_argument("--pause", type=int, default=0, help="milliseconds between runs")
    parser.add_argument("--json", action="store_true", help="print JSON for machines")


def _merge(total: dict[str, list[Any]], output: dict[str, list[Any]]) -> None:
    for kind, items in output.items():
        total.setdefault(kind, []).extend(items)


def _run_instance(
    instance: CheckInstance, times: int, pause: float
) -> tuple[dict[str, list[Any]], list[RunResult]]:
    collected: dict[str, list[Any]] = {}
    results = []
    for index in range(times):
        if index:
            time.sleep(pause)
        result = instance.run_once()
        results.append(result)
        _merge(collected, result.output)
    return collected, results


def _print_instance(
    ctx: CliContext,
    output: dict[str, list[Any]],
    snapshot: dict[str, Any],
    metadata: dict[str, str],
    times: int,
) -> None:
    """The text ``datadog-agent check`` prints for one instance."""
    for title, kind in (
        ("Series", "series"),
        ("Service Checks", "service_checks"),
        ("Events", "events"),
        ("Sketches", "sketches"),
    ):
        ctx.print(f"=== {title} ===")
        ctx.print(json.dumps(output.get(kind, []), indent=2, sort_keys=True))
    ctx.print("=========\nCollector\n=========\n")
    ctx.print(instance_block(snapshot))
    ctx.print("")
    ctx.print("  Metadata\n  ========")
    for key, value in sorted(metadata.items()):
        ctx.print(f"    {key}: {value}")
    ctx.print("")
    if times == 1:
        ctx.print(ONE_RUN_HINT)


def run_check(ctx: CliContext, args: argparse.Namespace) -> int:
    if args.times < 1:
        ctx.error("Error: --check-times must be at least 1")
        return 2
    times, pause = args.times, args.pause / 1000.0
    if args.check_rate:
        times, pause = max(times, 2), max(pause, 1.0)
    agent = ctx.agent()
    setup = ChecksSetup(agent)
    setup.install()
    try:
        report = setup.load(only=args.name)
        if not report.instances and not report.errors:
            if report.skipped:
                ctx.print(f"Check {args.name}: every instance was skipped")
                for reason in report.skipped[args.name]:
                    ctx.print(f"  {reason}")
                return 0
            confd = agent.config.get_str("confd_path")
            ctx.error(f"Error: no check named '{args.name}' is configured in {confd}")
            return 1
        failed = bool(report.errors)
        machine: list[dict[str, Any]] = []
        for instance in report.instances:
            output, results = _run_instance(instance, times, pause)
            failed = failed or any(r.error for r in results)
            snapshot = instance.snapshot()
            metadata = setup.host.check_metadata(instance.check_id)
            if args.json:
                machine.append({"aggregator": output, "runner": snapshot, "inventories": metadata})
            else:
                _print_instance(ctx, output, snapshot, metadata, times)
            instance.cancel()
        if args.json:
            ctx.print(json.dumps(machine, indent=2, sort_keys=True))
        for name, errors in report.errors.items():
            ctx.error(f"Error: could not load {name}:")
            for error in errors:
                ctx.error(f"* python: {error}")
        return 1 if failed else 0
    finally:
        setup.uninstall()


def configure_list(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON for machines")


def list_checks(ctx: CliContext, args: argparse.Namespace) -> int:
    """Configured checks and whether they load (instances, interval, errors)."""
    agent = ctx.agent()
    setup = ChecksSetup(agent)
    setup.install()
    try:
        report = setup.load()
    finally:
        setup.uninstall()
    rows: dict[str, dict[str, Any]] = {}
    for instance in report.instances:
        row = rows.setdefault(
            instance.name,
            {"state": "loaded", "version": instance.version, "instances": [], "errors": []},
        )
        row["instances"].append(
            {
                "check_id": instance.check_id,
                "interval": instance.interval,
                "source": instance.config.source,
            }
        )
    for name, errors in report.errors.items():
        row = rows.setdefault(
            name, {"state": "failed", "version": "", "instances": [], "errors": []}
        )
        row["errors"].extend(errors)
        if not row["instances"]:
            row["state"] = "failed"
    for name, reasons in report.skipped.items():
        rows.setdefault(
            name, {"state": "skipped", "version": "", "instances": [], "errors": reasons}
        )
    if args.json:
        ctx.print(json.dumps(rows, indent=2, sort_keys=True))
        return 0
    if not rows:
        ctx.print(f"No checks configured in {agent.config.get_str('confd_path')}")
        return 0
    for name in sorted(rows):
        row = rows[name]
        ctx.print(f"{name} [{row['state']}] {row['version']}".rstrip())
        for inst in row["instances"]:
            ctx.print(f"  {inst['check_id']} every {inst['interval']:g}s ({inst['source']})")
        if row["state"] == "failed":
            ctx.print(load_error_block(name, row["errors"]))
        else:
            for error in row["errors"]:
                ctx.print(f"  Error: {error}")
    return 0
