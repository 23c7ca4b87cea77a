"""Reading a rule's ``actions`` list into :class:`ActionSpec` values, with Datadog's messages.

Each list item holds exactly one action (``set``, ``kill``, ``hash`` or ``log``) plus an
optional ``filter`` SECL expression evaluated when the action runs. A bad action makes its
rule fail to load, as in Datadog; the message is returned, never raised past the loader.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass, field
from typing import Any

from plugins.runtime_security.durations import DurationError, parse_duration
from plugins.secl import RUNTIME_MODEL, CompiledRule

ACTION_KINDS = ("set", "kill", "hash", "log")
UNSUPPORTED_KINDS = ("coredump", "network_filter")
LOG_LEVELS = ("debug", "info", "warn", "warning", "error")
VARIABLE_KINDS = {"string": "string", "int": "int", "bool": "bool"}


class ActionError(ValueError):
    """An action that cannot be loaded; the message is the reference's wording."""


@dataclass(frozen=True)
class ActionSpec:
    """One action of a rule. ``params`` holds the kind's settings, normalised:

    - ``kill``: ``signal`` (int), ``signal_name``, ``scope``
    - ``set``: ``variable`` (scoped name), ``value`` or ``field``, ``ttl`` (s or None),
      ``append``, ``size``, ``kind`` (string/int/bool), ``is_list``
    - ``hash``: ``field`` ("" = the event's own file), ``max_file_size`` (bytes or None)
    - ``log``: ``level``, ``message``
    """

    kind: str
    params: dict[str, Any]
    filter_expression: str = ""
    filter: CompiledRule | None = field(default=None, compare=False)


def parse_actions(raw: Any, *, enforcement: bool) -> list[ActionSpec]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ActionError("'actions' must be a list")
    return [_parse_one(item, enforcement) for item in raw]


def _parse_one(item: Any, enforcement: bool) -> ActionSpec:
    if not isinstance(item, dict):
        raise ActionError("an action must be a mapping")
    kinds = [k for k in item if k != "filter"]
    if len(kinds) > 1:
        raise ActionError("only one action can be specified")
    if not kinds:
        raise ActionError("no action specified")
    kind = str(kinds[0])
    if kind in UNSUPPORTED_KINDS:
        raise ActionError(f"the '{kind}' action is not supported by this agent")
    if kind not in ACTION_KINDS:
        raise ActionError(f"unknown action '{kind}'")
    body = item[kind] if item[kind] is not None else {}
    if not isinstance(body, dict):
        raise ActionError(f"the '{kind}' action must be a mapping")
    filt = item.get("filter") or ""
    if not isinstance(filt, str):
        raise ActionError("an action 'filter' must be a SECL expression string")
    params = {"kill": _kill, "set": _set, "hash": _hash, "log": _log}[kind](body, enforcement)
    return ActionSpec(kind, params, filt)


def _kill(body: dict[str, Any], enforcement: bool) -> dict[str, Any]:
    if not enforcement:
        raise ActionError("'kill' action is disabled globally")
    name = str(body.get("signal") or "")
    if not name:
        raise ActionError("a valid signal has to be specified to the 'kill' action")
    try:
        number = int(signal.Signals[name.upper()])
    except KeyError:
        raise ActionError(f"unsupported signal '{name}'") from None
    scope = str(body.get("scope") or "process")
    if scope != "process":
        raise ActionError(f"unsupported 'kill' scope '{scope}': only 'process' is supported")
    return {"signal": number, "signal_name": name.upper(), "scope": scope}


def _value_kind(value: Any) -> tuple[str, bool]:
    if isinstance(value, list):
        if not value:
            raise ActionError("a list value of 'set' must not be empty")
        kind, _ = _value_kind(value[0])
        return kind, True
    if isinstance(value, bool):
        return "bool", False
    if isinstance(value, int):
        return "int", False
    if isinstance(value, str):
        return "string", False
    raise ActionError(f"unsupported value type {type(value).__name__} for 'set'")


def _set(body: dict[str, Any], _enforcement: bool) -> dict[str, Any]:
    name = str(body.get("name") or "")
    if not name:
        raise ActionError("variable name is empty")
    has = [k for k in ("value", "field", "expression") if body.get(k) is not None]
    if not has:
        raise ActionError("either 'value', 'field' or 'expression' must be specified")
    if len(has) > 1:
        raise ActionError("only one of 'value', 'field' or 'expression' can be specified")
    if has[0] == "expression":
        raise ActionError("the 'expression' form of 'set' is not supported by this agent")
    scope = str(body.get("scope") or "")
    if scope not in ("", "process", "container"):
        raise ActionError(f"unsupported 'set' scope '{scope}': use process or container")
    params: dict[str, Any] = {"variable": f"{scope}.{name}" if scope else name}
    if has[0] == "value":
        kind, is_list = _value_kind(body["value"])
        params["value"] = body["value"]
    else:
        spec = RUNTIME_MODEL.fields.get(str(body["field"]))
        if spec is None or spec.kind not in VARIABLE_KINDS:
            raise ActionError(f"unknown field '{body['field']}' for 'set'")
        kind, is_list = spec.kind, spec.is_list
        params["field"] = spec.name
    append = bool(body.get("append", False))
    ttl = body.get("ttl")
    try:
        params["ttl"] = None if ttl in (None, "", 0) else parse_duration(ttl)
    except DurationError as exc:
        raise ActionError(f"invalid 'ttl': {exc}") from None
    size = body.get("size", 100)
    if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
        raise ActionError(f"'size' must be a positive integer, got {size!r}")
    params.update(kind=kind, is_list=is_list or append, append=append, size=size)
    return params


def _hash(body: dict[str, Any], _enforcement: bool) -> dict[str, Any]:
    field_name = str(body.get("field") or "")
    if field_name and not field_name.endswith(".file"):
        raise ActionError(f"'hash' field must name a file (such as open.file), got '{field_name}'")
    size = body.get("max_file_size")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size <= 0):
        raise ActionError(f"'max_file_size' must be a positive integer, got {size!r}")
    return {"field": field_name, "max_file_size": size}


def _log(body: dict[str, Any], _enforcement: bool) -> dict[str, Any]:
    level = str(body.get("level") or "info").lower()
    if level not in LOG_LEVELS:
        raise ActionError("a valid log level must be specified to the 'log' action")
    return {
        "level": "warn" if level == "warning" else level,
        "message": str(body.get("message") or ""),
    }
