"""Rule sets: compile rules (with macros) once, then evaluate events against them.

``RuleSet.evaluate(event)`` looks at the event's ``type`` bucket and its approver indexes
(exact values in a dict, patterns grouped by the directory of their literal prefix, results
memoised per value), so an event only meets the rules that could match it; for a rule whose
index hit proves one of its conjuncts, only the other conjuncts run. ``evaluate_all`` runs
every rule of the event's type with no index, ``evaluate_every_rule`` is the brute-force
loop over all rules, ``reference_evaluate`` walks the typed trees; all of them return the
same ids in rule order, which the tests check on random events.

As in Datadog, a rule that does not compile does not stop the others: it is listed in
``errors`` with its :class:`SECLError`. A rule set is immutable once built (a policy reload
builds a new one and swaps it in); evaluate from one thread at a time, since the memo caches
and the ``eval_errors`` counter are updated in place.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from plugins.secl import ir
from plugins.secl.access import Hits, cached_lookup
from plugins.secl.approvers import Approver, Approvers, extract, residual
from plugins.secl.checker import Checker, MacroTable
from plugins.secl.compiler import Compiler, Predicate
from plugins.secl.errors import SECLError
from plugins.secl.model import RUNTIME_MODEL, FieldSpec, Model
from plugins.secl.reference import ReferenceEvaluator
from plugins.secl.variables import VariableStore


@dataclass(frozen=True)
class RuleDefinition:
    """A rule to compile: its id and SECL expression."""

    id: str
    expression: str


@dataclass(frozen=True)
class MacroDefinition:
    """A macro: either ``expression`` (a condition, a value such as ``O_CREAT|O_TRUNC`` or a
    list literal ``["a", "b"]``) or ``values`` (a list of strings or ints)."""

    id: str
    expression: str | None = None
    values: Sequence[str | int] | None = None


@dataclass(frozen=True)
class CompiledRule:
    """A rule ready to run. ``event_type`` is ``None`` when it only names common fields
    (``process.*``), so it applies to every event; ``indexed_by`` is the approver field
    the rule set indexes it under (``None``: it meets every event of its type)."""

    id: str
    index: int
    expression: str
    event_type: str | None
    condition: ir.BoolNode = field(repr=False)
    predicate: Predicate = field(repr=False)
    approvers: Approvers = field(repr=False)
    indexed_by: str | None = None
    #: What runs once the index approved the event (``None``: the approval is the match).
    after_approval: Predicate | None = field(default=None, repr=False)

    def matches(self, event: Mapping[str, Any]) -> bool:
        """Evaluate this rule alone (the event's type is not checked)."""
        return bool(self.predicate(event))


class _FieldIndex:
    """The approvers of one field within one event-type bucket.

    Exact values live in a dict. Patterns are grouped by the directory part of their literal
    prefix (``/etc/pam.d/*`` under ``/etc/pam.d``, ``/boot/**`` under ``/boot``), and a value
    only tries the groups of its own ancestor directories; patterns without a leading ``/``
    are tried on every value. The rules a value selects depend on the value alone, so they are
    memoised (a bounded cache, cleared when full): the usual stream repeats the same paths
    and names over and over, and a repeat then costs one dict lookup.
    """

    __slots__ = ("cache", "depth", "exact", "groups", "length", "loose", "name", "spec")

    CACHE_SIZE = 16384

    def __init__(self, name: str, spec: FieldSpec, length: bool) -> None:
        self.name = name
        self.spec = spec
        self.length = length
        self.exact: dict[Any, list[int]] = {}
        self.groups: dict[str, list[tuple[Callable[[str], bool], int]]] = {}
        self.depth = 0  # deepest group key, in path levels
        self.loose: list[tuple[Callable[[str], bool], int]] = []
        self.cache: dict[Any, tuple[int, ...]] = {}

    def add(self, approver: Approver, rule: int) -> None:
        self.cache.clear()
        if approver.kind == "exact":
            self.exact.setdefault(approver.value, []).append(rule)
            return
        assert approver.matcher is not None
        prefix = approver.matcher.prefix
        entry = (approver.matcher.match, rule)
        if prefix.startswith("/"):
            key = prefix[: prefix.rfind("/")]
            self.groups.setdefault(key, []).append(entry)
            self.depth = max(self.depth, key.count("/"))
        else:
            self.loose.append(entry)

    def rules_for(self, value: Any) -> tuple[int, ...]:
        """Indexes of the rules whose approvers accept ``value`` (sorted, no duplicates)."""
        try:
            return self.cache[value]
        except KeyError:
            pass
        except TypeError:  # unhashable value from a malformed event
            return self._compute(value)
        found = self._compute(value)
        if len(self.cache) >= self.CACHE_SIZE:
            self.cache.clear()
        self.cache[value] = found
        return found

    def _compute(self, value: Any) -> tuple[int, ...]:
        out: list[int] = []
        with contextlib.suppress(TypeError):  # unhashable: no exact approver can match
            out.extend(self.exact.get(value, ()))
        if self.groups and isinstance(value, str) and value.startswith("/"):
            groups = self.groups
            group = groups.get("")
            if group:
                out.extend(rule for match, rule in group if match(value))
            slash = value.find("/", 1)
            level = 1
            while slash > 0 and level <= self.depth:
                group = groups.get(value[:slash])
                if group:
                    out.extend(rule for match, rule in group if match(value))
                slash = value.find("/", slash + 1)
                level += 1
        if self.loose:
            out.extend(rule for match, rule in self.loose if match(value))
        return tuple(sorted(set(out)))


class _Bucket:
    __slots__ = ("always", "fields", "lookups", "rules")

    def __init__(self) -> None:
        self.rules: list[int] = []  # every rule of this type, in order (evaluate_all)
        self.always: list[int] = []  # rules without usable approvers
        self.fields: dict[str, _FieldIndex] = {}
        self.lookups: tuple[Callable[[Any], Hits], ...] = ()


class RuleSet:
    """Compiled rules bucketed by event type with approver indexes. Build with
    :meth:`compile`."""

    def __init__(  # noqa: PLR0917 - built by compile(), not by callers
        self,
        model: Model,
        rules: list[CompiledRule],
        errors: dict[str, SECLError],
        macro_errors: dict[str, SECLError],
        variables: VariableStore,
        clock: Callable[[], float],
    ) -> None:
        self.model = model
        self.rules: dict[str, CompiledRule] = {r.id: r for r in rules}
        self.errors = errors
        self.macro_errors = macro_errors
        self.variables = variables
        self.eval_errors = 0  # rule evaluations that raised (malformed events), counted as no match
        self._ordered = rules
        self._reference = ReferenceEvaluator(variables.get, clock)
        self._buckets: dict[str, _Bucket] = {}
        self._fallback = _Bucket()
        self._build_index()

    # construction ----------------------------------------------------------------------------
    @classmethod
    def compile(
        cls,
        rules: Iterable[RuleDefinition],
        macros: Iterable[MacroDefinition] = (),
        *,
        model: Model = RUNTIME_MODEL,
        variables: VariableStore | None = None,
        clock: Callable[[], float] = time.time,
    ) -> RuleSet:
        """Compile ``rules`` against ``model``; ``variables`` declares the user variables
        ``${name}`` may read (and is where the compiled rules read them). ``clock`` gives
        "now" for ``time`` fields when an event has no ``timestamp``. Never raises for a bad
        rule or macro: see ``errors`` and ``macro_errors``."""
        store = variables if variables is not None else VariableStore()
        macro_list = list(macros)
        table, macro_errors = _macro_table(macro_list)
        checker = Checker(model, table, store.declarations)
        _check_macros(checker, table, macro_errors)
        compiler = Compiler(store.get, clock)
        compiled: list[CompiledRule] = []
        errors: dict[str, SECLError] = {}
        seen: set[str] = set()
        for definition in rules:
            if definition.id in seen:
                errors[definition.id] = SECLError(
                    "expected a unique rule id, got a duplicate", source_id=definition.id
                )
                compiled = [r for r in compiled if r.id != definition.id]
                continue
            seen.add(definition.id)
            try:
                checked = checker.check_rule(definition.id, definition.expression)
                predicate = compiler.condition(checked.condition)
            except SECLError as exc:
                errors[definition.id] = exc
                continue
            approvers = extract(checked.condition)
            index_field = _choose_index_field(approvers, model)
            compiled.append(
                CompiledRule(
                    id=definition.id,
                    index=len(compiled),
                    expression=definition.expression,
                    event_type=checked.event_type,
                    condition=checked.condition,
                    predicate=predicate,
                    approvers=approvers,
                    indexed_by=index_field,
                    after_approval=_after_approval(
                        compiler, checked.condition, index_field, predicate
                    ),
                )
            )
        ordered = [dataclasses.replace(rule, index=i) for i, rule in enumerate(compiled)]
        return cls(model, ordered, errors, macro_errors, store, clock)

    def _build_index(self) -> None:
        types = set(self.model.event_types) | {r.event_type for r in self._ordered if r.event_type}
        self._buckets = {t: _Bucket() for t in types}
        for rule in self._ordered:
            field_name = rule.indexed_by
            targets = (
                [self._buckets[rule.event_type]]
                if rule.event_type
                else [*self._buckets.values(), self._fallback]
            )
            for bucket in targets:
                bucket.rules.append(rule.index)
                if field_name is None:
                    bucket.always.append(rule.index)
                    continue
                fidx = bucket.fields.get(field_name)
                if fidx is None:
                    fidx = bucket.fields[field_name] = _FieldIndex(
                        field_name, *_spec(self.model, field_name)
                    )
                for approver in rule.approvers[field_name]:
                    fidx.add(approver, rule.index)
        for bucket in [*self._buckets.values(), self._fallback]:
            bucket.lookups = tuple(
                cached_lookup(f.spec, f.length, f.cache, f.rules_for)
                for f in bucket.fields.values()
            )
        rules = self._ordered
        self._predicates = [r.predicate for r in rules]
        self._approved = [r.after_approval if r.indexed_by else r.predicate for r in rules]
        self._ids = [r.id for r in rules]

    # evaluation ------------------------------------------------------------------------------
    def evaluate(self, event: Mapping[str, Any]) -> list[str]:
        """Ids of the rules ``event`` matches, in rule order, using the approver indexes."""
        try:
            bucket = self._buckets.get(event["type"], self._fallback)
        except (KeyError, TypeError):  # no type, or an unhashable one: common rules only
            bucket = self._fallback
        candidates: Sequence[int] = bucket.always
        merged = False
        for lookup in bucket.lookups:
            hits = lookup(event)
            if hits:
                if candidates:
                    candidates = [*candidates, *hits]
                    merged = True
                else:
                    candidates = hits
        if merged:
            candidates = sorted(set(candidates))
        if not candidates:
            return []
        approved, ids = self._approved, self._ids
        out = []
        for i in candidates:
            check = approved[i]
            try:
                if check is None or check(event):
                    out.append(ids[i])
            except Exception:  # a malformed event must not stop the others; counted
                self.eval_errors += 1
        return out

    def evaluate_all(self, event: Mapping[str, Any]) -> list[str]:
        """Ids of matching rules, running every rule of the event's type (no approvers)."""
        try:
            bucket = self._buckets.get(event["type"], self._fallback)
        except (KeyError, TypeError):
            bucket = self._fallback
        return self._run(bucket.rules, event)

    def evaluate_every_rule(self, event: Mapping[str, Any]) -> list[str]:
        """The brute-force baseline: every rule of the set, checking its type first."""
        etype = event.get("type")
        out = []
        for rule in self._ordered:
            if rule.event_type is not None and rule.event_type != etype:
                continue
            try:
                if rule.predicate(event):
                    out.append(rule.id)
            except Exception:
                self.eval_errors += 1
        return out

    def reference_evaluate(self, event: Mapping[str, Any]) -> list[str]:
        """Ids of matching rules by walking each typed tree (slow; for tests and
        explanations)."""
        etype = event.get("type")
        return [
            r.id
            for r in self._ordered
            if (r.event_type is None or r.event_type == etype)
            and self._reference.holds(r.condition, dict(event))
        ]

    def _run(self, candidates: Iterable[int], event: Mapping[str, Any]) -> list[str]:
        predicates, ids = self._predicates, self._ids
        out = []
        for i in candidates:
            try:
                if predicates[i](event):
                    out.append(ids[i])
            except Exception:  # a malformed event must not stop the others; counted
                self.eval_errors += 1
        return out

    # what sources may skip -------------------------------------------------------------------
    def event_types(self) -> frozenset[str] | None:
        """The event types some rule can match; None when a rule names no event type (it
        meets events of every type). A source may leave the others unread."""
        types = set()
        for rule in self._ordered:
            if rule.event_type is None:
                return None
            types.add(rule.event_type)
        return frozenset(types)

    def can_match(self, event_type: str, values: Mapping[str, Any]) -> bool:
        """Whether some rule could match an event of ``event_type`` whose fields named in
        ``values`` (SECL names, ``open.file.path``) take those values, whatever its other
        fields. False only when every rule of the type is indexed by one of these fields and
        the index rejects the value: the verdict behind discarders (Datadog's name for values
        no rule can match, which the kernel is then asked to drop)."""
        bucket = self._buckets.get(event_type, self._fallback)
        if bucket.always:
            return True
        for name, index in bucket.fields.items():
            if name not in values or index.length:
                return True
            if index.rules_for(values[name]):
                return True
        return False

    # introspection ---------------------------------------------------------------------------
    def approvers(self) -> dict[str, Approvers]:
        """Per rule id, its approvers (field name -> values); empty for rules without."""
        return {r.id: r.approvers for r in self._ordered}

    def index_summary(self) -> dict[str, dict[str, Any]]:
        """Per event type: how many rules are indexed under each field and how many meet
        every event of the type (useful in status output)."""
        return {
            etype: {
                "rules": len(bucket.rules),
                "unindexed": len(bucket.always),
                "fields": {
                    name: len(
                        {i for ids in f.exact.values() for i in ids}
                        | {i for group in f.groups.values() for _, i in group}
                        | {i for _, i in f.loose}
                    )
                    for name, f in bucket.fields.items()
                },
            }
            for etype, bucket in sorted(self._buckets.items())
        }


def compile_expression(
    expression: str,
    *,
    model: Model = RUNTIME_MODEL,
    macros: Iterable[MacroDefinition] = (),
    variables: VariableStore | None = None,
    rule_id: str = "expression",
    clock: Callable[[], float] = time.time,
) -> CompiledRule:
    """Compile one expression (for compliance ``filters`` and one-off checks); raises
    :class:`SECLError` when it does not compile."""
    ruleset = RuleSet.compile(
        [RuleDefinition(rule_id, expression)], macros, model=model, variables=variables,
        clock=clock,
    )  # fmt: skip
    if rule_id in ruleset.errors:
        raise ruleset.errors[rule_id]
    return ruleset.rules[rule_id]


# helpers -------------------------------------------------------------------------------------


def _macro_table(macros: list[MacroDefinition]) -> tuple[MacroTable, dict[str, SECLError]]:
    expressions: dict[str, str] = {}
    values: dict[str, list[Any]] = {}
    errors: dict[str, SECLError] = {}
    for macro in macros:
        if macro.id in expressions or macro.id in values:
            errors[macro.id] = SECLError(
                "expected a unique macro id, got a duplicate", source_id=macro.id, kind="macro"
            )
            continue
        if (macro.expression is None) == (macro.values is None):
            errors[macro.id] = SECLError(
                "expected exactly one of 'expression' or 'values'",
                source_id=macro.id,
                kind="macro",
            )
            continue
        if macro.expression is not None:
            expressions[macro.id] = macro.expression
        else:
            values[macro.id] = list(macro.values or ())
    return MacroTable(expressions, values), errors


def _check_macros(checker: Checker, table: MacroTable, errors: dict[str, SECLError]) -> None:
    """Report macros that cannot work in any rule (syntax errors, unknown names)."""
    for macro_id in table.ids():
        try:
            checker.check_macro(macro_id)
        except SECLError as exc:
            errors.setdefault(macro_id, exc)


def _after_approval(
    compiler: Compiler, condition: ir.BoolNode, index_field: str | None, predicate: Predicate
) -> Predicate | None:
    if index_field is None:
        return predicate
    rest = residual(condition, index_field)
    if rest is None:
        return predicate
    if not rest:
        return None
    node = rest[0]
    for part in rest[1:]:
        node = ir.And(node, part)
    return compiler.condition(node)


def _choose_index_field(approvers: Approvers, model: Model) -> str | None:
    """Prefer a field of the event itself (``open.file.path``) over common context, then
    the field with the fewest approver values."""
    if not approvers:
        return None

    def rank(name: str) -> tuple[int, int]:
        spec = model.fields.get(name.removesuffix(".length"))
        common = 1 if spec is None or spec.event_type is None else 0
        return common, len(approvers[name])

    return min(approvers, key=rank)


def _spec(model: Model, field_name: str) -> tuple[FieldSpec, bool]:
    length = field_name.endswith(".length") and field_name not in model.fields
    return model.fields[field_name.removesuffix(".length") if length else field_name], length
