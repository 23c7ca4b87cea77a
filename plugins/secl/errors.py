"""The one exception SECL raises: every parse, type and compile problem is a :class:`SECLError`."""

from __future__ import annotations


class SECLError(Exception):
    """A rule or macro that cannot be parsed or compiled.

    ``kind`` is ``"rule"`` or ``"macro"`` and ``source_id`` its id; ``line`` and ``column`` are
    1-based positions inside that expression (0 when the problem is not tied to a position,
    such as a duplicate id); ``message`` says what was expected and what was found.
    ``str(error)`` is the one-line form shown to users, e.g.
    ``rule shadow_read, line 1, column 5: unknown field 'open.file.pth'``.
    """

    def __init__(
        self,
        message: str,
        *,
        source_id: str = "",
        kind: str = "rule",
        line: int = 0,
        column: int = 0,
    ) -> None:
        self.message = message
        self.source_id = source_id
        self.kind = kind
        self.line = line
        self.column = column
        super().__init__(str(self))

    @property
    def rule_id(self) -> str:
        """The id of the rule or macro the error belongs to."""
        return self.source_id

    def __str__(self) -> str:
        where = f"{self.kind} {self.source_id}" if self.source_id else self.kind
        if self.line:
            where += f", line {self.line}, column {self.column}"
        return f"{where}: {self.message}"
