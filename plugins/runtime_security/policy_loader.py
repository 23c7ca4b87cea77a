"""Loading ``*.policy`` files into one :class:`PolicySet`: rules compiled, every problem named.

Files are read in Datadog's order: the default policy first (the one shipped in this package,
or ``default.policy`` from the directory, which replaces it), then the others by name. As in
Datadog a rule that does not load (SECL error, bad action, bad key) is reported with its error
and every other rule loads; a file that is not valid YAML is reported as ``file:line: problem``
and the other files load. A later rule with an id already seen is refused unless it says
``combine: override``, which replaces the fields its ``override_options.fields`` lists.

A load builds everything aside and returns a new, immutable :class:`PolicySet`; swapping it in
is the caller's business, so events never meet a half-loaded set.
"""

from __future__ import annotations

import os
import platform
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import yaml

from plugins.runtime_security.durations import DurationError, parse_duration
from plugins.runtime_security.policy_actions import ActionError, ActionSpec, parse_actions
from plugins.runtime_security.versions import ConstraintError, satisfies
from plugins.secl import (
    FILTER_MODEL,
    RUNTIME_MODEL,
    MacroDefinition,
    RuleDefinition,
    RuleSet,
    SECLError,
    VariableStore,
    compile_expression,
)

DEFAULT_POLICY = "default.policy"
SHIPPED_SOURCE = "built-in"
_RULE_ID = re.compile(r"^[A-Za-z0-9_.\-]+$")
OVERRIDE_FIELDS = ("expression", "actions", "every", "tags", "product_tags", "description")


@dataclass
class RuleState:
    """Everything known of one rule, whether it loaded or not. ``status`` is ``loaded``,
    ``error`` (``error`` says why), ``disabled`` or ``filtered`` (agent_version/filters)."""

    id: str
    policy: str
    policy_version: str
    expression: str = ""
    description: str = ""
    version: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    product_tags: list[str] = field(default_factory=list)
    every: float | None = None
    actions: list[ActionSpec] = field(default_factory=list)
    status: str = "loaded"
    error: str = ""

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "policy": self.policy, "status": self.status}
        if self.error:
            out["error"] = self.error
        return out


@dataclass
class PolicyState:
    name: str
    source: str
    path: str
    version: str = ""
    error: str = ""
    rules: list[str] = field(default_factory=list)


@dataclass
class PolicySet:
    """The result of one load: the compiled rules and the state of every rule and file."""

    ruleset: RuleSet
    rules: dict[str, RuleState]
    policies: list[PolicyState]
    errors: list[str]
    variables: VariableStore
    loaded_at: float

    @property
    def loaded(self) -> list[str]:
        return [r.id for r in self.rules.values() if r.status == "loaded"]

    def report(self) -> dict[str, Any]:
        """What ``runtime policy check --json`` prints and status shows."""
        return {
            "policies": [
                {
                    "name": p.name,
                    "source": p.source,
                    "version": p.version,
                    **({"error": p.error} if p.error else {}),
                    "rules": [self.rules[r].as_dict() for r in p.rules if r in self.rules],
                }
                for p in self.policies
            ],
            "errors": list(self.errors),
            "summary": {
                status: sum(1 for r in self.rules.values() if r.status == status)
                for status in ("loaded", "error", "disabled", "filtered")
            },
        }


def shipped_default_policy() -> str:
    return str(resources.files("plugins.runtime_security") / "policies" / DEFAULT_POLICY)


def policy_files(directory: str, *, include_shipped: bool = True) -> list[tuple[str, str]]:
    """(source, path) in load order. A missing directory gives the shipped default only."""
    try:
        names = sorted(n for n in os.listdir(directory) if n.endswith(".policy"))
    except OSError:
        names = []
    files: list[tuple[str, str]] = []
    if DEFAULT_POLICY in names:
        files.append(("file", os.path.join(directory, DEFAULT_POLICY)))
        names.remove(DEFAULT_POLICY)
    elif include_shipped:
        files.append((SHIPPED_SOURCE, shipped_default_policy()))
    files.extend(("file", os.path.join(directory, n)) for n in names)
    return files


def host_facts(hostname: str = "") -> dict[str, Any]:
    """The facts rule ``filters`` are evaluated against (the SECL filter model)."""
    os_release: dict[str, str] = {}
    try:
        with open("/etc/os-release", encoding="utf-8") as f:
            for line in f:
                key, sep, value = line.strip().partition("=")
                if sep:
                    os_release[key] = value.strip('"')
    except OSError:
        pass
    release = platform.release()
    numbers = [int(n) for n in re.findall(r"\d+", release)[:2]] + [0, 0]
    return {
        "os": {
            "name": platform.system().lower(),
            "id": os_release.get("ID", ""),
            "version_id": os_release.get("VERSION_ID", ""),
            "platform_id": os_release.get("PLATFORM_ID", ""),
            "arch": platform.machine(),
            "kernel": release,
        },
        "kernel": {"major": numbers[0], "minor": numbers[1]},
        "hostname": hostname,
        "envs": [],
    }


