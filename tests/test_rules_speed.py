"""The fast paths of the engine agree with the slow, obvious ones.

- `fold` and `FoldedField` (translate tables, collapsed space runs, lazy offsets) against the
  per-character reference `fold_with_offsets`, on every kind of character.
- Evaluating only the rules a found term can trigger (and whose further requirements have a
  term found) against evaluating every rule.
- Explanations built once per term and shared between rules against walking each condition.
"""

from __future__ import annotations

import gc
import itertools
import random
import subprocess
import sys
from bisect import bisect_left
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.matching import compile_rules, load_rules, match_article
from monitor.matching.compile import RuleSet
from monitor.matching.condition import FIELDS, And, AtLeast, Condition, Not, Or, Terms
from monitor.matching.layout import Hit
from monitor.matching.match import Scan, scan_article
from monitor.matching.rule import Rule, Term
from monitor.matching.text import FoldedField, fold, fold_with_offsets
from monitor.model import Article, TermHit

NOW = datetime(2024, 5, 1, tzinfo=UTC)

TRICKY = [
    "",
    " ",
    "...",
    "plain ascii, text",
    "  leading and trailing  ",
    "Nestlé\u2019s  café \u2014 ÉCOLE",
    "\u201cQuoted\u201d \u2018words\u2019 \u2026 end",
    "ﬁ ß İstanbul",  # expansions: the per-character path
    "e\u0301 combining",  # a mark that disappears
    "日本語 text",
    "ΣΊΣΥΦΟΣ σοφός",  # final sigma: lower() and casefold() differ
    "\u13a0 Cherokee \uab70",  # casefold gives upper case here
    "Москва, Россия — новости",
    "한국어 뉴스",  # Hangul expands under NFKD
    "\U0001d400\U0001d41a bold math",  # folds to upper-case ASCII
    "tab\tnew\nline_under-score",
    "½ ™ ① \u210c",
    "\ud800 lone \udfff surrogates \u201c",  # must survive the UTF-8 round trip
    "ctrl\x00\x1f\x7f\x80\xa0end",
    "a  ,  b   c    d     e" + " " * 9 + "f. . .g",  # runs of every length
]


def _agrees(text: str) -> None:
    reference = fold_with_offsets(text)
    field = FoldedField(text)
    assert fold(text) == reference.folded == field.folded
    assert field.padded == f" {reference.folded} ".encode()
    assert [field.offset(i) for i in range(len(reference.folded))] == list(reference.offsets)
    for index in range(len(text) + 1):
        assert field.first_at_or_after(index) == bisect_left(reference.offsets, index)


@pytest.mark.parametrize("text", TRICKY)
def test_fast_fold_and_offsets_equal_the_reference(text: str) -> None:
    _agrees(text)


def test_every_character_folds_like_the_reference() -> None:
    # Every code point in context, sampled with a stride so the test stays fast.
    chars = [chr(code) for code in range(0x110000) if not 0xD800 <= code <= 0xDFFF]
    for start in range(0, len(chars), 997):
        _agrees("Ab, " + "".join(chars[start : start + 40]) + "  x-Y.")


def test_random_mixes_fold_like_the_reference() -> None:
    rng = random.Random(7)
    pool = list("aZ9 ,.-_é\u2019\u201cßﬁİΣ\u03c3日\u0301Ж\uab70\t")
    for _ in range(3000):
        _agrees("".join(rng.choices(pool, k=rng.randint(0, 14))))


def test_importing_text_builds_no_unicode_table() -> None:
    # Parse workers import the engine at start; the old module scanned all of Unicode (~0.5 s).
    # Asserted on what the import leaves behind, not on its time: no per-character cache is
    # filled and no module-level table is larger than the 128-entry ASCII ones.
    probe = (
        "import monitor.matching.text as t\n"
        "caches = [t._fold_char, t._fold_keep_case_char, t._single_fold]\n"
        "print(sum(cache.cache_info().currsize for cache in caches))\n"
        "sized = (str, bytes, dict, list, tuple, set, frozenset)\n"
        "names = [k for k in vars(t) if not k.startswith('__')]\n"
        "print(max(len(v) for k in names if isinstance(v := vars(t)[k], sized)))\n"
    )
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    cached, largest = (int(line) for line in result.stdout.split())
    assert cached == 0
    assert largest <= 256


LISTS = """\
lists:
  a: [alpha, apple]
  b: [bravo, "beta max", bet*]
  c: [charlie]
  d: [delta]
  e: [{phrase: ECHO, case_sensitive: true}]
  f: [{regex: 'fox(?:trot)?'}]
"""
CONDITIONS = [
    "a",
    "a and b",
    "a or b",
    "a and not b",
    "not a",
    "not (not a)",
    "not a or b",
    "2 of (a, b, c)",
    "3 of (a, b, c, d)",
    "1 of (a, not b)",
    "a NEAR/2 b",
    "a BEFORE/3 c",
    "all of a",
    "title:a and summary:b",
    "title:(a or e) and not summary:f",
    '"gamma ray" or (e and f)',
    "(a or b) and (c or d) and not e",
    # Shapes with several requirements (candidates are dropped before evaluation).
    "2 of (a, not b, c)",
    "2 of (a or b, c and d, f)",
    "3 of (a, b, c, d, f)",
    "(a and b) or (c and d)",
    "all of b and c",
    "a NEAR/4 b and not c",
    "(a NEAR/3 c or d) and b",
]
WORDS = ["alpha", "apples", "bravo", "beta-max", "betting", "charlie", "delta", "ECHO", "echo"]
WORDS += ["foxtrot", "fox", "gamma rays", "the", "and", "of", "Alpha's", "x"]


