"""``security-agent runtime ...``: policy check/eval/reload, self-test, process-cache dump,
and ``event-monitor``, the privileged process that serves kernel events on a unix socket."""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from host import CliCommand
from plugins.runtime_security.policy_loader import (
    PolicySet,
    host_facts,
    load_policies,
    policy_files,
)
from plugins.runtime_security.settings import RuntimeSettings

if TYPE_CHECKING:
    from host.cli_context import CliContext


def _common() -> argparse.ArgumentParser:
    # The host accepts its global options after a subcommand; nested subcommands must too.
    common = argparse.ArgumentParser(add_help=False)
    kw: dict[str, Any] = {"default": argparse.SUPPRESS}
    common.add_argument("-c", "--cfgpath", action="append", metavar="FILE", **kw)
    common.add_argument("--sysprobe-config", metavar="PATH", **kw)
    common.add_argument("-n", "--no-color", action="store_true", **kw)
    common.add_argument("--strict-plugins", action="store_true", **kw)
    return common


def configure(parser: argparse.ArgumentParser) -> None:
    common = _common()
    sub = parser.add_subparsers(dest="runtime_command", metavar="COMMAND", required=True)
    policy = sub.add_parser("policy", help="check, evaluate and reload policies", parents=[common])
    psub = policy.add_subparsers(dest="policy_command", metavar="COMMAND", required=True)
    check = psub.add_parser(
        "check", help="load the policies and report every rule", parents=[common]
    )
    check.add_argument("--policies-dir", metavar="DIR", help="the directory of *.policy files")
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    check.set_defaults(runtime_handler=_policy_check)
    ev = psub.add_parser("eval", help="evaluate one rule against an event file", parents=[common])
    ev.add_argument("--policies-dir", metavar="DIR", help="the directory of *.policy files")
    ev.add_argument("--rule-id", required=True, help="the rule to evaluate")
    ev.add_argument("--event-file", required=True, help="the event, as JSON")
    ev.set_defaults(runtime_handler=_policy_eval)
    reload = psub.add_parser(
        "reload", help="make the running agent reload its policies", parents=[common]
    )
    reload.set_defaults(runtime_handler=_policy_reload)
    st = sub.add_parser("self-test", help="run the running agent's self-test", parents=[common])
    st.set_defaults(runtime_handler=_self_test)
    pc = sub.add_parser("process-cache", help="the running agent's process cache", parents=[common])
    pcsub = pc.add_subparsers(dest="cache_command", metavar="COMMAND", required=True)
    dump = pcsub.add_parser("dump", help="write the process cache to a file", parents=[common])
    dump.add_argument("--with-args", action="store_true", help="include command lines")
    dump.set_defaults(runtime_handler=_process_cache_dump)
    em = sub.add_parser(
        "event-monitor",
        help="run the kernel event sources and serve their events on the event socket",
        parents=[common],
    )
    em.add_argument("--socket", help="the unix socket (default: event_monitoring_config.socket)")
    em.set_defaults(runtime_handler=_event_monitor)


def run(ctx: CliContext, args: argparse.Namespace) -> int:
    code: int = args.runtime_handler(ctx, args)
    return code


def command() -> CliCommand:
    return CliCommand(
        name="runtime",
        help="Runtime security commands: policies, self-test, process cache, event monitor",
        run=run,
        configure=configure,
    )


# -- policy check / eval --------------------------------------------------------------------


def _load(ctx: CliContext, policies_dir: str | None, only_rule: str | None = None) -> PolicySet:
    agent = ctx.agent()
    settings = RuntimeSettings.from_agent(agent)
    directory = policies_dir or settings.policies_dir
    return load_policies(
        policy_files(directory),
        agent_version=agent.version,
        enforcement=settings.enforcement,
        facts=host_facts(agent.hostname),
        only_rule=only_rule,
    )


def check_text(report: Mapping[str, Any]) -> str:
    lines = []
    for policy in report["policies"]:
        version = f", version {policy['version']}" if policy["version"] else ""
        lines.append(f"Policy {policy['name']} ({policy['source']}{version})")
        if policy.get("error"):
            lines.append(f"  error: {policy['error']}")
        for rule in policy["rules"]:
            error = f" ({rule['error']})" if rule.get("error") else ""
            lines.append(f"  - {rule['id']}: {rule['status']}{error}")
    for error in report["errors"]:
        lines.append(f"Error: {error}")
    s = report["summary"]
    lines.append(
        f"Rules: {s['loaded']} loaded, {s['error']} in error, {s['disabled']} disabled, "
        f"{s['filtered']} filtered"
    )
    return "\n".join(lines)


def _policy_check(ctx: CliContext, args: argparse.Namespace) -> int:
    policies = _load(ctx, args.policies_dir)
    report = policies.report()
    ctx.print(json.dumps(report, indent=2) if args.json else check_text(report))
    return 1 if report["errors"] or report["summary"]["error"] else 0


class EventFileError(ValueError):
    pass


