"""Typed tree -> Python closures ``f(event) -> bool``.

Each node becomes one closure; the common shapes (a scalar field compared with a constant, a
field in a set of exact strings) get dedicated closures so a rule costs a few dict lookups.
"""

from __future__ import annotations

import ipaddress
import operator
from collections.abc import Callable
from typing import Any

from plugins.secl import ir
from plugins.secl.access import field_getter

Predicate = Callable[[Any], bool]
ValueFn = Callable[[Any], Any]

_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}  # fmt: skip


class Compiler:
    """Compiles typed conditions. ``var_get(name, event)`` reads user variables; ``clock()``
    gives "now" for ages when the event has no ``timestamp``."""

    def __init__(self, var_get: Callable[[str, Any], Any], clock: Callable[[], float]) -> None:
        self.var_get = var_get
        self.clock = clock
        self._ip_cache: dict[Any, IPNet | None] = {}

    def condition(self, node: ir.BoolNode) -> Predicate:  # noqa: PLR0911 - dispatch
        if isinstance(node, ir.And):
            a, b = self.condition(node.left), self.condition(node.right)
            return lambda ev: a(ev) and b(ev)
        if isinstance(node, ir.Or):
            a, b = self.condition(node.left), self.condition(node.right)
            return lambda ev: a(ev) or b(ev)
        if isinstance(node, ir.Not):
            a = self.condition(node.operand)
            return lambda ev: not a(ev)
        if isinstance(node, ir.Truth):
            get = self.value(node.operand)
            if node.operand.many:
                return lambda ev: any(v is True for v in get(ev))
            return lambda ev: get(ev) is True
        if isinstance(node, ir.Compare):
            return self._negated(self._compare(node), node.negate)
        if isinstance(node, ir.In):
            return self._negated(self._membership(node), node.negate)
        raise TypeError(f"unknown node {node!r}")

    @staticmethod
    def _negated(pred: Predicate, negate: bool) -> Predicate:
        if not negate:
            return pred
        return lambda ev: not pred(ev)

    # comparisons -----------------------------------------------------------------------------
    def _compare(self, node: ir.Compare) -> Predicate:  # noqa: PLR0911 - specialisations
        get = self.value(node.left)
        right = node.right
        if isinstance(right, ir.Match):
            match = right.matcher.match
            if node.left.many:
                return lambda ev: any(match(v) for v in get(ev))
            return lambda ev: match(get(ev))
        if node.age:
            return self._age(node, get)
        if node.left.kind == "ip":
            return self._ip_compare(node, get)
        op = _ORDER[node.op]
        masked = self._masked_compare(node)
        if masked is not None:
            return masked
        if isinstance(right, ir.Const) and not node.left.many:
            c = right.value
            if node.op == "==":
                return lambda ev: get(ev) == c
            return lambda ev: op(get(ev), c)
        rget = self.value(right)
        if node.left.many or right.many:
            lm, rm = node.left.many, right.many

            def any_pair(ev: Any) -> bool:
                lv = get(ev) if lm else (get(ev),)
                rv = rget(ev) if rm else (rget(ev),)
                return any(op(a, b) for a in lv for b in rv)

            return any_pair
        return lambda ev: op(get(ev), rget(ev))

    @staticmethod
    def _masked_compare(node: ir.Compare) -> Predicate | None:
        """``field & MASK > 0`` and friends (the usual flag and mode tests) as one closure."""
        left, right = node.left, node.right
        if not (
            isinstance(left, ir.BitOp)
            and left.op == "&"
            and isinstance(left.left, ir.FieldRef)
            and not left.left.many
            and isinstance(left.right, ir.Const)
            and isinstance(right, ir.Const)
        ):
            return None
        get = field_getter(left.left.spec, left.left.length)
        mask, k = left.right.value, right.value
        if node.op == ">":
            return lambda ev: get(ev) & mask > k
        if node.op == "==":
            return lambda ev: get(ev) & mask == k
        op = _ORDER[node.op]
        return lambda ev: op(get(ev) & mask, k)

    def _age(self, node: ir.Compare, get: ValueFn) -> Predicate:
        op = _ORDER[node.op]
        rget = self.value(node.right)
        clock = self.clock
        many = node.left.many

        def age(ev: Any) -> bool:
            now = ev.get("timestamp") or clock()
            limit = rget(ev)
            values = get(ev) if many else (get(ev),)
            return any(op(now - v, limit) for v in values)

        return age

    def _ip_compare(self, node: ir.Compare, get: ValueFn) -> Predicate:
        parse = self._ip
        many = node.left.many
        if node.op != "==":
            raise TypeError("ordering on ip values")  # the checker refuses this
        if isinstance(node.right, ir.Const):
            net = _net(node.right.value)
            if many:
                return lambda ev: any(_ip_in(parse(v), net) for v in get(ev))
            return lambda ev: _ip_in(parse(get(ev)), net)
        rget = self.value(node.right)

        def compare(ev: Any) -> bool:
            other = parse(rget(ev))
            values = get(ev) if many else (get(ev),)
            return any(_ip_in(parse(v), other) for v in values)

        return compare

    def _ip(self, value: Any) -> IPNet | None:
        """An address or CIDR from an event, parsed once (bounded cache)."""
        try:
            return self._ip_cache[value]
        except KeyError:
            pass
        except TypeError:
            return None
        try:
            parsed: IPNet | None = _net(ipaddress.ip_network(value, strict=False))
        except (ValueError, TypeError):
            parsed = None
        if len(self._ip_cache) >= 65536:
            self._ip_cache.clear()
        self._ip_cache[value] = parsed
        return parsed

    # membership ------------------------------------------------------------------------------
    def _membership(self, node: ir.In) -> Predicate:  # noqa: PLR0911 - specialisations
        get = self.value(node.left)
        many = node.left.many
        if node.left.kind == "ip":
            nets = [_net(item.value) for item in node.items if isinstance(item, ir.Const)]
            parse = self._ip

            def in_nets(v: Any) -> bool:
                addr = parse(v)
                return any(_ip_in(addr, net) for net in nets)

            if node.all:
                return lambda ev: all(in_nets(v) for v in get(ev)) if many else in_nets(get(ev))
            if many:
                return lambda ev: any(in_nets(v) for v in get(ev))
            return lambda ev: in_nets(get(ev))
        exact = frozenset(i.value for i in node.items if isinstance(i, ir.Const))
        matchers = tuple(i.matcher.match for i in node.items if isinstance(i, ir.Match))
        if not matchers:
            if many:
                return lambda ev: not exact.isdisjoint(get(ev))
            return lambda ev: get(ev) in exact

        def one(v: Any) -> bool:
            if v in exact:
                return True
            return any(m(v) for m in matchers)

        if many:
            return lambda ev: any(one(v) for v in get(ev))
        return lambda ev: one(get(ev))

    # values ----------------------------------------------------------------------------------
    def value(self, node: ir.Operand) -> ValueFn:
        if isinstance(node, ir.FieldRef):
            return field_getter(node.spec, node.length)
        if isinstance(node, ir.Const):
            c = node.value
            return lambda ev: c
        if isinstance(node, ir.UserVar):
            name, var_get = node.name, self.var_get
            if node.many:
                return lambda ev: tuple(var_get(name, ev) or ())
            return lambda ev: var_get(name, ev)
        if isinstance(node, ir.Interp):
            parts = [(p, None) if isinstance(p, str) else ("", self.value(p)) for p in node.parts]

            def interp(ev: Any) -> str:
                return "".join(text if fn is None else str(fn(ev)) for text, fn in parts)

            return interp
        if isinstance(node, ir.BitOp):
            return self._bitop(node)
        raise TypeError(f"unknown operand {node!r}")

    def _bitop(self, node: ir.BitOp) -> ValueFn:
        a = self.value(node.left)
        if node.right is None:
            if node.op == "^":
                return _lift1(a, operator.invert, node.left.many)
            return _lift1(a, operator.neg, node.left.many)
        b = self.value(node.right)
        fn = {"&": operator.and_, "|": operator.or_, "^": operator.xor}[node.op]
        if not node.left.many and not node.right.many:
            return lambda ev: fn(a(ev), b(ev))
        lm, rm = node.left.many, node.right.many

        def lifted(ev: Any) -> tuple[Any, ...]:
            lv = a(ev) if lm else (a(ev),)
            rv = b(ev) if rm else (b(ev),)
            return tuple(fn(x, y) for x in lv for y in rv)

        return lifted


def _lift1(a: ValueFn, fn: Callable[[Any], Any], many: bool) -> ValueFn:
    if many:
        return lambda ev: tuple(fn(v) for v in a(ev))
    return lambda ev: fn(a(ev))


#: An IP network as (version, network address, prefix length, netmask), so membership is
#: integer arithmetic instead of ipaddress method calls.
IPNet = tuple[int, int, int, int]


def _net(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> IPNet:
    return (
        network.version,
        int(network.network_address),
        network.prefixlen,
        int(network.netmask),
    )


def _ip_in(addr: IPNet | None, net: IPNet | None) -> bool:
    """Whether the address (or network) ``addr`` lies inside ``net`` (same family)."""
    if addr is None or net is None:
        return False
    return addr[0] == net[0] and addr[2] >= net[2] and (addr[1] & net[3]) == net[1]
