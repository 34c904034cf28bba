"""The compiled layout both sides read: the compiler writes an Index, the matcher reads it.

An Index holds the terms, one automaton (PhraseIndex) per group of fields with the same
phrase terms, whose keys name the rules they trigger, the RE2 set of regex terms, the
requirements that prune candidates, and each rule compiled (CompiledRule: its filters and its
condition as evaluator nodes). Values only: building them is compile.py's, reading them is
match.py's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import ahocorasick_rs

from monitor.matching.evaluate import Node
from monitor.matching.rule import Rule, Term


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """A rule as the matcher evaluates it: its filters first, then its condition's node."""

    rule: Rule
    node: Node
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


def _in_domains(domain: str, domains: tuple[str, ...]) -> bool:
    return any(domain == name or domain.endswith("." + name) for name in domains)


@dataclass(frozen=True, slots=True)
class Key:
    """One automaton key: a folded spelling shared by one or more phrase terms."""

    wild: bool  # a prefix: the hit runs to the end of the word
    terms: tuple[int, ...]  # every term spelled this way, in term order
    cased: tuple[int, ...]  # the case-sensitive ones: each hit is checked in the original text
    plain: tuple[int, ...]  # the others: found wherever the key is found
    open_start: bool = False  # starts in a script without word boundaries: no space before
    open_end: bool = False  # ends in such a script: no space after

    @property
    def open(self) -> bool:
        return self.open_start or self.open_end


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
    # key -> (open start, open end), for the keys without a space at one end (CJK terms)
    unbounded: Mapping[int, tuple[bool, bool]]


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
    needs_prominence: bool  # a term searched in `lead` or `front`: find the lead sentence
    rules: tuple[CompiledRule | None, ...]  # None for disabled rules
