"""Examples written in rule files, evaluate() figures, the JSON Schema, pickling, the rule pack."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime
from pathlib import Path

from monitor.matching import (
    LabelledArticle,
    RuleScore,
    check_examples,
    evaluate,
    load_rules,
    match_article,
    rule_json_schema,
)
from monitor.matching.schema import schema_text
from monitor.model import Article

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2024, 5, 1, tzinfo=UTC)

RULES = """\
lists:
  vendors: [IBM, Amazon]
rules:
  - id: exit
    title: Vendor exit
    terms:
      halt: [moratorium, "stop selling"]
    condition: vendors and halt
    examples:
      match:
        - "IBM will stop selling it"
        - title: "Amazon news"
          summary: "A one-year moratorium"
        - "Amazon expands"
      no_match:
        - "A moratorium on fishing"
        - "IBM announces a moratorium"
  - id: off
    title: Disabled rule
    enabled: false
    terms:
      words: [zebra]
    examples:
      match: ["zebra crossing", "horse"]
"""


def test_failing_examples_are_reported_with_their_line(tmp_path: Path) -> None:
    file = tmp_path / "r.yaml"
    file.write_text(RULES, encoding="utf-8")
    load = load_rules(file)
    assert load.ok, load.problems
    assert [str(problem) for problem in check_examples(load.ruleset)] == [
        f'{file}:14:11: example "Amazon expands" should match rule exit but did not '
        "(terms found: Amazon)",
        f'{file}:17:11: example "IBM announces a moratorium" should not match rule exit '
        "but did (matched: IBM, moratorium)",
        f'{file}:24:33: example "horse" should match rule off but did not (terms found: none)',
    ]


def test_disabled_rules_do_not_match_articles(tmp_path: Path) -> None:
    file = tmp_path / "r.yaml"
    file.write_text(RULES, encoding="utf-8")
    ruleset = load_rules(file).ruleset
    assert match_article(ruleset, Article("f", "e", "zebra", NOW)) == ()


def labelled(title: str, *expected: str) -> LabelledArticle:
    return LabelledArticle(Article("f", title, title, NOW), bool(expected), frozenset(expected))


def test_evaluate_counts_precision_and_recall(tmp_path: Path) -> None:
    file = tmp_path / "r.yaml"
    file.write_text(RULES, encoding="utf-8")
    ruleset = load_rules(file).ruleset
    items = [
        labelled("IBM moratorium", "exit"),  # true positive
        labelled("Amazon will stop selling", "exit"),  # true positive
        labelled("Amazon moratorium on plastic"),  # false positive
        labelled("Clearview exits", "exit"),  # false negative
        labelled("Nothing here"),  # true negative
    ]
    report = evaluate(ruleset, items)
    assert report.rules == (RuleScore("exit", 2, 1, 1), RuleScore("off", 0, 0, 0))
    assert report.overall == RuleScore("*", 2, 1, 1)
    assert report.overall.precision == 2 / 3
    assert report.overall.recall == 2 / 3
    assert RuleScore("off", 0, 0, 0).precision is None
    assert [(m.item, m.rule_id, m.kind, m.matched_terms) for m in report.misclassified] == [
        (2, "exit", "false positive", ("Amazon", "moratorium")),
        (3, "exit", "false negative", ()),
    ]


def test_evaluate_with_flag_and_ignore_labels_only(tmp_path: Path) -> None:
    file = tmp_path / "r.yaml"
    file.write_text(RULES, encoding="utf-8")
    ruleset = load_rules(file).ruleset
    items = [
        LabelledArticle(Article("f", "1", "IBM moratorium", NOW), flag=True),
        LabelledArticle(Article("f", "2", "Amazon moratorium on plastic", NOW), flag=False),
        LabelledArticle(Article("f", "3", "Clearview exits", NOW), flag=True),
        LabelledArticle(Article("f", "4", "Nothing here", NOW), flag=False),
    ]
    report = evaluate(ruleset, items)
    assert report.overall == RuleScore("*", 1, 1, 1)
    assert report.rules == (RuleScore("exit", 1, 1, 0), RuleScore("off", 0, 0, 0))
    assert report.flagged_items == 2
    assert [(m.item, m.rule_id, m.kind) for m in report.misclassified] == [
        (1, "exit", "false positive"),
        (2, "*", "false negative"),
    ]


def test_committed_schema_is_fresh() -> None:
    committed = (ROOT / "docs" / "rule-schema.json").read_text(encoding="utf-8")
    assert committed == schema_text(), "run: python -m monitor.matching > docs/rule-schema.json"


def test_schema_forbids_unknown_keys_and_lists_severities() -> None:
    schema = rule_json_schema()
    rule = schema["$defs"]["RuleSpec"]
    assert rule["additionalProperties"] is False
    assert rule["properties"]["severity"]["enum"] == ["info", "low", "medium", "high", "critical"]


def test_ruleset_pickles_and_matches_the_same(tmp_path: Path) -> None:
    file = tmp_path / "r.yaml"
    file.write_text(RULES, encoding="utf-8")
    ruleset = load_rules(file).ruleset
    copy = pickle.loads(pickle.dumps(ruleset))
    article = Article("f", "e", "IBM moratorium", NOW)
    assert copy == ruleset
    assert match_article(copy, article) == match_article(ruleset, article)


def test_shipped_rule_pack_loads_and_its_examples_pass() -> None:
    load = load_rules(ROOT / "rules")
    assert load.errors == ()
    assert load.ruleset.rules
    assert [str(problem) for problem in check_examples(load.ruleset)] == []
