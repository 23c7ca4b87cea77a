"""The builtin modules rtloader gives checks: ``aggregator``, ``datadog_agent``, ``_util``,
``tagger``, ``containers``, ``kubeutil``, ``util`` — plus the legacy ``checks`` package.

Each is a real module object whose functions check their arguments as rtloader's C code
does (same ``TypeError`` texts) and call the agent through a :class:`CheckHost`. They are put
into ``sys.modules`` before any check is imported, so ``import aggregator`` in a check, in
our SDK or in upstream's ``datadog-checks-base`` finds them, exactly as under the Datadog
Agent.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

from plugins.checks.aggregation import (
    COUNT,
    COUNTER,
    GAUGE,
    HISTOGRAM,
    HISTORATE,
    MONOTONIC_COUNT,
    RATE,
)
from plugins.checks.arguments import convert, no_keywords, parse, string_tags

if TYPE_CHECKING:
    from plugins.checks.check_host import CheckHost

BUILTIN_NAMES = ("aggregator", "datadog_agent", "_util", "tagger", "containers", "kubeutil", "util")


def _module(
    name: str, doc: str, functions: dict[str, Callable[..., Any]], **constants: Any
) -> ModuleType:
    module = ModuleType(name, doc)
    for function_name, function in functions.items():
        function.__name__ = function_name
        function.__qualname__ = function_name
        setattr(module, function_name, function)
    for constant, value in constants.items():
        setattr(module, constant, value)
    return module


# --- aggregator ------------------------------------------------------------------------------


def aggregator_module(host: CheckHost) -> ModuleType:
    aggregator = host.aggregator

    def submit_metric(*args: Any, **kwargs: Any) -> None:
        # The hot path of every check: well-typed calls (what the SDK makes) skip the generic
        # argument parser, which then only runs to produce rtloader's error for a bad call.
        if (
            not kwargs
            and 7 <= len(args) <= 8
            and type(args[1]) is str
            and type(args[2]) is int
            and type(args[3]) is str
            and type(args[4]) is float
            and type(args[5]) is list
            and type(args[6]) is str
        ):
            _check, check_id, mtype, name, value, tags, hostname, *rest = args
            flush_first = bool(rest[0]) if rest else False
            if not all(type(tag) is str for tag in tags):
                tags = [tag for tag in tags if isinstance(tag, str)]
        else:
            no_keywords("submit_metric", kwargs)
            _check, check_id, mtype, name, value, tags, hostname, flush = parse(args, "OsisdOs|i")
            tags = string_tags(tags)
            flush_first = bool(flush)
        aggregator.sampler(check_id).add_sample(
            mtype, name, value, tags, hostname, flush_first, aggregator.now()
        )

    def submit_service_check(*args: Any, **kwargs: Any) -> None:
        no_keywords("submit_service_check", kwargs)
        _check, check_id, name, status, tags, hostname, message = parse(args, "OssiOss")
        clean = string_tags(tags)
        aggregator.sampler(check_id).add_service_check(
            name, status, clean, hostname, message, aggregator.now()
        )

    def submit_event(*args: Any, **kwargs: Any) -> None:
        no_keywords("submit_event", kwargs)
        _check, check_id, event = parse(args, "OsO")
        if not isinstance(event, dict):
            raise TypeError("event must be a dict")
        payload: dict[str, Any] = {}
        for key in (
            "msg_title",
            "msg_text",
            "priority",
            "host",
            "alert_type",
            "aggregation_key",
            "source_type_name",
            "event_type",
        ):
            value = event.get(key)
            payload[key] = value if isinstance(value, str) else ""
        timestamp = event.get("timestamp")
        payload["timestamp"] = (
            timestamp if isinstance(timestamp, int) and not isinstance(timestamp, bool) else 0
        )
        tags = event.get("tags")
        payload["tags"] = string_tags(tags) if tags is not None else []
        aggregator.sampler(check_id).add_event(payload, aggregator.now())

    def submit_histogram_bucket(*args: Any, **kwargs: Any) -> None:
        no_keywords("submit_histogram_bucket", kwargs)
        values = parse(args, "OssLffisO|i")
        _check, check_id, name, value, lower, upper, monotonic, hostname, tags, _flush = values
        aggregator.sampler(check_id).add_histogram_bucket(
            name, value, lower, upper, bool(monotonic), hostname, string_tags(tags)
        )

    def submit_event_platform_event(*args: Any, **kwargs: Any) -> None:
        no_keywords("submit_event_platform_event", kwargs)
        parse(args, "Osss")

    return _module(
        "aggregator",
        "Submit metrics, service checks and events to the agent's aggregator.",
        {
            "submit_metric": submit_metric,
            "submit_service_check": submit_service_check,
            "submit_event": submit_event,
            "submit_histogram_bucket": submit_histogram_bucket,
            "submit_event_platform_event": submit_event_platform_event,
        },
        GAUGE=GAUGE,
        RATE=RATE,
        COUNT=COUNT,
        MONOTONIC_COUNT=MONOTONIC_COUNT,
        COUNTER=COUNTER,
        HISTOGRAM=HISTOGRAM,
        HISTORATE=HISTORATE,
    )


# --- datadog_agent ---------------------------------------------------------------------------


def _headers_function(host: CheckHost) -> Callable[..., Any]:
    def headers(agentConfig: Any = None, *args: Any, **kwargs: Any) -> dict[str, str]:
        return host.headers(kwargs.get("http_host"))

    return headers


def _validated_external_tags(entries: Any) -> list[tuple[str, dict[str, list[str]]]]:
    if not isinstance(entries, list):
        raise TypeError("tags must be a list")
    result: list[tuple[str, dict[str, list[str]]]] = []
    for entry in entries:
        if not isinstance(entry, tuple):
            raise TypeError("external host tags list must contain only tuples")
        if len(entry) < 2:
            raise TypeError("external host tags tuple must have at least 2 elements")
        hostname, by_source = entry[0], entry[1]
        if not isinstance(hostname, str):
            raise TypeError("hostname is not a valid string")
        if not isinstance(by_source, dict):
            raise TypeError("second elem of the host tags tuple must be a dict")
        if not by_source:
            continue  # an empty dict skips the host, as rtloader does
        tags_by_source: dict[str, list[str]] = {}
        for source, tags in by_source.items():
            if not isinstance(source, str):
                raise TypeError("source_type is not a valid string")
            if not isinstance(tags, list):
                raise TypeError("dict value must be a list of tags")
            tags_by_source[source] = [t for t in tags if isinstance(t, str)]
        result.append((hostname, tags_by_source))
    return result


def datadog_agent_module(host: CheckHost) -> ModuleType:  # noqa: PLR0915 - one closure per function
    def get_config(*args: Any, **kwargs: Any) -> Any:
        no_keywords("get_config", kwargs)
        (key,) = parse(args, "s")
        return host.get_config(key)

    def get_hostname() -> str:
        return host.get_hostname()

    def get_clustername() -> str:
        return host.get_clustername()

    def get_host_tags() -> str:
        return host.get_host_tags()

    def get_version() -> str:
        return host.get_version()

    def tracemalloc_enabled() -> bool:
        return host.tracemalloc_enabled()

    def get_process_start_time() -> float:
        return host.process_start_time()

    def log(*args: Any, **kwargs: Any) -> None:
        no_keywords("log", kwargs)
        message, level = parse(args, "si")
        host.log(message, level)

    def send_log(*args: Any, **kwargs: Any) -> None:
        no_keywords("send_log", kwargs)
        line, check_id = parse(args, "ss")
        host.send_log(line, check_id)

    def set_check_metadata(*args: Any, **kwargs: Any) -> None:
        no_keywords("set_check_metadata", kwargs)
        check_id, name, value = parse(args, "sss")
        host.set_check_metadata(check_id, name, value)

    def set_external_tags(*args: Any, **kwargs: Any) -> None:
        no_keywords("set_external_tags", kwargs)
        (entries,) = parse(args, "O")
        host.set_external_tags(_validated_external_tags(entries))

    def write_persistent_cache(*args: Any, **kwargs: Any) -> None:
        no_keywords("write_persistent_cache", kwargs)
        key, value = parse(args, "ss")
        host.write_persistent_cache(key, value)

    def read_persistent_cache(*args: Any, **kwargs: Any) -> str:
        no_keywords("read_persistent_cache", kwargs)
        (key,) = parse(args, "s")
        try:
            return host.read_persistent_cache(key)
        except OSError:
            raise RuntimeError("failed to read data") from None

    def obfuscate_sql(*args: Any, **kwargs: Any) -> str:
        query = convert("s", args[0] if args else kwargs.get("query"), 1)
        result = host.obfuscate_sql(query)
        if not result:
            raise RuntimeError("result is empty")
        return result

    def obfuscate_sql_exec_plan(*args: Any, **kwargs: Any) -> str:
        plan = convert("s", args[0] if args else kwargs.get("plan"), 1)
        result = host.obfuscate_sql(plan)
        if not result:
            raise RuntimeError("empty")
        return result

    def obfuscate_mongodb_string(*args: Any, **kwargs: Any) -> str:
        no_keywords("obfuscate_mongodb_string", kwargs)
        (command,) = parse(args, "s")
        return host.obfuscate_sql(command)

    def emit_agent_telemetry(*args: Any, **kwargs: Any) -> None:
        labels = kwargs.pop("labels", None)
        no_keywords("emit_agent_telemetry", kwargs)
        check_name, metric, value, metric_type, extra = parse(args, "ssds|O")
        labels = extra if extra is not None else labels
        host.emit_agent_telemetry(
            check_name,
            metric,
            value,
            metric_type,
            json.dumps(labels) if labels is not None else None,
        )

    def report_issue(*args: Any, **kwargs: Any) -> None:
        report = kwargs.pop("report_json", None)
        no_keywords("report_issue", kwargs)
        check_name, extra = parse(args, "s|O")
        host.report_issue(check_name, extra if extra is not None else report)

    def resolve_issue(*args: Any, **kwargs: Any) -> None:
        no_keywords("resolve_issue", kwargs)
        (issue_id,) = parse(args, "s")
        host.resolve_issue(issue_id)

    return _module(
        "datadog_agent",
        "The agent's configuration, identity, logging, metadata and persistent cache.",
        {
            "get_config": get_config,
            "get_hostname": get_hostname,
            "get_clustername": get_clustername,
            "get_host_tags": get_host_tags,
            "get_version": get_version,
            "tracemalloc_enabled": tracemalloc_enabled,
            "get_process_start_time": get_process_start_time,
            "headers": _headers_function(host),
            "log": log,
            "send_log": send_log,
            "set_check_metadata": set_check_metadata,
            "set_external_tags": set_external_tags,
            "write_persistent_cache": write_persistent_cache,
            "read_persistent_cache": read_persistent_cache,
            "obfuscate_sql": obfuscate_sql,
            "obfuscate_sql_exec_plan": obfuscate_sql_exec_plan,
            "obfuscate_mongodb_string": obfuscate_mongodb_string,
            "emit_agent_telemetry": emit_agent_telemetry,
            "report_issue": report_issue,
            "resolve_issue": resolve_issue,
        },
    )


# --- _util -----------------------------------------------------------------------------------


class SubprocessOutputEmptyError(Exception):
    """``_util.SubprocessOutputEmptyError``: the command printed nothing and output was asked."""


SubprocessOutputEmptyError.__module__ = "_util"


def _exec_error(program: str, error: OSError) -> Exception:
    # The Go side's wording (os/exec), which rtloader raises as a plain Exception.
    if "/" not in program:
        return Exception(f'exec: "{program}": executable file not found in $PATH')
    reason = (error.strerror or str(error)).lower()
    return Exception(f"fork/exec {program}: {reason}")


def run_subprocess(
    command: list[str], raise_on_empty: bool, env: list[str] | None
) -> tuple[str, str, int]:
    environment: dict[str, str] | None = None
    if env is not None:
        environment = {}
        for item in env:
            key, _, value = item.partition("=")
            environment[key] = value
    try:
        completed = subprocess.run(command, capture_output=True, env=environment, check=False)
    except OSError as error:
        raise _exec_error(command[0], error) from None
    out = completed.stdout.decode("utf-8", "replace")
    if raise_on_empty and not out:
        raise SubprocessOutputEmptyError("get_subprocess_output expected output but had none.")
    return out, completed.stderr.decode("utf-8", "replace"), completed.returncode


_SUBPROCESS_ARGUMENTS = ("command", "raise_on_empty", "env")


def _subprocess_arguments(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """``PyArg_ParseTupleAndKeywords`` for ``get_subprocess_output``, with CPython's texts."""
    unknown = [k for k in kwargs if k not in _SUBPROCESS_ARGUMENTS]
    if unknown:
        raise TypeError(
            f"'{unknown[0]}' is an invalid keyword argument for get_subprocess_output()"
        )
    if len(args) > 3:
        raise TypeError(f"get_subprocess_output() takes at most 3 arguments ({len(args)} given)")
    values = dict(zip(_SUBPROCESS_ARGUMENTS, args, strict=False))
    for key, value in kwargs.items():
        if key in values:
            raise TypeError(
                f"argument for get_subprocess_output() given by name ('{key}') and position"
            )
        values[key] = value
    if "command" not in values:
        raise TypeError("get_subprocess_output() missing required argument 'command' (pos 1)")
    command = values["command"]
    if not isinstance(command, list):
        raise TypeError("command args is not a list")
    if not command:
        raise TypeError("invalid command: empty list")
    if not all(isinstance(part, str) for part in command):
        raise TypeError("command argument must be valid strings")
    return values


