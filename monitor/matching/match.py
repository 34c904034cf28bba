"""Match one article against a RuleSet: one automaton scan per field, then only the rules that
the keys found can make true. Pure: same ruleset and article, same matches.

The keys found name the rules worth evaluating (and, per requirement level, the rules whose
further requirement they meet). Only when one is left are the (term, field) pairs found
gathered, as a set of integer codes that condition nodes test with `isdisjoint`. Positions
are worked out only when needed: for NEAR/BEFORE and for the evidence of the rules that
matched, once per code and shared by every rule that matched on it. Reads the Index that
compile.py builds (index.py); the engine's map is in docs/design.md ("Matching").
"""

from __future__ import annotations

from itertools import chain
from operator import itemgetter
from urllib.parse import urlsplit

from monitor.matching.compile import RuleSet
from monitor.matching.condition import FIELDS
from monitor.matching.index import Index, PhraseIndex
from monitor.matching.layout import (
    DOMAIN,
    EVIDENCE_HIT,
    EVIDENCE_PLACE,
    FIELD_CODE_BITS,
    FIELD_CODE_MASK,
    FOUND_END,
    FOUND_KEY,
    FOUND_START,
    FRONT,
    LEAD,
    TITLE,
    Evidence,
    Found,
    Hit,
    field_code,
)
from monitor.matching.prominence import front_text, lead_sentence
from monitor.matching.text import FoldedField, FrontField, fold_keep_case
from monitor.model import Article, Match, TermHit

MAX_HITS_PER_TERM = 100  # per article; bounds NEAR pairs on repetitive text
MAX_REGEX_MATCHES = 100  # per term and field
_KEY = itemgetter(FOUND_KEY)
_PLACE = itemgetter(EVIDENCE_PLACE)


def article_domain(link: str | None) -> str:
    """The link's host name, lower-case, without a leading 'www.'."""
    if not link:
        return ""
    try:
        host = urlsplit(link).hostname or ""
    except ValueError:
        return ""
    return host.lower().removeprefix("www.")


def field_texts(
    article: Article, *, domain: bool = True, prominence: bool = True
) -> tuple[str, ...]:
    """The text of each field, in FIELDS order; list fields are joined with ', '.

    Without `domain` the link is not parsed and the domain field is empty, and without
    `prominence` the lead sentence is not looked for and `lead` and `front` are empty (for
    rule sets that do not search them).
    """
    lead = lead_sentence(article.summary, article.language) if prominence else ""
    return (
        article.title,
        article.summary,
        lead,
        front_text(article.title, lead) if prominence else "",
        article.content,
        ", ".join(article.authors),
        ", ".join(article.categories),
        article_domain(article.link) if domain else "",
        article.feed_name,
        ", ".join(article.feed_tags),
    )


class _FieldScan:
    """The automaton hits in one field (layout.Found), in order of their ends."""

    __slots__ = ("_by_code", "field", "folded", "found", "keys", "phrases")

    def __init__(
        self,
        field: int,
        folded: FoldedField,
        phrases: PhraseIndex,
        found: list[Found],
        keys: set[int],
    ) -> None:
        self.field = field
        self.folded = folded
        self.phrases = phrases
        self.found = found
        self.keys = keys  # the distinct keys found
        self._by_code: dict[int, list[Found]] | None = None

    def code_found(self, code: int) -> list[Found]:
        """Every automaton hit of the plain term of `code` (whose field this is), in text order.

        Read from the rows of codes per key, which the scan has just read (the Key objects
        are not, and at 1,000 rules reading them cost more than the rest).
        """
        if self._by_code is None:
            self._by_code = {}
            codes = self.phrases.codes[self.field]
            for item in self.found:
                for found in codes[item[FOUND_KEY]]:
                    self._by_code.setdefault(found, []).append(item)
        return self._by_code.get(code, [])

    def hit(self, key: int, start: int, end: int) -> Hit:
        """The automaton hit [start, end) of `key` in the padded text, in folded coordinates.

        A key is " words " (whole words) or " prefix" (runs to the end of the word); padded
        index i is folded index i - 1, so the key's leading space sits just before `start`.
        A key with no space at an end (a CJK term, `unbounded`) ends there with its text.
        """
        phrases = self.phrases
        if key in phrases.wild:
            if key in phrases.unbounded:
                start -= 1
            stop = self.folded.folded.find(" ", end - 1)
            return (self.field, start, len(self.folded.folded) if stop < 0 else stop, -1, -1)
        if key in phrases.unbounded:  # no space before or after: the key's text is the hit
            open_start, open_end = phrases.unbounded[key]
            return (self.field, start - open_start, end - 2 + open_end, -1, -1)
        return (self.field, start, end - 2, -1, -1)


