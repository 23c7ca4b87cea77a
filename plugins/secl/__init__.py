"""SECL, Datadog's Security Evaluation Language: parser, type checker, compiler to closures,
approver indexes and evaluator. Pure Python (no Twisted), shared by runtime security (rules
over kernel events) and compliance (rule ``filters`` over host facts).

Quick use::

    from plugins.secl import MacroDefinition, RuleDefinition, RuleSet, SECLError

    rules = RuleSet.compile(
        [RuleDefinition("shadow", 'open.file.path == "/etc/shadow" && process.comm not in TOOLS')],
        [MacroDefinition("TOOLS", values=["vipw", "passwd"])],
    )
    rules.errors            # {rule id: SECLError} for rules that did not compile
    rules.evaluate(event)   # ["shadow"] when the event matches
    rules.approvers()       # {"shadow": {"open.file.path": [Approver(...)]}}

For compliance filters use ``compile_expression(expr, model=FILTER_MODEL).matches(facts)``.

Semantics worth knowing (the tests pin each one down):

* Events are nested dicts (see :mod:`plugins.secl.model`); a missing value reads as its
  type's zero value. A rule belongs to the one event type its fields name; a rule naming only
  common fields (``process.*``, ``container.id``) applies to every event.
* List and iterator fields (``exec.argv``, ``process.ancestors.*``) match when any value
  matches; ``!=``, ``!~`` and ``not in`` are the negation of that ("no value matches").
* Patterns (``~"..."``, or a plain string after ``=~``): ``*`` stays within one path level on
  ``*.path`` fields and matches anything elsewhere; ``**`` crosses levels. Regular
  expressions (``r"..."``) search anywhere in the value (anchor with ``^``/``$``).
* Integers: decimal, ``0x`` hex, ``0o`` or leading-zero octal (``0644``); durations ``10s``,
  ``5m``, ``2h``, ``500ms``; a ``time`` field (``process.created_at``) compared with a
  duration compares its age at the event's ``timestamp``.
* ``${name}`` reads a variable declared in the :class:`VariableStore` (set by rule actions),
  or a field; inside strings it interpolates (``"/proc/${process.pid}/maps"``).
* Not supported: registers (``[_]``), ``in ${list_variable}``, arithmetic ``+``/``-`` between
  values, dynamic patterns built from variables.
"""

from __future__ import annotations

from plugins.secl.approvers import Approver
from plugins.secl.checker import VarDecl
from plugins.secl.errors import SECLError
from plugins.secl.model import FILTER_MODEL, RUNTIME_MODEL, FieldSpec, Model
from plugins.secl.parser import parse
from plugins.secl.ruleset import (
    CompiledRule,
    MacroDefinition,
    RuleDefinition,
    RuleSet,
    compile_expression,
)
from plugins.secl.variables import VariableStore

__all__ = [
    "FILTER_MODEL",
    "RUNTIME_MODEL",
    "Approver",
    "CompiledRule",
    "FieldSpec",
    "MacroDefinition",
    "Model",
    "RuleDefinition",
    "RuleSet",
    "SECLError",
    "VarDecl",
    "VariableStore",
    "compile_expression",
    "parse",
]
