"""The run filter language, compatible with MLflow's and a little wider.

``metrics.acc > 0.9 AND params.model = 'rf' AND tags.team != 'x'``
``attributes.status IN ('FINISHED', 'KILLED') OR metrics.`val loss` <= 0.2``

Parsed into a small tree (:class:`Comparison`, :class:`And`, :class:`Or`) that
``store/search.py`` turns into SQLAlchemy expressions: user text never becomes
SQL text. Any malformed input raises :class:`InvalidInput` naming the token
and its position.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from keel.errors import InvalidInput

PREFIXES = {
    "metrics": "metric", "metric": "metric",
    "params": "param", "param": "param", "parameters": "param",
    "tags": "tag", "tag": "tag",
    "attributes": "attribute", "attribute": "attribute", "attr": "attribute", "run": "attribute",
}
# Attribute name -> kind of value it holds.
ATTRIBUTES = {
    "status": "str", "run_name": "str", "name": "str", "run_id": "str", "id": "str",
    "user": "str", "experiment": "str", "parent_run_id": "str",
    "start_time": "num", "end_time": "num",
}
NUMERIC_OPS = ("=", "!=", "<", "<=", ">", ">=", "IN", "NOT IN")
# Bounds that keep a filter within what databases compile: SQLite refuses an
# expression tree deeper than 1,000 (an OR of ~2,000 comparisons), and Python
# recursion ends near 1,000 nested parentheses. Long value lists belong in IN.
MAX_COMPARISONS = 200
MAX_DEPTH = 32
STRING_OPS = ("=", "!=", "LIKE", "ILIKE", "NOT LIKE", "NOT ILIKE", "IN", "NOT IN")


@dataclass(frozen=True)
class Comparison:
    """``kind.key op value``; value is a str, a float, or a tuple of either for IN."""

    kind: str
    key: str
    op: str
    value: str | float | tuple[str | float, ...]


@dataclass(frozen=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Node, ...]


Node = Comparison | And | Or


@dataclass(frozen=True)
class Token:
    kind: str  # key | op | word | number | string | lparen | rparen | comma | end
    text: str
    value: object
    pos: int


_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<op><=|>=|!=|==|=|<|>)
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<comma>,)
  | (?P<string>'(?:[^']|'')*'|"(?:[^"]|"")*")
  | (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![\w.]))
  | (?P<key>[A-Za-z_]+\.(?:`[^`]+`|"[^"]+"|[\w\-./:]+))
  | (?P<word>[A-Za-z_][\w]*)
""", re.VERBOSE)


def tokenize(text: str) -> list[Token]:
    """Split a filter into tokens; raise on any character that starts none."""
    tokens, pos = [], 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise _error(text, pos, f"unexpected character {text[pos]!r}")
        kind = match.lastgroup or ""
        raw = match.group()
        if kind != "space":
            tokens.append(Token(kind, raw, _token_value(kind, raw), pos))
        pos = match.end()
    tokens.append(Token("end", "", None, len(text)))
    return tokens


def _token_value(kind: str, raw: str) -> object:
    if kind == "string":
        quote = raw[0]
        return raw[1:-1].replace(quote * 2, quote)
    if kind == "number":
        return float(raw)
    if kind == "word":
        return raw.upper()
    return raw