class Scan:
    """What one article contains: `present` codes, and hits per code worked out on demand."""

    __slots__ = (
        "_cased",
        "_code_hits",
        "_evidence",
        "_folded",
        "_regex",
        "fields",
        "index",
        "present",
        "texts",
    )

    def __init__(self, index: Index, texts: tuple[str, ...]) -> None:
        self.index = index
        self.texts = texts
        self.present: set[int] = set()  # field_code(term, field) of every term found
        self.fields: dict[int, _FieldScan] = {}
        self._folded: dict[int, FoldedField] = {}
        # (term, field) code of a case-sensitive term -> its automaton hits that passed
        self._cased: dict[int, list[Found]] = {}
        self._regex: dict[int, list[Hit]] = {}  # code -> hits of a regex term
        self._code_hits: dict[int, list[Hit]] = {}
        self._evidence: dict[int, list[Evidence]] = {}  # code -> evidence, shared by matches

    def folded(self, field: int) -> FoldedField:
        """The field folded, with its offset map; built once."""
        folded = self._folded.get(field)
        if folded is None:
            texts = self.texts
            if field == FRONT and texts[TITLE] and texts[LEAD]:
                # Made of the title and the lead as folded for their own fields.
                folded = FrontField(self.folded(TITLE), self.folded(LEAD))
            else:
                folded = FoldedField(texts[field])
            self._folded[field] = folded
        return folded

    def scan_phrases(self, field: int, phrases: PhraseIndex, candidates: set[int]) -> list[int]:
        """Run the automaton over one field and add the rules its keys trigger to `candidates`;
        return the codes of cased terms found (their rules are looked up by code).

        Most keys found trigger nothing (the shared empty tuple): a loop that skips them is
        twice as fast as one C-level update over them all. The codes of plain terms are added
        later, by `add_plain_codes`, and only when a rule is worth evaluating.
        """
        folded = self.folded(field)
        found = phrases.automaton.find_matches_as_indexes(folded.padded, overlapping=True)
        if not found:
            return []
        found = folded.char_hits(found)
        keys = set(map(_KEY, found))
        scan = self.fields[field] = _FieldScan(field, folded, phrases, found, keys)
        by_key = phrases.rules[field]
        for key in keys:
            rules = by_key[key]
            if rules:
                candidates.update(rules)
        if phrases.cased and not phrases.cased.isdisjoint(keys):
            return self._cased_codes(field, scan)
        return []

    def _cased_codes(self, field: int, scan: _FieldScan) -> list[int]:
        """The codes of the case-sensitive terms whose hits show the case written."""
        phrases = scan.phrases
        present = self.present
        cased_found: list[int] = []
        for item in scan.found:  # in text order, as code_hits wants them
            key = item[FOUND_KEY]
            if key not in phrases.cased:
                continue
            hit = scan.hit(*item)
            for term in phrases.keys[key].cased:
                if self._case_matches(hit, self.index.case_stems[term]):
                    code = field_code(term, field)
                    self._cased.setdefault(code, []).append(item)
                    if code not in present:
                        present.add(code)
                        cased_found.append(code)
        return cased_found

    def add_plain_codes(self) -> None:
        """Add the codes of the plain phrase terms found to `present` (cased and regex terms
        are added by the scan itself)."""
        present = self.present
        for field, found in self.fields.items():
            codes = found.phrases.codes[field]
            present.update(chain.from_iterable(map(codes.__getitem__, found.keys)))

    def _case_matches(self, hit: Hit, stem: str) -> bool:
        """A case-sensitive term: the original text must show the stem in the case written."""
        field, start, end, _, _ = hit
        first, last = self.folded(field).span(start, end)
        return fold_keep_case(self.texts[field][first:last]).replace(" ", "").startswith(stem)

    def scan_regexes(self, field: int) -> list[int]:
        """Run the RE2 set over one field's original text; return the codes found."""
        index = self.index
        text = self.texts[field]
        found = []
        for position in index.regex_set.Match(text) or ():
            term, pattern = index.regex_terms[position]
            code = field_code(term, field)
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
                self._regex.setdefault(code, []).append((field, start, end, first, last))
            if code in self._regex and code not in self.present:
                self.present.add(code)
                found.append(code)
        return found

    def code_hits(self, code: int) -> list[Hit]:
        """Where the term of `code` was found in its field: the first MAX_HITS_PER_TERM hits."""
        hits = self._code_hits.get(code)
        if hits is not None:
            return hits
        if code in self._regex:
            hits = self._regex[code][:MAX_HITS_PER_TERM]
        elif code not in self.present:
            hits = []
        else:
            field = code & FIELD_CODE_MASK
            scan = self.fields[field]
            found = self._cased.get(code) or scan.code_found(code)
            hit = scan.hit
            hits = [hit(*item) for item in found[:MAX_HITS_PER_TERM]]
        self._code_hits[code] = hits
        return hits

    def term_hits(self, term: int) -> list[Hit]:
        """Where `term` was found, in field and text order."""
        return [
            hit for field in range(len(FIELDS)) for hit in self.code_hits(field_code(term, field))
        ]

    @property
    def hits(self) -> dict[int, list[Hit]]:
        """Every term found with its hits, in the order the terms were first found."""
        order: dict[int, None] = {}
        for field, scan in self.fields.items():
            keys = scan.phrases.keys
            # By where the key's text ends, the longer first, whole words before prefixes.
            found = sorted(
                scan.found,
                key=lambda item: (
                    item[FOUND_END]
                    - (1 if keys[item[FOUND_KEY]].wild or keys[item[FOUND_KEY]].open_end else 2),
                    item[FOUND_START],
                    keys[item[FOUND_KEY]].wild,
                ),
            )
            for item in found:
                for term in keys[item[FOUND_KEY]].terms:
                    passed = self._cased.get(field_code(term, field))
                    if term not in self.index.case_stems or (passed and item in passed):
                        order[term] = None
        order.update(dict.fromkeys(code >> FIELD_CODE_BITS for code in self._regex))
        return {term: self.term_hits(term) for term in order}

    def evidence(self, code: int) -> list[Evidence]:
        """Every hit of the term of `code` in its field as evidence, in text order; built once."""
        entries = self._evidence.get(code)
        if entries is None:
            term_id = code >> FIELD_CODE_BITS
            entries = self._evidence[code] = [
                self.entry(term_id, hit) for hit in self.code_hits(code)
            ]
        return entries

    def entry(self, term_id: int, hit: Hit) -> Evidence:
        """One hit of a term as evidence, with its TermHit (offsets into the original text)."""
        field, start, end, first, last = hit
        if first < 0:
            first, last = self.folded(field).span(start, end)
        term = self.index.terms[term_id]
        text = self.texts[field]
        term_hit = TermHit(term.text, FIELDS[field], text[first:last], first, last, term.list_name)
        return ((field, start, term_id), term_hit)

    def words(self, hit: Hit) -> tuple[int, int]:
        """Index of the first and the last word of a hit."""
        field, start, end, _, _ = hit
        folded = self.folded(field)
        return folded.word_index(start), folded.word_index(end - 1)


