"""Compile validated rules into one RuleSet: a multi-pattern automaton (ahocorasick-rs) per
group of fields whose keys carry the rules they can trigger, an RE2 set for regex terms, and
each condition as a small tree of nodes that tests a set of (term, field) codes.

Matching cost then depends on the article's length and the number of hits, not on the number
of rules. Automaton keys carry their word boundaries as spaces (" facial recognition "), so
every automaton hit is already a whole-word hit. A rule is evaluated only when a code of its
trigger was found: a set of codes one of which must be present for the condition to hold
(for `a and b` the smaller of a and b, in the fields each is searched in), and when its
further requirements (for `a and b` the other operand) also have a code found; plus the few
rules whose condition holds without any term, such as `not x` alone. Few of the rules
evaluated then fail to match. Explanations are built only for rules that matched, from
TermHits made once per (term, field) code and article.

Compiled rules share every equal tuple (node codes, per-key rule lists, keys of one term):
rules share lists and terms, so unshared copies would make memory grow with the rules that
repeat them (benchmarks/matching.py prints what a compiled set takes).
"""

from __future__ import annotations

import gc
import itertools
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import ahocorasick_rs
import re2

from monitor.matching.condition import (
    FIELDS,
    And,
    AtLeast,
    Condition,
    Near,
    Not,
    Or,
    Terms,
    holds_without_terms,
)
from monitor.matching.rule import Rule, Term
from monitor.matching.text import fold, fold_keep_case

if TYPE_CHECKING:
    from monitor.matching.match import Evidence, Hit, Scan

FIELD_BITS: dict[str, int] = {name: 1 << index for index, name in enumerate(FIELDS)}
FIELD_MASKS = tuple(1 << index for index in range(len(FIELDS)))
MAX_REQUIREMENTS = 3  # requirements per rule checked before its condition
FIELD_CODE_BITS = 3  # a (term, field) code is term << 3 | field index
FIELD_CODE_MASK = (1 << FIELD_CODE_BITS) - 1
assert len(FIELDS) <= 1 << FIELD_CODE_BITS


def field_code(term: int, field_index: int) -> int:
    """The code of `term` found in the field numbered `field_index`."""
    return term << FIELD_CODE_BITS | field_index


def regex_options(case_sensitive: bool) -> Any:
    options = re2.Options()
    options.case_sensitive = case_sensitive
    options.log_errors = False
    return options


def phrase_core(text: str) -> tuple[str, bool]:
    """The folded words of a phrase term and whether it ends with the prefix wildcard '*'."""
    wildcard = text.endswith("*")
    return fold(text[:-1] if wildcard else text).strip(), wildcard


ES_PLURAL_ENDINGS = ("s", "x", "z", "ch", "sh", "o")  # boxes, churches, heroes; not "bankes"


def phrase_keys(term: Term) -> set[str]:
    """Every folded spelling that counts as the phrase: spaced, joined, inflected."""
    core, wildcard = phrase_core(term.text)
    bases = {core, core.replace(" ", "")}
    if wildcard or term.exact or not core[-1:].isalpha():
        return bases
    keys = set(bases)
    for base in bases:
        keys.add(base + "s")
        if base.endswith(ES_PLURAL_ENDINGS):
            keys.add(base + "es")
        if base.endswith("y"):
            keys.add(base[:-1] + "ies")
    return keys


# --- condition nodes ---
# `holds` decides from the set of (term, field) codes found, reading positions from the scan
# only for NEAR; `collect` gathers the hits that explain a match; `needs` is a set of terms
# one of which must be found for the node to hold (None when there is no such set).


class _Node:
    __slots__ = ()

    def holds(self, present: set[int], scan: Scan) -> bool:
        raise NotImplementedError

    def collect(self, scan: Scan, out: list[Evidence]) -> None:
        raise NotImplementedError

    def needs(self) -> frozenset[int] | None:
        raise NotImplementedError

    def requires(self) -> tuple[frozenset[int], ...]:
        """Sets of (term, field) codes each of which must have one found for the node to hold."""
        raise NotImplementedError


# Nodes keep their codes in tuples, shared between rules: a frozenset of six codes takes
# seven times the memory of the tuple, and `present.isdisjoint(codes)` is as fast either way.
# `needs` and `requires` run once per rule at compile time and return frozensets.
Codes = tuple[int, ...]


