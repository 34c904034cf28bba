"""A feed host's own signals (issue #8), as the user sees them: `monitor poll --once`,
`monitor feeds list`, the log, the database and the metrics.

Retry-After sets the next poll; a 410 or a run of 404s marks the feed as needing attention
and polls it daily until it answers; a 301/308 moves where the feed is fetched from; and no
error text carries a server's bytes beyond a few hundred characters. Every test runs on
SQLite and PostgreSQL, with the shipped defaults (the parse process pool included).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from monitor.cli import main
from monitor.config import load_settings
from monitor.errors import MAX_MESSAGE
from monitor.schedule import NOT_FOUND_LIMIT
from monitor.service import Service
from monitor.store.store import FeedState, Store
from tests.support.feed_server import FeedServer
from tests.support.raw_server import RawServer

RSS = '<rss version="2.0"><channel><title>News</title></channel></rss>'
GONE = "HTTP 410 Gone: the feed was removed; delete it from the feeds file"
UNAVAILABLE = (
    "HTTP 503 Service Unavailable: the feed server failed; "
    "it will be retried, tell its operator if it persists"
)


def invoke(*args: str, env: dict[str, str]):
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def poll_once(env: dict[str, str], *options: str):
    result = invoke("poll", "--once", *options, env=env)
    assert result.exit_code == 0, result.output
    return result


def feeds_list(env: dict[str, str]) -> list[str]:
    result = invoke("feeds", "list", env=env)
    assert result.exit_code == 0, result.output
    return result.stdout.splitlines()


def stored(env: dict[str, str]) -> list[FeedState]:
    store = Store.open(env["MONITOR_DATABASE_URL"])
    try:
        return store.feeds()
    finally:
        store.close()


def when(moment: datetime | None) -> str:
    assert moment is not None
    return moment.strftime("%Y-%m-%d %H:%M UTC")


@pytest.fixture
def monitor_env(tmp_path: Path, database_url: str):
    """Write a feeds file of the given URLs and return the environment of a run on it."""
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "r.yaml").write_text("rules:\n  - id: r\n    title: R\n    condition: '\"ban\"'\n")
    feeds = tmp_path / "feeds.yaml"

    def make(*urls: str, interval: str | None = None) -> dict[str, str]:
        extra = f"    interval: {interval}\n" if interval else ""
        feeds.write_text("feeds:\n" + "".join(f"  - url: {url}\n{extra}" for url in urls))
        return {
            "MONITOR_FEEDS": str(feeds),
            "MONITOR_RULES": str(rules),
            "MONITOR_DATABASE_URL": database_url,
            "MONITOR_ALLOW_PRIVATE_ADDRESSES": "true",  # the servers are on 127.0.0.1
        }

    return make


def failure_lines(stderr: str, url: str) -> list[str]:
    """The error of each line of `poll --once` that says the feed failed: one, said once."""
    prefix = f"WARNING monitor.pipeline: feed {url} failed "
    return [line.partition(" UTC: ")[2] for line in stderr.splitlines() if prefix in line]


# -- Retry-After ----------------------------------------------------------------------


def test_retry_after_seconds_sets_the_next_poll(feed_server: FeedServer, monitor_env, caplog):
    url = feed_server.url("/busy.xml")
    feed_server.add("/busy.xml", b"", status=503, headers={"Retry-After": "120"})
    # A 10 s interval (the feeds file's shortest) backs off to 20 s: Retry-After must win.
    env = monitor_env(url, interval="10s")
    with caplog.at_level(logging.WARNING, logger="monitor.pipeline"):
        result = poll_once(env)
    assert failure_lines(result.stderr, url) == [UNAVAILABLE]
    (feed,) = stored(env)
    assert feed.last_polled_at is not None and feed.next_poll_at is not None
    assert feed.next_poll_at - feed.last_polled_at == timedelta(seconds=120)
    (record,) = [r for r in caplog.records if "failed" in r.getMessage()]
    retry_at = feed.next_poll_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    assert (
        record.getMessage() == f"feed {url} failed (1 in a row), retry at {retry_at}: {UNAVAILABLE}"
    )
    assert record.__dict__["feed_url"] == url
    assert feeds_list(env)[:2] == [
        f"{url}  [failing since {when(feed.last_polled_at)} (1 in a row)]",
        f"    last poll: {when(feed.last_polled_at)}; last success: never; "
        f"next: {when(feed.next_poll_at)}; 0.0 items/day",
    ]


def test_retry_after_as_an_http_date_on_a_429(feed_server: FeedServer, monitor_env):
    url = feed_server.url("/limited.xml")
    until = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
    feed_server.add(
        "/limited.xml",
        b"",
        status=429,
        headers={"Retry-After": format_datetime(until, usegmt=True)},
    )
    env = monitor_env(url, interval="10s")
    poll_once(env)
    (feed,) = stored(env)
    assert feed.next_poll_at == until


def test_a_week_of_retry_after_is_capped_at_a_day(feed_server: FeedServer, monitor_env):
    url = feed_server.url("/busy.xml")
    feed_server.add("/busy.xml", b"", status=503, headers={"Retry-After": str(7 * 86400)})
    env = monitor_env(url)
    poll_once(env)
    (feed,) = stored(env)
    assert feed.last_polled_at is not None and feed.next_poll_at is not None
    assert feed.next_poll_at - feed.last_polled_at == timedelta(days=1)


# -- gone feeds -----------------------------------------------------------------------


def test_a_410_needs_attention_is_polled_daily_and_a_success_clears_it(
    feed_server: FeedServer, monitor_env, caplog
):
    url = feed_server.url("/gone.xml")
    feed_server.add("/gone.xml", b"", status=410)
    env = monitor_env(url)
    with caplog.at_level(logging.WARNING, logger="monitor.pipeline"):
        result = poll_once(env)
    assert failure_lines(result.stderr, url) == [f"{GONE}; it now needs attention: {GONE}"]
    (feed,) = stored(env)
    assert feed.last_polled_at is not None and feed.next_poll_at is not None
    # Daily, give or take the jitter that spreads polls (10%).
    assert feed.next_poll_at - feed.last_polled_at >= timedelta(hours=24) * 0.9
    lines = feeds_list(env)
    assert lines[0] == f"{url}  [needs attention: {GONE}]"
    assert lines[2] == f"    last error: {GONE}"

    feed_server.add("/gone.xml", RSS)  # the host brought it back
    poll_once(env, "--all")  # a day early: --all polls it now
    assert feeds_list(env)[0] == f"{url}  [ok]"
    (feed,) = stored(env)
    assert (feed.attention, feed.failing_since, feed.error_count) == (None, None, 0)


def test_404s_in_a_row_need_attention_at_the_limit(feed_server: FeedServer, monitor_env, caplog):
    url = feed_server.url("/missing.xml")  # the feed server answers 404 to unknown paths
    env = monitor_env(url)
    for _ in range(NOT_FOUND_LIMIT - 1):  # in a row, without waiting out the backoff
        poll_once(env, "--all")
    (feed,) = stored(env)
    since = when(feed.failing_since)
    assert feeds_list(env)[0] == f"{url}  [failing since {since} ({NOT_FOUND_LIMIT - 1} in a row)]"
    with caplog.at_level(logging.WARNING, logger="monitor.pipeline"):
        poll_once(env, "--all")
        poll_once(env, "--all")  # the daily polls after it do not log the reason again
    assert feeds_list(env)[0] == (
        f"{url}  [needs attention: HTTP 404 Not Found {NOT_FOUND_LIMIT + 1} times in a row; "
        "fix the feed URL or delete it from the feeds file]"
    )
    (marked,) = [m for m in caplog.messages if "needs attention" in m]
    assert marked.endswith(
        f"; it now needs attention: HTTP 404 Not Found {NOT_FOUND_LIMIT} times in a row; "
        "fix the feed URL or delete it from the feeds file"
    )
    assert len(feed_server.requests_for("/missing.xml")) == NOT_FOUND_LIMIT + 1


def test_feed_health_is_a_gauge(feed_server: FeedServer, monitor_env):
    feed_server.add("/gone.xml", b"", status=410)
    feed_server.add("/ok.xml", RSS)
    feed_server.add("/busy.xml", b"", status=503)
    feed_server.redirect("/old.xml", "/ok2.xml", 301)
    feed_server.add("/ok2.xml", RSS)
    env = monitor_env(
        *(feed_server.url(p) for p in ("/gone.xml", "/ok.xml", "/busy.xml", "/old.xml"))
    )
    store = Store.open(env["MONITOR_DATABASE_URL"])
    try:
        store.upgrade()
        service = Service(load_settings(env), store)
        try:
            service.poll(every=True)
            registry = service.metrics.registry
        finally:
            service.close()
    finally:
        store.close()
    health = {
        label: registry.get_sample_value("monitor_feeds", {"health": label})
        for label in ("ok", "new", "failing", "attention")
    }
    assert health == {"ok": 2, "new": 0, "failing": 1, "attention": 1}
    assert registry.get_sample_value("monitor_feeds_moved") == 1


# -- moved feeds ----------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 308])
def test_a_permanent_redirect_moves_the_feed_once(
    feed_server: FeedServer, monitor_env, caplog, status: int
):
    old, new = feed_server.url("/old.xml"), feed_server.url("/new.xml")
    feed_server.redirect("/old.xml", "/new.xml", status)
    feed_server.add("/new.xml", RSS)
    env = monitor_env(old)
    with caplog.at_level(logging.WARNING, logger="monitor.pipeline"):
        poll_once(env)
        poll_once(env, "--all")  # fetches the new URL: no redirect, nothing logged
    moves = [r for r in caplog.records if "moved" in r.getMessage()]
    assert [r.getMessage() for r in moves] == [
        f"feed {old} moved permanently to {new}; update the feeds file"
    ]
    assert moves[0].__dict__["feed_url"] == old
    assert [r.path for r in feed_server.requests] == ["/old.xml", "/new.xml", "/new.xml"]
    lines = feeds_list(env)  # the feeds file still names the old URL: still one feed
    assert lines[0] == f"{old}  [ok]"
    assert lines[2:] == [f"    moved to {new}; update the feeds file"]


@pytest.mark.parametrize("status", [302, 303, 307])
def test_a_temporary_redirect_keeps_the_url(feed_server: FeedServer, monitor_env, status: int):
    old = feed_server.url("/old.xml")
    feed_server.redirect("/old.xml", "/new.xml", status)
    feed_server.add("/new.xml", RSS)
    env = monitor_env(old)
    poll_once(env)
    poll_once(env, "--all")
    assert [r.path for r in feed_server.requests] == ["/old.xml", "/new.xml"] * 2
    assert len(feeds_list(env)) == 2  # the state line, and no "moved to"
    assert [f.fetch_url for f in stored(env)] == [None]


# -- server bytes in error messages ---------------------------------------------------


def test_a_lying_content_length_is_one_short_line_everywhere(
    raw_server: RawServer, monitor_env, caplog
):
    # Content-Length: 1000, then 100 KB more: aiohttp's parser quoted them all in its error,
    # and the feed's last error, the log and `poll --once` each carried them, every poll.
    url = raw_server.url("/feed.xml")
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nContent-Length: 1000\r\n\r\n"
    raw_server.reply("/feed.xml", head + b"A" * 1000 + b"Z" * 100_000)
    env = monitor_env(url)
    message = "127.0.0.1 sent an invalid HTTP response (Bad status line); tell the feed's operator"
    with caplog.at_level(logging.WARNING, logger="monitor.pipeline"):
        result = poll_once(env)
    assert failure_lines(result.stderr, url) == [message]
    assert all(len(line) < MAX_MESSAGE + len(url) + 200 for line in result.stderr.splitlines())
    (record,) = caplog.records
    assert record.getMessage().endswith(f": {message}")
    (feed,) = stored(env)
    assert feed.last_error == message
    assert feeds_list(env)[2] == f"    last error: {message}"
    assert all(len(line) < MAX_MESSAGE + len(url) + 40 for line in feeds_list(env))
