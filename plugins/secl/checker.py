"""Type checking: syntax tree + model + macros + declared variables -> typed tree (:mod:`ir`).

Rules enforced here (each violation is a :class:`SECLError` at the offending token):

* names resolve to a field of the model, a named constant, a macro or ``true``/``false``;
* both sides of a comparison have the same kind (a ``time`` field compares with durations, as
  an age); ordering operators need ints, durations or times; ``=~``/``!~`` need a string on the
  left and a string, pattern or regex on the right; bit operators need ints;
* ``in``/``not in`` take a list (literal or value-list macro) or a CIDR, whose items match the
  left kind; ``allin`` takes ip operands;
* a condition (top level, operands of ``&&``/``||``/``!``) is boolean;
* the fields of one rule belong to at most one event type.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from plugins.secl import ir
from plugins.secl import syntax as ast
from plugins.secl.errors import SECLError
from plugins.secl.model import FieldSpec, Model
from plugins.secl.parser import parse
from plugins.secl.patterns import compile_pattern, compile_regex

_MAX_MACRO_DEPTH = 16
_ORDERING = frozenset({"<", "<=", ">", ">="})
_MIRROR = {
    "==": "==",
    "!=": "!=",
    "<": ">",
    "<=": ">=",
    ">": "<",
    ">=": "<=",
    "=~": "=~",
    "!~": "!~",
}
_VAR_IN_STRING = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\}")


@dataclass(frozen=True)
class VarDecl:
    """A user variable's type, as its ``set`` action will store it."""

    kind: str
    is_list: bool = False


@dataclass(frozen=True)
class CheckedRule:
    """A typed rule: its condition and the event type its fields name (``None``: any type)."""

    rule_id: str
    condition: ir.BoolNode
    event_type: str | None


class MacroTable:
    """Macro sources, parsed lazily once, keyed by id."""

    def __init__(self, expressions: Mapping[str, str], values: Mapping[str, list[Any]]) -> None:
        self._expressions = dict(expressions)
        self._values = dict(values)
        self._parsed: dict[str, ast.Node] = {}

    def __contains__(self, name: object) -> bool:
        return name in self._expressions or name in self._values

    def ids(self) -> list[str]:
        return [*self._expressions, *self._values]

    def tree(self, name: str) -> ast.Node:
        node = self._parsed.get(name)
        if node is None:
            if name in self._expressions:
                node = parse(self._expressions[name], name, "macro")
            else:
                node = _values_array(name, self._values[name])
            self._parsed[name] = node
        return node


def _values_array(name: str, values: list[Any]) -> ast.Array:
    origin: ast.Origin = ("macro", name)
    items: list[ast.Node] = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise SECLError(
                f"expected string or int values, got {value!r}", source_id=name, kind="macro"
            )
        kind = "string" if isinstance(value, str) else "int"
        items.append(ast.Literal(1, 1, origin, kind, value))
    return ast.Array(1, 1, origin, tuple(items))


