"""The ``security-agent`` subcommands that talk to a running agent through the command API.

Wording follows Datadog's security-agent CLI where it has one. Every command exits non-zero
with the "Could not reach security agent" block when the agent does not answer.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from host.plugin_types import CliCommand
from plugins.ipc_client import client_for
from plugins.ipc_client.client import IpcClient, Reply, UnreachableError

if TYPE_CHECKING:
    from host.cli_context import CliContext

HIDDEN_WARNING = (
    "IMPORTANT: you have modified a hidden option, this may incur billing charges or have "
    "other unexpected side-effects."
)


def unreachable_block(message: str) -> str:
    return (
        f"\n\t\tCould not reach security agent: {message}\n"
        "\t\tMake sure the agent is running before requesting the status.\n"
        "\t\tContact support if you continue having issues."
    )


class _Failed(Exception):
    """Ends a command: the message is printed as the unreachable block, exit code 1."""


def make_client(ctx: CliContext) -> IpcClient:
    return client_for(ctx.agent())


def _request(ctx: CliContext, method: str, path: str, **kw: Any) -> Reply:
    try:
        return make_client(ctx).request(method, path, **kw)
    except UnreachableError as exc:
        raise _Failed(str(exc)) from None


def _call(ctx: CliContext, method: str, path: str, **kw: Any) -> Reply:
    reply = _request(ctx, method, path, **kw)
    if reply.status != 200:
        raise _Failed(reply.error_message() or f"HTTP {reply.status}")
    return reply


def _guarded(run: Callable[[CliContext, argparse.Namespace], int]) -> Any:
    def wrapper(ctx: CliContext, args: argparse.Namespace) -> int:
        try:
            return run(ctx, args)
        except _Failed as exc:
            ctx.error(unreachable_block(str(exc)))
            return 1

    return wrapper


# --- status, health, hostname, stop, workload-list -------------------------------------------


def _status_configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("-j", "--json", action="store_true", help="print out raw json")
    p.add_argument("-p", "--pretty-json", action="store_true", help="pretty print JSON")
    p.add_argument("-o", "--file", metavar="FILE", help="output the status command to a file")


def _status(ctx: CliContext, args: argparse.Namespace) -> int:
    ctx.print("Getting the status from the agent.")
    as_json = args.json or args.pretty_json
    reply = _call(ctx, "GET", "/agent/status", query={"format": "json" if as_json else "text"})
    if args.pretty_json:
        output = json.dumps(json.loads(reply.body), indent=2)
    else:
        output = reply.text.rstrip("\n")
    if args.file:
        path = Path(args.file)
        path.write_text(output + "\n")
        path.chmod(0o644)
    else:
        ctx.print(output)
    return 0


def _health(ctx: CliContext, _args: argparse.Namespace) -> int:
    data = json.loads(_call(ctx, "GET", "/agent/status/health").body)
    healthy, unhealthy = data.get("Healthy") or [], data.get("Unhealthy") or []
    ctx.print(f"Agent health: {'FAIL' if unhealthy else 'PASS'}")
    if healthy:
        ctx.print(f"=== {len(healthy)} healthy components ===")
        ctx.print(", ".join(healthy))
    if unhealthy:
        ctx.print(f"=== {len(unhealthy)} unhealthy components ===")
        ctx.print(", ".join(unhealthy))
        return 1
    return 0


def _hostname(ctx: CliContext, _args: argparse.Namespace) -> int:
    ctx.print(json.loads(_call(ctx, "GET", "/agent/hostname").body))
    return 0


def _stop(ctx: CliContext, _args: argparse.Namespace) -> int:
    _call(ctx, "POST", "/agent/stop")
    ctx.print("Security agent stopping")
    return 0


def _workload_configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("-v", "--verbose", action="store_true", help="print out the full entities")


def _workload_list(ctx: CliContext, args: argparse.Namespace) -> int:
    verbose = "true" if args.verbose else "false"
    reply = _call(ctx, "GET", "/agent/workload-list", query={"verbose": verbose})
    ctx.print(json.dumps(json.loads(reply.body), indent=2, sort_keys=True))
    return 0


# --- config ----------------------------------------------------------------------------------


def _config_configure(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="config_command", metavar="SUBCOMMAND")
    sub.add_parser("by-source", help="Show the configuration by source")
    sub.add_parser("list-runtime", help="List settings that can be changed at runtime")
    get = sub.add_parser("get", help="Print a runtime setting")
    get.add_argument("names", nargs="*", metavar="NAME")
    set_ = sub.add_parser("set", help="Set a runtime setting")
    set_.add_argument("values", nargs="*", metavar="NAME VALUE")


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _config(ctx: CliContext, args: argparse.Namespace) -> int:
    command = getattr(args, "config_command", None)
    if command == "get":
        if len(args.names) != 1:
            ctx.error("a single setting name must be specified")
            return 1
        return _config_get(ctx, args.names[0])
    if command == "set":
        if len(args.values) != 2:
            ctx.error("exactly two parameters are required: the setting name and its value")
            return 1
        return _config_set(ctx, args.values[0], args.values[1])
    if command == "list-runtime":
        settings = json.loads(_call(ctx, "GET", "/agent/config/list-runtime").body)
        ctx.print("=== Settings that can be changed at runtime ===")
        for name, info in settings.items():
            if not info.get("Hidden"):
                ctx.print(f"{name:<30} {info.get('Description', '')}")
        return 0
    path = "/agent/config/by-source" if command == "by-source" else "/agent/config"
    ctx.print(_call(ctx, "GET", path).text.rstrip("\n"))
    return 0


def _setting_call(ctx: CliContext, method: str, name: str, **kw: Any) -> Reply | None:
    """A setting request; a 400 (unknown setting, bad value) is the user's error, not an
    unreachable agent, so it is printed as is."""
    reply = _request(ctx, method, f"/agent/config/{quote(name, safe='')}", **kw)
    if reply.status == 400:
        ctx.error(reply.error_message())
        return None
    if reply.status != 200:
        raise _Failed(reply.error_message() or f"HTTP {reply.status}")
    return reply


def _config_get(ctx: CliContext, name: str) -> int:
    reply = _setting_call(ctx, "GET", name)
    if reply is None:
        return 1
    ctx.print(f"{name} is set to: {_shown(json.loads(reply.body)['value'])}")
    return 0


def _config_set(ctx: CliContext, name: str, value: str) -> int:
    settings = json.loads(_call(ctx, "GET", "/agent/config/list-runtime").body)
    if _setting_call(ctx, "POST", name, form={"value": value}) is None:
        return 1
    if settings.get(name, {}).get("Hidden"):
        ctx.print(HIDDEN_WARNING)
    ctx.print(f"Configuration setting {name} is now set to: {value}")
    return 0


# --- flare -----------------------------------------------------------------------------------


def _flare_configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("case_id", nargs="?", default="", metavar="caseID")
    p.add_argument("-e", "--email", default="", help="your email")
    p.add_argument("-s", "--send", action="store_true", help="send the flare without asking")


def _flare(ctx: CliContext, args: argparse.Namespace) -> int:
    ctx.print("Asking the Security Agent to build the flare archive.")
    path: str | None = None
    try:
        reply = make_client(ctx).request("POST", "/agent/flare")
    except UnreachableError as exc:
        ctx.print(f"The agent was unable to make a full flare: {exc}.")
    else:
        if reply.status == 200 and reply.text:
            path = reply.text.strip()
        else:
            ctx.print(
                f"The agent ran into an error while making the flare: {reply.error_message()}"
            )
    flare: Any = None
    if path is None:
        ctx.print("Initiating flare locally, some logs will be missing.")
        try:
            flare = importlib.import_module("plugins.flare")
            path = str(flare.create_archive(ctx.agent(), local=True))
        except Exception as exc:
            ctx.error(f"The flare could not be built locally: {exc}")
            return 1
    ctx.print(f"{path} is going to be uploaded to Datadog")
    if not args.send:
        ctx.print("Are you sure you want to upload a flare? [y/N]")
        answer = sys.stdin.readline().strip().lower()
        if answer not in ("y", "yes"):
            ctx.print(f"Aborting. (You can still use {path})")
            return 0
    try:
        flare = flare or importlib.import_module("plugins.flare")
        send = flare.send_flare
    except (ImportError, AttributeError) as exc:
        ctx.error(f"Uploading flares is not available: {exc}. (You can still use {path})")
        return 1
    try:
        response = send(ctx.agent(), Path(path), args.case_id, args.email)
    except Exception as exc:
        ctx.error(f"The flare could not be uploaded: {exc}. (You can still use {path})")
        return 1
    ctx.print(response)
    return 0


def commands() -> list[CliCommand]:
    return [
        CliCommand("status", "Print the current status", _guarded(_status), _status_configure),
        CliCommand("health", "Print the current agent health", _guarded(_health)),
        CliCommand(
            "flare", "Collect a flare and send it to Datadog", _guarded(_flare), _flare_configure
        ),
        CliCommand(
            "config",
            "Print the runtime configuration of a running agent",
            _guarded(_config),
            _config_configure,
        ),
        CliCommand("hostname", "Print the hostname used by the agent", _guarded(_hostname)),
        CliCommand(
            "workload-list",
            "Print the workload content of a running agent",
            _guarded(_workload_list),
            _workload_configure,
        ),
        CliCommand("stop", "Stop a running agent", _guarded(_stop)),
    ]
