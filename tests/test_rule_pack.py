"""The shipped facial-recognition policy pack in rules/: it loads cleanly, its own examples pass,
and it separates the labelled headlines in tests/data/headlines.jsonl.

The labelled set is article-level ("flag" or "ignore"): an article counts as flagged when any
rule of the pack matched it, which is what the desk sees in Slack.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.matching import (
    LabelledArticle,
    RuleLoad,
    check_examples,
    evaluate,
    load_rules,
    match_article,
)
from monitor.model import Article

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "rules"
HEADLINES = Path(__file__).resolve().parent / "data" / "headlines.jsonl"
HOLDOUT = Path(__file__).resolve().parent / "data" / "holdout.jsonl"
PUBLISHED = datetime(2020, 1, 1, tzinfo=UTC)  # matching ignores the date
FLOOR = 0.95


@dataclass(frozen=True, slots=True)
class Headline:
    article: Article
    flag: bool


def _headlines(path: Path = HEADLINES) -> tuple[Headline, ...]:
    items = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        row = json.loads(line)
        assert row["label"] in {"flag", "ignore"}, f"{path.name}:{number}: bad label"
        article = Article(
            feed_url="test:headlines",
            entry_id=f"{path.name}:{number}",
            title=row["title"],
            summary=row.get("summary", ""),
            published=PUBLISHED,
        )
        items.append(Headline(article, row["label"] == "flag"))
    return tuple(items)


def _article(title: str, summary: str = "") -> Article:
    return Article(
        feed_url="test:", entry_id=title, title=title, summary=summary, published=PUBLISHED
    )


@pytest.fixture(scope="module")
def pack() -> RuleLoad:
    return load_rules(RULES)


def test_pack_loads_without_errors_or_warnings(pack: RuleLoad) -> None:
    assert pack.ok
    assert [str(problem) for problem in pack.problems] == []
    assert len(pack.ruleset.rules) >= 8


def test_every_rule_example_passes(pack: RuleLoad) -> None:
    assert [str(problem) for problem in check_examples(pack.ruleset)] == []


def test_every_rule_has_three_examples_each_way(pack: RuleLoad) -> None:
    for rule in pack.ruleset.rules:
        matches = [example for example in rule.examples if example.should_match]
        misses = [example for example in rule.examples if not example.should_match]
        assert len(matches) >= 3 and len(misses) >= 3, rule.id
        assert rule.channel == "#fr-policy" and rule.references, rule.id


def test_labelled_set_has_its_documented_shape() -> None:
    items = _headlines()
    assert len(items) >= 200
    assert sum(item.flag for item in items) >= 90
    assert sum(not item.flag for item in items) >= 90


@pytest.mark.parametrize("path", [HEADLINES, HOLDOUT], ids=["headlines", "holdout"])
def test_pack_precision_and_recall_on_labelled_headlines(pack: RuleLoad, path: Path) -> None:
    items = [LabelledArticle(item.article, item.flag) for item in _headlines(path)]
    report = evaluate(pack.ruleset, items)
    precision, recall = report.overall.precision or 0.0, report.overall.recall or 0.0
    wrong = [f"{m.kind} ({m.rule_id}): {m.title} {m.matched_terms}" for m in report.misclassified]
    summary = f"precision {precision:.3f}, recall {recall:.3f}; misclassified:\n" + "\n".join(wrong)
    assert precision >= FLOOR and recall >= FLOOR, summary


@pytest.mark.parametrize(
    ("title", "summary"),
    [
        (
            "Face ID on the iPhone X: Security firm fools Face ID with mask",
            "Face ID unlocks the phone.",
        ),
        (
            "Apple unveils iPhone X with Face ID facial recognition",
            "A face scan unlocks the phone.",
        ),
        ("IBM faces lawsuit over age discrimination", "Former employees sued the company."),
        ("Microsoft faces fine over Teams bundling", "The EU regulator may fine the company."),
        ("Ice storm leaves 300,000 without power", "Freezing rain brought down power lines."),
        ("ICE eyes new targets post-Minnesota retreat", "Cities are on ICE's list for crackdowns."),
        ("Police identify suspect in Rhode Island ice rink shooting", "Two people were killed."),
        ("Police arrest man after stabbing", "Officers said the suspect was known to them."),
        ("Congress passes bill to regulate AI chatbots", "The law bans chatbots for minors."),
        ("CDC drops face mask guidance for schools", "Students no longer need face coverings."),
        ("Parents face tough choices as schools reopen", "Many parents face long commutes."),
        (
            "Startup raises $20m for facial recognition check-in kiosks",
            "The round was led by a VC.",
        ),
    ],
)
def test_named_look_alikes_never_match(pack: RuleLoad, title: str, summary: str) -> None:
    assert match_article(pack.ruleset, _article(title, summary)) == ()


@pytest.mark.parametrize(
    ("title", "summary"),
    [
        ("Detroit police change facial recognition policy after lawsuit", ""),
        ("Clearview AI ordered to delete Canadians' photos", ""),
        ("Lawmakers in Colorado pass limits on face surveillance", ""),
        ("Gesichtserkennung: Bundesregierung plant Verbot", ""),
        ("Amazon extends Rekognition moratorium for police indefinitely", ""),
        ("Second man wrongfully arrested after bad face recognition match", ""),
    ],
)
def test_unseen_policy_headlines_match(pack: RuleLoad, title: str, summary: str) -> None:
    # Not in headlines.jsonl: written to check that the lists generalise beyond the set.
    assert match_article(pack.ruleset, _article(title, summary)) != ()