def parse(text: str) -> Node | None:
    """Parse a filter string; ``None`` for an empty filter.

    >>> parse("metrics.acc > 0.9")
    Comparison(kind='metric', key='acc', op='>', value=0.9)
    """
    if not isinstance(text, str):
        raise InvalidInput(f"a filter must be a string, got {type(text).__name__}")
    if not text.strip():
        return None
    return _Parser(text).parse()


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        self.depth = 0
        self.comparisons = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def fail(self, message: str, tok: Token | None = None) -> InvalidInput:
        tok = tok or self.tok
        shown = repr(tok.text) if tok.kind != "end" else "the end of the filter"
        return _error(self.text, tok.pos, f"{message}, got {shown}")

    def parse(self) -> Node:
        node = self.parse_or()
        if self.tok.kind != "end":
            raise self.fail("expected AND, OR or the end of the filter")
        return node

    def parse_or(self) -> Node:
        items = [self.parse_and()]
        while self.tok.kind == "word" and self.tok.value == "OR":
            self.advance()
            items.append(self.parse_and())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def parse_and(self) -> Node:
        items = [self.parse_atom()]
        while self.tok.kind == "word" and self.tok.value == "AND":
            self.advance()
            items.append(self.parse_atom())
        return items[0] if len(items) == 1 else And(tuple(items))

    def parse_atom(self) -> Node:
        if self.tok.kind == "lparen":
            if self.depth >= MAX_DEPTH:
                raise InvalidInput(f"the filter nests parentheses more than {MAX_DEPTH} deep",
                                   hint="flatten it: AND and OR chain without parentheses")
            self.advance()
            self.depth += 1
            node = self.parse_or()
            self.depth -= 1
            if self.tok.kind != "rparen":
                raise self.fail("expected ')'")
            self.advance()
            return node
        return self.parse_comparison()

    def parse_comparison(self) -> Comparison:
        self.comparisons += 1
        if self.comparisons > MAX_COMPARISONS:
            raise InvalidInput(f"the filter has more than {MAX_COMPARISONS} comparisons",
                               hint="compare one key with many values using IN, e.g. "
                                    "params.model IN ('rf', 'gbm', 'lr')")
        key_tok = self.tok
        if key_tok.kind != "key":
            raise self.fail("expected a key such as metrics.acc, params.lr, tags.team "
                            "or attributes.status")
        self.advance()
        prefix, _, name = key_tok.text.partition(".")
        kind = PREFIXES.get(prefix.lower())
        if kind is None:
            raise self.fail(f"unknown key type {prefix!r} (use metrics, params, tags or "
                            "attributes)", key_tok)
        if name[:1] in "`\"":
            name = name[1:-1]
        if kind == "attribute" and name not in ATTRIBUTES:
            raise self.fail("unknown attribute (known: " + ", ".join(ATTRIBUTES) + ")", key_tok)
        op = self.parse_op()
        numeric = kind == "metric" or (kind == "attribute" and ATTRIBUTES[name] == "num")
        allowed = NUMERIC_OPS if numeric else STRING_OPS
        if op not in allowed:
            raise self.fail(f"operator {op} does not apply to {prefix}.{name} "
                            f"(allowed: {', '.join(allowed)})", self.tokens[self.i - 1])
        value = self.parse_values(numeric) if op.endswith("IN") else self.parse_value(numeric)
        return Comparison(kind, name, op, value)

    def parse_op(self) -> str:
        tok = self.advance()
        if tok.kind == "op":
            return "=" if tok.text == "==" else tok.text
        if tok.kind == "word" and tok.value in ("LIKE", "ILIKE", "IN"):
            return str(tok.value)
        if tok.kind == "word" and tok.value == "NOT":
            nxt = self.advance()
            if nxt.kind == "word" and nxt.value in ("LIKE", "ILIKE", "IN"):
                return f"NOT {nxt.value}"
            raise self.fail("expected LIKE, ILIKE or IN after NOT", nxt)
        raise self.fail("expected a comparison operator (=, !=, <, <=, >, >=, LIKE, ILIKE, IN)",
                        tok)

    def parse_value(self, numeric: bool) -> str | float:
        tok = self.advance()
        if numeric and tok.kind == "number":
            return float(str(tok.value))
        if not numeric and tok.kind == "string":
            return str(tok.value)
        expected = "a number" if numeric else "a quoted string"
        raise self.fail(f"expected {expected}", tok)

    def parse_values(self, numeric: bool) -> tuple[str | float, ...]:
        if self.advance().kind != "lparen":
            raise self.fail("expected '(' to start the IN list", self.tokens[self.i - 1])
        values = [self.parse_value(numeric)]
        while self.tok.kind == "comma":
            self.advance()
            values.append(self.parse_value(numeric))
        if self.advance().kind != "rparen":
            raise self.fail("expected ',' or ')' in the IN list", self.tokens[self.i - 1])
        return tuple(values)


def _error(text: str, pos: int, message: str) -> InvalidInput:
    return InvalidInput(f"bad filter at position {pos}: {message}",
                        hint=f"in {text!r}; example: metrics.acc > 0.9 AND params.model = 'rf'")


@dataclass(frozen=True)
class OrderBy:
    """One ``order_by`` clause: ``metrics.loss ASC``."""

    kind: str
    key: str
    ascending: bool


def parse_order_by(clause: str) -> OrderBy:
    """Parse ``"metrics.loss ASC"`` / ``"attributes.start_time DESC"`` / ``"params.lr"``."""
    parts = clause.strip().rsplit(None, 1)
    ascending = True
    if len(parts) == 2 and parts[1].upper() in ("ASC", "DESC"):
        ascending = parts[1].upper() == "ASC"
        key_text = parts[0]
    else:
        key_text = clause.strip()
    tokens = tokenize(key_text)
    if len(tokens) != 2 or tokens[0].kind != "key":
        raise InvalidInput(f"bad order_by clause {clause!r}",
                           hint="use '<metrics|params|tags|attributes>.<key> [ASC|DESC]'")
    prefix, _, name = tokens[0].text.partition(".")
    kind = PREFIXES.get(prefix.lower())
    if kind is None or (kind == "attribute" and name not in ATTRIBUTES):
        raise InvalidInput(f"bad order_by key {key_text!r}",
                           hint="use metrics.*, params.*, tags.* or attributes."
                           + "|".join(ATTRIBUTES))
    if name[:1] in "`\"":
        name = name[1:-1]
    return OrderBy(kind, name, ascending)
