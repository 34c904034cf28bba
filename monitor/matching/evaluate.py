"""Condition evaluators: each rule's condition as a small tree of nodes over (term, field) codes.

`holds` decides from the set of codes found, reading positions from the scan only for NEAR;
`collect` gathers the evidence that explains a match; `needs` and `requires`, asked once per
rule by the compiler, give the codes one of which must be found for the node to hold (the
rule's trigger and its further requirements). Nodes keep their codes in shared tuples (see
layout.Codes). They read a scan through `ScanView` and never import the matcher.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Protocol

from monitor.matching.layout import (
    FIELD_CODE_BITS,
    HIT_END,
    HIT_FIELD,
    HIT_START,
    Codes,
    Evidence,
    Hit,
)

MAX_REQUIREMENTS = 3  # requirements per rule checked before its condition


class ScanView(Protocol):
    """What nodes read of one article's scan (match.Scan)."""

    @property
    def present(self) -> set[int]:
        """The (term, field) codes found."""
        ...

    def code_hits(self, code: int) -> list[Hit]: ...

    def evidence(self, code: int) -> list[Evidence]: ...

    def entry(self, term_id: int, hit: Hit) -> Evidence: ...

    def words(self, hit: Hit) -> tuple[int, int]: ...


class Node:
    """One node of a compiled condition (see the module docstring for its four questions)."""

    __slots__ = ()

    def holds(self, present: set[int], scan: ScanView) -> bool:
        raise NotImplementedError

    def collect(self, scan: ScanView, out: list[Evidence]) -> None:
        raise NotImplementedError

    def needs(self) -> frozenset[int] | None:
        raise NotImplementedError

    def requires(self) -> tuple[frozenset[int], ...]:
        """Sets of (term, field) codes each of which must have one found for the node to hold."""
        raise NotImplementedError


class AnyOfNode(Node):
    """True when a term is found in one of its fields; `or` of such leaves merges into one."""

    __slots__ = ("codes",)

    def __init__(self, codes: Codes) -> None:
        self.codes = codes  # every (term, field) code that makes the node true

    def holds(self, present: set[int], scan: ScanView) -> bool:
        return not present.isdisjoint(self.codes)

    def collect(self, scan: ScanView, out: list[Evidence]) -> None:
        """The evidence of its terms in their fields (any order: explanations sort it)."""
        evidence = scan.evidence
        for code in scan.present.intersection(self.codes):  # C speed; usually one or two
            out += evidence(code)

    def needs(self) -> frozenset[int] | None:
        return frozenset(self.codes)

    def requires(self) -> tuple[frozenset[int], ...]:
        return (frozenset(self.codes),)


def _leaf_hits(leaf: AnyOfNode, scan: ScanView) -> list[tuple[int, Hit]]:
    """The hits of the terms of `leaf` in their fields, as (term, hit)."""
    return [
        (code >> FIELD_CODE_BITS, hit)
        for code in scan.present.intersection(leaf.codes)
        for hit in scan.code_hits(code)
    ]


class AllOfNode(AnyOfNode):
    """`all of list`: each term found in one of its fields."""

    __slots__ = ("each",)

    def __init__(self, codes: Codes, each: tuple[Codes, ...]) -> None:
        super().__init__(codes)
        self.each = each  # the codes of each term

    def holds(self, present: set[int], scan: ScanView) -> bool:
        for codes in self.each:  # noqa: SIM110 (a loop: all() over a generator is slower)
            if present.isdisjoint(codes):
                return False
        return True

    def needs(self) -> frozenset[int] | None:
        return frozenset(self.each[0]) if self.each else None

    def requires(self) -> tuple[frozenset[int], ...]:
        return tuple(frozenset(codes) for codes in self.each)


class NotNode(Node):
    __slots__ = ("item",)

    def __init__(self, item: Node) -> None:
        self.item = item

    def holds(self, present: set[int], scan: ScanView) -> bool:
        return not self.item.holds(present, scan)

    def collect(self, scan: ScanView, out: list[Evidence]) -> None:
        return  # absent terms explain nothing

    def needs(self) -> frozenset[int] | None:
        return None

    def requires(self) -> tuple[frozenset[int], ...]:
        return ()


class AndNode(Node):
    __slots__ = ("items",)

    def __init__(self, items: tuple[Node, ...]) -> None:
        self.items = items

    def holds(self, present: set[int], scan: ScanView) -> bool:
        for item in self.items:  # noqa: SIM110 (as above)
            if not item.holds(present, scan):
                return False
        return True

    def collect(self, scan: ScanView, out: list[Evidence]) -> None:
        for item in self.items:
            item.collect(scan, out)

    def needs(self) -> frozenset[int] | None:
        known = [needed for item in self.items if (needed := item.needs()) is not None]
        return min(known, key=len) if known else None

    def requires(self) -> tuple[frozenset[int], ...]:
        return tuple(required for item in self.items for required in item.requires())


