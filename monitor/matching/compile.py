"""Compile validated rules into one RuleSet: a multi-pattern automaton per group of fields, an
RE2 set for regex terms, a term -> rules index and each condition as a small tree of nodes.

Matching cost then depends on the article's length and the number of hits, not on the number
of rules: only rules whose terms were found (plus the few whose condition holds without any
term, such as `not x` alone) are evaluated.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import ahocorasick
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
    from monitor.matching.match import Hit, Scan

FIELD_BITS = {name: 1 << index for index, name in enumerate(FIELDS)}


def regex_options(case_sensitive: bool) -> Any:
    options = re2.Options()
    options.case_sensitive = case_sensitive
    options.log_errors = False
    return options


def phrase_core(text: str) -> tuple[str, bool]:
    """The folded words of a phrase term and whether it ends with the prefix wildcard '*'."""
    wildcard = text.endswith("*")
    return fold(text[:-1] if wildcard else text).strip(), wildcard


def phrase_keys(term: Term) -> set[str]:
    """Every folded spelling that counts as the phrase: spaced, joined, inflected."""
    core, wildcard = phrase_core(term.text)
    bases = {core, core.replace(" ", "")}
    if wildcard or term.exact or not core[-1:].isalpha():
        return bases
    keys = set(bases)
    for base in bases:
        keys.update((base + "s", base + "es"))
        if base.endswith("y"):
            keys.add(base[:-1] + "ies")
    return keys


# --- condition nodes: `holds` decides, `collect` gathers the hits that explain a match ---


class _Node:
    __slots__ = ()

    def holds(self, scan: Scan) -> bool:
        raise NotImplementedError

    def collect(self, scan: Scan, out: list[tuple[int, Hit]]) -> None:
        raise NotImplementedError


class _AnyOf(_Node):
    __slots__ = ("mask", "terms")

    def __init__(self, terms: frozenset[int], mask: int) -> None:
        self.terms = terms
        self.mask = mask

    def holds(self, scan: Scan) -> bool:
        masks = scan.masks
        mask = self.mask
        if len(masks) < len(self.terms):
            return any(term in self.terms and bits & mask for term, bits in masks.items())
        return any(masks.get(term, 0) & mask for term in self.terms)

    def collect(self, scan: Scan, out: list[tuple[int, Hit]]) -> None:
        for term in self.terms:
            for hit in scan.hits.get(term, ()):
                if FIELD_MASKS[hit[0]] & self.mask:
                    out.append((term, hit))


class _AllOf(_AnyOf):
    __slots__ = ()

    def holds(self, scan: Scan) -> bool:
        masks = scan.masks
        return all(masks.get(term, 0) & self.mask for term in self.terms)


class _Not(_Node):
    __slots__ = ("item",)

    def __init__(self, item: _Node) -> None:
        self.item = item

    def holds(self, scan: Scan) -> bool:
        return not self.item.holds(scan)

    def collect(self, scan: Scan, out: list[tuple[int, Hit]]) -> None:
        return  # absent terms explain nothing


class _And(_Node):
    __slots__ = ("items",)

    def __init__(self, items: tuple[_Node, ...]) -> None:
        self.items = items

    def holds(self, scan: Scan) -> bool:
        return all(item.holds(scan) for item in self.items)

    def collect(self, scan: Scan, out: list[tuple[int, Hit]]) -> None:
        for item in self.items:
            item.collect(scan, out)


class _Or(_And):
    __slots__ = ()

    def holds(self, scan: Scan) -> bool:
        return any(item.holds(scan) for item in self.items)

    def collect(self, scan: Scan, out: list[tuple[int, Hit]]) -> None:
        for item in self.items:
            if item.holds(scan):
                item.collect(scan, out)


class _AtLeast(_Or):
    __slots__ = ("count",)

    def __init__(self, count: int, items: tuple[_Node, ...]) -> None:
        super().__init__(items)
        self.count = count

    def holds(self, scan: Scan) -> bool:
        found = 0
        for item in self.items:
            found += item.holds(scan)
            if found >= self.count:
                return True
        return False


class _Near(_Node):
    __slots__ = ("distance", "left", "mask", "ordered", "right")

    def __init__(
        self, left: frozenset[int], right: frozenset[int], mask: int, distance: int, ordered: bool
    ) -> None:
        self.left = left
        self.right = right
        self.mask = mask
        self.distance = distance
        self.ordered = ordered

    def _hits(self, scan: Scan, terms: frozenset[int]) -> list[tuple[int, Hit]]:
        return [
            (term, hit)
            for term in terms
            if scan.masks.get(term, 0) & self.mask
            for hit in scan.hits[term]
            if FIELD_MASKS[hit[0]] & self.mask
        ]

    def _pairs(self, scan: Scan) -> Iterator[tuple[tuple[int, Hit], tuple[int, Hit]]]:
        lefts = self._hits(scan, self.left)
        rights = self._hits(scan, self.right) if lefts else []
        for left in lefts:
            left_first, left_last = scan.words(left[1])
            for right in rights:
                if left[1][0] != right[1][0]:
                    continue
                right_first, right_last = scan.words(right[1])
                gap = right_first - left_last - 1
                if not self.ordered and gap < 0:
                    gap = left_first - right_last - 1
                if 0 <= gap <= self.distance:
                    yield left, right

    def holds(self, scan: Scan) -> bool:
        return next(self._pairs(scan), None) is not None

    def collect(self, scan: Scan, out: list[tuple[int, Hit]]) -> None:
        for left, right in self._pairs(scan):
            out.extend((left, right))


FIELD_MASKS = tuple(1 << index for index in range(len(FIELDS)))


@dataclass(frozen=True, slots=True)
class CompiledRule:
    rule: Rule
    node: _Node
    allow_domains: tuple[str, ...]
    deny_domains: tuple[str, ...]
    allow_tags: frozenset[str]
    deny_tags: frozenset[str]
    languages: frozenset[str]

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


def _in_domains(domain: str, domains: tuple[str, ...]) -> bool:
    return any(domain == name or domain.endswith("." + name) for name in domains)


@dataclass(frozen=True, slots=True)
class Index:
    """Everything match_article needs, built once per RuleSet."""

    terms: tuple[Term, ...]
    automata: tuple[tuple[int, Any], ...]  # (field index, automaton) for fields with phrase terms
    case_stems: dict[int, str]  # term id -> stem to check in the original text
    regex_fields: tuple[int, ...]
    regex_set: Any  # re2.Set over every regex term, or None
    regex_terms: tuple[tuple[int, Any], ...]  # set index -> (term id, compiled pattern)
    term_rules: dict[int, tuple[int, ...]]
    always: tuple[int, ...]  # rules whose condition holds without any term
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
        self.term_rules: dict[int, set[int]] = defaultdict(set)

    def term(self, term: Term, mask: int, rule_index: int) -> int:
        term_id = self.term_ids.setdefault(term, len(self.term_ids))
        self.term_fields[term_id] |= mask
        self.term_rules[term_id].add(rule_index)
        return term_id

    def node(self, node: Condition, rule: Rule, rule_index: int, default_mask: int) -> _Node:
        match node:
            case Terms():
                ids, mask = self._leaf(node, rule, rule_index, default_mask)
                return _AllOf(ids, mask) if node.every else _AnyOf(ids, mask)
            case Not(item):
                return _Not(self.node(item, rule, rule_index, default_mask))
            case And(items):
                return _And(tuple(self.node(i, rule, rule_index, default_mask) for i in items))
            case Or(items):
                return _Or(tuple(self.node(i, rule, rule_index, default_mask) for i in items))
            case AtLeast(count, items):
                children = tuple(self.node(i, rule, rule_index, default_mask) for i in items)
                return _AtLeast(count, children)
            case Near(left, right, distance, ordered):
                left_ids, mask = self._leaf(left, rule, rule_index, default_mask)
                right_ids, right_mask = self._leaf(right, rule, rule_index, default_mask)
                return _Near(left_ids, right_ids, mask & right_mask, distance, ordered)
        raise TypeError(f"not a condition node: {node!r}")

    def _leaf(
        self, leaf: Terms, rule: Rule, rule_index: int, default_mask: int
    ) -> tuple[frozenset[int], int]:
        mask = FIELD_BITS[leaf.scope] if leaf.scope else default_mask
        terms: Iterable[Term]
        terms = rule.lists[leaf.name] if leaf.name is not None else (Term(str(leaf.phrase)),)
        return frozenset(self.term(term, mask, rule_index) for term in terms), mask


def compile_rules(rules: Iterable[Rule]) -> RuleSet:
    """Compile validated rules (see load_rules) into a RuleSet."""
    rules = tuple(rules)
    builder = _Builder()
    compiled: list[CompiledRule | None] = []
    always: list[int] = []
    for index, rule in enumerate(rules):
        if not rule.enabled:
            compiled.append(None)
            continue
        default_mask = 0
        for name in rule.fields:
            default_mask |= FIELD_BITS[name]
        node = builder.node(rule.condition, rule, index, default_mask)
        if holds_without_terms(rule.condition):
            always.append(index)
        compiled.append(
            CompiledRule(
                rule,
                node,
                tuple(d.lower().removeprefix("www.") for d in rule.sources.allow_domains),
                tuple(d.lower().removeprefix("www.") for d in rule.sources.deny_domains),
                frozenset(rule.sources.allow_tags),
                frozenset(rule.sources.deny_tags),
                frozenset(language.lower() for language in rule.languages),
            )
        )
    terms = tuple(builder.term_ids)
    return RuleSet(
        rules,
        Index(
            terms=terms,
            automata=_automata(terms, builder.term_fields),
            case_stems={
                term_id: fold_keep_case(term.text.removesuffix("*")).replace(" ", "")
                for term_id, term in enumerate(terms)
                if term.kind == "phrase" and term.case_sensitive
            },
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
            term_rules={term_id: tuple(sorted(ids)) for term_id, ids in builder.term_rules.items()},
            always=tuple(always),
            rules=tuple(compiled),
        ),
    )


def _automata(terms: tuple[Term, ...], term_fields: dict[int, int]) -> tuple[tuple[int, Any], ...]:
    """One automaton per distinct set of phrase terms; fields with the same set share it."""
    by_field: dict[int, list[int]] = defaultdict(list)
    for term_id, term in enumerate(terms):
        if term.kind == "phrase":
            for index, bit in enumerate(FIELD_MASKS):
                if term_fields[term_id] & bit:
                    by_field[index].append(term_id)
    built: dict[tuple[int, ...], Any] = {}
    result = []
    for index in sorted(by_field):
        key = tuple(by_field[index])
        if key not in built:
            built[key] = _automaton(terms, key)
        result.append((index, built[key]))
    return tuple(result)


def _automaton(terms: tuple[Term, ...], term_ids: tuple[int, ...]) -> Any:
    strict: dict[str, list[int]] = defaultdict(list)
    wild: dict[str, list[int]] = defaultdict(list)
    for term_id in term_ids:
        term = terms[term_id]
        target = wild if phrase_core(term.text)[1] else strict
        for key in phrase_keys(term):
            target[key].append(term_id)
    automaton = ahocorasick.Automaton()
    for key in strict.keys() | wild.keys():
        automaton.add_word(key, (len(key), tuple(strict.get(key, ())), tuple(wild.get(key, ()))))
    if len(automaton):
        automaton.make_automaton()
    return automaton


def _regex_set(terms: tuple[Term, ...]) -> Any:
    patterns = [term for term in terms if term.kind == "regex"]
    if not patterns:
        return None
    regex_set = re2.Set.SearchSet(regex_options(True))
    for term in patterns:
        regex_set.Add(term.text if term.case_sensitive else f"(?i:{term.text})")
    regex_set.Compile()
    return regex_set
