"""The boolean grammar of ItemFilter expressions: lexer, ``or`` / ``and`` / ``not`` / ``( )``.

The same grammar combines items and item attributes (events.md section 15);
:class:`_BooleanParser` parses it over any leaf predicate, and the content
filter (:mod:`.content`) supplies the leaves.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final, TypeVar

from ._common import _MAX_DEPTH

_A = TypeVar("_A")
_B = TypeVar("_B")
_Pred = Callable[[_A, _B], bool]

_TOKEN_RE: Final = re.compile(
    r"\s*(?:(//|[()\[\]=:@])|\"([^\"]*)\"|'([^']*)'|([^\W\d][\w.\-]*))", re.UNICODE
)


class _ContentSyntaxError(Exception):
    pass


class _BooleanParser:
    """Tokens of an expression and the recursive-descent boolean grammar over them."""

    def __init__(self, text: str, nsmap: dict[str | None, str]) -> None:
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        stripped = text.rstrip()
        while pos < len(stripped):
            m = _TOKEN_RE.match(stripped, pos)
            if m is None:
                raise _ContentSyntaxError(f"unexpected character at offset {pos}")
            op, dq, sq, name = m.groups()
            if op is not None:
                self.tokens.append(("op", op))
            elif dq is not None or sq is not None:
                self.tokens.append(("str", dq if dq is not None else sq))
            else:
                self.tokens.append(("name", name))
            pos = m.end()
        self.pos = 0
        self.depth = 0
        self.nsmap = nsmap

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, kind: str, value: str | None = None) -> str:
        tok = self.peek()
        if tok is None or tok[0] != kind or (value is not None and tok[1] != value):
            raise _ContentSyntaxError(f"expected {value or kind}, found {tok[1] if tok else 'end'}")
        self.pos += 1
        return tok[1]

    def at(self, kind: str, value: str) -> bool:
        return self.peek() == (kind, value)

    def _enter(self) -> None:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise _ContentSyntaxError("expression nested too deeply")

    # The boolean grammar (or / and / not / parentheses) is the same over items
    # and over item attributes; ``atom`` parses the level's leaf predicate.

    def expr(self, atom: Callable[[], _Pred[_A, _B]]) -> _Pred[_A, _B]:
        terms = [self.and_expr(atom)]
        while self.at("name", "or"):
            self.pos += 1
            terms.append(self.and_expr(atom))
        if len(terms) == 1:
            return terms[0]
        return lambda a, b: any(t(a, b) for t in terms)

    def and_expr(self, atom: Callable[[], _Pred[_A, _B]]) -> _Pred[_A, _B]:
        terms = [self.primary(atom)]
        while self.at("name", "and"):
            self.pos += 1
            terms.append(self.primary(atom))
        if len(terms) == 1:
            return terms[0]
        return lambda a, b: all(t(a, b) for t in terms)

    def primary(self, atom: Callable[[], _Pred[_A, _B]]) -> _Pred[_A, _B]:
        self._enter()
        try:
            if self.at("op", "("):
                self.pos += 1
                inner = self.expr(atom)
                self.take("op", ")")
                return inner
            if self.at("name", "not"):
                self.pos += 1
                self.take("op", "(")
                negated = self.expr(atom)
                self.take("op", ")")
                return lambda a, b: not negated(a, b)
            return atom()
        finally:
            self.depth -= 1
