"""The untyped syntax tree the parser produces; :mod:`plugins.secl.checker` types it.

Every node carries the 1-based ``line``/``column`` of its first token and the ``origin``
(``("rule", id)`` or ``("macro", id)``) of the text it came from, so errors found after macro
expansion still point into the right expression.
"""

from __future__ import annotations

from dataclasses import dataclass, field

Origin = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Node:
    line: int
    column: int
    origin: Origin


@dataclass(frozen=True, slots=True)
class Ident(Node):
    """A field, a constant, a macro or ``true``/``false``."""

    name: str


@dataclass(frozen=True, slots=True)
class Literal(Node):
    """``kind`` is ``string``, ``pattern``, ``regex``, ``int``, ``duration`` or ``ip``;
    ``value`` the decoded value (seconds for durations, the text for ip/pattern/regex)."""

    kind: str
    value: object


@dataclass(frozen=True, slots=True)
class Variable(Node):
    """``${name}``: a user variable or a field value."""

    name: str


@dataclass(frozen=True, slots=True)
class Array(Node):
    items: tuple[Node, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class Unary(Node):
    """``op`` is ``!`` (logical not, also ``not``), ``^`` (bitwise not) or ``-``."""

    op: str
    operand: Node


@dataclass(frozen=True, slots=True)
class Binary(Node):
    """Logic (``&&`` ``||``), bit (``&`` ``|`` ``^``), comparison and membership
    (``in``, ``not in``, ``allin``) operators; ``line``/``column`` are the operator's."""

    op: str
    left: Node
    right: Node