class _AnyOf(_Node):
    """True when a term is found in one of its fields; `or` of such leaves merges into one."""

    __slots__ = ("codes",)

    def __init__(self, codes: Codes) -> None:
        self.codes = codes  # every (term, field) code that makes the node true

    def holds(self, present: set[int], scan: Scan) -> bool:
        return not present.isdisjoint(self.codes)

    def collect(self, scan: Scan, out: list[Evidence]) -> None:
        """The evidence of its terms in their fields (any order: explanations sort it)."""
        evidence = scan.evidence
        for code in scan.present.intersection(self.codes):  # C speed; usually one or two
            out += evidence(code)

    def needs(self) -> frozenset[int] | None:
        return frozenset(self.codes)

    def requires(self) -> tuple[frozenset[int], ...]:
        return (frozenset(self.codes),)


def _leaf_hits(leaf: _AnyOf, scan: Scan) -> list[tuple[int, Hit]]:
    """The hits of the terms of `leaf` in their fields, as (term, hit)."""
    return [
        (code >> FIELD_CODE_BITS, hit)
        for code in scan.present.intersection(leaf.codes)
        for hit in scan.code_hits(code)
    ]


class _AllOf(_AnyOf):
    """`all of list`: each term found in one of its fields."""

    __slots__ = ("each",)

    def __init__(self, codes: Codes, each: tuple[Codes, ...]) -> None:
        super().__init__(codes)
        self.each = each  # the codes of each term

    def holds(self, present: set[int], scan: Scan) -> bool:
        for codes in self.each:  # noqa: SIM110 (a loop: all() over a generator is slower)
            if present.isdisjoint(codes):
                return False
        return True

    def needs(self) -> frozenset[int] | None:
        return frozenset(self.each[0]) if self.each else None

    def requires(self) -> tuple[frozenset[int], ...]:
        return tuple(frozenset(codes) for codes in self.each)


class _Not(_Node):
    __slots__ = ("item",)

    def __init__(self, item: _Node) -> None:
        self.item = item

    def holds(self, present: set[int], scan: Scan) -> bool:
        return not self.item.holds(present, scan)

    def collect(self, scan: Scan, out: list[Evidence]) -> None:
        return  # absent terms explain nothing

    def needs(self) -> frozenset[int] | None:
        return None

    def requires(self) -> tuple[frozenset[int], ...]:
        return ()


class _And(_Node):
    __slots__ = ("items",)

    def __init__(self, items: tuple[_Node, ...]) -> None:
        self.items = items

    def holds(self, present: set[int], scan: Scan) -> bool:
        for item in self.items:  # noqa: SIM110 (as above)
            if not item.holds(present, scan):
                return False
        return True

    def collect(self, scan: Scan, out: list[Evidence]) -> None:
        for item in self.items:
            item.collect(scan, out)

    def needs(self) -> frozenset[int] | None:
        known = [needed for item in self.items if (needed := item.needs()) is not None]
        return min(known, key=len) if known else None

    def requires(self) -> tuple[frozenset[int], ...]:
        return tuple(required for item in self.items for required in item.requires())


class _AndOfLeaves(_And):
    """`a and b and not c ...` over plain leaves, the commonest condition: no call per leaf."""

    __slots__ = ("codes", "negated")

    def __init__(self, items: tuple[_Node, ...]) -> None:
        super().__init__(items)
        self.codes = tuple(item.codes for item in items if isinstance(item, _AnyOf))
        self.negated = tuple(
            item.item.codes
            for item in items
            if isinstance(item, _Not) and isinstance(item.item, _AnyOf)
        )

    @staticmethod
    def accepts(children: tuple[_Node, ...]) -> bool:
        """Whether `children` are all plain leaves or negated plain leaves."""
        return all(
            type(child) is _AnyOf or (type(child) is _Not and type(child.item) is _AnyOf)
            for child in children
        )

    def holds(self, present: set[int], scan: Scan) -> bool:
        for codes in self.codes:
            if present.isdisjoint(codes):
                return False
        for codes in self.negated:  # noqa: SIM110 (as above)
            if not present.isdisjoint(codes):
                return False
        return True

    def collect(self, scan: Scan, out: list[Evidence]) -> None:
        present, evidence = scan.present, scan.evidence
        for codes in self.codes:  # as _AnyOf.collect for each leaf, without a call per leaf
            for code in present.intersection(codes):
                out += evidence(code)


