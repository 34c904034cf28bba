"""Adaptive polling and per-host limits end to end (issue #11): `monitor poll --once` against
the local feed server, judged by the next poll times the database holds and by how many
requests the server had open at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from monitor.cli import main
from monitor.store.store import FeedState, Store

SY = "http://purl.org/rss/1.0/modules/syndication/"


def rss(gap: timedelta, count: int, channel_extra: str = "") -> str:
    now = datetime.now(UTC)
    items = "".join(
        f"<item><title>Story {n}</title><guid>{n}</guid>"
        f"<pubDate>{format_datetime(now - gap * n)}</pubDate></item>"
        for n in range(count)
    )
    return (
        f'<rss version="2.0" xmlns:sy="{SY}"><channel><title>T</title>{channel_extra}'
        f"{items}</channel></rss>"
    )


@pytest.fixture
def env(tmp_path: Path, database_url: str):
    rules = tmp_path / "rules"
    rules.mkdir()
    feeds = tmp_path / "feeds.yaml"

    def make(*urls: str) -> dict[str, str]:
        feeds.write_text("feeds:\n" + "".join(f"  - url: {url}\n" for url in urls))
        return {
            "MONITOR_FEEDS": str(feeds),
            "MONITOR_RULES": str(rules),
            "MONITOR_DATABASE_URL": database_url,
            "MONITOR_ALLOW_PRIVATE_ADDRESSES": "true",
        }

    return make


def poll(env: dict[str, str], *options: str) -> str:
    result = CliRunner().invoke(main, ["poll", "--once", *options], env=env)
    assert result.exit_code == 0, result.output
    return result.stdout


def stored(env: dict[str, str]) -> dict[str, FeedState]:
    store = Store.open(env["MONITOR_DATABASE_URL"])
    try:
        return {feed.url: feed for feed in store.feeds()}
    finally:
        store.close()


def waits(feed: FeedState) -> float:
    assert feed.next_poll_at is not None and feed.last_polled_at is not None
    return (feed.next_poll_at - feed.last_polled_at).total_seconds()


def test_next_polls_follow_each_feeds_pace_and_its_publishers_hints(env, feed_server):
    soon = format_datetime(datetime.now(UTC) + timedelta(hours=1), usegmt=True)
    minutes = timedelta(minutes=1)
    feed_server.add("/hourly.xml", rss(60 * minutes, 10), etag='"h1"')
    feed_server.add("/ttl.xml", rss(10 * minutes, 5, "<ttl>180</ttl>"))
    feed_server.add(
        "/sy.xml",
        rss(10 * minutes, 5, "<sy:updatePeriod>daily</sy:updatePeriod>"
            "<sy:updateFrequency>1</sy:updateFrequency>"),
    )  # fmt: skip
    feed_server.add("/maxage.xml", rss(10 * minutes, 5), headers={"Cache-Control": "max-age=7200"})
    feed_server.add("/zero.xml", rss(minutes, 5), headers={"Cache-Control": "max-age=0"})
    feed_server.add("/expires.xml", rss(10 * minutes, 5), headers={"Expires": soon})
    feed_server.add("/fresh.xml", rss(60 * minutes, 2))  # two items: too few to go by
    feed_server.add("/broken.xml", "<html>not a feed", headers={"Cache-Control": "max-age=9"})
    paths = ["/hourly.xml", "/ttl.xml", "/sy.xml", "/maxage.xml", "/zero.xml", "/expires.xml",
             "/fresh.xml", "/broken.xml"]  # fmt: skip
    settings = env(*(feed_server.url(path) for path in paths))
    assert "(7 updated, 0 unchanged, 1 failed)" in poll(settings)
    feeds = {path: stored(settings)[feed_server.url(path)] for path in paths}
    expected = {
        "/hourly.xml": 1800,  # half the hour between items
        "/ttl.xml": 3 * 3600,  # <ttl>180</ttl>: three hours, though it publishes every 10 min
        "/sy.xml": 4 * 3600,  # daily, bounded by MONITOR_MAX_INTERVAL (4h)
        "/maxage.xml": 7200,  # Cache-Control: max-age=7200
        "/zero.xml": 120,  # every minute and max-age=0: MONITOR_MIN_INTERVAL (2m), no hammering
        "/expires.xml": 3600,  # Expires in an hour
        "/fresh.xml": 300,  # MONITOR_POLL_INTERVAL until the items say more
        "/broken.xml": 600,  # a failure backs off from the interval as before, hints aside
    }
    for path, seconds in expected.items():
        assert waits(feeds[path]) == pytest.approx(seconds, rel=0.11), path  # 10% jitter
    assert feeds["/hourly.xml"].publish_gap == pytest.approx(3600, abs=1)
    assert feeds["/ttl.xml"].refresh_hint == 3 * 3600
    assert feeds["/fresh.xml"].publish_gap is None
    # A 304 carries no items: the pace learnt from the last document still sets the next poll.
    assert "(0 updated, 7 unchanged, 1 failed)" in poll(settings, "--all")
    again = stored(settings)[feed_server.url("/hourly.xml")]
    assert feed_server.requests_for("/hourly.xml")[-1].headers["If-None-Match"] == '"h1"'
    assert again.last_polled_at != feeds["/hourly.xml"].last_polled_at  # polled again
    assert waits(again) == pytest.approx(1800, rel=0.11)


def slow_feeds(feed_server, count: int) -> list[str]:
    """`count` feeds on the one local host, each answering after a delay so polls overlap."""
    for n in range(count):
        feed_server.add(f"/slow/{n}.xml", rss(timedelta(hours=1), 3), delay=0.5)
    return [feed_server.url(f"/slow/{n}.xml") for n in range(count)]


def test_one_host_gets_at_most_monitor_per_host_requests_at_once(env, feed_server):
    settings = env(*slow_feeds(feed_server, 20))
    assert "polled 20 feeds (20 updated" in poll(settings)
    assert len(feed_server.requests) == 20
    assert feed_server.most_concurrent == 4  # the default MONITOR_PER_HOST, and reached


def test_without_the_per_host_limit_one_host_gets_every_fetch_at_once(env, feed_server):
    # MONITOR_PER_HOST raised to MONITOR_CONCURRENCY is the behaviour before the limit (the
    # aiohttp connector alone has none per host): this measures what the default changes.
    settings = dict(env(*slow_feeds(feed_server, 20)), MONITOR_PER_HOST="50")
    assert "polled 20 feeds (20 updated" in poll(settings)
    assert feed_server.most_concurrent == 20


def test_feeds_waiting_for_a_busy_host_let_other_hosts_go_first(env, feed_server):
    # MONITOR_CONCURRENCY lowered to 4 so that one host's queue outgrows the global limit
    # with a dozen feeds (at the default 50 the same takes 51); MONITOR_PER_HOST is the default.
    busy = slow_feeds(feed_server, 12)
    feed_server.add("/other.xml", rss(timedelta(hours=1), 3))
    other = feed_server.url("/other.xml").replace("127.0.0.1", "localhost")  # another host name
    settings = dict(env(*busy, other), MONITOR_CONCURRENCY="4")
    assert "polled 13 feeds (13 updated" in poll(settings)
    order = [request.path for request in feed_server.requests]
    assert order.index("/other.xml") < 8  # not behind the busy host's queue
    assert feed_server.most_concurrent <= 4
