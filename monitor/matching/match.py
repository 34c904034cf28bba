"""Match one article against a RuleSet: one automaton scan per field, then only the rules that
a found term can make true. Pure: same ruleset and article, same matches.

The scan first records which (term, field) pairs were found, as a set of integer codes that
condition nodes test with `isdisjoint`. Positions are worked out only when they are needed:
for NEAR/BEFORE and for the evidence of the rules that matched.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from monitor.matching.compile import (
    FIELD_CODE_BITS,
    FIELD_MASKS,
    Index,
    PhraseIndex,
    RuleSet,
    field_code,
)
from monitor.matching.condition import FIELDS
from monitor.matching.rule import Term
from monitor.matching.text import FoldedField, fold_keep_case
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


class _FieldScan:
    """The automaton hits in one field: (end in the padded text, key index), in text order."""

    __slots__ = ("_by_key", "by_keys", "folded", "found", "phrases")

    def __init__(self, folded: FoldedField, phrases: PhraseIndex, found: list[tuple[int, int]]):
        self.folded = folded
        self.phrases = phrases
        self.found = found
        self._by_key: dict[int, list[int]] | None = None
        # Hits per set of keys: the same phrase in lists of different names is several terms.
        self.by_keys: dict[tuple[int, ...], list[Hit]] = {}

    def ends(self, key: int) -> list[int]:
        if self._by_key is None:
            self._by_key = {}
            for end, found_key in self.found:
                self._by_key.setdefault(found_key, []).append(end)
        return self._by_key.get(key, [])

    def hit(self, field: int, key: int, end: int) -> Hit:
        """The hit of `key` ending at padded index `end`, in folded coordinates."""
        entry = self.phrases.keys[key]
        if entry.wild:
            start = end - entry.length
            stop = self.folded.folded.find(" ", end)
            return (field, start, len(self.folded.folded) if stop < 0 else stop, -1, -1)
        return (field, end - entry.length - 1, end - 1, -1, -1)


class Scan:
    """What one article contains: `present` codes, and hits per term worked out on demand."""

    __slots__ = ("_cased", "_fields", "_folded", "_hits", "_regex", "index", "present", "texts")

    def __init__(self, index: Index, texts: tuple[str, ...]) -> None:
        self.index = index
        self.texts = texts
        self.present: set[int] = set()  # field_code(term, field) of every term found
        self._fields: dict[int, _FieldScan] = {}
        self._folded: dict[int, FoldedField] = {}
        self._cased: dict[tuple[int, int], set[int]] = {}  # (term, field) -> ends that passed
        self._regex: dict[int, list[Hit]] = {}
        self._hits: dict[int, list[Hit]] = {}

    def folded(self, field: int) -> FoldedField:
        """The field folded, with its offset map; built once."""
        folded = self._folded.get(field)
        if folded is None:
            folded = self._folded[field] = FoldedField(self.texts[field])
        return folded

    def scan_phrases(self, field: int, phrases: PhraseIndex) -> set[int]:
        """Run the automaton over one field; return the indices of the keys found."""
        folded = self.folded(field)
        found = list(phrases.automaton.iter(folded.padded))
        if not found:
            return set()
        scan = self._fields[field] = _FieldScan(folded, phrases, found)
        keys = {key for _, key in found}
        present = self.present
        for key in keys:
            entry = phrases.keys[key]
            present.update([term << FIELD_CODE_BITS | field for term in entry.plain])
            if entry.cased:
                for end in scan.ends(key):
                    hit = scan.hit(field, key, end)
                    for term in entry.cased:
                        if self._case_matches(hit, self.index.case_stems[term]):
                            self._cased.setdefault((term, field), set()).add(end)
                            present.add(field_code(term, field))
        return keys

    def _case_matches(self, hit: Hit, stem: str) -> bool:
        """A case-sensitive term: the original text must show the stem in the case written."""
        first, last = self.folded(hit[0]).span(hit[1], hit[2])
        return fold_keep_case(self.texts[hit[0]][first:last]).replace(" ", "").startswith(stem)

    def scan_regexes(self, field: int) -> set[int]:
        """Run the RE2 set over one field's original text; return the terms found."""
        index = self.index
        text = self.texts[field]
        found = set()
        for position in index.regex_set.Match(text) or ():
            term, pattern = index.regex_terms[position]
            folded = None
            for count, match in enumerate(pattern.finditer(text)):
                if count >= MAX_REGEX_MATCHES:
                    break
                first, last = match.span()
                if last == first:
                    continue
                folded = folded or self.folded(field)
                start = min(folded.first_at_or_after(first), max(len(folded.folded) - 1, 0))
                end = max(folded.first_at_or_after(last), start + 1)
                self._regex.setdefault(term, []).append((field, start, end, first, last))
                self.present.add(field_code(term, field))
                found.add(term)
        return found

    def term_hits(self, term: int) -> list[Hit]:
        """Where `term` was found: the first MAX_HITS_PER_TERM hits, in field and text order."""
        hits = self._hits.get(term)
        if hits is not None:
            return hits
        if term in self._regex:
            hits = self._regex[term][:MAX_HITS_PER_TERM]
        else:
            hits = []
            for field, scan in self._fields.items():
                keys = scan.phrases.term_keys.get(term)
                if keys is None or field_code(term, field) not in self.present:
                    continue
                passed = self._cased.get((term, field))
                if passed is None and keys in scan.by_keys:
                    hits.extend(scan.by_keys[keys])
                else:
                    ends = sorted(
                        end
                        for key in keys
                        for end in scan.ends(key)
                        if passed is None or end in passed
                    )
                    found = [scan.hit(field, _key_at(scan, keys, end), end) for end in ends]
                    if passed is None:
                        scan.by_keys[keys] = found
                    hits.extend(found)
                if len(hits) >= MAX_HITS_PER_TERM:
                    break
            del hits[MAX_HITS_PER_TERM:]
        self._hits[term] = hits
        return hits

    @property
    def hits(self) -> dict[int, list[Hit]]:
        """Every term found with its hits, in the order the terms were first found."""
        order: dict[int, None] = {}
        for field, scan in self._fields.items():
            keys = scan.phrases.keys
            found = sorted(
                scan.found,
                key=lambda item: (
                    _key_end(keys[item[1]].wild, item[0]),
                    -keys[item[1]].length,
                    keys[item[1]].wild,
                ),
            )
            for end, key in found:
                for term in keys[key].terms:
                    passed = self._cased.get((term, field))
                    if term not in self.index.case_stems or (passed and end in passed):
                        order[term] = None
        order.update(dict.fromkeys(self._regex))
        return {term: self.term_hits(term) for term in order}

    @property
    def masks(self) -> dict[int, int]:
        """Term id -> bits of the fields it was found in."""
        masks: dict[int, int] = {}
        for code in self.present:
            term = code >> FIELD_CODE_BITS
            masks[term] = masks.get(term, 0) | FIELD_MASKS[code & ((1 << FIELD_CODE_BITS) - 1)]
        return masks

    def words(self, hit: Hit) -> tuple[int, int]:
        """Index of the first and the last word of a hit."""
        folded = self.folded(hit[0])
        return folded.word_index(hit[1]), folded.word_index(hit[2] - 1)

    def original(self, hit: Hit) -> tuple[int, int]:
        if hit[3] >= 0:
            return hit[3], hit[4]
        return self.folded(hit[0]).span(hit[1], hit[2])