def _scan(ruleset: RuleSet, texts: tuple[str, ...]) -> tuple[Scan, set[int]]:
    """Find every term of `ruleset` in the fields; also return the rules worth evaluating."""
    index = ruleset.index
    scan = Scan(index, texts)
    candidates: set[int] = set()
    extra: list[int] = []  # codes not found through an automaton key: cased and regex terms
    for field, phrases in index.phrases:
        if texts[field]:
            extra += scan.scan_phrases(field, phrases, candidates)
    if index.regex_set is not None:
        for field in index.regex_fields:
            if texts[field]:
                extra += scan.scan_regexes(field)
    triggers = index.triggers
    for code in extra:
        candidates.update(triggers.get(code, ()))
    candidates.update(index.always)
    # Drop the rules a further requirement of which has no term found (cheaper in sets).
    for level, (by_code, having) in enumerate(index.requirements):
        if not candidates:
            break
        checked = candidates.intersection(having)
        if not checked:
            continue
        passed: set[int] = set()
        for field, found in scan.fields.items():
            by_key = found.phrases.passes[level][field]
            for key in found.keys:
                rules = by_key[key]
                if rules:
                    passed.update(rules)
        for code in extra:
            passed.update(by_code.get(code, ()))
        candidates.difference_update(checked.difference(passed))
    if candidates:
        scan.add_plain_codes()
    return scan, candidates


def _texts(index: Index, article: Article) -> tuple[str, ...]:
    return field_texts(article, domain=index.needs_domain, prominence=index.needs_prominence)


def scan_article(ruleset: RuleSet, article: Article) -> Scan:
    """Find every term of `ruleset` in `article` (no condition evaluated yet)."""
    scan, candidates = _scan(ruleset, _texts(ruleset.index, article))
    if not candidates:
        scan.add_plain_codes()
    return scan


def match_article(ruleset: RuleSet, article: Article) -> tuple[Match, ...]:
    """Every enabled rule of `ruleset` that matches `article`, in ruleset order, with evidence."""
    index = ruleset.index
    scan, candidates = _scan(ruleset, _texts(index, article))
    if not candidates:
        return ()
    matches = []
    present = scan.present
    domain = scan.texts[DOMAIN]
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


def _explain(evidence: list[Evidence]) -> tuple[TermHit, ...]:
    """The evidence as TermHits in field and text order, one per term, field and place."""
    if len(evidence) == 1:
        return (evidence[0][EVIDENCE_HIT],)
    evidence.sort(key=_PLACE)
    hits = []
    last = None
    for place, term_hit in evidence:  # (field, start, term): equal places are adjacent
        if place != last:
            hits.append(term_hit)
            last = place
    return tuple(hits)
