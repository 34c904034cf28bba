"""The feeds file (monitor/feeds/catalog.py): every message it can give, asserted exactly.

One row per message: the file's text, then the whole error as the operator reads it
(``MONITOR_FEEDS: file:line:col: message``). ``{file}`` stands for the file's path.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.errors import ConfigError
from monitor.feeds.catalog import load_feeds
from monitor.model import FeedSpec

A = "https://a.example/rss"

MESSAGES = [
    pytest.param(
        "feeds: [\n",
        "{file}:2:1: expected the node content, but found '<stream end>'",
        id="not-yaml",
    ),
    pytest.param(
        f"feeds:\n  - url: {A}\n    url: https://b.example/\n",
        '{file}:3:5: found duplicate key "url" with value "https://b.example/" '
        f'(original value: "{A}")',
        id="duplicate-key",
    ),
    pytest.param("", "{file}:1:1: expected a list of feeds under 'feeds:'", id="empty-file"),
    pytest.param(
        "feeds: 3\n", "{file}:1:1: expected a list of feeds under 'feeds:'", id="not-a-list"
    ),
    pytest.param(
        "feeds: []\nfeed: []\n",
        "{file}:2:1: unknown key 'feed' (expected 'feeds')",
        id="unknown-top-level-key",
    ),
    pytest.param(
        "feeds:\n  - 42\n",
        "{file}:2:5: each feed is a URL or a mapping with 'url'",
        id="neither-url-nor-mapping",
    ),
    pytest.param(
        f"feeds:\n  - {A}\n  - url: {A}\n",
        f"{{file}}:3:5: duplicate feed {A} (first at line 2)",
        id="duplicate-feed",
    ),
    pytest.param(
        f"feeds:\n  - url: {A}\n    title: A\n",
        "{file}:3:5: unknown key 'title' (feeds take url, name, tags, interval)",
        id="unknown-feed-key",
    ),
    pytest.param("feeds:\n  - name: A\n", "{file}:2:5: feed has no 'url'", id="no-url"),
    pytest.param("feeds:\n  - url: '  '\n", "{file}:2:5: feed has no 'url'", id="blank-url"),
    pytest.param(
        "feeds:\n  - url: ftp://a.example/\n",
        "{file}:2:10: 'ftp://a.example/' is not an http(s) URL",
        id="not-http",
    ),
    pytest.param(
        "feeds:\n  - url: 'http://'\n",
        "{file}:2:10: 'http://' is not an http(s) URL",
        id="no-host",
    ),
    pytest.param(
        f"feeds:\n  - url: {A}\n    name: [A]\n",
        "{file}:3:11: 'name' must be text",
        id="name-not-text",
    ),
    pytest.param(
        f"feeds:\n  - url: {A}\n    tags: {{policy: 1}}\n",
        "{file}:3:11: 'tags' must be a list of words",
        id="tags-a-mapping",
    ),
    pytest.param(
        f"feeds:\n  - url: {A}\n    tags: [policy, 1]\n",
        "{file}:3:11: 'tags' must be a list of words",
        id="tags-not-words",
    ),
    pytest.param(
        f"feeds:\n  - url: {A}\n    interval: soon\n",
        "{file}:3:15: expected a duration such as 90s, 15m, 2h, 1d or plain seconds (got 'soon')",
        id="interval-not-a-duration",
    ),
    pytest.param(
        f"feeds:\n  - url: {A}\n    interval: 5s\n",
        "{file}:3:15: interval must be at least 10s",
        id="interval-too-short",
    ),
]


def feeds_error(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_feeds(path)
    assert caught.value.setting == "MONITOR_FEEDS"
    return caught.value


@pytest.mark.parametrize(("text", "message"), MESSAGES)
def test_each_feeds_file_message(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text(text, encoding="utf-8")
    assert str(feeds_error(path)) == "MONITOR_FEEDS: " + message.format(file=path)


def test_every_problem_is_reported_at_once_in_file_order(tmp_path: Path) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text(
        f"feeds:\n  - url: ftp://a.example/\n  - {A}\n  - {A}\n  - 42\nextra: 1\n",
        encoding="utf-8",
    )
    assert str(feeds_error(path)).splitlines() == [
        f"MONITOR_FEEDS: {path}:6:1: unknown key 'extra' (expected 'feeds')",
        f"{path}:2:10: 'ftp://a.example/' is not an http(s) URL",
        f"{path}:4:5: duplicate feed {A} (first at line 3)",
        f"{path}:5:5: each feed is a URL or a mapping with 'url'",
    ]


def test_one_feed_with_several_problems_reports_each(tmp_path: Path) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text(f"feeds:\n  - url: {A}\n    name: 3\n    interval: 1s\n", encoding="utf-8")
    assert str(feeds_error(path)).splitlines() == [
        f"MONITOR_FEEDS: {path}:3:11: 'name' must be text",
        f"{path}:4:15: interval must be at least 10s",
    ]


def test_a_missing_feeds_file(tmp_path: Path) -> None:
    path = tmp_path / "feeds.yaml"
    assert str(feeds_error(path)) == (
        f"MONITOR_FEEDS: cannot read feeds file {path}: No such file or directory"
    )


def test_an_unreadable_feeds_file(tmp_path: Path) -> None:
    # Tests may run as root, whom a file's mode does not stop: a folder cannot be read either.
    assert str(feeds_error(tmp_path)) == (
        f"MONITOR_FEEDS: cannot read feeds file {tmp_path}: Is a directory"
    )


@pytest.mark.xfail(
    raises=UnicodeDecodeError,
    strict=True,
    reason="catalog.py reads the file as UTF-8 and lets UnicodeDecodeError escape",
)
def test_a_feeds_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_bytes(b"feeds:\n  - url: https://a.example/\n    name: \xff\n")
    feeds_error(path)


def test_urls_mappings_and_a_bare_list_are_read_into_feed_specs(tmp_path: Path) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text(
        f"feeds:\n  - {A}\n  - url: ' https://b.example/x '\n    name: ' B '\n"
        "    tags: policy\n    interval: 15m\n",
        encoding="utf-8",
    )
    assert load_feeds(path) == (
        FeedSpec(url=A),
        FeedSpec(url="https://b.example/x", name="B", tags=("policy",), interval=900.0),
    )
    bare = tmp_path / "bare.yaml"
    bare.write_text(f"- {A}\n- url: https://c.example/\n  tags: [x, y]\n", encoding="utf-8")
    assert load_feeds(bare) == (
        FeedSpec(url=A),
        FeedSpec(url="https://c.example/", tags=("x", "y")),
    )


def test_the_shipped_feeds_file_loads() -> None:
    shipped = Path(__file__).resolve().parents[1] / "feeds.yaml"
    assert len(load_feeds(shipped)) > 0