class _Or(_And):
    __slots__ = ()

    def holds(self, present: set[int], scan: Scan) -> bool:
        for item in self.items:  # noqa: SIM110 (as above)
            if item.holds(present, scan):
                return True
        return False

    def collect(self, scan: Scan, out: list[Evidence]) -> None:
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


class _AtLeast(_Or):
    __slots__ = ("count",)

    def __init__(self, count: int, items: tuple[_Node, ...]) -> None:
        super().__init__(items)
        self.count = count

    def holds(self, present: set[int], scan: Scan) -> bool:
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
            return _Or.requires(self) if wanted == len(self.items) else ()
        needs = [needed for item in self.items if (needed := item.needs()) is not None]
        groups = itertools.islice(itertools.combinations(needs, wanted), MAX_REQUIREMENTS * 2)
        return tuple(frozenset().union(*group) for group in groups)


def _union_of_smallest(sets: list[frozenset[int] | None], wanted: int) -> frozenset[int] | None:
    known = sorted((needed for needed in sets if needed is not None), key=len)
    if wanted < 1 or len(known) < wanted:
        return None
    return frozenset().union(*known[:wanted])


class _Near(_Node):
    __slots__ = ("distance", "left", "mask", "ordered", "right")

    def __init__(self, left: _AnyOf, right: _AnyOf, mask: int, distance: int, ordered: bool):
        self.left = left  # operands searched in the fields both sides have in common
        self.right = right
        self.mask = mask
        self.distance = distance
        self.ordered = ordered

    def _pairs(self, scan: Scan) -> Iterator[tuple[tuple[int, Hit], tuple[int, Hit]]]:
        lefts = _leaf_hits(self.left, scan)
        rights = _leaf_hits(self.right, scan) if lefts else []
        right_words = [scan.words(right[1]) for right in rights]  # once per hit, not per pair
        for left in lefts:
            left_first, left_last = scan.words(left[1])
            for right, (right_first, right_last) in zip(rights, right_words, strict=True):
                if left[1][0] != right[1][0]:
                    continue
                gap = right_first - left_last - 1
                if not self.ordered and gap < 0:
                    gap = left_first - right_last - 1
                if 0 <= gap <= self.distance:
                    yield left, right

    def holds(self, present: set[int], scan: Scan) -> bool:
        if present.isdisjoint(self.left.codes) or present.isdisjoint(self.right.codes):
            return False
        return next(self._pairs(scan), None) is not None

    def collect(self, scan: Scan, out: list[Evidence]) -> None:
        for left, right in self._pairs(scan):
            out += (scan.entry(*left), scan.entry(*right))

    def needs(self) -> frozenset[int] | None:
        left, right = self.left.codes, self.right.codes
        return frozenset(left if len(left) <= len(right) else right)

    def requires(self) -> tuple[frozenset[int], ...]:
        return (frozenset(self.left.codes), frozenset(self.right.codes))


def _codes(terms: Iterable[int], mask: int, interned: dict[int, int]) -> Codes:
    """The codes of `terms` in the fields of `mask`, as shared int objects (see _Builder)."""
    return tuple(
        interned.setdefault(code, code)
        for term in sorted(terms)
        for index, bit in enumerate(FIELD_MASKS)
        if mask & bit
        for code in (field_code(term, index),)
    )


@dataclass(frozen=True, slots=True)
class CompiledRule:
    rule: Rule
    node: _Node
    allow_domains: tuple[str, ...]
    deny_domains: tuple[str, ...]
    allow_tags: frozenset[str]
    deny_tags: frozenset[str]
    languages: frozenset[str]
    filtered: bool  # any source or language filter: `accepts` must be asked
    head: tuple[str, str, str, str | None]  # the rule's id, title, severity, channel for Match

    def accepts(self, domain: str, tags: tuple[str, ...], language: str | None) -> bool:
        """Source and language filters, checked before the condition."""
        if self.languages and language and language not in self.languages:
            return False
        if self.allow_domains and not _in_domains(domain, self.allow_domains):
            return False
        if self.deny_domains and _in_domains(domain, self.deny_domains):
            return False
        if self.allow_tags and self.allow_tags.isdisjoint(tags):
            return False
        return not (self.deny_tags and not self.deny_tags.isdisjoint(tags))


