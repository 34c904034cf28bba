"""Conditions, table-driven: shared lists a/b/c/d, one rule per condition, one article per case."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.matching import load_rules, match_article
from monitor.matching.condition import And, Near, Not, Or, Terms, parse_condition
from monitor.model import Article

NOW = datetime(2024, 5, 1, tzinfo=UTC)
LISTS = """\
lists:
  a: [alpha, apple]
  b: [bravo]
  c: [charlie]
  d: [delta]
"""


def matches(tmp_path: Path, condition: str, title: str, summary: str = "", **extra: object) -> bool:
    rule_extra = "".join(f"    {key}: {value}\n" for key, value in extra.items())
    body = LISTS + f"rules:\n  - id: r\n    title: R\n    condition: '{condition}'\n{rule_extra}"
    (tmp_path / "r.yaml").write_text(body, encoding="utf-8")
    load = load_rules(tmp_path / "r.yaml")
    assert load.ok, [str(problem) for problem in load.problems]
    found = match_article(load.ruleset, Article("f", "e", title, NOW, summary=summary))
    return bool(found)


CASES = [
    ("a and b", "alpha bravo", True),
    ("a and b", "alpha", False),
    ("a or b", "bravo", True),
    ("a or b", "charlie", False),
    ("a and not b", "alpha", True),
    ("a and not b", "alpha bravo", False),
    ("not a and b", "bravo", True),  # not binds tighter than and
    ("a or b and c", "alpha", True),  # and binds tighter than or
    ("a or b and c", "bravo", False),
    ("(a or b) and c", "bravo charlie", True),
    ("(a or b) and c", "alpha", False),
    ("not (a or b) and c", "charlie", True),
    ("not (a or b) and c", "charlie alpha", False),
    ('"stop selling" and a', "They stop selling apples", True),
    ('"stop selling" and a', "They stop apples", False),
    ('2 of (a, b, "x ray", c or d)', "alpha delta", True),
    ('2 of (a, b, "x ray", c or d)', "x-ray bravo", True),
    ('2 of (a, b, "x ray", c or d)', "charlie delta", False),
    ("any of a", "apple", True),
    ("all of a", "apple", False),
    ("all of a", "apple and alpha", True),
    ("a NEAR/2 b", "alpha one two bravo", True),
    ("a NEAR/2 b", "alpha one two three bravo", False),
    ("a NEAR/2 b", "bravo one alpha", True),
    ("a NEAR/1 b", "alpha bravo", True),
    ("a BEFORE/3 b", "apple x bravo", True),
    ("a BEFORE/3 b", "bravo x apple", False),
    ('"stop selling" NEAR/3 a', "apples: we stop selling them", True),
    ("title:a", "alpha", True),
    ("summary:a", "alpha", False),
    ("summary:(a or b) and c", "charlie", False),
    ("title:(a and not summary:b)", "alpha", True),
]


@pytest.mark.parametrize(("condition", "title", "expected"), CASES)
def test_condition(tmp_path: Path, condition: str, title: str, expected: bool) -> None:
    assert matches(tmp_path, condition, title) is expected


def test_near_counts_within_one_field_only(tmp_path: Path) -> None:
    assert not matches(tmp_path, "a NEAR/5 b", "alpha", summary="bravo")
    assert matches(tmp_path, "a NEAR/5 b", "x", summary="alpha bravo")


def test_rule_fields_scope_unscoped_terms(tmp_path: Path) -> None:
    assert not matches(tmp_path, "a", "x", summary="alpha", fields="[title]")
    assert matches(tmp_path, "summary:a", "x", summary="alpha", fields="[title]")


def test_source_and_language_filters(tmp_path: Path) -> None:
    body = LISTS + (
        "rules:\n  - id: r\n    title: R\n    condition: a\n    languages: [en]\n"
        "    sources:\n      deny_domains: [apple.com]\n      allow_tags: [news]\n"
    )
    (tmp_path / "r.yaml").write_text(body, encoding="utf-8")
    ruleset = load_rules(tmp_path / "r.yaml").ruleset

    def hit(**fields: object) -> bool:
        base: dict[str, object] = {"feed_tags": ("news",), "link": "https://example.org/x"}
        base.update(fields)
        return bool(match_article(ruleset, Article("f", "e", "alpha", NOW, **base)))  # type: ignore[arg-type]

    assert hit()
    assert hit(language="en")
    assert hit(language=None)
    assert not hit(language="fr")
    assert not hit(link="https://www.support.apple.com/a")
    assert not hit(feed_tags=("consumer",))


def test_mapping_form_condition(tmp_path: Path) -> None:
    body = LISTS + (
        "rules:\n  - id: r\n    title: R\n    condition: {all: [a], any: [b, c], none: [d]}\n"
    )
    (tmp_path / "r.yaml").write_text(body, encoding="utf-8")
    ruleset = load_rules(tmp_path / "r.yaml").ruleset
    outcomes = [
        bool(match_article(ruleset, Article("f", "e", title, NOW)))
        for title in ("alpha charlie", "alpha", "alpha bravo delta", "bravo")
    ]
    assert outcomes == [True, False, False, False]


def test_rule_without_condition_matches_any_local_term(tmp_path: Path) -> None:
    body = "rules:\n  - id: r\n    title: R\n    terms:\n      x: [xenon]\n      y: [yttrium]\n"
    (tmp_path / "r.yaml").write_text(body, encoding="utf-8")
    ruleset = load_rules(tmp_path / "r.yaml").ruleset
    assert match_article(ruleset, Article("f", "e", "yttrium", NOW))
    assert not match_article(ruleset, Article("f", "e", "argon", NOW))


def test_negation_only_rule_is_evaluated_for_every_article(tmp_path: Path) -> None:
    body = LISTS + "rules:\n  - id: r\n    title: R\n    condition: not a\n"
    (tmp_path / "r.yaml").write_text(body, encoding="utf-8")
    load = load_rules(tmp_path / "r.yaml")
    assert [problem.severity for problem in load.problems] == ["warning"]
    assert match_article(load.ruleset, Article("f", "e", "nothing here", NOW))
    assert not match_article(load.ruleset, Article("f", "e", "apple", NOW))


def test_match_explains_with_the_hits_of_positive_terms(tmp_path: Path) -> None:
    body = (
        LISTS + "rules:\n  - id: r\n    title: R\n    channel: '#x'\n    condition: a and not d\n"
    )
    (tmp_path / "r.yaml").write_text(body, encoding="utf-8")
    ruleset = load_rules(tmp_path / "r.yaml").ruleset
    (match,) = match_article(ruleset, Article("f", "e", "Apple and ALPHA", NOW))
    assert (match.rule_id, match.channel, match.severity) == ("r", "#x", "medium")
    assert [(hit.term, hit.text, hit.start, hit.list_name) for hit in match.hits] == [
        ("apple", "Apple", 0, "a"),
        ("alpha", "ALPHA", 10, "a"),
    ]


def test_parse_tree_precedence() -> None:
    assert parse_condition("a or not b and c") == Or(
        (Terms("a"), And((Not(Terms("b")), Terms("c"))))
    )
    assert parse_condition('title:(a NEAR/3 "x")') == Near(
        Terms("a", scope="title"), Terms(None, "x", scope="title"), 3, False
    )
