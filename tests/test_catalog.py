"""The feeds file: every message it can give, exactly, with its file:line:col."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.errors import ConfigError
from monitor.feeds.catalog import load_feeds
from monitor.model import FeedSpec

# feeds file text, and the message lines after "MONITOR_FEEDS: " with F for the file
MESSAGES = [
    pytest.param(
        "feeds: [https://a.example/f]\nfeed: x\n",
        ["F:2:1: unknown key 'feed' (expected 'feeds')"],
        id="unknown top-level key",
    ),
    pytest.param("", ["F:1:1: expected a list of feeds under 'feeds:'"], id="empty file"),
    pytest.param(
        "feeds: https://a.example/f\n",
        ["F:1:1: expected a list of feeds under 'feeds:'"],
        id="no list under feeds",
    ),
    pytest.param(
        "hello\n", ["F:1:1: expected a list of feeds under 'feeds:'"], id="a scalar document"
    ),
    pytest.param(
        "feeds:\n  - [https://a.example/f]\n",
        ["F:2:5: each feed is a URL or a mapping with 'url'"],
        id="an entry that is a list",
    ),
    pytest.param(
        "feeds:\n  -\n  - https://a.example/f\n",
        ["F:2:4: each feed is a URL or a mapping with 'url'"],
        id="an empty entry",
    ),
    pytest.param(
        "feeds:\n  - https://a.example/f\n  - url: https://a.example/f\n    name: again\n",
        ["F:3:5: duplicate feed https://a.example/f (first at line 2)"],
        id="the same feed twice",
    ),
    pytest.param(
        "feeds:\n  - url: https://a.example/f\n    tag: news\n",
        ["F:3:5: unknown key 'tag' (feeds take url, name, tags, interval)"],
        id="unknown feed key",
    ),
    pytest.param("feeds:\n  - name: A\n", ["F:2:5: feed has no 'url'"], id="no url"),
    pytest.param("feeds:\n  - url: '  '\n", ["F:2:5: feed has no 'url'"], id="a blank url"),
    pytest.param(
        "feeds:\n  - url: ftp://a.example/f\n",
        ["F:2:10: 'ftp://a.example/f' is not an http(s) URL"],
        id="not an http url",
    ),
    pytest.param(
        "feeds:\n  - https:///f\n",
        ["F:2:5: 'https:///f' is not an http(s) URL"],
        id="a url without a host",
    ),
    pytest.param(
        "feeds:\n  - url: https://a.example/f\n    name: [a, b]\n",
        ["F:3:11: 'name' must be text"],
        id="a name that is a list",
    ),
    pytest.param(
        "feeds:\n  - url: https://a.example/f\n    name:\n",
        ["F:3:10: 'name' must be text"],  # was 4:1, the line after; libyaml's position
        id="an empty name",
    ),
    pytest.param(
        "feeds:\n  - url: https://a.example/f\n    tags: {a: b}\n",
        ["F:3:11: 'tags' must be a list of words"],
        id="tags that are a mapping",
    ),
    pytest.param(
        "feeds:\n  - url: https://a.example/f\n    tags: [news, [x]]\n",
        ["F:3:11: 'tags' must be a list of words"],
        id="a tag that is a list",
    ),
    pytest.param(
        "feeds:\n  - url: https://a.example/f\n    interval: soon\n",
        ["F:3:15: expected a duration such as 90s, 15m, 2h, 1d or plain seconds (got 'soon')"],
        id="an interval that is no duration",
    ),
    pytest.param(
        "feeds:\n  - url: https://a.example/f\n    interval: 5s\n",
        ["F:3:15: interval must be at least 10s"],
        id="an interval too short",
    ),
    pytest.param(
        "feeds:\n  - url: https://a.example/f\n    interval: 5\n",
        ["F:3:15: interval must be at least 10s"],
        id="an interval in plain seconds too short",
    ),
    pytest.param(
        "feeds:\n"
        "  - url: ftp://a.example/f\n"
        "  - nme: typo\n"
        "    url: https://b.example/f\n"
        "    interval: 1s\n"
        "  - tags: {a: b}\n"
        "    url: https://c.example/f\n"
        "  - https://d.example/f\n"
        "  - https://d.example/f\n"
        "other: 1\n",
        [
            "F:10:1: unknown key 'other' (expected 'feeds')",
            "F:2:10: 'ftp://a.example/f' is not an http(s) URL",
            "F:3:5: unknown key 'nme' (feeds take url, name, tags, interval)",
            "F:5:15: interval must be at least 10s",
            "F:6:11: 'tags' must be a list of words",
            "F:9:5: duplicate feed https://d.example/f (first at line 8)",
        ],
        id="every problem at once, in file order",
    ),
    pytest.param(
        "feeds:\n  - url: https://a.example/f\n    name: a: b\n",
        [
            "F:3:12: invalid YAML: mapping values are not allowed here "
            "(quote this value: ': ' inside a plain value starts a mapping)"
        ],
        id="a YAML syntax error",
    ),
    pytest.param(
        "feeds:\n\t- https://a.example/f\n",
        ["F:2:1: tab character in indentation (indent with spaces)"],
        id="a tab in the indentation",
    ),
    pytest.param(
        "feeds:\n  - url: https://a.example/f\n    url: https://b.example/f\n",
        ["F:3:5: duplicate key 'url' (first at line 2) (remove one of them)"],
        id="a duplicate key",
    ),
    pytest.param(
        'feeds:\n  - url: "https://a.example/\\d"\n',
        [
            "F:2:30: invalid YAML: found unknown escape character 'd' "
            "(while scanning a double-quoted scalar) (write values with a backslash in single "
            "quotes: 'https://a.example/\\d' (in double quotes a backslash starts a YAML escape))"
        ],
        id="a backslash in double quotes",
    ),
    pytest.param(
        "feeds: [https://a.example/f\n",
        [
            "F:2:1: invalid YAML: expected ',' or ']', but got '<stream end>' (while parsing a "
            "flow sequence) (check the indentation of this line and the one before)"
        ],
        id="an unclosed flow list",
    ),
    pytest.param(
        "feeds: []\n---\nfeeds: []\n",
        ["F:2:1: only one YAML document per feeds file (remove the '---' line or split the file)"],
        id="two documents",
    ),
    pytest.param(
        "feeds:\n  - url: https://a.example/f\n    interval: !!int 90\n",
        [
            "F:3:15: tag '!!int' is not allowed in feeds files "
            "(remove it: feeds files hold plain strings, lists and mappings)"
        ],
        id="a tag",
    ),
    pytest.param(
        "feeds:\n  - https://a.example/f\n   - https://b.example/f\n  - https://c.example/f\n",
        [
            "F:3:4: list item is indented more than the item before it, so YAML reads it as "
            "more of that item's text (indent it like the item above it (2 spaces))"
        ],
        id="a list item indented more than the one before",
    ),
    pytest.param(
        "feeds:\n  - url: https://a.example/f\n    url: https://b.example/f\n    interval: 1s\n",
        [
            "F:3:5: duplicate key 'url' (first at line 2) (remove one of them)",
            "F:4:15: interval must be at least 10s",
        ],
        id="a duplicate key and the problems after it",
    ),
]


@pytest.mark.parametrize(("text", "expected"), MESSAGES)
def test_every_message_names_the_file_line_and_column(
    tmp_path: Path, text: str, expected: list[str]
) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_feeds(path)
    assert caught.value.setting == "MONITOR_FEEDS"
    lines = [line.replace("F:", f"{path}:", 1) for line in expected]
    assert str(caught.value).splitlines() == ["MONITOR_FEEDS: " + lines[0], *lines[1:]]


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "feeds.yaml"
    with pytest.raises(ConfigError) as caught:
        load_feeds(path)
    assert str(caught.value) == (
        f"MONITOR_FEEDS: cannot read feeds file {path}: No such file or directory"
    )


def test_a_good_file_gives_every_feed_in_order(tmp_path: Path) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text(
        "# comment\n"
        "feeds:\n"
        "  - https://a.example/f\n"
        "  - url: ' https://b.example/f '\n"
        "    name: ' B news '\n"
        "    tags: policy\n"
        "    interval: 15m\n"
        "  - url: https://c.example/f\n"
        "    tags: [news, tech]\n"
        "    interval: 90\n",
        encoding="utf-8",
    )
    assert load_feeds(path) == (
        FeedSpec(url="https://a.example/f"),
        FeedSpec(url="https://b.example/f", name="B news", tags=("policy",), interval=900.0),
        FeedSpec(url="https://c.example/f", tags=("news", "tech"), interval=90.0),
    )


def test_a_bare_list_is_a_feeds_file(tmp_path: Path) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text("- https://a.example/f\n- url: https://b.example/f\n", encoding="utf-8")
    assert load_feeds(path) == (
        FeedSpec(url="https://a.example/f"),
        FeedSpec(url="https://b.example/f"),
    )


def test_the_shipped_feeds_file_loads() -> None:
    feeds = load_feeds(Path(__file__).parent.parent / "feeds.yaml")
    assert len(feeds) == len({feed.url for feed in feeds}) > 0


def test_a_file_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_bytes(b"feeds:\n  - url: https://a.example/\xe9\n")
    with pytest.raises(ConfigError) as caught:
        load_feeds(path)
    assert str(caught.value) == (
        f"MONITOR_FEEDS: {path}:1:1: not UTF-8 text (byte 34) (save the file as UTF-8)"
    )


def test_plain_values_stay_the_text_written(tmp_path: Path) -> None:
    # As in rule files: no YAML typing, so a year or `no` is a word, not a number or a
    # boolean (the old reader rejected `name: 2024` as "'name' must be text").
    path = tmp_path / "feeds.yaml"
    path.write_text(
        "feeds:\n  - url: https://a.example/f\n    name: 2024\n    tags: [true, 2024, no]\n",
        encoding="utf-8",
    )
    assert load_feeds(path) == (
        FeedSpec(url="https://a.example/f", name="2024", tags=("true", "2024", "no")),
    )


def test_a_byte_order_mark_and_aliases_are_read(tmp_path: Path) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_bytes(
        b"\xef\xbb\xbffeeds:\n"
        b"  - url: https://a.example/f\n    tags: &policy [news]\n"
        b"  - url: https://b.example/f\n    tags: *policy\n"
    )
    assert load_feeds(path) == (
        FeedSpec(url="https://a.example/f", tags=("news",)),
        FeedSpec(url="https://b.example/f", tags=("news",)),
    )
