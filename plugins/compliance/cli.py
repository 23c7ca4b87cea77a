"""``security-agent compliance check|list``: run benchmarks once from the command line."""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import TYPE_CHECKING, Any

from host import CliCommand
from host.config import ConfigError

if TYPE_CHECKING:
    from host.cli_context import CliContext


def configure(parser: argparse.ArgumentParser) -> None:
    # One parser with an action argument, rather than nested subparsers: the host's global
    # options (-c ...) are on this parser, so they stay accepted after `check`.
    parser.add_argument(
        "compliance_command",
        choices=("check", "list"),
        metavar="{check,list}",
        help="check: run the benchmarks once and print the findings; list: list them",
    )
    parser.add_argument("rule_id", nargs="?", help="check: only run the rule with this ID")
    parser.add_argument("--framework", help="only the benchmark <FRAMEWORK>.yaml")
    parser.add_argument("-f", "--file", help="only this benchmark file")
    parser.add_argument("-v", "--verbose", action="store_true", help="say which rule runs")
    parser.add_argument("-r", "--report", action="store_true", help="send findings to the sinks")
    parser.add_argument("--dump-reports", metavar="FILE", help="write {rule id: [events]} here")


def _sources(ctx: CliContext, args: argparse.Namespace) -> tuple[list[str], str]:
    from plugins.compliance.service import benchmark_dirs

    agent = ctx.agent()
    if getattr(args, "file", None):
        path = os.path.abspath(args.file)
        return [os.path.dirname(path)], os.path.basename(path)
    pattern = f"{args.framework}.yaml" if getattr(args, "framework", None) else "*.yaml"
    return benchmark_dirs(agent), pattern


def _load(ctx: CliContext, args: argparse.Namespace) -> Any:
    from plugins.compliance.benchmark import load_benchmarks
    from plugins.compliance.checker import default_rule_filter
    from plugins.compliance.service import host_env_from_config

    try:
        env = host_env_from_config(ctx.agent())
    except ConfigError as exc:  # e.g. DOCKER_HOST=tcp://...: one line, not a traceback
        ctx.error(str(exc))
        return None, None
    dirs, pattern = _sources(ctx, args)
    result = load_benchmarks(dirs, pattern, default_rule_filter(env))
    shown = os.path.join(dirs[0], pattern) if len(dirs) == 1 else f"{pattern} in {', '.join(dirs)}"
    if result.errors:
        ctx.error(f"could not load benchmark files {json.dumps(shown)}: {result.errors[0]}")
        return env, None
    if not result.benchmarks:
        ctx.error(f"could not find any benchmark in {json.dumps(shown)}")
        return env, None
    return env, result.benchmarks


def run_check(ctx: CliContext, args: argparse.Namespace) -> int:
    from plugins.compliance.checker import Checker
    from plugins.compliance.service import check_interval_of

    env, benchmarks = _load(ctx, args)
    if benchmarks is None:
        return 1
    agent = ctx.agent()
    checker = Checker(env, agent.version, check_interval_of(agent), clock=time.time)
    reports: dict[str, list[dict[str, Any]]] = {}
    ran = 0
    for bench in benchmarks:
        for rule in bench.rules:
            if args.rule_id and rule.id != args.rule_id:
                continue
            ran += 1
            if args.verbose:
                ctx.error(f"Running rule {rule.id} of {bench.framework} ({bench.path})")
            for event in checker.events(bench, rule):
                ctx.print(json.dumps(event, indent="\t"))
                if event["result"] != "skipped":
                    reports.setdefault(rule.id, []).append(event)
    if args.rule_id and not ran:
        ctx.error(f"could not find rule {args.rule_id} in the loaded benchmarks")
        return 1
    if args.dump_reports:
        with open(args.dump_reports, "w", encoding="utf-8") as f:
            json.dump(reports, f, indent="\t")
        os.chmod(args.dump_reports, 0o644)
    if args.report:
        _send(agent, reports)
    return 0


def _send(agent: Any, reports: dict[str, list[dict[str, Any]]]) -> None:
    agent.install_event_sinks()
    for events in reports.values():
        for event in events:
            agent.events.emit("compliance", event)


def run_list(ctx: CliContext, args: argparse.Namespace) -> int:
    _env, benchmarks = _load(ctx, args)
    if benchmarks is None:
        return 1
    for bench in benchmarks:
        ctx.print(f"{bench.framework} {bench.version} ({bench.name}): {bench.path}")
        for rule in bench.rules:
            ctx.print(f"  {rule.id} [{rule.evaluator}] {rule.description}")
    return 0


def run(ctx: CliContext, args: argparse.Namespace) -> int:
    if args.compliance_command == "list":
        return run_list(ctx, args)
    return run_check(ctx, args)


def command() -> CliCommand:
    return CliCommand(
        name="compliance",
        help="Compliance benchmarks: run them once, list them",
        run=run,
        configure=configure,
    )