def util_module_private() -> ModuleType:
    def subprocess_output(*args: Any, **kwargs: Any) -> tuple[str, str, int]:
        values = _subprocess_arguments(args, kwargs)
        command = values["command"]
        raise_on_empty = values.get("raise_on_empty", False)
        if not isinstance(raise_on_empty, bool):
            raise TypeError("bad raise_on_empty argument: should be bool")
        env = values.get("env")
        env_list: list[str] | None = None
        if env is not None:
            if not isinstance(env, dict):
                raise TypeError("env is not a dict")
            env_list = []
            for key, value in env.items():
                if not isinstance(key, str) or not isinstance(value, str):
                    raise TypeError("env key/value must be valid strings")
                env_list.append(f"{key}={value}")
        return run_subprocess(command, raise_on_empty, env_list)

    return _module(
        "_util",
        "Run a command the way rtloader does: (stdout, stderr, retcode).",
        {"subprocess_output": subprocess_output, "get_subprocess_output": subprocess_output},
        SubprocessOutputEmptyError=SubprocessOutputEmptyError,
    )


# --- tagger, containers, kubeutil, util ------------------------------------------------------

LOW, ORCHESTRATOR, HIGH = 0, 1, 2


def tagger_module(host: CheckHost) -> ModuleType:
    def tag(*args: Any, **kwargs: Any) -> list[str]:
        no_keywords("tag", kwargs)
        entity, cardinality = parse(args, "si")
        if cardinality not in (LOW, ORCHESTRATOR, HIGH):
            raise TypeError("Invalid cardinality")
        return host.tags_for(entity, cardinality)

    def get_tags(*args: Any, **kwargs: Any) -> list[str]:
        no_keywords("get_tags", kwargs)
        entity, high_card = parse(args, "si")
        return host.tags_for(entity, HIGH if high_card > 0 else LOW)

    return _module(
        "tagger",
        "Tags of an entity (a container, a pod) at a cardinality.",
        {"tag": tag, "get_tags": get_tags},
        LOW=LOW,
        ORCHESTRATOR=ORCHESTRATOR,
        HIGH=HIGH,
    )


