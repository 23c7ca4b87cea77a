"""Tokenizer for SECL expressions.

Token kinds: ``ident`` (dotted names such as ``open.file.path``), ``string``, ``pattern``
(``~"..."``), ``regex`` (``r"..."``), ``int``, ``duration`` (``10s``), ``ip`` (bare IPv4/IPv6
addresses and CIDRs), ``var`` (``${name}``), ``op`` (operators and punctuation) and ``eof``.
Keywords (``and or not in allin true false``) are idents; the parser gives them meaning.
``#`` starts a comment that runs to the end of the line.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from plugins.secl.errors import SECLError

DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}

_OPERATORS = (
    "&&", "||", "==", "!=", "<=", ">=", "=~", "!~",
    "<", ">", "!", "&", "|", "^", "(", ")", "[", "]", ",", "-",
)  # fmt: skip
NUMBER = re.compile(r"(0[xX][0-9a-fA-F]+|0[oO][0-7]+|[0-9]+)(ns|us|ms|s|m|h)?(?![A-Za-z0-9_])")
_IPV4 = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}(?:/[0-9]{1,2})?(?![0-9A-Za-z_.])")
_IPV6 = re.compile(r"[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*(?:/[0-9]{1,3})?")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")


@dataclass(frozen=True, slots=True)
class Token:
    """One token with its 1-based line and column inside the expression."""

    kind: str
    value: str
    line: int
    column: int


class Lexer:
    """Splits one expression into tokens; errors name ``kind``/``source_id``."""

    def __init__(self, text: str, source_id: str = "", kind: str = "rule") -> None:
        self.text = text
        self.source_id = source_id
        self.kind = kind
        self._line_starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]

    def position(self, offset: int) -> tuple[int, int]:
        """Line and column (both 1-based) of a character offset."""
        line = 0
        for i, start in enumerate(self._line_starts):
            if start <= offset:
                line = i
            else:
                break
        return line + 1, offset - self._line_starts[line] + 1

    def error(self, offset: int, message: str) -> SECLError:
        line, column = self.position(offset)
        return SECLError(
            message, source_id=self.source_id, kind=self.kind, line=line, column=column
        )

    def tokens(self) -> list[Token]:
        """All tokens, ending with one ``eof`` token."""
        out: list[Token] = []
        text = self.text
        i = 0
        n = len(text)
        while i < n:
            ch = text[i]
            if ch in " \t\r\n":
                i += 1
                continue
            if ch == "#":
                end = text.find("\n", i)
                i = n if end < 0 else end
                continue
            start = i
            kind, value, i = self._one(i)
            line, column = self.position(start)
            out.append(Token(kind, value, line, column))
        line, column = self.position(n)
        out.append(Token("eof", "", line, column))
        return out

    def _one(self, i: int) -> tuple[str, str, int]:  # noqa: PLR0911 - one per token kind
        text = self.text
        ch = text[i]
        if ch == '"':
            value, end = self._string(i)
            return "string", value, end
        if ch == "~" and text.startswith('~"', i):
            value, end = self._string(i + 1)
            return "pattern", value, end
        if ch == "r" and text.startswith('r"', i):
            value, end = self._string(i + 1)
            return "regex", value, end
        if ch == "$" and text.startswith("${", i):
            end = text.find("}", i)
            name = text[i + 2 : end] if end > 0 else ""
            if end < 0 or not _IDENT.fullmatch(name):
                raise self.error(i, "expected a variable name and '}' after '${'")
            return "var", name, end + 1
        ip = self._ip(i)
        if ip is not None:
            return ip
        if "0" <= ch <= "9":
            return self._number(i)
        if ("a" <= ch.lower() <= "z" and ch.isascii()) or ch == "_":
            m = _IDENT.match(text, i)
            assert m is not None
            end = m.end()
            if text.startswith("[", end):
                raise self.error(
                    end,
                    "expected an operator after the field, got a register ('[_]' and "
                    "'[A]' are not supported)",
                )
            return "ident", m.group(0), end
        for op in _OPERATORS:
            if text.startswith(op, i):
                return "op", op, i + len(op)
        raise self.error(i, f"expected an operator, a value or a field, got {ch!r}")

    def _number(self, i: int) -> tuple[str, str, int]:
        m = NUMBER.match(self.text, i)
        if m is None:
            raise self.error(i, f"expected a number, got {_snippet(self.text, i)}")
        number = m.group(1)
        if len(number) > 1 and number[0] == "0" and number[1].isdigit():
            # A leading zero means octal, as in C and Go (``chmod.file.destination.mode
            # == 0644``).
            if not set(number) <= set("01234567"):
                raise self.error(i, f"expected an octal number after a leading 0, got "
                                    f"'{number}'")  # fmt: skip
            number = "0o" + number[1:]
        return ("duration" if m.group(2) else "int"), number + (m.group(2) or ""), m.end()

    def _string(self, i: int) -> tuple[str, int]:
        """A double-quoted string starting at ``i``; ``\\"`` and ``\\\\`` are escapes."""
        text = self.text
        out: list[str] = []
        j = i + 1
        while j < len(text):
            ch = text[j]
            if ch == "\\" and j + 1 < len(text) and text[j + 1] in '"\\':
                out.append(text[j + 1])
                j += 2
                continue
            if ch == '"':
                return "".join(out), j + 1
            out.append(ch)
            j += 1
        raise self.error(i, "expected a closing '\"' for the string")

    def _ip(self, i: int) -> tuple[str, str, int] | None:
        text = self.text
        m = _IPV4.match(text, i)
        if m is None and (text[i] == ":" or text[i] in "0123456789abcdefABCDEF"):
            m6 = _IPV6.match(text, i)
            if m6 is not None and m6.group(0).count(":") >= 2:
                m = m6
        if m is None:
            return None
        value = m.group(0)
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise self.error(i, f"expected an IP address or CIDR, got {value!r}") from None
        return "ip", value, m.end()


def _snippet(text: str, i: int) -> str:
    return repr(text[i : i + 10])
