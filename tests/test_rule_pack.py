"""The shipped facial-recognition policy pack in rules/: it loads cleanly, its own examples pass,
and it separates real labelled headlines by the desk's line (LABELS.md).

The evidence is the dev set of real headlines, copied in two parts split by story cluster
(tests/data/dev-tune.jsonl, tuned on; tests/data/dev-holdout.jsonl, not looked at while
tuning; see tests/data/README.md). headlines.jsonl and holdout.jsonl partly come from memory
and share the rules' vocabulary: they are regression floors, not evidence.

Labels are article-level: an article counts as flagged when any rule of the pack matched it,
which is what the desk sees in Slack. `ambiguous` rows are left out of the figures.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.dryrun import read_labelled
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
DEV_TUNE = Path(__file__).resolve().parent / "data" / "dev-tune.jsonl"
DEV_HOLDOUT = Path(__file__).resolve().parent / "data" / "dev-holdout.jsonl"
PUBLISHED = datetime(2020, 1, 1, tzinfo=UTC)  # matching ignores the date
FLOOR = 0.95
# Issue #10's targets on real headlines.
PRECISION_TARGET = 0.97
RECALL_TARGET = 0.95


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
    # Regression floors: these sets were partly written from memory (tests/data/README.md).
    items = [LabelledArticle(item.article, item.flag) for item in _headlines(path)]
    report = evaluate(pack.ruleset, items)
    precision, recall = report.overall.precision or 0.0, report.overall.recall or 0.0
    wrong = [f"{m.kind} ({m.rule_id}): {m.title} {m.matched_terms}" for m in report.misclassified]
    summary = f"precision {precision:.3f}, recall {recall:.3f}; misclassified:\n" + "\n".join(wrong)
    assert precision >= FLOOR and recall >= FLOOR, summary


def _figures(items: list[LabelledArticle]) -> tuple[float, float, str]:
    report = evaluate(load_rules(RULES).ruleset, items)
    precision, recall = report.overall.precision or 0.0, report.overall.recall or 0.0
    wrong = [f"{m.kind} ({m.rule_id}): {m.title} {m.matched_terms}" for m in report.misclassified]
    summary = f"precision {precision:.3f}, recall {recall:.3f}; misclassified:\n" + "\n".join(wrong)
    return precision, recall, summary


def test_dev_set_copies_are_split_by_cluster_with_both_labels() -> None:
    tune, held = read_labelled(DEV_TUNE), read_labelled(DEV_HOLDOUT)
    clusters = [
        {json.loads(line)["cluster"] for line in path.read_text(encoding="utf-8").splitlines()}
        for path in (DEV_TUNE, DEV_HOLDOUT)
    ]
    assert clusters[0].isdisjoint(clusters[1])
    assert len(tune) + len(held) == 122
    for part in (tune, held):
        assert sum(item.flag for item in part) >= 20
        assert sum(not item.flag and not item.ambiguous for item in part) >= 20
        assert len({item.article.language for item in part}) >= 8


@pytest.mark.parametrize("path", [DEV_TUNE, DEV_HOLDOUT], ids=["dev-tune", "dev-holdout"])
def test_pack_reaches_the_targets_on_real_headlines(path: Path) -> None:
    precision, recall, summary = _figures(read_labelled(path))
    assert precision >= PRECISION_TARGET and recall >= RECALL_TARGET, summary


def test_pack_reaches_the_targets_on_the_whole_dev_set_and_its_non_english_rows() -> None:
    items = read_labelled(DEV_TUNE) + read_labelled(DEV_HOLDOUT)
    precision, recall, summary = _figures(items)
    assert precision >= PRECISION_TARGET and recall >= RECALL_TARGET, summary
    foreign = [item for item in items if item.article.language != "en"]
    assert len(foreign) >= 35
    precision, recall, summary = _figures(foreign)
    assert precision >= PRECISION_TARGET and recall >= RECALL_TARGET, summary


@pytest.mark.parametrize(
    ("title", "summary", "alerts"),
    [
        # The face term and the policy term only in a later sentence: background.
        (
            "Apple unveils new AI features for Mac",
            "Apple announced a new set of AI writing tools on Monday. The update also brings new"
            " emoji. Critics note that facial recognition was banned in several cities in 2019.",
            False,
        ),
        # No face word in the headline; the first sentence carries it: the story.
        (
            "Council votes 7-2 on surveillance ordinance",
            "The ordinance bars police from using facial recognition. It takes effect in March.",
            True,
        ),
    ],
)
def test_the_headline_and_first_sentence_decide(title: str, summary: str, alerts: bool) -> None:
    # Written for this test (not evidence): it pins the pack's use of `front`.
    assert bool(match_article(load_rules(RULES).ruleset, _article(title, summary))) is alerts


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
