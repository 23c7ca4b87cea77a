"""Evaluating a Rego rule with regopy: modules, the ``data.datadog.findings`` query, results.

Modules loaded per rule: the ``datadog`` helper module, ``<rule id>.rego`` from the benchmark
directory (when it exists) and every file in ``imports``. ``parse_octal`` (a Go builtin in
Datadog's agent) is provided as Rego appended to each package that calls it.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

import regopy  # type: ignore[import-untyped, import-not-found, unused-ignore]
from regopy.rego_shared import (  # type: ignore[import-untyped, import-not-found, unused-ignore]
    rego_free_output,
    rego_output_ok,
    rego_output_string,
    rego_query,
)

from plugins.compliance.benchmark import Benchmark, Rule

QUERY = "data.datadog.findings"
_PACKAGE = re.compile(r"^\s*package\s+([\w.]+)", re.MULTILINE)
_ERRMSG = re.compile(r"\(errormsg \d+:([^)\n]*)\)")
_ERRAT = re.compile(r"\(error \d+:([^|]*)\|(\d+)\|")


class RegoEvalError(Exception):
    """The rule's modules or results cannot be used; the message is the finding's error."""


@dataclass(frozen=True)
class Finding:
    """One result of a rule for one resource."""

    result: str  # passed | failed | error | skipped
    resource_type: str
    resource_id: str
    data: Mapping[str, Any]


@functools.cache
def _package_text(name: str) -> str:
    # Shipped with the package, so read once per process rather than once per run.
    return resources.files("plugins.compliance").joinpath(name).read_text(encoding="utf-8")


class ModuleCache:
    """Rule module sources, read once per run (benchmarks share imports)."""

    def __init__(self) -> None:
        self.helpers = _package_text("datadog_helpers.rego")
        self.parse_octal = _package_text("parse_octal.rego")
        self._files: dict[str, str | None] = {}

    def read(self, path: str) -> str | None:
        if path not in self._files:
            try:
                with open(path, encoding="utf-8") as f:
                    self._files[path] = f.read()
            except FileNotFoundError:
                self._files[path] = None
        return self._files[path]


def _compile_message(module_sources: Mapping[str, str], exc: Exception) -> str:
    text = str(exc)
    msg = _ERRMSG.search(text)
    where = _ERRAT.search(text)
    problem = msg.group(1).strip() if msg else text.strip().splitlines()[0]
    if where is None:
        return problem
    module, offset = where.group(1), int(where.group(2))
    source = module_sources.get(module, "")
    line = source.count("\n", 0, offset) + 1
    return f"{module}:{line}: {problem}"


def rule_modules(bench: Benchmark, rule: Rule, cache: ModuleCache) -> dict[str, str]:
    """Module name (file name) to source for ``rule``; a missing import is an error."""
    modules = {"datadog_helpers.rego": cache.helpers}
    own = cache.read(os.path.join(bench.dirname, f"{rule.id}.rego"))
    if own is not None:
        modules[f"{rule.id}.rego"] = own
    for name in rule.imports:
        text = cache.read(os.path.join(bench.dirname, name))
        if text is None:
            raise RegoEvalError(f"rego import {name} not found in {bench.dirname}")
        modules[name] = text
    if len(modules) == 1:
        raise RegoEvalError(f"no rego module for rule {rule.id}: expected {rule.id}.rego")
    return _with_parse_octal(modules, cache.parse_octal)


def _with_parse_octal(modules: dict[str, str], definition: str) -> dict[str, str]:
    done: set[str] = set()
    out: dict[str, str] = {}
    for name, text in modules.items():
        m = _PACKAGE.search(text)
        package = m.group(1) if m else ""
        if "parse_octal(" in text and package not in done and "parse_octal(s)" not in text:
            out[name] = text + "\n" + definition
            done.add(package)
        else:
            out[name] = text
    return out


def prepare(modules: Mapping[str, str]) -> regopy.Interpreter:
    """A regopy interpreter with ``modules`` compiled; :class:`RegoEvalError` if they fail."""
    interp = regopy.Interpreter()
    interp.log_level = regopy.LogLevel.NONE  # compile errors are ours to report, not stdout's
    for name, text in modules.items():
        try:
            interp.add_module(name, text)
        except regopy.RegoError as exc:
            raise RegoEvalError("rego compile error: " + _compile_message(modules, exc)) from None
    return interp


def _query(interp: regopy.Interpreter, query: str) -> Any:
    """Run ``query``; its first expression's value (``None`` when undefined).

    Goes through regopy's C API directly: ``Interpreter.query`` parses the engine's output
    with a strict JSON parser, which rejects control characters rego-cpp leaves in strings.
    """
    out = rego_query(interp._impl, query)
    try:
        ok, text = rego_output_ok(out), rego_output_string(out)
    finally:
        rego_free_output(out)
    if text == "undefined":
        return None
    try:
        parsed = json.loads(text, strict=False) if ok else None
    except ValueError:
        parsed = None
    if parsed is None:
        msg = _ERRMSG.search(text)
        raise RegoEvalError(
            "rego evaluation error: " + (msg.group(1).strip() if msg else text.strip()[:200])
        )
    results = parsed if isinstance(parsed, list) else [parsed]
    if not results or not results[0].get("expressions"):
        return None
    return results[0]["expressions"][0]


def query_findings(interp: regopy.Interpreter, doc: Mapping[str, Any]) -> list[Any]:
    """Run ``data.datadog.findings`` on ``doc``; the raw findings as a list."""
    # JSON is valid Rego term syntax, and unlike set_input() it keeps escapes intact.
    interp.set_input_term(json.dumps(doc))
    value = _query(interp, QUERY)
    if value is None:
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        # rego-cpp reads Rego v0 `findings[f] { ... }` as an object whose keys are the
        # JSON-encoded findings; both shapes mean the same set.
        found = []
        for key in value:
            try:
                found.append(json.loads(key, strict=False))
            except ValueError:
                found.append(key)
        return found
    raise RegoEvalError(f"rego result invalid: findings is {type(value).__name__}, not a set")


_STATUS = {
    "passed": "passed",
    "pass": "passed",
    "failing": "failed",
    "fail": "failed",
    "skipped": "skipped",
    "err": "error",
    "error": "error",
}
_SEVERITY = {"error": 3, "failed": 2, "passed": 1, "skipped": 0}


def map_results(raw: list[Any]) -> list[Finding]:
    """Rego findings to :class:`Finding`, one per resource (the most severe result wins)."""
    if not raw:
        raise RegoEvalError("empty results set")
    by_resource: dict[tuple[str, str], Finding] = {}
    for item in raw:
        if not isinstance(item, Mapping):
            raise RegoEvalError(f"rego result invalid: finding is not an object: {item!r}")
        status = item.get("status")
        raw_data = item.get("data")
        data: Mapping[str, Any] = raw_data if isinstance(raw_data, Mapping) else {}
        rtype, rid = str(item.get("resource_type", "")), str(item.get("resource_id", ""))
        result = _STATUS.get(str(status)) if isinstance(status, str) else None
        if result is None:
            finding = Finding(
                "error",
                rtype,
                rid,
                {"error": f"rego result invalid: bad status {json.dumps(status)}"},
            )
        elif result == "error":
            finding = Finding("error", rtype, rid, {"error": str(data.get("error") or "unknown")})
        else:
            finding = Finding(result, rtype, rid, dict(data))
        key = (rtype, rid)
        previous = by_resource.get(key)
        if previous is None or _SEVERITY[finding.result] > _SEVERITY[previous.result]:
            by_resource[key] = finding
    return sorted(by_resource.values(), key=lambda f: (f.resource_type, f.resource_id))