class Checker:
    """Checks rules against one model; reusable across the rules of a rule set."""

    def __init__(
        self,
        model: Model,
        macros: MacroTable | None = None,
        variables: Mapping[str, VarDecl] | None = None,
    ) -> None:
        self.model = model
        self.macros = macros or MacroTable({}, {})
        self.variables = dict(variables or {})
        self._expanding: list[str] = []
        self._event_type: tuple[str, FieldSpec] | None = None

    # entry points ----------------------------------------------------------------------------
    def check_rule(self, rule_id: str, expression: str) -> CheckedRule:
        tree = parse(expression, rule_id, "rule")
        return self.check_tree(rule_id, tree)

    def check_tree(self, rule_id: str, tree: ast.Node) -> CheckedRule:
        self._expanding = []
        self._event_type = None
        condition = self.condition(tree)
        return CheckedRule(rule_id, condition, self._event_type[0] if self._event_type else None)

    def check_macro(self, macro_id: str) -> None:
        """Check a macro on its own, so a broken macro is reported even when no rule uses
        it: a list macro must hold constants, a condition must type-check, a value macro
        (``O_CREAT|O_TRUNC``) must resolve."""
        tree = self.macros.tree(macro_id)
        if isinstance(tree, ast.Array):
            return
        self._expanding = []
        self._event_type = None
        probe = ast.Ident(1, 1, ("macro", macro_id), macro_id)
        logical = (isinstance(tree, ast.Binary) and tree.op not in ("&", "|", "^")) or (
            isinstance(tree, ast.Unary) and tree.op == "!"
        )
        if logical:
            self.condition(probe)
        else:
            self.value(probe)

    # errors ----------------------------------------------------------------------------------
    @staticmethod
    def error(node: ast.Node, message: str) -> SECLError:
        kind, source_id = node.origin
        return SECLError(
            message, source_id=source_id, kind=kind, line=node.line, column=node.column
        )

    # conditions ------------------------------------------------------------------------------
    def condition(self, node: ast.Node) -> ir.BoolNode:
        if isinstance(node, ast.Binary):
            if node.op in ("&&", "||"):
                return self._chain(node)
            if node.op in _MIRROR:
                return self.comparison(node)
            if node.op in ("in", "not in", "allin"):
                return self.membership(node)
        if isinstance(node, ast.Unary) and node.op == "!":
            return ir.Not(self.condition(node.operand))
        if isinstance(node, ast.Ident) and node.name in self.macros:
            expanded: ir.BoolNode = self._in_macro(node, self.condition)
            return expanded
        value = self.value(node)
        if value.kind != "bool":
            raise self.error(node, f"expected a boolean expression, got {_describe(value)}")
        return ir.Truth(value)

    def _chain(self, node: ast.Binary) -> ir.BoolNode:
        """``a && b && c ...`` as a balanced tree: the parser builds chains left-deep, and
        a long chain would otherwise recurse once per operand here and at evaluation."""
        operands: list[ast.Node] = []
        cur: ast.Node = node
        while isinstance(cur, ast.Binary) and cur.op == node.op:
            operands.append(cur.right)
            cur = cur.left
        operands.append(cur)
        operands.reverse()
        checked = [self.condition(operand) for operand in operands]
        return _balanced(checked, ir.And if node.op == "&&" else ir.Or)

    def _in_macro(self, node: ast.Ident, check: Any) -> Any:
        if len(self._expanding) >= _MAX_MACRO_DEPTH:
            raise self.error(node, f"expected at most {_MAX_MACRO_DEPTH} levels of nested "
                                   f"macros, got more at '{node.name}'")  # fmt: skip
        if node.name in self._expanding:
            raise self.error(node, f"expected a macro that does not refer to itself, got "
                                   f"'{node.name}' again")  # fmt: skip
        self._expanding.append(node.name)
        try:
            return check(self.macros.tree(node.name))
        finally:
            self._expanding.pop()

    def comparison(self, node: ast.Binary) -> ir.BoolNode:
        op = node.op
        left = self.value(node.left)
        right = self.value(node.right)
        lnode, rnode = node.left, node.right
        if isinstance(left, ir.PatternLit) and not isinstance(right, ir.PatternLit):
            left, right, lnode, rnode, op = right, left, rnode, lnode, _MIRROR[op]
        negate = op in ("!=", "!~")
        if op in ("=~", "!~"):
            if left.kind != "string" or isinstance(left, ir.PatternLit):
                raise self.error(lnode, f"expected a string operand for '{op}', got "
                                        f"{_describe(left)}")  # fmt: skip
            if isinstance(right, ir.Const) and right.kind == "string":
                right = ir.PatternLit("string", False, right.value, False)
            if not isinstance(right, ir.PatternLit):
                raise self.error(rnode, f"expected a pattern or regular expression after "
                                        f"'{op}', got {_describe(right)}")  # fmt: skip
            return ir.Compare("==", left, self._bind(right, left, rnode), negate)
        if isinstance(right, ir.PatternLit):
            if op not in ("==", "!="):
                raise self.error(rnode, f"expected a value after '{op}', got {_describe(right)}")
            if left.kind != "string" or isinstance(left, ir.PatternLit):
                raise self.error(lnode, f"expected a string operand to compare with a "
                                        f"pattern, got {_describe(left)}")  # fmt: skip
            return ir.Compare("==", left, self._bind(right, left, rnode), negate)
        age = left.kind == "time" and right.kind == "duration"
        if right.kind == "time" and left.kind == "duration":
            left, right, lnode, rnode, op = right, left, rnode, lnode, _MIRROR[op]
            age = True
        if not age and left.kind != right.kind:
            raise self.error(rnode, f"expected {_a(left.kind)} value after '{op}' to compare "
                                    f"with {_describe(left)}, got {_describe(right)}")  # fmt: skip
        if op in _ORDERING and left.kind not in ("int", "duration", "time"):
            raise self.error(lnode, f"expected an int, duration or time operand for '{op}', "
                                    f"got {_describe(left)}")  # fmt: skip
        return ir.Compare("==" if negate else op, left, right, negate, age)

    def _bind(self, pattern: ir.PatternLit, subject: ir.Operand, node: ast.Node) -> ir.Match:
        is_path = isinstance(subject, ir.FieldRef) and subject.spec.is_path and not subject.length
        if pattern.is_regex:
            try:
                matcher = compile_regex(pattern.text)
            except (re.error, OverflowError, RecursionError, ValueError) as exc:
                raise self.error(node, f"expected a valid regular expression, got "
                                       f"r\"{pattern.text}\": {exc}") from None  # fmt: skip
        else:
            matcher = compile_pattern(pattern.text, is_path)
        return ir.Match("string", False, matcher)

    def membership(self, node: ast.Binary) -> ir.BoolNode:
        left = self.value(node.left)
        if isinstance(left, ir.PatternLit):
            raise self.error(node.left, f"expected a field or value before '{node.op}', got "
                                        f"{_describe(left)}")  # fmt: skip
        if node.op == "allin" and left.kind != "ip":
            raise self.error(node.left, f"expected an ip operand for 'allin', got "
                                        f"{_describe(left)}")  # fmt: skip
        items = self._items(node.right, left, node.op)
        return ir.In(left, items, node.op == "not in", node.op == "allin")

    def _items(self, node: ast.Node, left: ir.Operand, op: str) -> tuple[ir.Operand, ...]:
        if isinstance(node, ast.Ident) and node.name in self.macros:
            result: tuple[ir.Operand, ...] = self._in_macro(
                node, lambda tree: self._items(tree, left, op)
            )
            return result
        if isinstance(node, ast.Literal) and node.kind == "ip":
            return (self._item(node, left, op),)
        if not isinstance(node, ast.Array):
            raise self.error(node, f"expected a list, a list macro or a CIDR after '{op}', got "
                                   f"{_describe_node(node)}")  # fmt: skip
        return tuple(self._item(item, left, op) for item in node.items)

    def _item(self, node: ast.Node, left: ir.Operand, op: str) -> ir.Operand:
        value = self.value(node)
        if isinstance(value, ir.PatternLit):
            if left.kind != "string":
                raise self.error(node, f"expected {left.kind} values in the list for "
                                       f"{_describe(left)}, got {_describe(value)}")  # fmt: skip
            return self._bind(value, left, node)
        if not isinstance(value, ir.Const):
            raise self.error(node, f"expected constant values in the list after '{op}', got "
                                   f"{_describe(value)}")  # fmt: skip
        if value.kind != left.kind:
            raise self.error(node, f"expected {left.kind} values in the list for "
                                   f"{_describe(left)}, got {_describe(value)}")  # fmt: skip
        return value

    # values ----------------------------------------------------------------------------------
    def value(self, node: ast.Node) -> ir.Operand:  # noqa: PLR0911 - dispatch
        if isinstance(node, ast.Literal):
            return self._literal(node)
        if isinstance(node, ast.Ident):
            return self._ident(node)
        if isinstance(node, ast.Variable):
            return self._variable(node, node.name)
        if isinstance(node, ast.Unary):
            if node.op == "!":
                raise self.error(node, "expected a value, got a negated condition (use "
                                       "parentheses around comparisons)")  # fmt: skip
            operand = self._int(node.operand, node.op)
            if isinstance(operand, ir.Const):
                folded = ~operand.value if node.op == "^" else -operand.value
                return ir.Const("int", False, folded)
            return ir.BitOp("int", operand.many, node.op, operand, None)
        if isinstance(node, ast.Binary) and node.op in ("&", "|", "^"):
            left = self._int(node.left, node.op)
            right = self._int(node.right, node.op)
            if isinstance(left, ir.Const) and isinstance(right, ir.Const):
                a, b = left.value, right.value
                folded = a & b if node.op == "&" else a | b if node.op == "|" else a ^ b
                return ir.Const("int", False, folded)
            return ir.BitOp("int", left.many or right.many, node.op, left, right)
        if isinstance(node, ast.Array):
            raise self.error(node, "expected a single value, got a list (lists go after 'in')")
        raise self.error(node, "expected a value, got a condition (comparisons cannot be "
                               "compared)")  # fmt: skip

    def _int(self, node: ast.Node, op: str) -> ir.Operand:
        value = self.value(node)
        if value.kind != "int" or isinstance(value, ir.PatternLit):
            raise self.error(node, f"expected an int operand for '{op}', got {_describe(value)}")
        return value

    def _literal(self, node: ast.Literal) -> ir.Operand:
        if node.kind == "string":
            assert isinstance(node.value, str)
            if "${" in node.value:
                return self._interpolate(node, node.value)
            return ir.Const("string", False, node.value)
        if node.kind in ("pattern", "regex"):
            assert isinstance(node.value, str)
            return ir.PatternLit("string", False, node.value, node.kind == "regex")
        if node.kind == "ip":
            assert isinstance(node.value, str)
            return ir.Const("ip", False, ipaddress.ip_network(node.value, strict=False))
        return ir.Const(node.kind, False, node.value)

    def _interpolate(self, node: ast.Literal, text: str) -> ir.Operand:
        parts: list[Any] = []
        pos = 0
        for m in _VAR_IN_STRING.finditer(text):
            if m.start() > pos:
                parts.append(text[pos : m.start()])
            ref = self._variable(node, m.group(1))
            if ref.many:
                raise self.error(node, f"expected a single-valued variable in the string, got "
                                       f"{_describe(ref)}")  # fmt: skip
            parts.append(ref)
            pos = m.end()
        if pos < len(text):
            parts.append(text[pos:])
        return ir.Interp("string", False, tuple(parts))

    def _variable(self, node: ast.Node, name: str) -> ir.Operand:
        decl = self.variables.get(name)
        if decl is not None:
            return ir.UserVar(decl.kind, decl.is_list, name)
        spec, length = self._field(name)
        if spec is not None:
            return self._field_ref(node, spec, length)
        raise self.error(node, f"expected a declared variable or a field, got unknown "
                               f"variable '${{{name}}}'")  # fmt: skip

    def _ident(self, node: ast.Ident) -> ir.Operand:
        name = node.name
        if name in ("true", "false"):
            return ir.Const("bool", False, name == "true")
        if name in self.macros:
            result: ir.Operand = self._in_macro(node, self.value)
            return result
        const = self.model.constants.get(name)
        if const is not None:
            return ir.Const(const[1], False, const[0])
        spec, length = self._field(name)
        if spec is None:
            raise self.error(node, f"expected a field, constant or macro, got unknown "
                                   f"identifier '{name}'")  # fmt: skip
        return self._field_ref(node, spec, length)

    def _field(self, name: str) -> tuple[FieldSpec | None, bool]:
        spec = self.model.fields.get(name)
        if spec is not None:
            return spec, False
        if name.endswith(".length"):
            base = self.model.fields.get(name[: -len(".length")])
            if base is not None and base.kind == "string":
                return base, True
        return None, False

    def _field_ref(self, node: ast.Node, spec: FieldSpec, length: bool) -> ir.FieldRef:
        if spec.event_type is not None:
            if self._event_type is None:
                self._event_type = (spec.event_type, spec)
            elif self._event_type[0] != spec.event_type:
                first = self._event_type[1]
                raise self.error(node, f"expected fields of event type '{self._event_type[0]}' "
                                       f"(as '{first.name}'), got '{spec.name}' of event type "
                                       f"'{spec.event_type}'")  # fmt: skip
        iterated = spec.iterator is not None
        if length:
            many = iterated  # list size per element for iterated lists, else one number
            return ir.FieldRef("int", many, spec, True)
        return ir.FieldRef(spec.kind, spec.is_list or iterated, spec, False)