def test_trigger_index_finds_every_rule_that_holds(tmp_path: Path) -> None:
    rules = "".join(
        f"  - id: r{number}\n    title: R{number}\n    condition: '{condition}'\n"
        for number, condition in enumerate(CONDITIONS)
    )
    (tmp_path / "r.yaml").write_text(LISTS + "rules:\n" + rules, encoding="utf-8")
    load = load_rules(tmp_path / "r.yaml")
    assert load.ok, [str(problem) for problem in load.problems]
    ruleset = load.ruleset
    rng = random.Random(11)
    seen = set()
    for number in itertools.count():
        if number == 400:
            break
        title = " ".join(rng.choices(WORDS, k=rng.randint(0, 6)))
        summary = " ".join(rng.choices(WORDS, k=rng.randint(0, 6)))
        article = Article("f", f"e{number}", title, NOW, summary=summary)
        scan = scan_article(ruleset, article)
        every = [
            compiled.rule.id
            for compiled in ruleset.index.rules
            if compiled is not None and compiled.node.holds(scan.present, scan)
        ]
        assert [match.rule_id for match in match_article(ruleset, article)] == every
        seen.update(every)
    assert seen == {f"r{number}" for number in range(len(CONDITIONS))}


def _reference_evidence(
    condition: Condition, rule: Rule, ruleset: RuleSet, scan: Scan
) -> tuple[bool, list[tuple[int, Hit]]]:
    """Whether `condition` holds and its (term, hit) evidence, walking the condition itself."""
    match condition:
        case Terms():
            fields = [condition.scope] if condition.scope else list(rule.fields)
            terms = rule.lists[condition.name] if condition.name else (Term(str(condition.phrase)),)
            ids = [ruleset.index.terms.index(term) for term in terms]
            found = {
                term: [hit for hit in scan.term_hits(term) if FIELDS[hit[0]] in fields]
                for term in ids
            }
            holds = all(found.values()) if condition.every else any(found.values())
            return holds, [(term, hit) for term in ids for hit in found[term]]
        case Not(item):
            return not _reference_evidence(item, rule, ruleset, scan)[0], []
        case And(items) | Or(items) | AtLeast(_, items):
            parts = [_reference_evidence(item, rule, ruleset, scan) for item in items]
            count = sum(holds for holds, _ in parts)
            if isinstance(condition, And):
                holds = count == len(parts)
            else:
                holds = count >= (condition.count if isinstance(condition, AtLeast) else 1)
            return holds, [item for ok, evidence in parts if ok for item in evidence]
    raise AssertionError(f"no reference for {condition!r}")


def test_evidence_equals_a_walk_of_the_condition(tmp_path: Path) -> None:
    # Explanations are built per term, once per article, and shared between rules: they must
    # be what walking each matched condition gives (all hits of the terms that made it true).
    conditions = [condition for condition in CONDITIONS if "/" not in condition]  # no NEAR
    conditions += ["a and (b or c)", "(a or title:b) and not d", 'a or b or "gamma ray"']
    rules = "".join(
        f"  - id: r{number}\n    title: R{number}\n    condition: '{condition}'\n"
        f"    fields: [{'title, summary' if number % 3 else 'summary'}]\n"
        for number, condition in enumerate(conditions)
    )
    (tmp_path / "r.yaml").write_text(LISTS + "rules:\n" + rules, encoding="utf-8")
    ruleset = load_rules(tmp_path / "r.yaml").ruleset
    by_id = {rule.id: rule for rule in ruleset.rules}
    rng = random.Random(13)
    explained = 0
    for number in range(300):
        title = " ".join(rng.choices(WORDS, k=rng.randint(0, 6)))
        summary = " - ".join(rng.choices(WORDS, k=rng.randint(0, 12)))
        article = Article("f", f"e{number}", title, NOW, summary=summary)
        scan = scan_article(ruleset, article)
        for match in match_article(ruleset, article):
            rule = by_id[match.rule_id]
            holds, evidence = _reference_evidence(rule.condition, rule, ruleset, scan)
            assert holds
            expected: dict[tuple[int, int, int], TermHit] = {}
            for term_id, hit in sorted(evidence, key=lambda item: (item[1][:2], item[0])):
                field, start, end, first, last = hit
                if first < 0:  # a phrase hit: map the folded span back to the original text
                    first, last = scan.folded(field).span(start, end)
                term = ruleset.index.terms[term_id]
                text = scan.texts[hit[0]][first:last]
                term_hit = TermHit(term.text, FIELDS[hit[0]], text, first, last, term.list_name)
                expected.setdefault((term_id, hit[0], first), term_hit)
            assert match.hits == tuple(expected.values()), (rule.condition, article)
            explained += len(match.hits)
    assert explained > 300


@pytest.mark.parametrize("enabled", [True, False])
def test_compile_restores_the_garbage_collector_state(tmp_path: Path, enabled: bool) -> None:
    (tmp_path / "r.yaml").write_text(LISTS + "rules:\n  - id: r\n    title: R\n    condition: a\n")
    rules = load_rules(tmp_path / "r.yaml").ruleset.rules
    was = gc.isenabled()
    try:
        gc.enable() if enabled else gc.disable()
        assert compile_rules(rules).rules == rules
        assert gc.isenabled() is enabled
    finally:
        gc.enable() if was else gc.disable()
