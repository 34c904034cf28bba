"""The dry run's inputs and outputs (monitor/dryrun.py) beyond the CLI tests' main paths.

Articles from JSON Lines, a JSON Feed file and a feed URL, every input error with its exact
message, and the JSON forms of ``rules test --diff`` and ``rules eval``.
"""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.config import Settings
from monitor.dryrun import JSONL_SOURCE, read_articles, read_labelled
from monitor.errors import InputError
from monitor.model import Article
from tests.support.feed_server import FeedServer
from tests.test_cli import GOOD_RULES, invoke

RSS = (
    '<rss version="2.0"><channel><title>t</title>'
    "<item><title>Council bans facial recognition</title><guid>1</guid></item>"
    "<item><title>Council bans fireworks</title><guid>2</guid></item></channel></rss>"
)


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "fr.yaml").write_text(GOOD_RULES)
    return folder


def write_lines(path: Path, *rows: object) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def test_json_lines_dates_ids_and_languages(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "a.jsonl",
        {"title": "Year only", "published": "2026", "language": "de"},
        {"title": "Month only", "published": "2026-11", "link": "https://x.example/m"},
        {"title": "Offset", "published": "2026-11-26T09:30:00+01:00", "id": "own-id"},
    )
    first, second, third = read_articles(str(path), Settings())
    assert (first.published, first.dated, first.language) == (
        datetime(2026, 1, 1, tzinfo=UTC),
        True,
        "de",
    )
    assert first.entry_id.startswith("sha256:")
    assert (second.published, second.entry_id, second.link) == (
        datetime(2026, 11, 1, tzinfo=UTC),
        "https://x.example/m",
        "https://x.example/m",
    )
    assert (third.published, third.entry_id) == (
        datetime(2026, 11, 26, 8, 30, tzinfo=UTC),
        "own-id",
    )
    assert third.feed_url == JSONL_SOURCE + str(path)


def test_a_json_object_over_several_lines_is_read_as_a_json_feed(tmp_path: Path) -> None:
    path = tmp_path / "feed.json"
    path.write_text(
        json.dumps(
            {
                "version": "https://jsonfeed.org/version/1.1",
                "title": "JSON news",
                "items": [{"id": "1", "title": "Council bans facial recognition"}],
            },
            indent=2,
        )
    )
    (article,) = read_articles(str(path), Settings())
    assert (article.entry_id, article.title) == ("1", "Council bans facial recognition")


def test_articles_from_a_feed_url(feed_server: FeedServer) -> None:
    feed_server.add("/feed.xml", RSS)
    settings = Settings(allow_private_addresses=True)
    articles = read_articles(feed_server.url("/feed.xml"), settings)
    assert [(a.entry_id, a.title) for a in articles] == [
        ("1", "Council bans facial recognition"),
        ("2", "Council bans fireworks"),
    ]


def test_an_unreachable_feed_url_is_an_input_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/feed.xml"
    with pytest.raises(InputError) as caught:
        read_articles(url, Settings(allow_private_addresses=True))
    assert str(caught.value) == (
        f"{url}: connection refused by 127.0.0.1:{port}: "
        "check the feed URL or whether the server is up"
    )


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "not valid JSON: Expecting value: line 1 column 1 (char 0)"),
        ("[1, 2]", "each line must be a JSON object"),
        ('{"title": "  "}', "'title' is required and must be text"),
        ('{"title": "t", "summary": 3}', "'summary' must be text"),
        (
            '{"title": "t", "published": "last week"}',
            "'published' must be an ISO 8601 date such as 2026-11-26 or 2026-11-26T09:30:00Z",
        ),
    ],
    ids=["not-json", "not-an-object", "no-title", "summary-not-text", "bad-date"],
)
def test_each_json_lines_error_names_the_file_and_line(
    tmp_path: Path, line: str, message: str
) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text('{"title": "fine"}\n\n' + line + "\n")
    with pytest.raises(InputError) as caught:
        read_articles(str(path), Settings())
    assert str(caught.value) == f"{path}:3: {message}"


def test_an_unreadable_input(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        read_articles(str(tmp_path), Settings())
    assert str(caught.value) == f"{tmp_path}: cannot read: Is a directory"
    with pytest.raises(InputError) as caught:
        read_labelled(tmp_path)
    assert str(caught.value) == f"{tmp_path}: cannot read: Is a directory"


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"title": "t"}, '\'label\' must be "flag", "ignore" or "ambiguous"'),
        ({"title": "t", "label": "maybe"}, '\'label\' must be "flag", "ignore" or "ambiguous"'),
        ({"title": "t", "label": "flag", "rules": "fr-ban"}, "'rules' must be a list of rule ids"),
        ({"title": "t", "label": "flag", "rules": [1]}, "'rules' must be a list of rule ids"),
    ],
    ids=["no-label", "unknown-label", "rules-not-a-list", "rules-not-ids"],
)
def test_each_labelled_set_error_names_the_file_and_line(
    tmp_path: Path, row: dict[str, object], message: str
) -> None:
    path = write_lines(tmp_path / "labels.jsonl", {"title": "ok", "label": "ignore"}, row)
    with pytest.raises(InputError) as caught:
        read_labelled(path)
    assert str(caught.value) == f"{path}:2: {message}"


