"""Datadog benchmark files: loading and validating ``*.yaml`` from a benchmark directory.

A benchmark is one YAML file (``name``, ``framework``, ``version``, ``tags``, ``rules``); each
rule names its inputs, and a Rego rule may have a ``<rule id>.rego`` next to the file plus
``imports``. Problems are reported per file (the whole file cannot run) or per rule (that rule
becomes an ``error`` finding and the others still run), with Datadog's messages.
"""

from __future__ import annotations

import fnmatch
import glob as globlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

INPUT_TYPES = (
    "file",
    "process",
    "group",
    "audit",
    "docker",
    "kubeApiserver",
    "package",
    "xccdf",
    "constants",
)
ARRAY_ONLY = ("kubeApiserver", "docker", "audit")
SCOPES = ("none", "docker", "kubernetesNode", "kubernetesCluster")


class BenchmarkError(Exception):
    """A benchmark file that cannot be used at all (its rules are not run)."""


@dataclass
class RuleInput:
    """One entry of a rule's ``input`` list."""

    kind: str
    spec: Mapping[str, Any]
    tag: str
    array: bool


@dataclass
class Rule:
    id: str
    description: str = ""
    scope: list[str] = field(default_factory=list)
    skip_on_kubernetes: bool = False
    filters: list[str] = field(default_factory=list)
    inputs: list[RuleInput] = field(default_factory=list)
    imports: list[str] = field(default_factory=list)
    period: str | None = None
    error: str | None = None
    """Why the rule cannot be evaluated (it then yields an ``error`` finding)."""

    @property
    def is_xccdf(self) -> bool:
        return len(self.inputs) == 1 and self.inputs[0].kind == "xccdf"

    @property
    def evaluator(self) -> str:
        return "xccdf" if self.is_xccdf else "rego"


@dataclass
class Benchmark:
    path: str
    name: str
    framework: str
    version: str
    tags: list[str]
    rules: list[Rule]

    @property
    def dirname(self) -> str:
        return os.path.dirname(self.path)


RuleFilter = Callable[[Rule], bool]


def _parse_input(raw: Any, rule_id: str) -> RuleInput:
    if not isinstance(raw, Mapping):
        raise ValueError(f"bad input in rule {rule_id}: expected a mapping, got {raw!r}")
    kinds = [k for k in raw if k not in ("tag", "type")]
    known = [k for k in kinds if k in INPUT_TYPES]
    if len(known) != 1 or len(kinds) != 1:
        shown = ", ".join(str(k) for k in kinds) or "none"
        raise ValueError(f"bad input in rule {rule_id}: unknown input type {shown}")
    kind = known[0]
    spec = raw[kind] or {}
    if not isinstance(spec, Mapping):
        raise ValueError(f"bad input in rule {rule_id}: {kind} must be a mapping")
    type_ = raw.get("type")
    if type_ not in (None, "array", "object"):
        raise ValueError("bad input results `array`")
    array = type_ == "array"
    if kind in ARRAY_ONLY and not array:
        raise ValueError("input of types kubeApiserver docker and audit have to be arrays")
    if kind == "file" and array:
        path = str(spec.get("glob") or spec.get("path") or "")
        if not spec.get("glob") and not globlib.has_magic(path):
            raise ValueError("file input results defined as array has to be a glob path")
    tag = str(raw.get("tag") or kind)
    return RuleInput(kind=kind, spec=dict(spec), tag=tag, array=array)


def _parse_rule(raw: Any, index: int, path: str) -> Rule:
    if not isinstance(raw, Mapping) or not raw.get("id"):
        raise BenchmarkError(f"{path}: rule #{index + 1} has no id")
    rule = Rule(
        id=str(raw["id"]),
        description=str(raw.get("description") or ""),
        scope=[str(s) for s in (raw.get("scope") or [])],
        skip_on_kubernetes=bool(raw.get("skipOnKubernetes", False)),
        filters=[str(f) for f in (raw.get("filters") or [])],
        imports=[str(i) for i in (raw.get("imports") or [])],
        period=str(raw["period"]) if raw.get("period") is not None else None,
    )
    unknown_scopes = [s for s in rule.scope if s not in SCOPES]
    if unknown_scopes:
        rule.error = f"unknown scope {unknown_scopes[0]!r} in rule {rule.id}"
        return rule
    raw_inputs = raw.get("input") or []
    if not raw_inputs:
        rule.error = f"missing inputs from rule {rule.id}"
        return rule
    try:
        rule.inputs = [_parse_input(i, rule.id) for i in raw_inputs]
    except ValueError as exc:
        rule.error = str(exc)
    return rule


def load_benchmark(path: str) -> Benchmark:
    """Parse one benchmark file; :class:`BenchmarkError` names the file (and line for YAML)."""
    try:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{path}:{mark.line + 1}" if mark is not None else path
        raise BenchmarkError(f"{where}: invalid YAML: {exc.problem}") from None
    except (OSError, yaml.YAMLError) as exc:
        raise BenchmarkError(f"{path}: {exc}") from None
    if not isinstance(doc, Mapping):
        raise BenchmarkError(f"{path}: bad benchmark: expected a mapping at the top level")
    rules_raw = doc.get("rules") or []
    if not isinstance(rules_raw, list) or not rules_raw:
        raise BenchmarkError(f"{path}: bad benchmark: empty rule set")
    framework = str(doc.get("framework") or "")
    if not framework:
        raise BenchmarkError(f"{path}: bad benchmark: missing framework")
    rules = [_parse_rule(r, i, path) for i, r in enumerate(rules_raw)]
    seen: set[str] = set()
    for rule in rules:
        if rule.id in seen:
            raise BenchmarkError(f"{path}: bad benchmark: duplicate rule id {rule.id}")
        seen.add(rule.id)
    return Benchmark(
        path=path,
        name=str(doc.get("name") or framework),
        framework=framework,
        version=str(doc.get("version") or ""),
        tags=[str(t) for t in (doc.get("tags") or [])],
        rules=rules,
    )


@dataclass
class LoadResult:
    benchmarks: list[Benchmark]
    errors: list[str]
    """One line per benchmark file that could not be loaded."""


def load_benchmarks(
    dirs: list[str], pattern: str = "*.yaml", rule_filter: RuleFilter | None = None
) -> LoadResult:
    """Load every benchmark matching ``pattern`` in ``dirs`` (missing directories are skipped).

    Rules refused by ``rule_filter`` are dropped; a benchmark left with no rule is dropped too.
    """
    result = LoadResult([], [])
    for directory in dirs:
        try:
            names = sorted(os.listdir(directory))
        except FileNotFoundError:
            continue
        except OSError as exc:
            result.errors.append(f"{directory}: {exc.strerror}")
            continue
        for name in names:
            if not fnmatch.fnmatch(name, pattern):
                continue
            try:
                bench = load_benchmark(os.path.join(directory, name))
            except BenchmarkError as exc:
                result.errors.append(str(exc))
                continue
            if rule_filter is not None:
                bench.rules = [r for r in bench.rules if rule_filter(r)]
            if bench.rules:
                result.benchmarks.append(bench)
    return result
