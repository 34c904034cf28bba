"""Rule conditions: the AST, the parser (condition.lark, LALR) and checks over the AST.

Parsing only builds values; resolving names against term lists and compiling for speed happen
in the loader and the compiler. Every node keeps the offset of its text inside the condition
string so errors can point at a column in the rule file.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from lark import (
    Lark,
    Token,
    Transformer,
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
    v_args,
)

FIELDS = ("title", "summary", "content", "author", "categories", "domain", "feed", "tags")
MAX_DISTANCE = 50
_KEYWORDS = {"and", "or", "not", "of", "any", "all"}


@dataclass(frozen=True, slots=True)
class Terms:
    """A leaf: a term list by name or an inline phrase, in one field or the rule's fields."""

    name: str | None  # list name; None for an inline phrase
    phrase: str | None = None
    scope: str | None = None  # one field; None means the rule's `fields`
    every: bool = False  # `all of name`: every term of the list must be present
    offset: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Not:
    item: Condition


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class AtLeast:
    count: int
    items: tuple[Condition, ...]
    offset: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Near:
    """A term of `left` within `distance` words of a term of `right` (after it when `ordered`)."""

    left: Terms
    right: Terms
    distance: int
    ordered: bool
    offset: int = field(default=0, compare=False)


Condition = Terms | Not | And | Or | AtLeast | Near


