"""`monitor rules eval` on the labelled dev set's own shape (issue #10, "Labels"): `ambiguous`
rows are matched and listed but never scored, and the figures are given per language (`lang`,
or `language`) beside per rule. The rows are real, copied from the dev set
(tests/data/dev-rows-SOURCE.md); the rules are this test's, so the figures stay put while the
pack changes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from monitor.dryrun import read_labelled
from tests.test_cli import invoke

ROWS = Path(__file__).parent / "data" / "eval-dev-rows.jsonl"
RULES = """\
lists:
  face: [facial recognition, face recognition, reconnaissance faciale, reconhecimento facial,
         "人脸识别", "顔認証", Face ID, surveillance]
  policy: [ban*, CNIL, app, apps, "治理", "法的規制", polícia, Megvii, regulat*]
rules:
  - id: fr-policy
    title: Face recognition policy
    condition: face and policy
"""


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "r.yaml").write_text(RULES, encoding="utf-8")
    return folder


def test_the_dev_set_shape_is_read_as_it_is() -> None:
    items = read_labelled(ROWS)
    assert len(items) == 13
    assert [item.article.language for item in items] == [
        "fr", "fr", "de", "pt", "zh", "en", "ja", "en", "en", "en", "fr", "es", "de",
    ]  # fmt: skip
    assert [(item.flag, item.ambiguous) for item in items].count((False, True)) == 1
    assert items[-1].ambiguous and items[-1].article.title.startswith("Start-up : Ein Einhorn")


def test_eval_text_per_rule_per_language_and_the_ambiguous_rows(rules_dir: Path) -> None:
    result = invoke("rules", "eval", "--input", str(ROWS), "--rules", str(rules_dir))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "rule       matched  precision  recall  share of flagged",
        "fr-policy        8      0.875       -             0.875",
        "language  articles  flag  ignore  ambiguous  precision  recall  right  wrong  missed",
        "en               4     3       1          0      0.667   0.667      2      1       1",
        "fr               3     2       1          0      1.000   1.000      2      0       0",
        "de               2     0       1          1          -       -      0      0       0",
        "es               1     0       1          0          -       -      0      0       0",
        "ja               1     1       0          0      1.000   1.000      1      0       0",
        "pt               1     1       0          0      1.000   1.000      1      0       0",
        "zh               1     1       0          0      1.000   1.000      1      0       0",
        "overall: 13 articles (8 flag, 4 ignore, 1 ambiguous left out): precision 0.875, "
        "recall 0.875 (7 flagged correctly, 1 wrongly, 1 missed)",
        "false positive: fr-policy: New app uses facial recognition for dogs to find lost pets "
        "(terms: app, facial recognition)",
        "false negative: no rule: NY lawmakers vote to pause facial recognition in schools",
        # Matched by the rule, and still neither a true nor a false positive.
        "ambiguous (not scored): fr-policy: Start-up : Ein Einhorn ist auf den Hund gekommen",
    ]  # fmt: skip


def test_eval_json_keeps_its_keys_and_adds_languages_and_ambiguous(rules_dir: Path) -> None:
    result = invoke(
        "rules", "eval", "--labels", str(ROWS), "--rules", str(rules_dir), "--format", "json"
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert list(report) == ["overall", "rules", "misclassified", "languages", "ambiguous"]
    assert report["overall"] == {
        "precision": 0.875,
        "recall": 0.875,
        "true_positives": 7,
        "false_positives": 1,
        "false_negatives": 1,
        "articles": 13,
        "flag": 8,
        "ignore": 4,
        "ambiguous": 1,
    }
    assert report["rules"] == [
        {
            "rule": "fr-policy",
            "precision": 0.875,
            "recall": 1.0,  # as before: the text shows "-" when no row names its rules
            "true_positives": 7,
            "false_positives": 1,
            "false_negatives": 0,
        }
    ]
    assert [wrong["id"] for wrong in report["misclassified"]] == [
        "eval-dev-rows.jsonl:6",
        "eval-dev-rows.jsonl:9",
    ]
    assert report["languages"][0] == {
        "language": "en",
        "articles": 4,
        "flag": 3,
        "ignore": 1,
        "ambiguous": 0,
        "precision": 2 / 3,
        "recall": 2 / 3,
        "true_positives": 2,
        "false_positives": 1,
        "false_negatives": 1,
    }
    assert [(row["language"], row["ambiguous"]) for row in report["languages"]] == [
        ("en", 0), ("fr", 0), ("de", 1), ("es", 0), ("ja", 0), ("pt", 0), ("zh", 0),
    ]  # fmt: skip
    assert report["ambiguous"] == [
        {
            "title": "Start-up : Ein Einhorn ist auf den Hund gekommen",
            "id": "eval-dev-rows.jsonl:13",
            "rules": ["fr-policy"],
        }
    ]


def test_language_wins_over_lang_and_is_its_primary_subtag(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    rows = [
        {"title": "a", "label": "flag", "lang": "pt-BR"},
        {"title": "b", "label": "flag", "language": "DE", "lang": "fr"},
        {"title": "c", "label": "ignore"},
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    assert [item.article.language for item in read_labelled(path)] == ["pt", "de", None]


def test_without_languages_no_language_table_is_printed(rules_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    rows = [{"title": "Council bans facial recognition apps", "label": "flag"}]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    result = invoke("rules", "eval", "--input", str(path), "--rules", str(rules_dir))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == (
        "overall: 1 articles (1 flag, 0 ignore): precision 1.000, recall 1.000 "
        "(1 flagged correctly, 0 wrongly, 0 missed)"
    )
    assert not any(line.startswith("language") for line in result.stdout.splitlines())
