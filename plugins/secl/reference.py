"""A deliberately naive evaluator of the typed tree, independent of the closure compiler and of
approvers: it walks the tree for every event. Tests compare :meth:`RuleSet.evaluate` with it,
and it is handy to explain a single rule (``policy eval``); it is far too slow for the event
stream.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from plugins.secl import ir
from plugins.secl.model import FieldSpec


class ReferenceEvaluator:
    def __init__(self, var_get: Callable[[str, Any], Any], clock: Callable[[], float]) -> None:
        self.var_get = var_get
        self.clock = clock

    def holds(self, node: ir.BoolNode, ev: dict[str, Any]) -> bool:
        if isinstance(node, ir.And):
            return self.holds(node.left, ev) and self.holds(node.right, ev)
        if isinstance(node, ir.Or):
            return self.holds(node.left, ev) or self.holds(node.right, ev)
        if isinstance(node, ir.Not):
            return not self.holds(node.operand, ev)
        if isinstance(node, ir.Truth):
            return any(v is True for v in self.values(node.operand, ev))
        if isinstance(node, ir.Compare):
            return self._compare(node, ev) != node.negate
        if isinstance(node, ir.In):
            return self._in(node, ev) != node.negate
        raise TypeError(node)

    def _compare(self, node: ir.Compare, ev: dict[str, Any]) -> bool:
        lefts = self.values(node.left, ev)
        if isinstance(node.right, ir.Match):
            return any(node.right.matcher.match(v) for v in lefts)
        rights = self.values(node.right, ev)
        for a in lefts:
            for b in rights:
                if node.age:
                    a = (ev.get("timestamp") or self.clock()) - a  # noqa: PLW2901 - ages
                if node.left.kind == "ip":
                    ok = _contains(b, a)
                elif node.op == "==":
                    ok = a == b
                elif node.op == "<":
                    ok = a < b
                elif node.op == "<=":
                    ok = a <= b
                elif node.op == ">":
                    ok = a > b
                else:
                    ok = a >= b
                if ok:
                    return True
        return False

    def _in(self, node: ir.In, ev: dict[str, Any]) -> bool:
        def member(v: Any) -> bool:
            for item in node.items:
                if isinstance(item, ir.Match):
                    if item.matcher.match(v):
                        return True
                elif isinstance(item, ir.Const) and (
                    _contains(item.value, v) if node.left.kind == "ip" else item.value == v
                ):
                    return True
            return False

        values = self.values(node.left, ev)
        if node.all:
            return all(member(v) for v in values)
        return any(member(v) for v in values)

    def values(self, op: ir.Operand, ev: dict[str, Any]) -> list[Any]:
        """Every value of an operand (one for scalars)."""
        if isinstance(op, ir.Const):
            return [op.value]
        if isinstance(op, ir.FieldRef):
            return _field_values(op.spec, op.length, ev)
        if isinstance(op, ir.UserVar):
            v = self.var_get(op.name, ev)
            return list(v or ()) if op.many else [v]
        if isinstance(op, ir.Interp):
            text = ""
            for part in op.parts:
                text += part if isinstance(part, str) else str(self.values(part, ev)[0])
            return [text]
        if isinstance(op, ir.BitOp):
            lv = self.values(op.left, ev)
            if op.right is None:
                return [~v if op.op == "^" else -v for v in lv]
            rv = self.values(op.right, ev)
            out = []
            for a in lv:
                for b in rv:
                    out.append(a & b if op.op == "&" else a | b if op.op == "|" else a ^ b)
            return out
        raise TypeError(op)


def _lookup(root: Any, path: tuple[Any, ...]) -> Any:
    cur = root
    for key in path:
        in_dict = isinstance(cur, dict) and key in cur
        if in_dict or (isinstance(cur, list) and isinstance(key, int) and 0 <= key < len(cur)):
            cur = cur[key]
        else:
            return None
    return cur


def _field_values(spec: FieldSpec, length: bool, ev: dict[str, Any]) -> list[Any]:
    if spec.iterator is not None:
        elements = _lookup(ev, spec.iterator)
        roots = elements if isinstance(elements, list | tuple) else []
    else:
        roots = [ev]
    out: list[Any] = []
    for root in roots:
        raw = _lookup(root, spec.path)
        if spec.derive is not None:
            raw = spec.derive(raw)
        elif raw is None:
            raw = spec.zero
        if spec.is_list:
            items = list(raw) if isinstance(raw, list | tuple) else []
            if length:
                out.append(len(items))
            else:
                out.extend(items)
        elif length:
            out.append(len(raw) if isinstance(raw, str) else 0)
        else:
            out.append(raw)
    if spec.iterator is None and not spec.is_list and not out:
        out.append(spec.zero)
    return out


def _contains(net: Any, value: Any) -> bool:
    try:
        addr = ipaddress.ip_network(value, strict=False)
        if not isinstance(net, ipaddress.IPv4Network | ipaddress.IPv6Network):
            net = ipaddress.ip_network(net, strict=False)
    except (ValueError, TypeError):
        return False
    return addr.version == net.version and addr.subnet_of(net)