_NONE: frozenset[str] = frozenset()  # shared by the rules without a filter (216 bytes each)


def _in_domains(domain: str, domains: tuple[str, ...]) -> bool:
    return any(domain == name or domain.endswith("." + name) for name in domains)


@dataclass(frozen=True, slots=True)
class Key:
    """One automaton key: a folded spelling shared by one or more phrase terms."""

    wild: bool  # a prefix: the hit runs to the end of the word
    terms: tuple[int, ...]  # every term spelled this way, in term order
    cased: tuple[int, ...]  # the case-sensitive ones: each hit is checked in the original text
    plain: tuple[int, ...]  # the others: found wherever the key is found


@dataclass(frozen=True, slots=True)
class PhraseIndex:
    """An automaton over the boundary-padded spellings of the phrase terms of some fields."""

    automaton: ahocorasick_rs.BytesAhoCorasick  # over the keys in UTF-8
    keys: tuple[Key, ...]  # in the automaton's pattern order
    # What the scan needs per key found, flat: no attribute lookups in its loop.
    codes: Mapping[int, tuple[tuple[int, ...], ...]]  # field -> key -> codes of its plain terms
    # field -> key -> rules that a hit on the key in the field makes worth evaluating
    rules: Mapping[int, tuple[tuple[int, ...], ...]]
    # Per level of Index.requirements, field -> key -> the rules whose requirement at that
    # level a hit on the key in the field meets.
    passes: tuple[Mapping[int, tuple[tuple[int, ...], ...]], ...]
    cased: frozenset[int]  # keys with case-sensitive terms
    wild: frozenset[int]  # keys that are prefixes (Key.wild, without reading the Key)


@dataclass(frozen=True, slots=True)
class Index:
    """Everything match_article needs, built once per RuleSet."""

    terms: tuple[Term, ...]
    phrases: tuple[tuple[int, PhraseIndex], ...]  # (field index, index) for fields with phrases
    case_stems: Mapping[int, str]  # term id -> stem to check in the original text
    regex_fields: tuple[int, ...]
    regex_set: Any  # re2.Set over every regex term, or None
    regex_terms: tuple[tuple[int, Any], ...]  # set index -> (term id, compiled pattern)
    triggers: Mapping[int, tuple[int, ...]]  # (term, field) code -> rules to evaluate when found
    # Further requirements, to drop candidates before evaluating them: at level k, a code ->
    # the rules whose k-th requirement holds it, and the rules that have a k-th requirement.
    # (PhraseIndex.passes holds the same per automaton key; these serve regex and cased terms.)
    requirements: tuple[tuple[Mapping[int, tuple[int, ...]], frozenset[int]], ...]
    always: tuple[int, ...]  # rules whose condition holds without any term
    needs_domain: bool  # a term searched in `domain` or a domain filter: parse article links
    rules: tuple[CompiledRule | None, ...]  # None for disabled rules


@dataclass(frozen=True, eq=False)
class RuleSet:
    """Compiled rules, immutable; pickles as its rules and recompiles on load."""

    rules: tuple[Rule, ...]
    index: Index = field(repr=False, compare=False)

    def __reduce__(self) -> tuple[Any, ...]:
        return (compile_rules, (self.rules,))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RuleSet) and other.rules == self.rules

    def __hash__(self) -> int:
        return hash(tuple(rule.id for rule in self.rules))


