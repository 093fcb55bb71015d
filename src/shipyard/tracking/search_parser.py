"""The lexer and recursive-descent parser behind ``parse_filter`` and ``parse_order_by``.

Tokens are read one at a time, as the parser asks for them, so the first problem in the text is
the one reported: a ``FilterSyntaxError`` with a caret under its position. Each identifier,
operator and value is checked against the declared constraints in ``search`` as it is read, and
the limits there (``MAX_DEPTH``, ``MAX_COMPARISONS``, ``MAX_VALUES``) are counted here; the result
is the AST defined in ``search``. Callers use ``parse_filter`` and ``parse_order_by`` from
``shipyard.tracking.search``, not this module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from shipyard.tracking.search import (
    ATTRIBUTE_ALIASES,
    ATTRIBUTES,
    MAX_COMPARISONS,
    MAX_DEPTH,
    MAX_VALUES,
    NULL_OPS,
    PREFIXES,
    And,
    Comparison,
    Entity,
    Expr,
    Filter,
    FilterSyntaxError,
    Or,
    OrderTerm,
    Value,
    _is_key_char,
    _is_numeric,
    _op_problem,
    _string_problem,
    _text_problem,
    _value_problem,
)

# -- the lexer ----------------------------------------------------------------------------------

_WORD_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER_RE = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_OPERATORS = ("<=", ">=", "!=", "<>", "=", "<", ">")


@dataclass(frozen=True, slots=True)
class _Token:
    kind: Literal["ident", "word", "string", "number", "op", "(", ")", ",", "end"]
    pos: int
    end: int
    value: str | int | float = ""
    prefix: str = ""  # of an identifier
    key_pos: int = 0


class _Parser:
    """Recursive descent over tokens read one at a time, so the first problem is the one
    reported."""

    def __init__(self, text: str, *, bare_attributes: bool = False) -> None:
        self.text = text
        # MLflow reads a bare attribute name (``status``, ``start_time``) as ``attributes.``.
        self.bare_attributes = bare_attributes
        self.pos = 0
        self.depth = 0
        self.comparisons = 0
        self.values = 0
        self._token: _Token | None = None

    def error(self, reason: str, position: int) -> FilterSyntaxError:
        return FilterSyntaxError(reason, text=self.text, position=position)

    def peek(self) -> _Token:
        if self._token is None:
            self._token = self._lex(self.pos)
        return self._token

    def take(self) -> _Token:
        token = self.peek()
        self._token = None
        self.pos = token.end
        return token

    def source(self, token: _Token) -> str:
        return self.text[token.pos : token.end]

    def shown(self, token: _Token) -> str:
        return "the end of the text" if token.kind == "end" else repr(self.source(token))

    def is_word(self, token: _Token, *words: str) -> bool:
        return token.kind == "word" and token.value in words

    def _lex(self, i: int) -> _Token:
        text, n = self.text, len(self.text)
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            return _Token("end", n, n)
        c = text[i]
        if c in "(),":
            return _Token(c, i, i + 1)  # type: ignore[arg-type]
        if c in "'\"":
            value, end = self._quoted(i, "string")
            return _Token("string", i, end, value)
        for op in _OPERATORS:
            if text.startswith(op, i):
                return _Token("op", i, i + len(op), "!=" if op == "<>" else op)
        number = _NUMBER_RE.match(text, i)
        if number:
            return _Token("number", i, number.end(), self._number(number.group(), i))
        word = _WORD_RE.match(text, i)
        if word is None:
            hint = "; did you mean '!='?" if c == "!" else ""
            raise self.error(f"unexpected character {c!r}{hint}", i)
        j = word.end()
        if j >= n or text[j] != ".":
            return _Token("word", i, j, word.group().upper())
        k = j + 1
        if k < n and text[k] in '`"':
            key, end = self._quoted(k, "key")
        else:
            end = k
            while end < n and _is_key_char(text[end]):
                end += 1
            key = text[k:end]
        if not key:
            raise self.error(f"empty key after {text[i : j + 1]!r}", k)
        return _Token("ident", i, end, key, prefix=word.group(), key_pos=k)

    def _quoted(self, i: int, what: str) -> tuple[str, int]:
        """A quoted string or key from ``i``; the quote is escaped by doubling it."""
        quote, text, parts, j = self.text[i], self.text, [], i + 1
        while True:
            k = text.find(quote, j)
            if k < 0:
                raise self.error(f"unterminated {what}: no closing {quote} for this one", i)
            parts.append(text[j:k])
            if text.startswith(quote * 2, k):
                parts.append(quote)
                j = k + 2
            else:
                return "".join(parts), k + 1

    def _number(self, literal_text: str, i: int) -> int | float:
        if any(c in literal_text for c in ".eE"):
            return float(literal_text)
        if len(literal_text) > 400:
            raise self.error("number too long", i)
        return int(literal_text)

    # -- filters --

    def filter(self) -> Filter:
        if self.peek().kind == "end":
            return Filter()
        where = self.disjunction()
        token = self.peek()
        if token.kind == ")":
            raise self.error("unmatched ')'", token.pos)
        if token.kind != "end":
            raise self.error(f"expected 'and', 'or' or the end, got {self.shown(token)}", token.pos)
        return Filter(where)

    def disjunction(self) -> Expr:
        terms = [self.conjunction()]
        while self.is_word(self.peek(), "OR"):
            self.take()
            terms.append(self.conjunction())
        return terms[0] if len(terms) == 1 else Or(tuple(terms))

    def conjunction(self) -> Expr:
        terms = [self.primary()]
        while self.is_word(self.peek(), "AND"):
            self.take()
            terms.append(self.primary())
        return terms[0] if len(terms) == 1 else And(tuple(terms))

    def primary(self) -> Expr:
        token = self.peek()
        if token.kind == "(":
            if self.depth >= MAX_DEPTH:
                raise self.error(f"parentheses nested more than {MAX_DEPTH} deep", token.pos)
            self.take()
            self.depth += 1
            inner = self.disjunction()
            close = self.peek()
            if close.kind != ")":
                raise self.error(
                    f"expected ')' to close the '(' at position {token.pos}, "
                    f"got {self.shown(close)}",
                    close.pos,
                )
            self.take()
            self.depth -= 1
            return inner
        return self.comparison()

    def identifier(self, what: str) -> tuple[Entity, str, _Token]:
        token = self.take()
        word = str(token.value).lower()
        if token.kind == "word" and self.bare_attributes:
            key = ATTRIBUTE_ALIASES.get(word, word)
            if key in ATTRIBUTES:
                return "attribute", key, token
        if token.kind != "ident":
            hint = ""
            if token.kind == "word" and (word in ATTRIBUTES or word in ATTRIBUTE_ALIASES):
                hint = f"; did you mean attributes.{ATTRIBUTE_ALIASES.get(word, word)}?"
            raise self.error(f"expected {what}, got {self.shown(token)}{hint}", token.pos)
        entity = PREFIXES.get(token.prefix.lower())
        if entity is None:
            raise self.error(
                f"unknown entity {token.prefix!r} in {self.source(token)!r}; use metrics., "
                "params., tags. or attributes.",
                token.pos,
            )
        key = str(token.value)
        if entity == "attribute":
            key = ATTRIBUTE_ALIASES.get(key.lower(), key.lower())
            if key not in ATTRIBUTES:
                raise self.error(
                    f"unknown attribute {token.value!r}; use one of {', '.join(ATTRIBUTES)}",
                    token.key_pos,
                )
        problem = _text_problem(key)
        if problem:
            raise self.error(problem, token.key_pos)
        return entity, key, token

    def comparison(self) -> Comparison:
        start = self.peek().pos
        entity, key, ident = self.identifier("a comparison such as metrics.auc > 0.8")
        self.comparisons += 1
        if self.comparisons > MAX_COMPARISONS:
            raise self.error(f"a filter can hold at most {MAX_COMPARISONS} comparisons", start)
        token = self.take()
        op_pos = token.pos
        if token.kind == "op" or self.is_word(token, "LIKE", "ILIKE", "IN"):
            op = str(token.value)
        elif self.is_word(token, "NOT"):
            after = self.take()
            if not self.is_word(after, "IN"):
                raise self.error(f"expected IN after NOT, got {self.shown(after)}", after.pos)
            op = "NOT IN"
        elif self.is_word(token, "IS"):
            after = self.take()
            op = "IS NULL"
            if self.is_word(after, "NOT"):
                op, after = "IS NOT NULL", self.take()
            if not self.is_word(after, "NULL"):
                raise self.error(f"expected NULL, got {self.shown(after)}", after.pos)
        else:
            raise self.error(
                f"expected a comparator after {self.source(ident)!r}, got {self.shown(token)}",
                token.pos,
            )
        problem = _op_problem(entity, key, op)
        if problem:
            raise self.error(problem, op_pos)
        value: Value = None
        if op in ("IN", "NOT IN"):
            value = self.string_list(entity, key, op)
        elif op not in NULL_OPS:
            token = self.take()
            if token.kind not in ("string", "number"):
                raise self.error(
                    f"expected a number or a quoted string after {op}, got {self.shown(token)}",
                    token.pos,
                )
            self.count_values(1, token.pos)
            value = token.value
            # A number where a string is due is shown as written: params.lr = '0.10', not 0.1.
            problem = _value_problem(entity, key, op, value)
            if problem and token.kind == "number" and not _is_numeric(entity, key):
                problem = _string_problem(entity, key, op, value, written=self.source(token))
            if problem:
                raise self.error(problem, token.pos)
        return Comparison(entity, key, op, value)

    def count_values(self, n: int, position: int) -> None:
        self.values += n
        if self.values > MAX_VALUES:
            raise self.error(f"a filter can hold at most {MAX_VALUES} values", position)

    def string_list(self, entity: Entity, key: str, op: str) -> tuple[str, ...]:
        token = self.take()
        if token.kind != "(":
            raise self.error(f"expected '(' after {op}, got {self.shown(token)}", token.pos)
        items: list[str] = []
        while True:
            token = self.take()
            if token.kind == ")" and not items:
                raise self.error(f"{op} needs at least one value", token.pos)
            if token.kind != "string":
                raise self.error(f"expected a quoted string, got {self.shown(token)}", token.pos)
            self.count_values(1, token.pos)
            problem = _string_problem(entity, key, op, token.value)
            if problem:
                raise self.error(problem, token.pos)
            items.append(str(token.value))
            token = self.take()
            if token.kind == ")":
                return tuple(items)
            if token.kind != ",":
                raise self.error(f"expected ',' or ')', got {self.shown(token)}", token.pos)

    # -- order by --

    def order_terms(self, single: bool) -> list[OrderTerm]:
        terms: list[OrderTerm] = []
        while True:
            entity, key, ident = self.identifier("an order-by term such as metrics.auc DESC")
            token = self.take()
            descending = False
            if self.is_word(token, "ASC", "DESC"):
                descending = token.value == "DESC"
                token = self.take()
            terms.append(OrderTerm(entity, key, descending))
            if token.kind == "end":
                return terms
            expected = "ASC, DESC or the end" if single else "ASC, DESC, ',' or the end"
            if token.kind != "," or single:
                raise self.error(
                    f"expected {expected} after {self.source(ident)!r}, got {self.shown(token)}",
                    token.pos,
                )
