"""String matchers: SECL patterns (``~"..."`` and plain strings after ``=~``) and regular
expressions (``r"..."``).

Pattern semantics: on path fields (names ending in ``path``) ``*`` matches within one path
level and ``**`` matches across levels (so a trailing ``/**`` means "everything below");
on other fields ``*`` matches any run of characters. Everything else is literal; matching is
whole-string. Regular expressions use Python's :mod:`re` and match anywhere in the value
(anchor them with ``^``/``$``), like Go's ``MatchString`` that Datadog uses.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field


def glob_to_regex(glob: str, is_path: bool) -> str:
    """The anchored regular expression equivalent to a SECL pattern."""
    out: list[str] = []
    i = 0
    while i < len(glob):
        if glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif glob[i] == "*":
            out.append("[^/]*" if is_path else ".*")
            i += 1
        else:
            out.append(re.escape(glob[i]))
            i += 1
    return "".join(out)


def literal_prefix(glob: str) -> str:
    """The part of a pattern before its first wildcard."""
    star = glob.find("*")
    return glob if star < 0 else glob[:star]


@dataclass(frozen=True)
class Matcher:
    """A compiled pattern or regular expression; ``match(value)`` says whether it matches."""

    text: str
    is_regex: bool
    is_path: bool
    match: Callable[[str], bool] = field(compare=False, repr=False)

    @property
    def prefix(self) -> str:
        """Literal prefix every matching value starts with ("" for regular expressions)."""
        return "" if self.is_regex else literal_prefix(self.text)


def compile_pattern(text: str, is_path: bool) -> Matcher:
    if "*" not in text:
        # No wildcard: plain equality is both exact and the fastest.
        return Matcher(text, False, is_path, lambda s: s == text)
    rx = re.compile(glob_to_regex(text, is_path), re.DOTALL)
    fullmatch = rx.fullmatch
    return Matcher(text, False, is_path, lambda s: isinstance(s, str) and fullmatch(s) is not None)


def compile_regex(text: str) -> Matcher:
    """Raises :class:`re.error` for an invalid expression (the checker turns it into a
    :class:`~plugins.secl.errors.SECLError` at the literal's position)."""
    search = re.compile(text).search
    return Matcher(text, True, False, lambda s: isinstance(s, str) and search(s) is not None)
