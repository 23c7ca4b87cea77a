"""Approvers: values a field must take for a rule to have any chance of matching.

For ``open.file.path == "/etc/shadow" && process.uid != 0`` the approvers are
``{"open.file.path": [exact "/etc/shadow"]}``: an open event on another path can skip the
rule. They come from the top-level conjunction: ``==``, ``=~`` with a pattern, and ``in`` with
constants or patterns on a scalar field; ``a || b`` keeps the fields approved on both sides
(with both sides' values). Regular expressions, negations and iterator fields give none.
"""

from __future__ import annotations

from dataclasses import dataclass

from plugins.secl import ir
from plugins.secl.patterns import Matcher


@dataclass(frozen=True)
class Approver:
    """``kind`` is ``exact`` (``value`` is the str/int) or ``glob`` (``value`` is the pattern
    text, ``matcher`` matches it)."""

    field: str
    kind: str
    value: object
    matcher: Matcher | None = None


Approvers = dict[str, list[Approver]]


def _indexable(op: ir.Operand) -> ir.FieldRef | None:
    if isinstance(op, ir.FieldRef) and not op.many and op.kind in ("string", "int"):
        return op
    return None


def _item(field: ir.FieldRef, item: ir.Operand) -> Approver | None:
    name = field.spec.name + (".length" if field.length else "")
    if isinstance(item, ir.Const) and item.kind in ("string", "int"):
        return Approver(name, "exact", item.value)
    if isinstance(item, ir.Match) and not item.matcher.is_regex:
        if "*" not in item.matcher.text:
            return Approver(name, "exact", item.matcher.text)
        return Approver(name, "glob", item.matcher.text, item.matcher)
    return None


def extract(node: ir.BoolNode) -> Approvers:  # noqa: PLR0911 - one return per node type
    """The approvers of a condition; an empty dict when none can be proven."""
    if isinstance(node, ir.And):
        result = extract(node.left)
        for name, values in extract(node.right).items():
            result.setdefault(name, values)
        return result
    if isinstance(node, ir.Or):
        left, right = extract(node.left), extract(node.right)
        return {name: left[name] + right[name] for name in left if name in right}
    if isinstance(node, ir.Compare) and node.op == "==" and not node.negate and not node.age:
        field = _indexable(node.left)
        if field is None:
            return {}
        approver = _item(field, node.right)
        return {approver.field: [approver]} if approver else {}
    if isinstance(node, ir.In) and not node.negate and not node.all:
        field = _indexable(node.left)
        if field is None or not node.items:
            return {}
        items = [_item(field, item) for item in node.items]
        if any(a is None for a in items):
            return {}
        return {field.spec.name + (".length" if field.length else ""): [a for a in items if a]}
    return {}


def conjuncts(node: ir.BoolNode) -> list[ir.BoolNode]:
    """The operands of a top-level ``&&`` chain, left to right."""
    out: list[ir.BoolNode] = []
    stack = [node]
    while stack:
        cur = stack.pop()
        if isinstance(cur, ir.And):
            stack.append(cur.right)
            stack.append(cur.left)
        else:
            out.append(cur)
    return out


def residual(node: ir.BoolNode, field: str) -> list[ir.BoolNode] | None:
    """What is left to check once the index has approved ``field``'s value.

    When the approvers of ``field`` come from one plain comparison or ``in`` conjunct, an
    index hit proves that conjunct, so only the other conjuncts remain (an empty list: the
    hit is a match). ``None`` when the hit proves nothing by itself (approvers from an
    ``||``): the whole condition must run.
    """
    parts = conjuncts(node)
    for i, part in enumerate(parts):
        if field in extract(part):
            if isinstance(part, ir.Compare | ir.In):
                return parts[:i] + parts[i + 1 :]
            return None
    return None