class _Builder:
    def __init__(self) -> None:
        self.term_ids: dict[Term, int] = {}
        self.term_fields: dict[int, int] = defaultdict(int)
        # Many rules share lists and terms: share their code tuples too (memory at 10,000 rules).
        self.leaves: dict[tuple[frozenset[int], int], Codes] = {}
        self.term_codes: dict[tuple[int, int], Codes] = {}
        self.rule_codes: set[int] = set()
        # One int object per (term, field) code, however many sets hold it: codes are beyond
        # the small-int cache, so each set would otherwise hold its own copy of every code.
        self.interned: dict[int, int] = {}  # the (term, field) codes of the rule being compiled

    def term(self, term: Term, mask: int) -> int:
        term_id = self.term_ids.setdefault(term, len(self.term_ids))
        self.term_fields[term_id] |= mask
        return term_id

    def codes(self, terms: frozenset[int], mask: int) -> Codes:
        """The codes of `terms` searched in the fields of `mask`, shared between rules."""
        key = (terms, mask)
        codes = self.leaves.get(key)
        if codes is None:
            codes = self.leaves[key] = _codes(terms, mask, self.interned)
        self.rule_codes.update(codes)
        return codes

    def all_of(self, terms: frozenset[int], mask: int) -> _AllOf:
        each = []
        for term in sorted(terms):
            if (term, mask) not in self.term_codes:
                self.term_codes[term, mask] = _codes((term,), mask, self.interned)
            each.append(self.term_codes[term, mask])
        return _AllOf(self.codes(terms, mask), tuple(each))

    def node(self, node: Condition, rule: Rule, default_mask: int) -> _Node:
        match node:
            case Terms():
                ids, mask = self._leaf(node, rule, default_mask)
                return self.all_of(ids, mask) if node.every else _AnyOf(self.codes(ids, mask))
            case Not(item):
                return _Not(self.node(item, rule, default_mask))
            case And(items):
                children = tuple(self.node(i, rule, default_mask) for i in items)
                return _AndOfLeaves(children) if _AndOfLeaves.accepts(children) else _And(children)
            case Or(items):
                children = tuple(self.node(i, rule, default_mask) for i in items)
                leaves = tuple(child for child in children if type(child) is _AnyOf)
                if len(leaves) < len(children):
                    return _Or(children)
                # One leaf: any term of any of them, each in its own fields.
                return _AnyOf(tuple(sorted(set().union(*(leaf.codes for leaf in leaves)))))
            case AtLeast(count, items):
                children = tuple(self.node(i, rule, default_mask) for i in items)
                return _AtLeast(count, children)
            case Near(left, right, distance, ordered):
                left_ids, mask = self._leaf(left, rule, default_mask)
                right_ids, right_mask = self._leaf(right, rule, default_mask)
                both = mask & right_mask
                return _Near(
                    _AnyOf(self.codes(left_ids, both)),
                    _AnyOf(self.codes(right_ids, both)),
                    both,
                    distance,
                    ordered,
                )
        raise TypeError(f"not a condition node: {node!r}")

    def _leaf(self, leaf: Terms, rule: Rule, default_mask: int) -> tuple[frozenset[int], int]:
        mask = FIELD_BITS[leaf.scope] if leaf.scope else default_mask
        return frozenset(self.term(term, mask) for term in rule.terms_of(leaf)), mask


