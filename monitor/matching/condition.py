"""Rule conditions: the AST, checks over it, and `parse_condition` (see grammar.py).

Parsing only builds values; resolving names against term lists and compiling for speed happen
in the loader and the compiler. Every node keeps the offset of its text inside the condition
string so errors can point at a column in the rule file.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal, get_args

# The fields a term can be searched in; their order numbers the field codes (compile.py).
# `lead` and `front` are derived from the title and summary (prominence.py).
FieldName = Literal[
    "title", "summary", "lead", "front", "content", "author", "categories", "domain", "feed", "tags"
]
FIELDS: tuple[FieldName, ...] = get_args(FieldName)
MAX_DISTANCE = 50


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


def parse_condition(text: str) -> Condition:
    """Parse a condition string; raise ConditionSyntaxError pointing at the offending offset.

    The grammar (lark) is imported on first use, by the loader: parse workers, which receive
    compiled rules, never load it.
    """
    from monitor.matching.grammar import parse

    return parse(text)


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