def nest_values(event_type: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """Datadog's flat ``{"field": value}`` event into our nested event dict."""
    from plugins.secl import RUNTIME_MODEL

    event: dict[str, Any] = {"type": event_type}
    for name, value in values.items():
        spec = RUNTIME_MODEL.fields.get(name)
        if spec is None:
            raise EventFileError(f"unknown field '{name}'")
        if spec.derive is not None:
            raise EventFileError(f"field '{name}' is computed from others; set those instead")
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # noqa: PLW2901 - Datadog's eval reads numbers as integers
        if spec.iterator is not None:
            items = value if isinstance(value, list) else [value]
            ancestors = _walk(event, spec.iterator[:-1]).setdefault(str(spec.iterator[-1]), [])
            while len(ancestors) < len(items):
                ancestors.append({})
            for ancestor, item in zip(ancestors, items, strict=False):
                _walk(ancestor, spec.path[:-1])[str(spec.path[-1])] = item
            continue
        _walk(event, spec.path[:-1])[str(spec.path[-1])] = value
    return event


def _walk(root: dict[str, Any], path: tuple[Any, ...]) -> dict[str, Any]:
    """The dict at ``path`` in ``root``, created on the way; an int part indexes a list
    (``process.parent.*`` lives in ``process.ancestors[0]``)."""
    node: Any = root
    for i, part in enumerate(path):
        if isinstance(part, int):
            while len(node) <= part:
                node.append({})
            node = node[part]
            continue
        following_index = i + 1 < len(path) and isinstance(path[i + 1], int)
        node = node.setdefault(str(part), [] if following_index else {})
    result: dict[str, Any] = node
    return result


def read_event_file(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as exc:
        raise EventFileError(f"{path}: {exc.strerror}") from None
    except ValueError as exc:
        raise EventFileError(f"{path}: invalid JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise EventFileError(f"{path}: expected an object with a string 'type'")
    if isinstance(data.get("values"), dict):
        try:
            return nest_values(data["type"], data["values"])
        except EventFileError as exc:
            raise EventFileError(f"{path}: {exc}") from None
    return data


def _approvers(policies: PolicySet, rule_id: str) -> dict[str, list[dict[str, Any]]]:
    found = policies.ruleset.approvers().get(rule_id, {})
    return {
        name: [{"kind": a.kind, "value": a.value} for a in approvers]
        for name, approvers in found.items()
    }


def _policy_eval(ctx: CliContext, args: argparse.Namespace) -> int:
    report: dict[str, Any] = {"Succeeded": False, "Approvers": {}, "Event": None, "Error": ""}
    try:
        event = read_event_file(args.event_file)
        report["Event"] = event
        policies = _load(ctx, args.policies_dir, only_rule=args.rule_id)
        state = policies.rules.get(args.rule_id)
        if state is None:
            raise EventFileError(f"rule {args.rule_id} not found")
        if state.status != "loaded":
            raise EventFileError(
                f"rule {args.rule_id} is {state.status}: {state.error}".rstrip(": ")
            )
        report["Approvers"] = _approvers(policies, args.rule_id)
        report["Succeeded"] = args.rule_id in policies.ruleset.evaluate(event)
    except EventFileError as exc:
        report["Error"] = str(exc)
    ctx.print(json.dumps(report, indent=4))
    return 0 if report["Succeeded"] else -1


# -- talking to the running agent -----------------------------------------------------------


class ApiError(Exception):
    """The agent could not be asked, or answered with an error; one line."""


def _api(ctx: CliContext, method: str, path: str) -> Any:
    """The decoded JSON answer of the running agent, through the command API's own client
    (same address, token and certificate rules as ``security-agent status``)."""
    from host.config import ConfigError
    from plugins.ipc_client import UnreachableError, client_for

    try:
        reply = client_for(ctx.agent()).request(method, path)
    except (UnreachableError, ConfigError, ValueError) as exc:
        raise ApiError(str(exc)) from None
    if reply.status != 200:
        raise ApiError(reply.error_message() or f"HTTP {reply.status}")
    try:
        return json.loads(reply.body or b"null")
    except ValueError:
        raise ApiError(f"invalid JSON from the agent: {reply.text[:200]}") from None


def _policy_reload(ctx: CliContext, _args: argparse.Namespace) -> int:
    try:
        result = _api(ctx, "POST", "/agent/runtime/policy/reload")
    except ApiError as exc:
        ctx.error(f"unable to reload policies: {exc}")
        return 1
    s = result.get("summary", {}) if isinstance(result, dict) else {}
    ctx.print(f"Policies reloaded: {s.get('loaded', 0)} rules loaded, {s.get('error', 0)} in error")
    return 0


def _self_test(ctx: CliContext, _args: argparse.Namespace) -> int:
    try:
        result = _api(ctx, "GET", "/agent/runtime/self-test")
    except ApiError as exc:
        ctx.print(f"Runtime self test: error: {exc}")
        return 1
    if result.get("Fails") or not result.get("Success"):
        ctx.print(f"Runtime self test: error: {result.get('Error') or 'failed'}")
        return 1
    ctx.print("Runtime self test: OK")
    return 0


def _process_cache_dump(ctx: CliContext, args: argparse.Namespace) -> int:
    try:
        entries = _api(ctx, "GET", "/agent/runtime/process-cache")
    except ApiError as exc:
        ctx.error(f"unable to dump the process cache: {exc}")
        return 1
    if not args.with_args:
        for entry in entries:
            for key in ("argv", "args", "envp"):
                entry.pop(key, None)
    directory = os.path.join(ctx.agent().run_path, "runtime-security")
    os.makedirs(directory, mode=0o700, exist_ok=True)
    path = os.path.join(directory, f"process-cache-{int(time.time() * 1000)}.json")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(entries, f, indent=2)
    ctx.print(f"Process dump file: {path}")
    return 0


# -- the event-monitoring process -----------------------------------------------------------


def _event_monitor(ctx: CliContext, args: argparse.Namespace) -> int:
    from plugins.runtime_security.service import build_sources
    from plugins.runtime_security.sources import ProcessCache, serve_events

    agent = ctx.agent()
    settings = RuntimeSettings.from_agent(agent)
    socket_path = args.socket or settings.socket
    if not socket_path:
        ctx.error("event_monitoring_config.socket must be set")
        return 1
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    sources = build_sources(settings, ProcessCache())
    ctx.print(f"Serving runtime security events on {socket_path}")
    ctx.stdout.flush()
    result = serve_events(socket_path, sources, stop)
    ctx.print(json.dumps(result, indent=2))
    return 0