class ConditionSyntaxError(ValueError):
    """A condition that does not parse; `offset` is 0-based inside the condition string."""

    def __init__(self, message: str, offset: int, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset
        self.hint = hint


_PARSER = Lark(
    (Path(__file__).with_name("condition.lark")).read_text(encoding="utf-8"),
    parser="lalr",
    propagate_positions=True,
    maybe_placeholders=False,
)


@v_args(inline=True)
class _Build(Transformer[Token, Condition]):
    def operand(self, token: Token) -> Terms:
        offset = token.start_pos or 0
        if token.type == "PHRASE":
            return Terms(None, phrase=str(token)[1:-1], offset=offset)
        return Terms(str(token), offset=offset)

    def or_expr(self, *items: Condition) -> Condition:
        return Or(items)

    def and_expr(self, *items: Condition) -> Condition:
        return And(items)

    def negation(self, item: Condition) -> Condition:
        return Not(item)

    def any_of(self, name: Token) -> Condition:
        return Terms(str(name), offset=name.start_pos or 0)

    def all_of(self, name: Token) -> Condition:
        return Terms(str(name), every=True, offset=name.start_pos or 0)

    def at_least(self, count: Token, *items: Condition) -> Condition:
        number = int(count)
        if not 1 <= number <= len(items):
            raise ConditionSyntaxError(
                f"'{number} of' needs between 1 and {len(items)} (the number of items listed)",
                count.start_pos or 0,
            )
        return AtLeast(number, items, offset=count.start_pos or 0)

    def proximity(self, left: Terms, operator: Token, right: Terms) -> Condition:
        kind, _, number = str(operator).partition("/")
        distance = int(number)
        if not 1 <= distance <= MAX_DISTANCE:
            raise ConditionSyntaxError(
                f"{kind} distance must be between 1 and {MAX_DISTANCE} (got {distance})",
                operator.start_pos or 0,
            )
        return Near(left, right, distance, kind == "BEFORE", offset=left.offset)

    def scoped(self, name: Token, item: Condition) -> Condition:
        if str(name) not in FIELDS:
            raise ConditionSyntaxError(
                f"unknown field '{name}' (fields: {', '.join(FIELDS)})", name.start_pos or 0
            )
        return _scope(item, str(name))


def _scope(node: Condition, scope: str) -> Condition:
    """Push a field scope down to the leaves that have none yet (inner scopes win)."""
    match node:
        case Terms():
            return (
                node
                if node.scope
                else Terms(node.name, node.phrase, scope, node.every, node.offset)
            )
        case Not(item):
            return Not(_scope(item, scope))
        case And(items):
            return And(tuple(_scope(item, scope) for item in items))
        case Or(items):
            return Or(tuple(_scope(item, scope) for item in items))
        case AtLeast(count, items, offset):
            return AtLeast(count, tuple(_scope(item, scope) for item in items), offset)
        case Near(left, right, distance, ordered, offset):
            return Near(
                _scope_terms(left, scope), _scope_terms(right, scope), distance, ordered, offset
            )


def _scope_terms(node: Terms, scope: str) -> Terms:
    result = _scope(node, scope)
    assert isinstance(result, Terms)
    return result


def parse_condition(text: str) -> Condition:
    """Parse a condition string; raise ConditionSyntaxError pointing at the offending offset."""
    if not text.strip():
        raise ConditionSyntaxError("condition is empty", 0, "write list names joined by and/or")
    try:
        tree = _PARSER.parse(text)
    except ConditionSyntaxError:
        raise
    except UnexpectedInput as exc:
        raise _syntax_error(text, exc) from None
    try:
        result: Condition = _Build().transform(tree)
    except Exception as exc:  # lark wraps transformer errors in VisitError
        original = getattr(exc, "orig_exc", exc)
        if isinstance(original, ConditionSyntaxError):
            raise original from None
        raise
    return result


def _syntax_error(text: str, exc: UnexpectedInput) -> ConditionSyntaxError:
    offset = exc.pos_in_stream if exc.pos_in_stream is not None else len(text)
    at_end = isinstance(exc, UnexpectedToken) and exc.token.type == "$END"
    if at_end or isinstance(exc, UnexpectedEOF) or offset >= len(text):
        return ConditionSyntaxError(
            "condition ends too early", len(text), "check for a missing operand or ')'"
        )
    word = text[offset:].split(maxsplit=1)[0] if text[offset:].strip() else text[offset]
    hint = None
    if word.lower() in {"and", "or", "not"} and word != word.lower():
        hint = "keywords are lower-case: and, or, not"
    elif isinstance(exc, UnexpectedCharacters) and text[offset] == "'":
        hint = "quote phrases with double quotes"
    elif isinstance(exc, UnexpectedCharacters) and text[offset].isupper():
        hint = "list names are lower-case; NEAR/n and BEFORE/n need a number"
    elif isinstance(exc, UnexpectedToken) and word in _KEYWORDS:
        hint = f"'{word}' is a keyword and cannot be a list name"
    return ConditionSyntaxError(f"condition syntax error at '{word}'", offset, hint)


def leaves(node: Condition) -> Iterator[Terms]:
    """Every list or phrase leaf of a condition, NEAR operands included."""
    match node:
        case Terms():
            yield node
        case Not(item):
            yield from leaves(item)
        case And(items) | Or(items) | AtLeast(_, items):
            for item in items:
                yield from leaves(item)
        case Near(left, right):
            yield left
            yield right


def holds(node: Condition, truth: Callable[[Terms | Near], bool]) -> bool:
    """Evaluate a condition given the truth of each leaf (NEAR counts as one leaf)."""
    match node:
        case Terms() | Near():
            return truth(node)
        case Not(item):
            return not holds(item, truth)
        case And(items):
            return all(holds(item, truth) for item in items)
        case Or(items):
            return any(holds(item, truth) for item in items)
        case AtLeast(count, items):
            return sum(holds(item, truth) for item in items) >= count


def _atoms(node: Condition) -> Iterator[Terms | Near]:
    match node:
        case Terms() | Near():
            yield node
        case Not(item):
            yield from _atoms(item)
        case And(items) | Or(items) | AtLeast(_, items):
            for item in items:
                yield from _atoms(item)


def _has_not(node: Condition) -> bool:
    match node:
        case Not():
            return True
        case And(items) | Or(items) | AtLeast(_, items):
            return any(_has_not(item) for item in items)
        case _:
            return False


MAX_ATOMS_CHECKED = 10


def satisfiable(node: Condition) -> bool:
    """False when no assignment of its leaves makes the condition true (`a and not a`).

    Conditions without `not` are monotone, so one check suffices; others are checked
    exhaustively up to MAX_ATOMS_CHECKED distinct leaves and assumed satisfiable beyond.
    """
    if not _has_not(node):
        return holds(node, lambda _: True)
    atoms = list(dict.fromkeys(_atoms(node)))
    if len(atoms) > MAX_ATOMS_CHECKED:
        return True
    for values in itertools.product((False, True), repeat=len(atoms)):
        truth = dict(zip(atoms, values, strict=True))
        if holds(node, truth.__getitem__):
            return True
    return False


def holds_without_terms(node: Condition) -> bool:
    """True when the condition holds for an article in which no term is found (`not x`)."""
    return holds(node, lambda _: False)


Mode = Literal["all", "any", "none"]