def containers_module(host: CheckHost) -> ModuleType:
    def is_excluded(*args: Any, **kwargs: Any) -> bool:
        no_keywords("is_excluded", kwargs)
        name, image, namespace = parse(args, "ss|s")
        return host.container_excluded(name, image, namespace or "")

    return _module("containers", "Container filtering.", {"is_excluded": is_excluded})


def kubeutil_module() -> ModuleType:
    def get_connection_info() -> dict[str, Any]:
        return {}  # no kubelet: rtloader gives {} when the callback has nothing

    return _module(
        "kubeutil", "Kubelet connection info.", {"get_connection_info": get_connection_info}
    )


def util_module(host: CheckHost) -> ModuleType:
    return _module("util", "Legacy helpers.", {"headers": _headers_function(host)})


def legacy_checks_module() -> ModuleType:
    """``checks``: the Agent's shim for ``from checks import AgentCheck``."""
    base = importlib.import_module("datadog_checks.checks")
    module = ModuleType("checks", "Legacy import path of AgentCheck.")
    module.AgentCheck = base.AgentCheck  # type: ignore[attr-defined]
    return module


class BuiltinModules:
    """The modules of one agent and their (un)installation in ``sys.modules``."""

    def __init__(self, host: CheckHost) -> None:
        self.modules: dict[str, ModuleType] = {
            "aggregator": aggregator_module(host),
            "datadog_agent": datadog_agent_module(host),
            "_util": util_module_private(),
            "tagger": tagger_module(host),
            "containers": containers_module(host),
            "kubeutil": kubeutil_module(),
            "util": util_module(host),
        }
        self.base_class: type | None = None
        self.base_error: str | None = None

    def install(self) -> None:
        """Put the modules in ``sys.modules``, then import the check base class (rtloader's
        ``could not import base class`` when that fails)."""
        sys.modules.update(self.modules)
        try:
            legacy = legacy_checks_module()
        except Exception as error:
            self.base_error = f"could not import base class: {error}"
            return
        self.base_class = legacy.AgentCheck
        if "checks" not in sys.modules:
            self.modules["checks"] = legacy
            sys.modules["checks"] = legacy

    def uninstall(self) -> None:
        for name, module in self.modules.items():
            if sys.modules.get(name) is module:
                del sys.modules[name]
