"""Recursive-descent parser for SECL.

Precedence, loosest first: ``||``/``or``; ``&&``/``and``; ``!``/``not``; comparisons
(``== != < <= > >= =~ !~ in, not in, allin``, at most one per operand pair); ``|``; ``^``;
``&``; unary ``^`` and ``-``. So ``open.flags & O_CREAT > 0`` reads as
``(open.flags & O_CREAT) > 0``.
"""

from __future__ import annotations

from plugins.secl.errors import SECLError
from plugins.secl.lexer import DURATION_UNITS, NUMBER, Lexer, Token
from plugins.secl.syntax import Array, Binary, Ident, Literal, Node, Origin, Unary, Variable

_COMPARISONS = frozenset({"==", "!=", "<", "<=", ">", ">=", "=~", "!~"})
_KEYWORDS = frozenset({"and", "or", "not", "in", "allin"})
_MAX_DEPTH = 64  # deeper nesting is refused instead of exhausting the interpreter stack


def parse(text: str, source_id: str = "", kind: str = "rule") -> Node:
    """Parse one expression (a rule, an expression macro or a value-list macro)."""
    return _Parser(text, source_id, kind).parse()


class _Parser:
    def __init__(self, text: str, source_id: str, kind: str) -> None:
        self.lexer = Lexer(text, source_id, kind)
        self.origin: Origin = (kind, source_id)
        self.toks = self.lexer.tokens()
        self.i = 0
        self.depth = 0

    # helpers ---------------------------------------------------------------------------------
    def peek(self, ahead: int = 0) -> Token:
        return self.toks[min(self.i + ahead, len(self.toks) - 1)]

    def next(self) -> Token:
        tok = self.toks[self.i]
        if tok.kind != "eof":
            self.i += 1
        return tok

    def is_op(self, *ops: str) -> bool:
        tok = self.peek()
        return tok.kind == "op" and tok.value in ops

    def is_word(self, *words: str) -> bool:
        tok = self.peek()
        return tok.kind == "ident" and tok.value in words

    def error(self, tok: Token, expected: str) -> SECLError:
        return SECLError(
            f"expected {expected}, got {_describe(tok)}",
            source_id=self.origin[1],
            kind=self.origin[0],
            line=tok.line,
            column=tok.column,
        )

    # grammar ---------------------------------------------------------------------------------
    def parse(self) -> Node:
        if self.peek().kind == "eof":
            raise self.error(self.peek(), "an expression")
        node = self.or_expr()
        tok = self.peek()
        if tok.kind != "eof":
            raise self.error(tok, "an operator or the end of the expression")
        return node

    def or_expr(self) -> Node:
        node = self.and_expr()
        while self.is_op("||") or self.is_word("or"):
            tok = self.next()
            node = Binary(tok.line, tok.column, self.origin, "||", node, self.and_expr())
        return node

    def and_expr(self) -> Node:
        node = self.not_expr()
        while self.is_op("&&") or self.is_word("and"):
            tok = self.next()
            node = Binary(tok.line, tok.column, self.origin, "&&", node, self.not_expr())
        return node

    def not_expr(self) -> Node:
        if self.is_op("!") or (self.is_word("not") and not self._word_ahead("in")):
            tok = self.next()
            self._enter(tok)
            try:
                operand = self.not_expr()
            finally:
                self.depth -= 1
            return Unary(tok.line, tok.column, self.origin, "!", operand)
        return self.comparison()

    def _word_ahead(self, word: str) -> bool:
        tok = self.peek(1)
        return tok.kind == "ident" and tok.value == word

    def comparison(self) -> Node:
        left = self.bit_or()
        tok = self.peek()
        if tok.kind == "op" and tok.value in _COMPARISONS:
            self.next()
            return Binary(tok.line, tok.column, self.origin, tok.value, left, self.bit_or())
        if self.is_word("in", "allin"):
            self.next()
            return Binary(tok.line, tok.column, self.origin, tok.value, left, self.bit_or())
        if self.is_word("not") and self._word_ahead("in"):
            self.next()
            self.next()
            return Binary(tok.line, tok.column, self.origin, "not in", left, self.bit_or())
        return left

    def bit_or(self) -> Node:
        node = self.bit_xor()
        count = 0
        while self.is_op("|"):
            tok = self.next()
            count += 1
            if count > _MAX_DEPTH:
                raise self.error(tok, f"at most {_MAX_DEPTH} '|' in a row")
            node = Binary(tok.line, tok.column, self.origin, "|", node, self.bit_xor())
        return node

    def bit_xor(self) -> Node:
        node = self.bit_and()
        count = 0
        while self.is_op("^"):
            tok = self.next()
            count += 1
            if count > _MAX_DEPTH:
                raise self.error(tok, f"at most {_MAX_DEPTH} '^' in a row")
            node = Binary(tok.line, tok.column, self.origin, "^", node, self.bit_and())
        return node

    def bit_and(self) -> Node:
        node = self.unary()
        count = 0
        while self.is_op("&"):
            tok = self.next()
            count += 1
            if count > _MAX_DEPTH:
                raise self.error(tok, f"at most {_MAX_DEPTH} '&' in a row")
            node = Binary(tok.line, tok.column, self.origin, "&", node, self.unary())
        return node

    def unary(self) -> Node:
        if self.is_op("^", "-"):
            tok = self.next()
            self._enter(tok)
            try:
                operand = self.unary()
            finally:
                self.depth -= 1
            return Unary(tok.line, tok.column, self.origin, tok.value, operand)
        return self.primary()

    def _enter(self, tok: Token) -> None:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise self.error(tok, f"at most {_MAX_DEPTH} levels of nesting")

    def primary(self) -> Node:  # noqa: PLR0911 - one per token kind
        tok = self.peek()
        if tok.kind == "op" and tok.value == "(":
            self.next()
            self._enter(tok)
            try:
                node = self.or_expr()
            finally:
                self.depth -= 1
            if not self.is_op(")"):
                raise self.error(self.peek(), "')'")
            self.next()
            return node
        if tok.kind == "op" and tok.value == "[":
            return self.array()
        if tok.kind == "ident" and tok.value not in _KEYWORDS:
            self.next()
            return Ident(tok.line, tok.column, self.origin, tok.value)
        if tok.kind == "var":
            self.next()
            return Variable(tok.line, tok.column, self.origin, tok.value)
        if tok.kind in ("string", "pattern", "regex", "ip"):
            self.next()
            return Literal(tok.line, tok.column, self.origin, tok.kind, tok.value)
        if tok.kind == "int":
            self.next()
            return Literal(tok.line, tok.column, self.origin, "int", int(tok.value, 0))
        if tok.kind == "duration":
            self.next()
            m = NUMBER.fullmatch(tok.value)
            assert m is not None  # the lexer produced it with the same expression
            seconds = int(m.group(1), 0) * DURATION_UNITS[m.group(2)]
            return Literal(tok.line, tok.column, self.origin, "duration", seconds)
        raise self.error(tok, "a value, a field or '('")

    def array(self) -> Node:
        open_tok = self.next()
        self._enter(open_tok)
        try:
            return self._array_items(open_tok)
        finally:
            self.depth -= 1

    def _array_items(self, open_tok: Token) -> Node:
        items: list[Node] = []
        while True:
            tok = self.peek()
            if tok.kind == "op" and tok.value == "]" and not items:
                break
            items.append(self.bit_or())
            if self.is_op(","):
                self.next()
                continue
            if not self.is_op("]"):
                raise self.error(self.peek(), "',' or ']'")
            break
        self.next()
        return Array(open_tok.line, open_tok.column, self.origin, tuple(items))


def _describe(tok: Token) -> str:
    if tok.kind == "eof":
        return "the end of the expression"
    if tok.kind in ("string", "pattern", "regex"):
        prefix = {"string": "", "pattern": "~", "regex": "r"}[tok.kind]
        return f'{tok.kind} {prefix}"{tok.value}"'
    if tok.kind == "ident":
        return f"'{tok.value}'"
    if tok.kind == "op":
        return f"'{tok.value}'"
    if tok.kind == "var":
        return f"'${{{tok.value}}}'"
    return f"{tok.kind} {tok.value}"
