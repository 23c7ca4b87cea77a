"""``agent_version`` constraints (``">= 7.61"``, ``">=7.2, <8"``) checked against our version.

Versions compare as tuples of their leading numbers (``7.61.0-rc.1`` is ``(7, 61, 0)``),
padded with zeros; that is all a policy's constraint needs, with no packaging dependency.
"""

from __future__ import annotations

import re

_CLAUSE = re.compile(r"^\s*(>=|<=|==|!=|>|<|=)?\s*v?([0-9][0-9A-Za-z.\-+]*)\s*$")
_NUMBER = re.compile(r"\d+")


class ConstraintError(ValueError):
    """The constraint cannot be read; the message names the bad clause."""


def version_tuple(version: str) -> tuple[int, ...]:
    core = re.split(r"[-+]", version.strip().lstrip("v"), maxsplit=1)[0]
    parts = []
    for piece in core.split("."):
        found = _NUMBER.match(piece)
        if found is None:
            break
        parts.append(int(found.group()))
    return tuple(parts)


def _cmp(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    width = max(len(a), len(b))
    a = a + (0,) * (width - len(a))
    b = b + (0,) * (width - len(b))
    return (a > b) - (a < b)


def satisfies(version: str, constraint: str) -> bool:
    """Whether ``version`` meets every comma-separated clause of ``constraint``."""
    mine = version_tuple(version)
    clauses = [c for c in re.split(r"[,]", constraint) if c.strip()]
    if not clauses:
        raise ConstraintError(f"empty version constraint {constraint!r}")
    for clause in clauses:
        match = _CLAUSE.match(clause)
        if match is None or not version_tuple(match.group(2)):
            raise ConstraintError(f"invalid version constraint {clause.strip()!r}")
        op = match.group(1) or "="
        order = _cmp(mine, version_tuple(match.group(2)))
        ok = {
            ">=": order >= 0,
            "<=": order <= 0,
            ">": order > 0,
            "<": order < 0,
            "=": order == 0,
            "==": order == 0,
            "!=": order != 0,
        }[op]
        if not ok:
            return False
    return True
