"""Match one article against a RuleSet: one automaton scan per field, then only the rules whose
terms were hit. Pure: same ruleset and article, same matches.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any
from urllib.parse import urlsplit

from monitor.matching.compile import FIELD_MASKS, RuleSet
from monitor.matching.condition import FIELDS
from monitor.matching.rule import Term
from monitor.matching.text import FoldedText, fold, fold_keep_case, fold_with_offsets
from monitor.model import Article, Match, TermHit

# (field index, folded start, folded end, original start or -1, original end)
Hit = tuple[int, int, int, int, int]

MAX_HITS_PER_TERM = 100  # per article; bounds NEAR pairs on repetitive text
MAX_REGEX_MATCHES = 100  # per term and field


def article_domain(link: str | None) -> str:
    """The link's host name, lower-case, without a leading 'www.'."""
    if not link:
        return ""
    try:
        host = urlsplit(link).hostname or ""
    except ValueError:
        return ""
    return host.lower().removeprefix("www.")


def field_texts(article: Article) -> tuple[str, ...]:
    """The text of each field, in FIELDS order; list fields are joined with ', '."""
    return (
        article.title,
        article.summary,
        article.content,
        ", ".join(article.authors),
        ", ".join(article.categories),
        article_domain(article.link),
        article.feed_name,
        ", ".join(article.feed_tags),
    )


class Scan:
    """Hits found in one article; condition nodes read `masks` and `hits`."""

    __slots__ = ("_mapped", "hits", "masks", "texts")

    def __init__(self, texts: tuple[str, ...]) -> None:
        self.texts = texts
        self.hits: dict[int, list[Hit]] = {}
        self.masks: dict[int, int] = {}  # term id -> bits of the fields it was found in
        self._mapped: dict[int, FoldedText] = {}

    def mapped(self, field: int) -> FoldedText:
        """The field folded with its offset map, built on first use."""
        if field not in self._mapped:
            self._mapped[field] = fold_with_offsets(self.texts[field])
        return self._mapped[field]

    def add(self, term: int, hit: Hit) -> None:
        found = self.hits.setdefault(term, [])
        if len(found) < MAX_HITS_PER_TERM:
            found.append(hit)
            self.masks[term] = self.masks.get(term, 0) | FIELD_MASKS[hit[0]]

    def words(self, hit: Hit) -> tuple[int, int]:
        """Index of the first and the last word of a hit."""
        folded = self.mapped(hit[0]).folded
        return folded.count(" ", 0, hit[1]), folded.count(" ", 0, hit[2] - 1)

    def original(self, hit: Hit) -> tuple[int, int]:
        if hit[3] >= 0:
            return hit[3], hit[4]
        return self.mapped(hit[0]).span(hit[1], hit[2])


def scan_article(ruleset: RuleSet, article: Article) -> Scan:
    """Find every term of `ruleset` in `article` (no condition evaluated yet)."""
    index = ruleset.index
    texts = field_texts(article)
    scan = Scan(texts)
    for field, automaton in index.automata:
        if texts[field]:
            _scan_phrases(scan, field, automaton, index.case_stems)
    if index.regex_set is not None:
        for field in index.regex_fields:
            if texts[field]:
                _scan_regexes(scan, field, index.regex_set, index.regex_terms)
    return scan


def match_article(ruleset: RuleSet, article: Article) -> tuple[Match, ...]:
    """Every enabled rule of `ruleset` that matches `article`, in ruleset order, with evidence."""
    index = ruleset.index
    scan = scan_article(ruleset, article)
    candidates = set(index.always)
    for term in scan.hits:
        candidates.update(index.term_rules[term])
    matches = []
    domain = scan.texts[5]
    for rule_index in sorted(candidates):
        compiled = index.rules[rule_index]
        if compiled is None or not compiled.accepts(domain, article.feed_tags, article.language):
            continue
        if compiled.node.holds(scan):
            rule = compiled.rule
            evidence: list[tuple[int, Hit]] = []
            compiled.node.collect(scan, evidence)
            matches.append(
                Match(
                    rule.id,
                    rule.title,
                    rule.severity,
                    rule.channel,
                    _explain(scan, evidence, index.terms),
                )
            )
    return tuple(matches)


def _scan_phrases(scan: Scan, field: int, automaton: Any, case_stems: dict[int, str]) -> None:
    folded = fold(scan.texts[field])
    length = len(folded)
    for end, (key_length, strict, wild) in automaton.iter(folded):
        start = end - key_length + 1
        if start and folded[start - 1] != " ":
            continue
        after = end + 1
        if strict and (after == length or folded[after] == " "):
            for term in strict:
                if term in case_stems and not _case_matches(
                    scan, field, start, after, case_stems[term]
                ):
                    continue
                scan.add(term, (field, start, after, -1, -1))
        if wild:
            word_end = folded.find(" ", after)
            word_end = length if word_end < 0 else word_end
            for term in wild:
                if term in case_stems and not _case_matches(
                    scan, field, start, word_end, case_stems[term]
                ):
                    continue
                scan.add(term, (field, start, word_end, -1, -1))


def _case_matches(scan: Scan, field: int, start: int, end: int, stem: str) -> bool:
    """A case-sensitive term: the original text must show the stem in the case written."""
    mapped = scan.mapped(field)
    first, last = mapped.span(start, end)
    return fold_keep_case(mapped.original[first:last]).replace(" ", "").startswith(stem)


def _scan_regexes(
    scan: Scan, field: int, regex_set: Any, regex_terms: tuple[tuple[int, Any], ...]
) -> None:
    text = scan.texts[field]
    for position in regex_set.Match(text) or ():
        term, pattern = regex_terms[position]
        mapped = None
        for count, found in enumerate(pattern.finditer(text)):
            if count >= MAX_REGEX_MATCHES:
                break
            first, last = found.span()
            if last == first:
                continue
            mapped = mapped or scan.mapped(field)
            start = min(bisect_left(mapped.offsets, first), max(len(mapped.folded) - 1, 0))
            end = max(bisect_left(mapped.offsets, last), start + 1)
            scan.add(term, (field, start, end, first, last))


def _explain(
    scan: Scan, evidence: list[tuple[int, Hit]], terms: tuple[Term, ...]
) -> tuple[TermHit, ...]:
    seen: dict[tuple[int, int, int], TermHit] = {}
    for term_id, hit in sorted(evidence, key=lambda item: (item[1][0], item[1][1], item[0])):
        first, last = scan.original(hit)
        key = (term_id, hit[0], first)
        if key not in seen:
            term = terms[term_id]
            seen[key] = TermHit(
                term=term.text,
                field=FIELDS[hit[0]],
                text=scan.texts[hit[0]][first:last],
                start=first,
                end=last,
                list_name=term.list_name,
            )
    return tuple(seen.values())
