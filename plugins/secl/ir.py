"""The typed tree the checker produces from the syntax tree (macros expanded, names resolved,
types checked). The closure compiler, the reference interpreter and approver extraction all
read this tree, never the raw syntax.

Operands have a ``kind`` (see :data:`plugins.secl.model.KINDS`) and ``many``: a ``many``
operand yields a tuple of values (a list field such as ``exec.argv`` or an iterator field such
as ``process.ancestors.file.name``); a comparison holds when it holds for *any* value, and the
negated operators (``!=``, ``!~``, ``not in``) are the negation of that, so
``process.ancestors.file.name != "sshd"`` means "no ancestor is named sshd".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from plugins.secl.model import FieldSpec
from plugins.secl.patterns import Matcher


@dataclass(frozen=True, slots=True)
class Operand:
    kind: str
    many: bool


@dataclass(frozen=True, slots=True)
class FieldRef(Operand):
    """A field; ``length`` reads ``.length`` (string length, or list size for list fields)."""

    spec: FieldSpec
    length: bool = False


@dataclass(frozen=True, slots=True)
class Const(Operand):
    """A literal or named constant: str, int, bool, seconds (duration) or an ip network."""

    value: Any


@dataclass(frozen=True, slots=True)
class PatternLit(Operand):
    """An unbound ``~"..."`` or ``r"..."`` literal (bound to a :class:`Matcher` once the field
    it is compared with is known, because globs depend on path-ness)."""

    text: str
    is_regex: bool


@dataclass(frozen=True, slots=True)
class Match(Operand):
    """A bound pattern/regex (right-hand side of a string comparison or a list item)."""

    matcher: Matcher


@dataclass(frozen=True, slots=True)
class Interp(Operand):
    """A string with ``${...}`` parts: a tuple of str and scalar operands."""

    parts: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class UserVar(Operand):
    """A variable set by a rule's ``set`` action, read from the variable store."""

    name: str


@dataclass(frozen=True, slots=True)
class BitOp(Operand):
    """``&``, ``|``, ``^`` on ints, or unary ``~`` (written ``^x``) and ``-`` with ``right``
    None."""

    op: str
    left: Operand
    right: Operand | None


# Boolean nodes -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BoolNode:
    pass


@dataclass(frozen=True, slots=True)
class And(BoolNode):
    left: BoolNode
    right: BoolNode


@dataclass(frozen=True, slots=True)
class Or(BoolNode):
    left: BoolNode
    right: BoolNode


@dataclass(frozen=True, slots=True)
class Not(BoolNode):
    operand: BoolNode


@dataclass(frozen=True, slots=True)
class Truth(BoolNode):
    """A bool operand used as a condition (``process.is_thread``, ``${suspicious}``)."""

    operand: Operand


@dataclass(frozen=True, slots=True)
class Compare(BoolNode):
    """``left op right`` with op in ``== < <= > >=``; ``negate`` for ``!=``/``!~``. When the
    right side is a :class:`Match`, ``==`` means "matches". ``age`` compares
    ``now - left`` (a time field) with a duration."""

    op: str
    left: Operand
    right: Operand
    negate: bool = False
    age: bool = False


@dataclass(frozen=True, slots=True)
class In(BoolNode):
    """``left in [items]``; ``negate`` for ``not in``; ``all`` for ``allin`` (every value of a
    many operand must be in the list)."""

    left: Operand
    items: tuple[Operand, ...]
    negate: bool = False
    all: bool = False
