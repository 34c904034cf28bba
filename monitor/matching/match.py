"""Match one article against a RuleSet: one automaton scan per field, then only the rules that
the (term, field) codes found can make true. Pure: same ruleset and article, same matches.

The scan first records which (term, field) pairs were found, as a set of integer codes that
condition nodes test with `isdisjoint`. Positions are worked out only when they are needed:
for NEAR/BEFORE and for the evidence of the rules that matched.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from monitor.matching.compile import (
    FIELD_CODE_BITS,
    FIELD_CODE_MASK,
    FIELD_MASKS,
    Index,
    PhraseIndex,
    RuleSet,
    field_code,
)
from monitor.matching.condition import FIELDS
from monitor.matching.text import FoldedField, fold_keep_case
from monitor.model import Article, Match, TermHit

# (field index, folded start, folded end, original start or -1, original end)
Hit = tuple[int, int, int, int, int]
# A TermHit with its place in an explanation: ((field index, folded start, term id), hit)
Evidence = tuple[tuple[int, int, int], TermHit]

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


def field_texts(article: Article, *, domain: bool = True) -> tuple[str, ...]:
    """The text of each field, in FIELDS order; list fields are joined with ', '.

    Without `domain` the link is not parsed and the domain field is empty (for rule sets
    that neither search nor filter on it).
    """
    return (
        article.title,
        article.summary,
        article.content,
        ", ".join(article.authors),
        ", ".join(article.categories),
        article_domain(article.link) if domain else "",
        article.feed_name,
        ", ".join(article.feed_tags),
    )


class _FieldScan:
    """The automaton hits in one field: (end in the padded text, key index), in text order."""

    __slots__ = ("_by_key", "_by_term", "folded", "found", "phrases")

    def __init__(self, folded: FoldedField, phrases: PhraseIndex, found: list[tuple[int, int]]):
        self.folded = folded
        self.phrases = phrases
        self.found = found
        self._by_key: dict[int, list[int]] | None = None
        self._by_term: dict[int, list[tuple[int, int]]] | None = None

    def ends(self, key: int) -> list[int]:
        if self._by_key is None:
            self._by_key = {}
            for end, found_key in self.found:
                self._by_key.setdefault(found_key, []).append(end)
        return self._by_key.get(key, [])

    def term_found(self, term: int) -> list[tuple[int, int]]:
        """(end, key) of every automaton hit of `term`, in text order (one key per end)."""
        if self._by_term is None:
            self._by_term = {}
            keys = self.phrases.keys
            for item in self.found:
                for term_id in keys[item[1]].terms:
                    self._by_term.setdefault(term_id, []).append(item)
        return self._by_term.get(term, [])

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

    __slots__ = (
        "_cased",
        "_evidence",
        "_explained",
        "_fields",
        "_folded",
        "_hits",
        "_regex",
        "found",
        "found_terms",
        "index",
        "present",
        "texts",
    )

    def __init__(self, index: Index, texts: tuple[str, ...]) -> None:
        self.index = index
        self.texts = texts
        self.present: set[int] = set()  # field_code(term, field) of every term found
        self._fields: dict[int, _FieldScan] = {}
        self._folded: dict[int, FoldedField] = {}
        self._cased: dict[tuple[int, int], set[int]] = {}  # (term, field) -> ends that passed
        self._regex: dict[int, list[Hit]] = {}
        self._hits: dict[int, list[Hit]] = {}
        self.found: dict[int, int] = {}  # term -> bits of the fields it was found in
        self.found_terms: set[int] = set()  # its keys, as a set: for C-speed intersections
        self._explained: dict[tuple[int, Hit], Evidence] = {}  # shared between matches
        self._evidence: dict[int, list[Evidence]] = {}

    def folded(self, field: int) -> FoldedField:
        """The field folded, with its offset map; built once."""
        folded = self._folded.get(field)
        if folded is None:
            folded = self._folded[field] = FoldedField(self.texts[field])
        return folded

    def scan_phrases(self, field: int, phrases: PhraseIndex, candidates: set[int]) -> None:
        """Run the automaton over one field; add the rules its keys trigger to `candidates`."""
        folded = self.folded(field)
        found = list(phrases.automaton.iter(folded.padded))
        if not found:
            return
        scan = self._fields[field] = _FieldScan(folded, phrases, found)
        keys = {key for _, key in found}
        present = self.present
        codes = phrases.codes[field]
        rules = phrases.rules[field]
        for key in keys:
            present.update(codes[key])
            candidates.update(rules[key])
        if phrases.cased and not phrases.cased.isdisjoint(keys):
            for key in phrases.cased.intersection(keys):
                for end in scan.ends(key):
                    hit = scan.hit(field, key, end)
                    for term in phrases.keys[key].cased:
                        if self._case_matches(hit, self.index.case_stems[term]):
                            self._cased.setdefault((term, field), set()).add(end)
                            present.add(field_code(term, field))

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
            present = self.present
            for field, scan in self._fields.items():
                if field_code(term, field) not in present:
                    continue
                found = scan.term_found(term)
                passed = self._cased.get((term, field))
                if passed is not None:
                    found = [item for item in found if item[0] in passed]
                hit = scan.hit
                hits.extend([hit(field, key, end) for end, key in found])
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

    def find_fields(self) -> None:
        """Fill `found` from `present` (once the scan is over)."""
        found = self.found
        for code in self.present:
            term = code >> FIELD_CODE_BITS
            found[term] = found.get(term, 0) | FIELD_MASKS[code & FIELD_CODE_MASK]
        self.found_terms = set(found)

    def evidence(self, term: int) -> list[Evidence]:
        """Every hit of `term` as evidence, in field and text order; built once per term."""
        entries = self._evidence.get(term)
        if entries is None:
            entries = self._evidence[term] = [self.entry(term, hit) for hit in self.term_hits(term)]
        return entries

    def entry(self, term_id: int, hit: Hit) -> Evidence:
        """One hit of a term as evidence, with its TermHit (offsets into the original text)."""
        entry = self._explained.get((term_id, hit))
        if entry is None:
            first, last = self.original(hit)
            term = self.index.terms[term_id]
            term_hit = TermHit(
                term=term.text,
                field=FIELDS[hit[0]],
                text=self.texts[hit[0]][first:last],
                start=first,
                end=last,
                list_name=term.list_name,
            )
            entry = self._explained[term_id, hit] = ((hit[0], hit[1], term_id), term_hit)
        return entry

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


def _scan(ruleset: RuleSet, texts: tuple[str, ...]) -> tuple[Scan, set[int]]:
    """Find every term of `ruleset` in the fields; also return the rules worth evaluating."""
    index = ruleset.index
    scan = Scan(index, texts)
    candidates: set[int] = set()
    for field, phrases in index.phrases:
        if texts[field]:
            scan.scan_phrases(field, phrases, candidates)
    if index.regex_set is not None:
        triggers = index.triggers
        for field in index.regex_fields:
            if texts[field]:
                for term in scan.scan_regexes(field):
                    candidates.update(triggers.get(field_code(term, field), ()))
    if scan.present:
        scan.find_fields()
    if candidates and index.requirements:
        # Drop the rules a further requirement of which has no term found (cheaper in sets).
        present = scan.present
        for by_code, having in index.requirements:
            checked = candidates.intersection(having)
            if checked:
                passed: set[int] = set()
                for code in present:
                    rules = by_code.get(code)
                    if rules is not None:
                        passed.update(rules)
                candidates.difference_update(checked.difference(passed))
    candidates.update(index.always)
    return scan, candidates


def scan_article(ruleset: RuleSet, article: Article) -> Scan:
    """Find every term of `ruleset` in `article` (no condition evaluated yet)."""
    return _scan(ruleset, field_texts(article, domain=ruleset.index.needs_domain))[0]


def match_article(ruleset: RuleSet, article: Article) -> tuple[Match, ...]:
    """Every enabled rule of `ruleset` that matches `article`, in ruleset order, with evidence."""
    index = ruleset.index
    scan, candidates = _scan(ruleset, field_texts(article, domain=index.needs_domain))
    if not candidates:
        return ()
    matches = []
    present = scan.present
    domain = scan.texts[5]
    rules = index.rules
    for rule_index in sorted(candidates):
        compiled = rules[rule_index]
        if compiled is None:
            continue
        if compiled.filtered and not compiled.accepts(domain, article.feed_tags, article.language):
            continue
        node = compiled.node
        if node.holds(present, scan):
            evidence: list[Evidence] = []
            node.collect(scan, evidence)
            matches.append(Match(*compiled.head, _explain(evidence)))
    return tuple(matches)


def _first(entry: Evidence) -> tuple[int, int, int]:
    return entry[0]


def _explain(evidence: list[Evidence]) -> tuple[TermHit, ...]:
    """The evidence as TermHits in field and text order, one per term, field and place."""
    if len(evidence) == 1:
        return (evidence[0][1],)
    evidence.sort(key=_first)
    seen: set[tuple[int, int, int]] = set()
    hits = []
    for (field, _, term), term_hit in evidence:
        key = (term, field, term_hit.start)
        if key not in seen:
            seen.add(key)
            hits.append(term_hit)
    return tuple(hits)
