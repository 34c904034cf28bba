"""What `monitor rules test` shows for each term (issue #10, "Explanations"): a regex term by
the text it found, not its pattern; a prefix term with the words it found; in JSON, every
hit's field and text beside the keys the output always had."""

from __future__ import annotations

import json
from pathlib import Path

from tests.test_cli import invoke

RULES = """\
lists:
  face_intl:
    - regex: '人脸识别|顔認証|顔認識'
    - facial recognition
  action: [ban*, moratorium]
rules:
  - id: fr-ban
    title: Facial recognition ban
    severity: high
    terms:
      local: [{regex: '\\bfa[cs]e[- ]?scan\\w*'}]
    condition: (face_intl or local) and action
"""


def run(tmp_path: Path, *rows: dict[str, str], output: str = "table") -> str:
    folder = tmp_path / "rules"
    folder.mkdir(exist_ok=True)
    (folder / "r.yaml").write_text(RULES, encoding="utf-8")
    articles = tmp_path / "a.jsonl"
    articles.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    result = invoke(
        "rules", "test", "--input", str(articles), "--rules", str(folder), "--format", output,
        env={"COLUMNS": "250"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return result.stdout


def test_the_table_shows_what_regex_and_prefix_terms_found(tmp_path: Path) -> None:
    out = run(
        tmp_path,
        {
            "title": "東京都、顔認証の利用 bans",
            "summary": "Face-scanning and facial recognition bans.",
        },
    )
    assert '"顔認証" (regex in face_intl) [title]' in out
    assert '"bans" (ban*) [title, summary]' in out
    assert '"Face-scanning" (regex in local) [summary]' in out
    assert "facial recognition [summary]" in out  # a phrase is shown as written
    assert "人脸识别|" not in out and "fa[cs]e" not in out  # never the pattern


def test_json_adds_each_hits_field_and_text(tmp_path: Path) -> None:
    out = run(
        tmp_path,
        {"id": "a", "title": "Council bans face scans", "summary": "A moratorium."},
        {"id": "b", "title": "Weather"},
        output="json",
    )
    first, second = (json.loads(line) for line in out.splitlines())
    assert first == {
        "id": "a",
        "title": "Council bans face scans",
        "matches": [
            {
                "rule": "fr-ban",
                "terms": ["ban*", "\\bfa[cs]e[- ]?scan\\w*", "moratorium"],
                "hits": [
                    {
                        "term": "ban*",
                        "field": "title",
                        "text": "bans",
                        "start": 8,
                        "end": 12,
                        "list": "action",
                    },
                    {
                        "term": "\\bfa[cs]e[- ]?scan\\w*",
                        "field": "title",
                        "text": "face scans",
                        "start": 13,
                        "end": 23,
                        "list": "local",
                    },
                    {
                        "term": "moratorium",
                        "field": "summary",
                        "text": "moratorium",
                        "start": 2,
                        "end": 12,
                        "list": "action",
                    },
                ],
            }
        ],
    }
    assert second == {"id": "b", "title": "Weather", "matches": []}