def test_labelled_items_take_their_file_position_as_id(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "labels.jsonl",
        {"title": "Boston bans facial recognition", "label": "flag", "rules": ["fr-ban"]},
    )
    (item,) = read_labelled(path)
    assert (item.article.entry_id, item.flag, item.expected) == (
        "labels.jsonl:1",
        True,
        frozenset({"fr-ban"}),
    )
    assert isinstance(item.article, Article)


def test_rules_test_diff_as_json(rules_dir: Path, tmp_path: Path) -> None:
    articles = write_lines(
        tmp_path / "a.jsonl",
        {"title": "Boston bans facial recognition", "id": "a"},
        {"title": "Weather", "id": "b"},
    )
    changed = tmp_path / "changed"
    changed.mkdir()
    (changed / "fr.yaml").write_text(
        GOOD_RULES.replace("[ban*]", "[weather]").replace(
            "condition: face and action", "condition: action"
        )
    )
    result = invoke(
        "rules", "test", "--input", str(articles), "--rules", str(rules_dir),
        "--diff", str(changed), "--format", "json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert [json.loads(line) for line in result.stdout.splitlines()] == [
        {
            "id": "a",
            "title": "Boston bans facial recognition",
            "started": [],
            "stopped": ["fr-ban"],
        },
        {"id": "b", "title": "Weather", "started": ["fr-ban"], "stopped": []},
    ]


def test_rules_eval_as_json(rules_dir: Path, tmp_path: Path) -> None:
    labels = write_lines(
        tmp_path / "labels.jsonl",
        {"title": "Boston bans facial recognition", "label": "flag", "rules": ["fr-ban"]},
        {"title": "Facial recognition ban sought for apps", "label": "ignore"},
    )
    result = invoke(
        "rules", "eval", "--labels", str(labels), "--rules", str(rules_dir), "--format", "json"
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "overall": {
            "precision": 0.5,
            "recall": 1.0,
            "true_positives": 1,
            "false_positives": 1,
            "false_negatives": 0,
            "articles": 2,
            "flag": 1,
            "ignore": 1,
            "ambiguous": 0,
        },
        "rules": [
            {
                "rule": "fr-ban",
                "precision": 0.5,
                "recall": 1.0,
                "true_positives": 1,
                "false_positives": 1,
                "false_negatives": 0,
            }
        ],
        "misclassified": [
            {
                "title": "Facial recognition ban sought for apps",
                "id": "labels.jsonl:2",
                "rule": "fr-ban",
                "kind": "false positive",
                "terms": ["facial recognition", "ban*"],
            }
        ],
        "languages": [
            {
                "language": None,
                "articles": 2,
                "flag": 1,
                "ignore": 1,
                "ambiguous": 0,
                "precision": 0.5,
                "recall": 1.0,
                "true_positives": 1,
                "false_positives": 1,
                "false_negatives": 0,
            }
        ],
        "ambiguous": [],
    }


def test_the_table_shows_the_part_of_a_long_summary_around_its_hit(
    rules_dir: Path, tmp_path: Path
) -> None:
    summary = "Filler words. " * 30 + "The city bans facial recognition for police. " + "x " * 200
    articles = write_lines(tmp_path / "a.jsonl", {"title": "City council", "summary": summary})
    rules = rules_dir / "fr.yaml"
    rules.write_text(GOOD_RULES.replace("    terms:", "    fields: [title, summary]\n    terms:"))
    result = invoke(
        "rules", "test", "--input", str(articles), "--rules", str(rules_dir),
        env={"COLUMNS": "200"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if "summary:" in line]
    assert len(lines) == 1
    assert "summary: …" in lines[0] and "The city bans facial recognition" in lines[0]
    assert result.stdout.splitlines()[-1] == "1 articles, 1 matched"


def test_rules_test_json_over_more_articles_than_one_write(rules_dir: Path, tmp_path: Path) -> None:
    # The JSON lines are written JSON_LINES_PER_WRITE at a time: every article, in order.
    from monitor.dryrun import JSON_LINES_PER_WRITE

    count = JSON_LINES_PER_WRITE * 2 + 7
    rows = [
        {"id": f"a{n}", "title": "Boston bans facial recognition" if n % 3 else "Weather"}
        for n in range(count)
    ]
    articles = write_lines(tmp_path / "a.jsonl", *rows)
    result = invoke(
        "rules", "test", "--input", str(articles), "--rules", str(rules_dir), "--format", "json"
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["id"] for line in lines] == [row["id"] for row in rows]
    assert [bool(line["matches"]) for line in lines] == [n % 3 != 0 for n in range(count)]