class AndOfLeavesNode(AndNode):
    """`a and b and not c ...` over plain leaves, the commonest condition: no call per leaf."""

    __slots__ = ("codes", "negated")

    def __init__(self, items: tuple[Node, ...]) -> None:
        super().__init__(items)
        self.codes = tuple(item.codes for item in items if isinstance(item, AnyOfNode))
        self.negated = tuple(
            item.item.codes
            for item in items
            if isinstance(item, NotNode) and isinstance(item.item, AnyOfNode)
        )

    @staticmethod
    def accepts(children: tuple[Node, ...]) -> bool:
        """Whether `children` are all plain leaves or negated plain leaves."""
        return all(
            type(child) is AnyOfNode or (type(child) is NotNode and type(child.item) is AnyOfNode)
            for child in children
        )

    def holds(self, present: set[int], scan: ScanView) -> bool:
        for codes in self.codes:
            if present.isdisjoint(codes):
                return False
        for codes in self.negated:  # noqa: SIM110 (as above)
            if not present.isdisjoint(codes):
                return False
        return True

    def collect(self, scan: ScanView, out: list[Evidence]) -> None:
        present, evidence = scan.present, scan.evidence
        for codes in self.codes:  # as AnyOfNode.collect for each leaf, without a call per leaf
            for code in present.intersection(codes):
                out += evidence(code)


class OrNode(AndNode):
    __slots__ = ()

    def holds(self, present: set[int], scan: ScanView) -> bool:
        for item in self.items:  # noqa: SIM110 (as above)
            if item.holds(present, scan):
                return True
        return False

    def collect(self, scan: ScanView, out: list[Evidence]) -> None:
        for item in self.items:
            if item.holds(scan.present, scan):
                item.collect(scan, out)

    def needs(self) -> frozenset[int] | None:
        return _union_of_smallest([item.needs() for item in self.items], len(self.items))

    def requires(self) -> tuple[frozenset[int], ...]:
        # Whichever item holds, one of its requirements is met: every union that takes one
        # requirement from each item is a requirement (the first few of them).
        each = [item.requires()[:MAX_REQUIREMENTS] for item in self.items]
        choices = itertools.islice(itertools.product(*each), MAX_REQUIREMENTS * 2)
        return tuple(frozenset().union(*choice) for choice in choices)


class AtLeastNode(OrNode):
    __slots__ = ("count",)

    def __init__(self, count: int, items: tuple[Node, ...]) -> None:
        super().__init__(items)
        self.count = count

    def holds(self, present: set[int], scan: ScanView) -> bool:
        found = 0
        for item in self.items:
            found += item.holds(present, scan)
            if found >= self.count:
                return True
        return False

    def needs(self) -> frozenset[int] | None:
        # With n items and at least `count` true, one of any n - count + 1 items is true.
        wanted = len(self.items) - self.count + 1
        return _union_of_smallest([item.needs() for item in self.items], wanted)

    def requires(self) -> tuple[frozenset[int], ...]:
        # One of any n - count + 1 items holds: the union of their needs is a requirement.
        wanted = len(self.items) - self.count + 1
        if wanted < 1:
            return ()
        if any(item.needs() is None for item in self.items):
            return OrNode.requires(self) if wanted == len(self.items) else ()
        needs = [needed for item in self.items if (needed := item.needs()) is not None]
        groups = itertools.islice(itertools.combinations(needs, wanted), MAX_REQUIREMENTS * 2)
        return tuple(frozenset().union(*group) for group in groups)


def _union_of_smallest(sets: list[frozenset[int] | None], wanted: int) -> frozenset[int] | None:
    known = sorted((needed for needed in sets if needed is not None), key=len)
    if wanted < 1 or len(known) < wanted:
        return None
    return frozenset().union(*known[:wanted])


def _apart_in_one_word(left: Hit, right: Hit, ordered: bool) -> bool:
    """Two hits that share a word without overlapping: CJK terms in one run of text
    ("人脸识别治理"), which are next to each other. Whole-word hits in one word overlap."""
    return right[HIT_START] >= left[HIT_END] or (not ordered and left[HIT_START] >= right[HIT_END])


class NearNode(Node):
    __slots__ = ("distance", "left", "mask", "ordered", "right")

    def __init__(self, left: AnyOfNode, right: AnyOfNode, mask: int, distance: int, ordered: bool):
        self.left = left  # operands searched in the fields both sides have in common
        self.right = right
        self.mask = mask
        self.distance = distance
        self.ordered = ordered

    def _pairs(self, scan: ScanView) -> Iterator[tuple[tuple[int, Hit], tuple[int, Hit]]]:
        lefts = _leaf_hits(self.left, scan)
        rights = _leaf_hits(self.right, scan) if lefts else []
        right_words = [scan.words(hit) for _, hit in rights]  # once per hit, not per pair
        for left in lefts:
            _, left_hit = left
            left_field = left_hit[HIT_FIELD]
            left_first, left_last = scan.words(left_hit)
            for right, (right_first, right_last) in zip(rights, right_words, strict=True):
                _, right_hit = right
                if right_hit[HIT_FIELD] != left_field:
                    continue
                gap = right_first - left_last - 1
                if not self.ordered and gap < 0:
                    gap = left_first - right_last - 1
                if gap < 0 and _apart_in_one_word(left_hit, right_hit, self.ordered):
                    gap = 0
                if 0 <= gap <= self.distance:
                    yield left, right

    def holds(self, present: set[int], scan: ScanView) -> bool:
        if present.isdisjoint(self.left.codes) or present.isdisjoint(self.right.codes):
            return False
        return next(self._pairs(scan), None) is not None

    def collect(self, scan: ScanView, out: list[Evidence]) -> None:
        for left, right in self._pairs(scan):
            out += (scan.entry(*left), scan.entry(*right))

    def needs(self) -> frozenset[int] | None:
        left, right = self.left.codes, self.right.codes
        return frozenset(left if len(left) <= len(right) else right)

    def requires(self) -> tuple[frozenset[int], ...]:
        return (frozenset(self.left.codes), frozenset(self.right.codes))
