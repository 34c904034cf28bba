"""The shapes the compiler, the evaluators and the scan agree on: field positions, (term,
field) codes, and the plain tuples a scan yields (hits, automaton hits, evidence).

Hits stay plain tuples, unpacked or read through the constants below, not NamedTuples: the
scan makes them in its hot loops, where building and reading a NamedTuple costs more (see the
CHANGELOG). Imports nothing of the engine but `condition.FIELDS`, so every module can read it.
"""

from __future__ import annotations

from typing import Final

from monitor.matching.condition import FIELDS
from monitor.model import TermHit

# Field positions: an article's texts are a tuple in FIELDS order (match.field_texts).
TITLE = FIELDS.index("title")
SUMMARY = FIELDS.index("summary")
LEAD = FIELDS.index("lead")
FRONT = FIELDS.index("front")
DOMAIN = FIELDS.index("domain")
FIELD_BITS: dict[str, int] = {name: 1 << index for index, name in enumerate(FIELDS)}
FIELD_MASKS = tuple(1 << index for index in range(len(FIELDS)))

# A (term, field) code is the term id shifted left, or-ed with the field position.
FIELD_CODE_BITS = 4
FIELD_CODE_MASK = (1 << FIELD_CODE_BITS) - 1
assert len(FIELDS) <= 1 << FIELD_CODE_BITS


def field_code(term: int, field: int) -> int:
    """The code of `term` found in the field at position `field`."""
    return term << FIELD_CODE_BITS | field


# Nodes keep their codes in tuples, shared between rules: a frozenset of six codes takes
# seven times the memory of the tuple, and `present.isdisjoint(codes)` is as fast either way.
# `needs` and `requires` run once per rule at compile time and return frozensets.
Codes = tuple[int, ...]

# An automaton hit: (key number, start, end) in the field's padded text, in characters.
Found = tuple[int, int, int]
FOUND_KEY: Final = 0
FOUND_START: Final = 1
FOUND_END: Final = 2

# A hit of a term in a field: (field, folded start, folded end, original start or -1,
# original end); -1 means "map the folded span back when asked" (phrase hits). Readers
# unpack it, `field, start, end, first, last = hit`, or read its field by HIT_FIELD.
Hit = tuple[int, int, int, int, int]
HIT_FIELD: Final = 0
HIT_START: Final = 1
HIT_END: Final = 2

# One hit as evidence for an explanation: (place, TermHit), where place is (field, folded
# start, term id): explanations sort by place and keep one TermHit per place.
Place = tuple[int, int, int]
Evidence = tuple[Place, TermHit]
EVIDENCE_PLACE: Final = 0
EVIDENCE_HIT: Final = 1
