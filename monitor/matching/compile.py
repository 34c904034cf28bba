"""Compile validated rules into a RuleSet: the Index that match.py reads (index.py), with each
condition as a tree of evaluator nodes (evaluate.py).

Matching cost then depends on the article's length and its hits, not on the number of rules:
each phrase term becomes its spellings as automaton keys, padded with spaces so that every
automaton hit is a whole-word hit, and each rule gets a trigger (codes one of which its
condition cannot hold without) and up to two further requirements, named by the keys.
Equal tuples (node codes, per-key rule lists, keys of one term) are one object for every rule
that has them. The engine's map, with a worked example: docs/design.md, "Matching".
"""

from __future__ import annotations

import gc
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import ahocorasick_rs
import re2

from monitor.matching import condition
from monitor.matching.condition import FIELDS, Condition, holds_without_terms
from monitor.matching.evaluate import (
    MAX_REQUIREMENTS,
    AllOfNode,
    AndNode,
    AndOfLeavesNode,
    AnyOfNode,
    AtLeastNode,
    NearNode,
    Node,
    NotNode,
    OrNode,
)
from monitor.matching.index import CompiledRule, Index, Key, PhraseIndex
from monitor.matching.layout import (
    DOMAIN,
    FIELD_BITS,
    FIELD_CODE_BITS,
    FIELD_MASKS,
    FRONT,
    LEAD,
    Codes,
    field_code,
)
from monitor.matching.rule import Rule, Term
from monitor.matching.text import fold, fold_keep_case, is_unspaced


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
    if wildcard or term.exact or not core[-1:].isalpha() or is_unspaced(core[-1]):
        return bases
    keys = set(bases)
    for base in bases:
        keys.add(base + "s")
        if base.endswith(ES_PLURAL_ENDINGS):
            keys.add(base + "es")
        if base.endswith("y"):
            keys.add(base[:-1] + "ies")
    return keys


def automaton_keys(term: Term) -> set[str]:
    """The spellings of a phrase term as padded in the automaton: " key " for whole words,
    " key" for prefixes, so that every automaton hit is a hit on word boundaries.

    An end written in a script without word boundaries (CJK, Thai, ...) gets no space: such
    a term is found inside a run of text ("人脸识别" in "人脸识别第一案", "얼굴인식" in
    "얼굴인식을"), and a '*' after it changes nothing."""
    _, wild = phrase_core(term.text)
    keys = set()
    for key in phrase_keys(term):
        head = "" if is_unspaced(key[0]) else " "
        tail = "" if wild or is_unspaced(key[-1]) else " "
        keys.add(f"{head}{key}{tail}")
    return keys


def key_shape(spelling: str) -> tuple[bool, bool, bool]:
    """(prefix, open start, open end) of an automaton key (see automaton_keys)."""
    open_end = not spelling.endswith(" ") and is_unspaced(spelling[-1])
    return not spelling.endswith(" ") and not open_end, not spelling.startswith(" "), open_end


def _codes(terms: Iterable[int], mask: int, interned: dict[int, int]) -> Codes:
    """The codes of `terms` in the fields of `mask`, as shared int objects (see _Builder)."""
    return tuple(
        interned.setdefault(code, code)
        for term in sorted(terms)
        for index, bit in enumerate(FIELD_MASKS)
        if mask & bit
        for code in (field_code(term, index),)
    )


_NONE: frozenset[str] = frozenset()  # shared by the rules without a filter (216 bytes each)


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

    def all_of(self, terms: frozenset[int], mask: int) -> AllOfNode:
        each = []
        for term in sorted(terms):
            if (term, mask) not in self.term_codes:
                self.term_codes[term, mask] = _codes((term,), mask, self.interned)
            each.append(self.term_codes[term, mask])
        return AllOfNode(self.codes(terms, mask), tuple(each))

    def node(self, node: Condition, rule: Rule, default_mask: int) -> Node:
        match node:
            case condition.Terms():
                ids, mask = self._leaf(node, rule, default_mask)
                return self.all_of(ids, mask) if node.every else AnyOfNode(self.codes(ids, mask))
            case condition.Not(item):
                return NotNode(self.node(item, rule, default_mask))
            case condition.And(items):
                children = tuple(self.node(i, rule, default_mask) for i in items)
                return (
                    AndOfLeavesNode(children)
                    if AndOfLeavesNode.accepts(children)
                    else AndNode(children)
                )
            case condition.Or(items):
                children = tuple(self.node(i, rule, default_mask) for i in items)
                leaves = tuple(child for child in children if type(child) is AnyOfNode)
                if len(leaves) < len(children):
                    return OrNode(children)
                # One leaf: any term of any of them, each in its own fields.
                return AnyOfNode(tuple(sorted(set().union(*(leaf.codes for leaf in leaves)))))
            case condition.AtLeast(count, items):
                children = tuple(self.node(i, rule, default_mask) for i in items)
                return AtLeastNode(count, children)
            case condition.Near(left, right, distance, ordered):
                left_ids, mask = self._leaf(left, rule, default_mask)
                right_ids, right_mask = self._leaf(right, rule, default_mask)
                both = mask & right_mask
                return NearNode(
                    AnyOfNode(self.codes(left_ids, both)),
                    AnyOfNode(self.codes(right_ids, both)),
                    both,
                    distance,
                    ordered,
                )
        raise TypeError(f"not a condition node: {node!r}")

    def _leaf(
        self, leaf: condition.Terms, rule: Rule, default_mask: int
    ) -> tuple[frozenset[int], int]:
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
            needs_domain=any(mask & FIELD_MASKS[DOMAIN] for mask in builder.term_fields.values())
            or any(rule.allow_domains or rule.deny_domains for rule in compiled if rule),
            needs_prominence=any(
                mask & (FIELD_MASKS[LEAD] | FIELD_MASKS[FRONT])
                for mask in builder.term_fields.values()
            ),
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
        wild, open_start, open_end = key_shape(spelling)
        key = Key(wild, ids, share(cased, cased), share(plain, plain), open_start, open_end)
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
        {number: (key.open_start, key.open_end) for number, key in enumerate(keys) if key.open},
    )


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
