"""The worked example of docs/design.md ("A worked example"), fact by fact: if the engine
changes how it numbers, spells, triggers or prunes, this test and that text change together."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from monitor.matching import FIELDS, RuleSet, load_rules, match_article
from monitor.matching.evaluate import AndOfLeavesNode
from monitor.matching.layout import DOMAIN, field_code
from monitor.matching.match import field_texts, scan_article
from monitor.model import Article, Match, TermHit

NOW = datetime(2024, 5, 1, tzinfo=UTC)
RULE = """\
rules:
  - id: fr-police
    title: Police use of facial recognition
    fields: [title, summary]
    terms:
      face_tech: [facial recognition, face scan*]
      police: [police, officer]
    condition: face_tech and police
"""
TITLE, SUMMARY = FIELDS.index("title"), FIELDS.index("summary")


def _ruleset(tmp_path: Path) -> RuleSet:
    (tmp_path / "r.yaml").write_text(RULE, encoding="utf-8")
    load = load_rules(tmp_path / "r.yaml")
    assert load.ok, [str(problem) for problem in load.problems]
    return load.ruleset


def test_compiling_the_example_rule(tmp_path: Path) -> None:
    index = _ruleset(tmp_path).index
    assert [term.text for term in index.terms] == [
        "facial recognition",
        "face scan*",
        "police",
        "officer",
    ]
    assert (TITLE, SUMMARY) == (0, 1)
    assert [field_code(term, TITLE) for term in range(4)] == [0, 16, 32, 48]
    compiled = index.rules[0]
    assert compiled is not None
    node = compiled.node
    assert isinstance(node, AndOfLeavesNode)
    assert node.codes == ((0, 1, 16, 17), (32, 33, 48, 49))
    assert node.negated == ()
    assert set(node.requires()) == {frozenset({0, 1, 16, 17}), frozenset({32, 33, 48, 49})}
    # Title and summary share one automaton of ten keys.
    (title, phrases), (summary, same) = index.phrases
    assert (title, summary) == (TITLE, SUMMARY) and same is phrases
    assert [key.terms for key in phrases.keys] == [(0,)] * 4 + [(1,)] * 2 + [(2,)] * 2 + [(3,)] * 2
    assert [key.wild for key in phrases.keys] == [False] * 4 + [True] * 2 + [False] * 4
    for field in (TITLE, SUMMARY):
        assert phrases.rules[field] == ((0,),) * 6 + ((),) * 4  # the trigger: face_tech's keys
        assert phrases.passes[0][field] == ((),) * 6 + ((0,),) * 4  # the requirement: police's
    assert len(index.requirements) == 1
    assert index.triggers == {} and index.always == ()  # no regex or cased term: all by key


def test_the_example_headline_matches_as_told(tmp_path: Path) -> None:
    ruleset = _ruleset(tmp_path)
    article = Article("f", "e", "Police pause facial recognition vans", NOW)
    scan = scan_article(ruleset, article)
    assert scan.fields[TITLE].folded.folded == "police pause facial recognition vans"
    assert scan.fields[TITLE].found == [(6, 0, 8), (0, 13, 33)]
    assert SUMMARY not in scan.fields  # empty: not scanned
    assert scan.present == {0, 32}
    assert match_article(ruleset, article) == (
        Match(
            "fr-police",
            "Police use of facial recognition",
            "medium",
            None,
            (
                TermHit("police", "title", "Police", 0, 6, "police"),
                TermHit("facial recognition", "title", "facial recognition", 13, 31, "face_tech"),
            ),
        ),
    )


def test_the_requirement_drops_the_rule_without_police(tmp_path: Path) -> None:
    ruleset = _ruleset(tmp_path)
    article = Article("f", "e", "Shops pause facial recognition vans", NOW)
    scan = scan_article(ruleset, article)
    found = scan.fields[TITLE]
    assert found.keys == {0}
    assert found.phrases.rules[TITLE][0] == (0,)  # triggered
    assert found.phrases.passes[0][TITLE][0] == ()  # but its requirement is not met
    assert match_article(ruleset, article) == ()


def test_field_texts_follow_fields() -> None:
    # Field positions (layout.DOMAIN and the codes) are places in FIELDS: field_texts must
    # give the texts in that order.
    article = Article(
        "f",
        "e",
        "the title",
        NOW,
        summary="the summary",
        content="the content",
        authors=("the author",),
        categories=("the categories",),
        link="https://www.example.org/a",
        feed_name="the feed",
        feed_tags=("the tags",),
    )
    texts = field_texts(article)
    assert texts[DOMAIN] == "example.org"
    derived = {"domain": "example.org", "lead": "summary", "front": "title\nthe summary"}
    assert [text.removeprefix("the ") for text in texts] == [
        derived.get(name, name) for name in FIELDS
    ]
