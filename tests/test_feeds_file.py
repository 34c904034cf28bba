"""The feeds file (monitor/feeds/catalog.py) as a whole: every problem at once, files it cannot
read, and what a good file gives. The table of each single message is tests/test_catalog.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.errors import ConfigError
from monitor.feeds.catalog import load_feeds
from monitor.model import FeedSpec

A = "https://a.example/rss"


def feeds_error(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_feeds(path)
    assert caught.value.setting == "MONITOR_FEEDS"
    return caught.value


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
        f"{path}:5:5: '42' is not an http(s) URL",
    ]


def test_one_feed_with_several_problems_reports_each(tmp_path: Path) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text(f"feeds:\n  - url: {A}\n    name: [3]\n    interval: 1s\n", encoding="utf-8")
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