def compile_rules(rules: Iterable[Rule]) -> RuleSet:
    """Compile validated rules (see load_rules) into a RuleSet.

    The cyclic garbage collector is paused meanwhile: compiling allocates hundreds of
    thousands of small objects, none of them garbage, and the collection passes that this
    triggers would be a large share of the compile time of a big rule set.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _compile(tuple(rules))
    finally:
        if enabled:
            gc.enable()


def _compile(rules: tuple[Rule, ...]) -> RuleSet:
    builder = _Builder()
    compiled: list[CompiledRule | None] = []
    always: list[int] = []
    triggers: dict[int, list[int]] = defaultdict(list)
    required: list[tuple[dict[int, list[int]], set[int]]] = [
        (defaultdict(list), set()) for _ in range(MAX_REQUIREMENTS - 1)
    ]
    for index, rule in enumerate(rules):
        if not rule.enabled:
            compiled.append(None)
            continue
        default_mask = 0
        for name in rule.fields:
            default_mask |= FIELD_BITS[name]
        builder.rule_codes = set()
        node = builder.node(rule.condition, rule, default_mask)
        if holds_without_terms(rule.condition):
            always.append(index)
        else:
            # The smallest requirement triggers the rule; the next ones filter candidates.
            requires = sorted(
                set(node.requires()), key=lambda codes: (len(codes), min(codes, default=0))
            )
            needed = requires[0] if requires else node.needs()
            if needed is None:  # e.g. `not not a`: any of its terms may make it true
                needed = frozenset(builder.rule_codes)
            for code in needed:
                triggers[code].append(index)
            for (by_code, having), requirement in zip(
                required, requires[1:MAX_REQUIREMENTS], strict=False
            ):
                having.add(index)
                for code in requirement:
                    by_code[code].append(index)
        sources = rule.sources
        compiled.append(
            CompiledRule(
                rule,
                node,
                tuple(d.lower().removeprefix("www.") for d in sources.allow_domains),
                tuple(d.lower().removeprefix("www.") for d in sources.deny_domains),
                frozenset(sources.allow_tags) if sources.allow_tags else _NONE,
                frozenset(sources.deny_tags) if sources.deny_tags else _NONE,
                frozenset(language.lower() for language in rule.languages)
                if rule.languages
                else _NONE,
                bool(
                    rule.languages
                    or sources.allow_domains
                    or sources.deny_domains
                    or sources.allow_tags
                    or sources.deny_tags
                ),
                (rule.id, rule.title, rule.severity, rule.channel),
            )
        )
    terms = tuple(builder.term_ids)
    trigger_index = {code: tuple(ids) for code, ids in triggers.items()}
    requirements = tuple(
        ({code: tuple(ids) for code, ids in by_code.items()}, frozenset(having))
        for by_code, having in required
        if having
    )
    case_stems = {
        term_id: fold_keep_case(term.text.removesuffix("*")).replace(" ", "")
        for term_id, term in enumerate(terms)
        if term.kind == "phrase" and term.case_sensitive
    }
    # The automaton keys carry the rules of plain phrase terms; the index by code is kept only
    # for the codes a scan adds one by one: regex terms and case-sensitive phrases.
    by_code_terms = {t for t, term in enumerate(terms) if term.kind == "regex"} | set(case_stems)
    return RuleSet(
        rules,
        Index(
            terms=terms,
            phrases=_phrase_indexes(
                terms,
                builder.term_fields,
                case_stems,
                (trigger_index, *(by_code for by_code, _ in requirements)),
                builder.interned,
            ),
            case_stems=case_stems,
            regex_fields=tuple(
                index
                for index in range(len(FIELDS))
                if any(
                    builder.term_fields[term_id] & FIELD_MASKS[index]
                    for term_id, term in enumerate(terms)
                    if term.kind == "regex"
                )
            ),
            regex_set=_regex_set(terms),
            regex_terms=tuple(
                (term_id, re2.compile(term.text, regex_options(term.case_sensitive)))
                for term_id, term in enumerate(terms)
                if term.kind == "regex"
            ),
            triggers=_only_terms(trigger_index, by_code_terms),
            requirements=tuple(
                (_only_terms(by_code, by_code_terms), having) for by_code, having in requirements
            ),
            always=tuple(always),
            needs_domain=any(mask & FIELD_BITS["domain"] for mask in builder.term_fields.values())
            or any(rule.allow_domains or rule.deny_domains for rule in compiled if rule),
            rules=tuple(compiled),
        ),
    )


def _only_terms(
    by_code: Mapping[int, tuple[int, ...]], terms: set[int]
) -> dict[int, tuple[int, ...]]:
    return {code: ids for code, ids in by_code.items() if code >> FIELD_CODE_BITS in terms}


def _phrase_indexes(
    terms: tuple[Term, ...],
    term_fields: Mapping[int, int],
    case_stems: Mapping[int, str],
    rule_indexes: tuple[Mapping[int, tuple[int, ...]], ...],
    interned: dict[int, int],
) -> tuple[tuple[int, PhraseIndex], ...]:
    """One automaton per distinct set of phrase terms; fields with the same set share it.

    `rule_indexes` are the triggers, then the requirements of each level, by code.
    """
    by_field: dict[int, list[int]] = defaultdict(list)
    for term_id, term in enumerate(terms):
        if term.kind == "phrase":
            for index, bit in enumerate(FIELD_MASKS):
                if term_fields[term_id] & bit:
                    by_field[index].append(term_id)
    sharing: dict[tuple[int, ...], list[int]] = defaultdict(list)
    for index in sorted(by_field):
        sharing[tuple(by_field[index])].append(index)
    shared: dict[tuple[int, ...], tuple[int, ...]] = {}  # equal tuples, one object
    built = {
        term_ids: _phrase_index(terms, term_ids, fields, case_stems, rule_indexes, interned, shared)
        for term_ids, fields in sharing.items()
    }
    return tuple((index, built[tuple(by_field[index])]) for index in sorted(by_field))


def _phrase_index(
    terms: tuple[Term, ...],
    term_ids: tuple[int, ...],
    fields: list[int],
    case_stems: Mapping[int, str],
    rule_indexes: tuple[Mapping[int, tuple[int, ...]], ...],
    interned: dict[int, int],
    shared: dict[tuple[int, ...], tuple[int, ...]],
) -> PhraseIndex:
    # A term has about four spellings (joined, inflected): the keys of one term share their
    # Key, and every tuple below is one object per distinct value (memory at 10,000 rules).
    share = shared.setdefault
    spellings: dict[str, list[int]] = defaultdict(list)
    for term_id in term_ids:
        for spelling in sorted(automaton_keys(terms[term_id])):  # same key order every run
            spellings[spelling].append(term_id)
    keys: list[Key] = []
    pool: dict[Key, Key] = {}
    for spelling, spelled in spellings.items():
        ids = tuple(spelled)
        ids = share(ids, ids)
        cased = tuple(term_id for term_id in ids if term_id in case_stems)
        plain = tuple(term_id for term_id in ids if term_id not in cased) if cased else ids
        key = Key(not spelling.endswith(" "), ids, share(cased, cased), share(plain, plain))
        keys.append(pool.setdefault(key, key))
    codes: dict[int, list[tuple[int, ...]]] = {}
    for index in fields:
        by_plain: dict[tuple[int, ...], tuple[int, ...]] = {}
        codes[index] = []
        for key in keys:
            if key.plain not in by_plain:
                by_plain[key.plain] = tuple(
                    interned.get(code, code)
                    for term in key.plain
                    for code in (field_code(term, index),)
                )
            codes[index].append(by_plain[key.plain])
    return PhraseIndex(
        ahocorasick_rs.BytesAhoCorasick([key.encode() for key in spellings]),  # i is keys[i]
        tuple(keys),
        {index: tuple(per_key) for index, per_key in codes.items()},
        _per_field(keys, fields, rule_indexes[0], shared),
        tuple(_per_field(keys, fields, by_code, shared) for by_code in rule_indexes[1:]),
        frozenset(number for number, key in enumerate(keys) if key.cased),
        frozenset(number for number, key in enumerate(keys) if key.wild),
    )


def automaton_keys(term: Term) -> set[str]:
    """The spellings of a phrase term as padded in the automaton: " key " for whole words,
    " key" for prefixes, so that every automaton hit is a hit on word boundaries."""
    wild = phrase_core(term.text)[1]
    return {f" {key}" if wild else f" {key} " for key in phrase_keys(term)}


def _per_field(
    keys: list[Key],
    fields: list[int],
    by_code: Mapping[int, tuple[int, ...]],
    shared: dict[tuple[int, ...], tuple[int, ...]],
) -> dict[int, tuple[tuple[int, ...], ...]]:
    """Field -> `_key_rules`; fields whose rows are equal (rules that search title, summary
    and content alike) share one row, which saves memory."""
    rows: dict[int, tuple[tuple[int, ...], ...]] = {}
    for index in fields:
        row = _key_rules(keys, index, by_code, shared)
        rows[index] = next((known for known in rows.values() if known == row), row)
    return rows


def _key_rules(
    keys: list[Key],
    field: int,
    by_code: Mapping[int, tuple[int, ...]],
    shared: dict[tuple[int, ...], tuple[int, ...]],
) -> tuple[tuple[int, ...], ...]:
    """Per key, the rules of `by_code` for the codes of its terms in `field`."""
    by_terms: dict[tuple[int, ...], tuple[int, ...]] = {}
    rules = []
    for key in keys:
        found = by_terms.get(key.terms)
        if found is None:
            found = tuple(
                sorted({rule for t in key.terms for rule in by_code.get(field_code(t, field), ())})
            )
            found = by_terms[key.terms] = shared.setdefault(found, found)
        rules.append(found)
    return tuple(rules)


def _regex_set(terms: tuple[Term, ...]) -> Any:
    patterns = [term for term in terms if term.kind == "regex"]
    if not patterns:
        return None
    regex_set = re2.Set.SearchSet(regex_options(True))
    for term in patterns:
        regex_set.Add(term.text if term.case_sensitive else f"(?i:{term.text})")
    regex_set.Compile()
    return regex_set