def _describe(value: ir.Operand) -> str:  # noqa: PLR0911 - dispatch
    if isinstance(value, ir.FieldRef):
        name = value.spec.name + (".length" if value.length else "")
        return f"{value.kind} field '{name}'"
    if isinstance(value, ir.Const):
        if value.kind == "string":
            return f'string "{value.value}"'
        if value.kind == "bool":
            return f"bool {'true' if value.value else 'false'}"
        if value.kind == "duration":
            return f"duration {value.value:g}s"
        return f"{value.kind} {value.value}"
    if isinstance(value, ir.PatternLit):
        return (
            f'regular expression r"{value.text}"' if value.is_regex else f'pattern ~"{value.text}"'
        )
    if isinstance(value, ir.UserVar):
        return f"{value.kind} variable '${{{value.name}}}'"
    if isinstance(value, ir.Interp):
        return "string with variables"
    if isinstance(value, ir.BitOp):
        return "int expression"
    return value.kind


def _balanced(items: list[ir.BoolNode], join: type[ir.And] | type[ir.Or]) -> ir.BoolNode:
    if len(items) == 1:
        return items[0]
    middle = len(items) // 2
    return join(_balanced(items[:middle], join), _balanced(items[middle:], join))


def _a(word: str) -> str:
    return f"an {word}" if word[0] in "aeiou" else f"a {word}"


def _describe_node(node: ast.Node) -> str:
    if isinstance(node, ast.Literal):
        return f"{node.kind} value"
    if isinstance(node, ast.Ident):
        return f"'{node.name}'"
    if isinstance(node, ast.Variable):
        return f"'${{{node.name}}}'"
    return "an expression"
