"""A small evaluator for rule ``filters`` until the shared SECL library (plugins/secl) lands.

It understands the subset benchmark filters use: fields (``os.id``), string, integer and
boolean literals, arrays, ``== != < <= > >= in notin =~ !~``, ``&& || !``, ``and or not`` and
parentheses. ``=~`` takes a glob (``"12*"``). Replace this module by the SECL engine.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping
from typing import Any

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<str>"(?:[^"\\]|\\.)*")
      | (?P<num>-?\d+)
      | (?P<op>==|!=|<=|>=|=~|!~|&&|\|\||[<>!()\[\],])
      | (?P<word>[A-Za-z_][A-Za-z0-9_.]*)
    )""",
    re.VERBOSE,
)


class FilterError(ValueError):
    pass


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise FilterError(f"syntax error at offset {pos} in filter {text!r}")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text: str, fields: Mapping[str, Any]) -> None:
        self.text = text
        self.toks = _tokens(text)
        self.i = 0
        self.fields = fields

    def peek(self) -> str | None:
        return self.toks[self.i][1] if self.i < len(self.toks) else None

    def take(self) -> tuple[str, str]:
        if self.i >= len(self.toks):
            raise FilterError(f"unexpected end of filter {self.text!r}")
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def parse(self) -> bool:
        value = self.or_expr()
        if self.i != len(self.toks):
            raise FilterError(f"unexpected {self.peek()!r} in filter {self.text!r}")
        return bool(value)

    def or_expr(self) -> Any:
        left = self.and_expr()
        while self.peek() in ("||", "or"):
            self.take()
            right = self.and_expr()
            left = bool(left) or bool(right)
        return left

    def and_expr(self) -> Any:
        left = self.not_expr()
        while self.peek() in ("&&", "and"):
            self.take()
            right = self.not_expr()
            left = bool(left) and bool(right)
        return left

    def not_expr(self) -> Any:
        if self.peek() in ("!", "not"):
            self.take()
            return not self.not_expr()
        return self.comparison()

    def comparison(self) -> Any:
        left = self.operand()
        op = self.peek()
        if op in ("==", "!=", "<", "<=", ">", ">=", "=~", "!~", "in", "notin"):
            self.take()
            right = self.operand()
            return _compare(op, left, right, self.text)
        return left

    def operand(self) -> Any:
        kind, value = self.take()
        if value == "(":
            inner = self.or_expr()
            self._expect(")")
            return inner
        if value == "[":
            items: list[Any] = []
            while self.peek() != "]":
                items.append(self.operand())
                if self.peek() == ",":
                    self.take()
            self._expect("]")
            return items
        if kind == "str":
            return value[1:-1].replace('\\"', '"')
        if kind == "num":
            return int(value)
        if kind == "word":
            if value in ("true", "false"):
                return value == "true"
            if value not in self.fields:
                raise FilterError(f"unknown field {value} in filter {self.text!r}")
            return self.fields[value]
        raise FilterError(f"unexpected {value!r} in filter {self.text!r}")

    def _expect(self, tok: str) -> None:
        if self.take()[1] != tok:
            raise FilterError(f"expected {tok!r} in filter {self.text!r}")


_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "==": lambda a, b: bool(a == b),
    "!=": lambda a, b: bool(a != b),
    "<": lambda a, b: bool(a < b),
    "<=": lambda a, b: bool(a <= b),
    ">": lambda a, b: bool(a > b),
    ">=": lambda a, b: bool(a >= b),
}


def _compare(op: str, left: Any, right: Any, text: str) -> bool:
    if op in ("in", "notin"):
        if not isinstance(right, list):
            raise FilterError(f"{op} needs an array in filter {text!r}")
        found = any(fnmatch.fnmatchcase(str(left), str(r)) for r in right)
        return found if op == "in" else not found
    if op in ("=~", "!~"):
        matched = fnmatch.fnmatchcase(str(left), str(right))
        return matched if op == "=~" else not matched
    try:
        return _ORDER[op](left, right)
    except TypeError:
        raise FilterError(f"cannot compare {left!r} {op} {right!r} in filter {text!r}") from None


def evaluate_filter(text: str, fields: Mapping[str, Any]) -> bool:
    """True when ``text`` holds for ``fields``; :class:`FilterError` for a bad filter."""
    return _Parser(text, fields).parse()