def _key_end(wild: bool, end: int) -> int:
    """Where a key ends in the folded text, without its trailing boundary space."""
    return end - 1 if wild else end - 2


def _key_at(scan: _FieldScan, keys: tuple[int, ...], end: int) -> int:
    # The key of `keys` found ending at `end` (one term matches once per position).
    if len(keys) == 1:
        return keys[0]
    return next(key for key in keys if end in scan.ends(key))


def _scan(ruleset: RuleSet, texts: tuple[str, ...]) -> tuple[Scan, set[int]]:
    """Find every term of `ruleset` in the fields; also return the rules worth evaluating."""
    index = ruleset.index
    scan = Scan(index, texts)
    candidates: set[int] = set()
    for field, phrases in index.phrases:
        if texts[field]:
            keys = phrases.keys
            for key in scan.scan_phrases(field, phrases):
                candidates.update(keys[key].rules)
    if index.regex_set is not None:
        triggers = index.triggers
        for field in index.regex_fields:
            if texts[field]:
                for term in scan.scan_regexes(field):
                    candidates.update(triggers.get(term, ()))
    if candidates and index.requirements:
        # Drop the rules a further requirement of which has no term found (cheaper in sets).
        found = {code >> FIELD_CODE_BITS for code in scan.present}
        for by_term, having in index.requirements:
            checked = candidates.intersection(having)
            if checked:
                passed: set[int] = set()
                for term in found:
                    rules = by_term.get(term)
                    if rules is not None:
                        passed.update(rules)
                candidates.difference_update(checked.difference(passed))
    candidates.update(index.always)
    return scan, candidates


def scan_article(ruleset: RuleSet, article: Article) -> Scan:
    """Find every term of `ruleset` in `article` (no condition evaluated yet)."""
    return _scan(ruleset, field_texts(article))[0]


def match_article(ruleset: RuleSet, article: Article) -> tuple[Match, ...]:
    """Every enabled rule of `ruleset` that matches `article`, in ruleset order, with evidence."""
    index = ruleset.index
    scan, candidates = _scan(ruleset, field_texts(article))
    if not candidates:
        return ()
    matches = []
    present = scan.present
    domain = scan.texts[5]
    explained: dict[tuple[int, Hit], TermHit] = {}
    for rule_index in sorted(candidates):
        compiled = index.rules[rule_index]
        if compiled is None:
            continue
        if compiled.filtered and not compiled.accepts(domain, article.feed_tags, article.language):
            continue
        if compiled.node.holds(present, scan):
            rule = compiled.rule
            evidence: list[tuple[int, Hit]] = []
            compiled.node.collect(scan, evidence)
            matches.append(
                Match(
                    rule.id,
                    rule.title,
                    rule.severity,
                    rule.channel,
                    _explain(scan, evidence, index.terms, explained),
                )
            )
    return tuple(matches)


def _explain(
    scan: Scan,
    evidence: list[tuple[int, Hit]],
    terms: tuple[Term, ...],
    explained: dict[tuple[int, Hit], TermHit],
) -> tuple[TermHit, ...]:
    """The evidence as TermHits, one per term, field and place; shared between matches."""
    seen: dict[tuple[int, int, int], TermHit] = {}
    for item in sorted(evidence, key=lambda item: (item[1][0], item[1][1], item[0])):
        term_hit = explained.get(item)
        if term_hit is None:
            term_id, hit = item
            first, last = scan.original(hit)
            term = terms[term_id]
            term_hit = explained[item] = TermHit(
                term=term.text,
                field=FIELDS[hit[0]],
                text=scan.texts[hit[0]][first:last],
                start=first,
                end=last,
                list_name=term.list_name,
            )
        key = (item[0], item[1][0], term_hit.start)
        if key not in seen:
            seen[key] = term_hit
    return tuple(seen.values())
