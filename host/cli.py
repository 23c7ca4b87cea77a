"""The ``security-agent`` command: ``start``, ``version``, ``plugins`` and plugin subcommands.

Global options follow the Go agent: ``-c/--cfgpath`` (repeatable; later files override
earlier ones), ``--sysprobe-config`` and ``-n/--no-color``. Plugins contribute further
subcommands through ``security_agent_cli_commands``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from collections.abc import Iterable, Sequence
from typing import Any, cast

from host import __version__
from host.bootstrap import AgentOptions, StartupError, load_agent_config, plugin_names
from host.cli_context import CliContext
from host.config import ConfigError
from host.discovery import (
    Discovery,
    DiscoveryError,
    PluginRecord,
    PluginState,
    call_plugin_hook,
    new_plugin_manager,
)
from host.plugin_types import CliCommand

DESCRIPTION = (
    "Security Agent at your service. It takes care of running compliance and runtime "
    "security checks, and custom checks, as plugins."
)


def _add_global_options(parser: argparse.ArgumentParser, *, suppress: bool = False) -> None:
    # Like cobra's persistent flags, the global options are accepted before or after the
    # subcommand (`security-agent start -c FILE`); on subcommands they default to SUPPRESS so
    # they do not overwrite what was given before the subcommand.
    kw: dict[str, Any] = {"default": argparse.SUPPRESS} if suppress else {}
    parser.add_argument(
        "-c",
        "--cfgpath",
        action="append",
        metavar="FILE",
        help="path to a config file; repeat to merge several (default: "
        "/etc/security-agent/datadog.yaml and /etc/security-agent/security-agent.yaml)",
        **kw,
    )
    parser.add_argument(
        "--sysprobe-config",
        metavar="PATH",
        help="path to system-probe.yaml, or to its directory",
        **kw,
    )
    parser.add_argument(
        "-n", "--no-color", action="store_true", help="disable colored output", **kw
    )
    parser.add_argument(
        "--strict-plugins",
        action="store_true",
        help="fail when any plugin fails to load",
        **kw,
    )


def _global_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="security-agent", description=DESCRIPTION)
    _add_global_options(parser)
    return parser


def _plugin_commands() -> list[tuple[str, CliCommand]]:
    # Commands are collected before the config is read (the config may not even parse), so
    # every installed plugin that imports may contribute; broken ones are listed by `plugins`.
    pm = new_plugin_manager()
    records = Discovery(pm).run()
    commands: list[tuple[str, CliCommand]] = []
    for record in records:
        if record.state is not PluginState.LOADED:
            continue
        try:
            contributed = call_plugin_hook(pm, record.name, "security_agent_cli_commands") or ()
            commands.extend((record.name, c) for c in cast("Iterable[CliCommand]", contributed))
        except Exception as exc:
            print(
                f"security-agent: plugin {record.name}: cannot add its commands: {exc}",
                file=sys.stderr,
            )
    return commands


def build_parser() -> argparse.ArgumentParser:
    parser = _global_parser()
    common = argparse.ArgumentParser(add_help=False)
    _add_global_options(common, suppress=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    start = sub.add_parser(
        "start",
        help="Start the Security Agent",
        parents=[common],
        description="Runs the Security Agent in the foreground",
    )
    start.add_argument("-p", "--pidfile", help="path to the pidfile")
    start.set_defaults(handler=_cmd_start)

    version = sub.add_parser("version", help="Print the version info", parents=[common])
    version.set_defaults(handler=_cmd_version)

    plugins = sub.add_parser(
        "plugins", help="List plugins: loaded, failed or disabled", parents=[common]
    )
    plugins.add_argument("--json", action="store_true", help="print JSON")
    plugins.set_defaults(handler=_cmd_plugins)

    taken = {"start", "version", "plugins"}
    for plugin_name, command in _plugin_commands():
        if command.name in taken:
            print(
                f"security-agent: plugin {plugin_name}: command {command.name!r} is already "
                "taken; ignored",
                file=sys.stderr,
            )
            continue
        taken.add(command.name)
        p = sub.add_parser(
            command.name, help=command.help, aliases=list(command.aliases), parents=[common]
        )
        if command.configure is not None:
            command.configure(p)
        p.set_defaults(handler=_plugin_handler(command))
    return parser


def _plugin_handler(command: CliCommand) -> Any:
    def handler(ctx: CliContext, args: argparse.Namespace) -> int:
        return command.run(ctx, args)

    return handler


def _cmd_start(ctx: CliContext, args: argparse.Namespace) -> int:
    from host.runner import run_foreground

    opts = ctx.options
    return run_foreground(
        AgentOptions(
            cfgpaths=opts.cfgpaths,
            sysprobe_config=opts.sysprobe_config,
            strict_plugins=opts.strict_plugins,
            pidfile=args.pidfile,
        )
    )


def version_line() -> str:
    import pluggy

    import twisted

    return (
        f"Security agent {__version__} - Python {platform.python_version()} - "
        f"Twisted {twisted.__version__} - pluggy {pluggy.__version__}"
    )


def _cmd_version(ctx: CliContext, _args: argparse.Namespace) -> int:
    ctx.print(version_line())
    return 0


def _plugin_rows(records: Sequence[PluginRecord]) -> list[str]:
    header = ("NAME", "DISTRIBUTION", "VERSION", "STATE", "HOOKS")
    rows = [header] + [
        (
            r.name,
            r.distribution,
            r.version,
            r.state.value,
            ",".join(h.removeprefix("security_agent_") for h in r.hooks) or "-",
        )
        for r in records
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = []
    for row in rows:
        lines.append(
            "  ".join(c.ljust(w) for c, w in zip(row[:4], widths, strict=True)) + "  " + row[4]
        )
    for r in records:
        if r.error:
            lines.append(f"{r.name}: {r.error}")
    return lines


def _cmd_plugins(ctx: CliContext, args: argparse.Namespace) -> int:
    config = load_agent_config(ctx.options)
    try:
        records = Discovery(
            new_plugin_manager(),
            allow=plugin_names(config, "plugins.enabled") or None,
            deny=plugin_names(config, "plugins.disabled"),
        ).run()
    except (DiscoveryError, ConfigError) as exc:
        raise StartupError(str(exc)) from exc
    if args.json:
        ctx.print(json.dumps([r.to_json() for r in records], indent=2))
    else:
        for line in _plugin_rows(records):
            ctx.print(line)
    return (
        1
        if ctx.options.strict_plugins and any(r.state is PluginState.FAILED for r in records)
        else 0
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 0
    ctx = CliContext(
        options=AgentOptions(
            cfgpaths=args.cfgpath,
            sysprobe_config=args.sysprobe_config,
            strict_plugins=args.strict_plugins,
        ),
        no_color=args.no_color,
    )
    try:
        code: int = args.handler(ctx, args)
    except StartupError as exc:
        print(f"security-agent: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader went away (`security-agent status | head`): not an error worth a
        # traceback. Point stdout at /dev/null so the interpreter's final flush is quiet too.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