class _Loader:
    def __init__(self, agent_version: str, enforcement: bool, facts: dict[str, Any]) -> None:
        self.agent_version = agent_version
        self.enforcement = enforcement
        self.facts = facts
        self.errors: list[str] = []
        self.rules: dict[str, RuleState] = {}
        self.raw: dict[str, dict[str, Any]] = {}
        self.macros: dict[str, MacroDefinition] = {}
        self.policies: list[PolicyState] = []

    # -- one file ---------------------------------------------------------------------------

    def read_file(self, source: str, path: str) -> None:
        name = os.path.basename(path)
        policy = PolicyState(name=name, source=source, path=path)
        self.policies.append(policy)
        try:
            with open(path, encoding="utf-8") as f:
                data = yaml.safe_load(f)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{path}:{mark.line + 1}" if mark is not None else path
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            policy.error = f"{where}: invalid YAML: {problem}"
            self.errors.append(policy.error)
            return
        except (OSError, UnicodeDecodeError) as exc:
            policy.error = (
                f"{path}: cannot read the policy: {getattr(exc, 'strerror', None) or exc}"
            )
            self.errors.append(policy.error)
            return
        if data is None:
            data = {}
        if not isinstance(data, dict):
            policy.error = f"{path}: expected a mapping with version, macros and rules"
            self.errors.append(policy.error)
            return
        policy.version = str(data.get("version") or "")
        for key in ("macros", "rules"):
            if data.get(key) is not None and not isinstance(data[key], list):
                self.errors.append(f"{path}: '{key}' must be a list")
                data[key] = []
        for i, macro in enumerate(data.get("macros") or []):
            self._macro(path, i, macro)
        for i, rule in enumerate(data.get("rules") or []):
            self._rule(policy, i, rule)

    def _applies(self, item: dict[str, Any]) -> str:
        """ "" when agent_version and filters accept this host, else why not."""
        constraint = item.get("agent_version")
        if constraint and not satisfies(self.agent_version, str(constraint)):
            return f"agent_version {constraint} does not match {self.agent_version}"
        for expression in item.get("filters") or []:
            compiled = compile_expression(str(expression), model=FILTER_MODEL, rule_id="filter")
            if not compiled.matches(self.facts):
                return f"filter {expression} does not match this host"
        return ""

    def _macro(self, path: str, index: int, item: Any) -> None:  # noqa: PLR0911
        if not isinstance(item, dict) or not item.get("id"):
            self.errors.append(f"{path}: macros[{index}]: key 'id' is missing")
            return
        mid = str(item["id"])
        try:
            if self._applies(item):
                return
        except (ConstraintError, SECLError) as exc:
            self.errors.append(f"{path}: macro {mid}: {exc}")
            return
        expression, values = item.get("expression"), item.get("values")
        if (expression is None) == (values is None):
            self.errors.append(f"{path}: macro {mid}: expected one of 'expression' or 'values'")
            return
        if values is not None and not isinstance(values, list):
            self.errors.append(f"{path}: macro {mid}: 'values' must be a list")
            return
        previous = self.macros.get(mid)
        combine = item.get("combine")
        if previous is not None:
            if combine == "merge" and values is not None and previous.values is not None:
                merged = list(previous.values) + [v for v in values if v not in previous.values]
                self.macros[mid] = MacroDefinition(mid, values=merged)
                return
            if combine != "override":
                self.errors.append(f"{path}: macro {mid}: multiple definitions with the same ID")
                return
        self.macros[mid] = (
            MacroDefinition(mid, expression=str(expression))
            if expression is not None
            else MacroDefinition(mid, values=list(values or []))
        )

    def _rule(self, policy: PolicyState, index: int, item: Any) -> None:
        path = policy.path
        if not isinstance(item, dict) or not item.get("id"):
            self.errors.append(f"{path}: rules[{index}]: key 'id' is missing")
            return
        rid = str(item["id"])
        existing = self.rules.get(rid)
        if existing is not None:
            if item.get("combine") != "override":
                self.errors.append(
                    f"{path}: rule {rid}: multiple definitions with the same ID "
                    f"(first in {existing.policy})"
                )
                return
            self._override(existing, item, path)
            return
        state = RuleState(id=rid, policy=policy.name, policy_version=policy.version)
        self.rules[rid] = state
        self.raw[rid] = item
        policy.rules.append(rid)
        if not _RULE_ID.match(rid):
            state.status, state.error = "error", f"invalid rule ID '{rid}'"
            return
        self._fill(state, item, path)

    def _fill(self, state: RuleState, item: dict[str, Any], path: str) -> None:
        try:
            why_not = self._applies(item)
        except (ConstraintError, SECLError) as exc:
            state.status, state.error = "error", str(exc)
            return
        if why_not:
            state.status, state.error = "filtered", why_not
            return
        if item.get("disabled"):
            state.status = "disabled"
            return
        expression = item.get("expression")
        if not isinstance(expression, str) or not expression.strip():
            state.status, state.error = "error", "key 'expression' is missing or not a string"
            return
        state.expression = expression
        state.description = str(item.get("description") or "")
        state.version = str(item.get("version") or "")
        tags = item.get("tags") or {}
        state.tags = {str(k): str(v) for k, v in tags.items()} if isinstance(tags, dict) else {}
        product_tags = item.get("product_tags") or []
        state.product_tags = (
            [str(t) for t in product_tags] if isinstance(product_tags, list) else []
        )
        try:
            every = item.get("every")
            state.every = parse_duration(every) if every not in (None, "", 0) else None
            state.actions = parse_actions(item.get("actions"), enforcement=self.enforcement)
        except (DurationError, ActionError) as exc:
            state.status, state.error = "error", str(exc)

    def _override(self, state: RuleState, item: dict[str, Any], path: str) -> None:
        options = item.get("override_options") or {}
        fields = options.get("fields") if isinstance(options, dict) else None
        fields = [str(f) for f in fields] if isinstance(fields, list) and fields else ["all"]
        merged = dict(self.raw[state.id])
        for key in OVERRIDE_FIELDS:
            if ("all" in fields or key in fields) and key in item:
                merged[key] = item[key]
        for key in ("disabled", "agent_version", "filters"):
            if key in item:
                merged[key] = item[key]
        self.raw[state.id] = merged
        state.status, state.error = "loaded", ""
        self._fill(state, merged, path)

    # -- compiling --------------------------------------------------------------------------

    def build(self, clock: Callable[[], float]) -> PolicySet:
        variables = VariableStore(clock=clock)
        candidates = [r for r in self.rules.values() if r.status == "loaded"]
        for rule in candidates:
            try:
                for action in rule.actions:
                    if action.kind == "set":
                        p = action.params
                        variables.declare(p["variable"], p["kind"], p["is_list"])
            except SECLError as exc:
                rule.status, rule.error = "error", str(exc)
        macros = list(self.macros.values())
        for rule in candidates:
            if rule.status != "loaded":
                continue
            try:
                rule.actions = [_with_filter(a, rule.id, macros, variables) for a in rule.actions]
            except SECLError as exc:
                rule.status, rule.error = "error", f"action filter: {exc}"
        definitions = [
            RuleDefinition(r.id, r.expression) for r in candidates if r.status == "loaded"
        ]
        ruleset = RuleSet.compile(definitions, macros, model=RUNTIME_MODEL, variables=variables)
        for rid, error in ruleset.errors.items():
            self.rules[rid].status, self.rules[rid].error = "error", str(error)
        for error in ruleset.macro_errors.values():
            self.errors.append(str(error))
        return PolicySet(ruleset, self.rules, self.policies, self.errors, variables, time.time())


def _with_filter(
    action: ActionSpec, rule_id: str, macros: list[MacroDefinition], variables: VariableStore
) -> ActionSpec:
    if not action.filter_expression:
        return action
    compiled = compile_expression(
        action.filter_expression, macros=macros, variables=variables, rule_id=f"{rule_id}.filter"
    )
    return ActionSpec(action.kind, action.params, action.filter_expression, compiled)


def load_policies(
    files: Sequence[tuple[str, str]],
    *,
    agent_version: str,
    enforcement: bool = True,
    facts: dict[str, Any] | None = None,
    clock: Callable[[], float] = time.monotonic,
    only_rule: str | None = None,
) -> PolicySet:
    """Read ``files`` (from :func:`policy_files`) into a new :class:`PolicySet`.
    ``only_rule`` keeps that one rule (``policy eval``). Never raises for bad policies."""
    loader = _Loader(agent_version, enforcement, facts if facts is not None else host_facts())
    for source, path in files:
        loader.read_file(source, path)
    if only_rule is not None:
        loader.rules = {k: v for k, v in loader.rules.items() if k == only_rule}
        for policy in loader.policies:
            policy.rules = [r for r in policy.rules if r == only_rule]
    return loader.build(clock)
