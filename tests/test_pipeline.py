"""The poll cycle and the delivery run against real local servers and a real database."""

from __future__ import annotations

import asyncio
import signal
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import psutil
import pytest

from monitor.feeds.fetch import Fetcher, FetchOptions
from monitor.matching import load_rules
from monitor.model import FeedSpec
from monitor.notify.console import ConsoleSender
from monitor.pipeline import PollSettings, deliver_pending, poll_cycle
from monitor.reader import ArticleReader
from monitor.store.store import Store

RULES = """\
rules:
  - id: fr-ban
    title: Facial recognition ban
    channel: "#alerts"
    terms:
      face: [facial recognition]
      action: [ban*]
    condition: face and action
"""


def feed(*titles: str, when: datetime | None = None) -> str:
    when = when or datetime.now(UTC)
    items = "".join(
        f"<item><title>{title}</title><guid>g{number}</guid>"
        f"<link>https://news.example/{number}</link>"
        f"<pubDate>{format_datetime(when)}</pubDate></item>"
        for number, title in enumerate(titles)
    )
    return f'<rss version="2.0"><channel><title>t</title>{items}</channel></rss>'


@pytest.fixture
def rules(tmp_path: Path):
    (tmp_path / "fr.yaml").write_text(RULES)
    return load_rules(tmp_path / "fr.yaml").ruleset


@pytest.fixture
def store(database_url: str):
    store = Store.open(database_url)
    store.upgrade()
    yield store
    store.close()


@pytest.fixture
def reader(rules):
    reader = ArticleReader(rules)  # the default: one process per CPU
    yield reader
    reader.close()


def settings(**fetch: object) -> PollSettings:
    options = FetchOptions(allow_private_addresses=True, **fetch)  # type: ignore[arg-type]
    return PollSettings(fetch=options, poll_interval=60, jitter=lambda: 0.0)


async def test_unchanged_body_is_not_parsed_again(feed_server, store, reader):
    feed_server.add("/f.xml", feed("City bans facial recognition"))  # no validators
    store.sync_feeds([FeedSpec(feed_server.url("/f.xml"))], datetime.now(UTC))
    first = await poll_cycle(store, Fetcher, reader, settings())
    assert [(f.outcome, f.new_articles, f.new_alerts) for f in first.feeds] == [("updated", 1, 1)]
    later = datetime.now(UTC) + timedelta(minutes=5)
    second = await poll_cycle(store, Fetcher, reader, settings(), clock=lambda: later)
    assert [f.outcome for f in second.feeds] == ["unchanged"]


async def test_a_non_feed_fails_and_keeps_the_old_validators(feed_server, store, reader):
    url = feed_server.url("/f.xml")
    feed_server.add("/f.xml", feed("one"), etag='"1"')
    store.sync_feeds([FeedSpec(url)], datetime.now(UTC))
    await poll_cycle(store, Fetcher, reader, settings())
    feed_server.add("/f.xml", "<html><body>Moved</body></html>", content_type="text/html")
    later = datetime.now(UTC) + timedelta(minutes=5)
    report = await poll_cycle(store, Fetcher, reader, settings(), clock=lambda: later)
    (failed,) = report.failed
    assert failed.error is not None and failed.error.startswith("not a feed")
    (state,) = store.feeds()
    assert (state.etag, state.error_count) == ('"1"', 1)
    assert state.next_poll_at is not None and state.next_poll_at > later + timedelta(seconds=60)


async def test_a_hanging_feed_does_not_hold_up_the_others(feed_server, store, reader):
    feed_server.hang("/hang.xml")
    feed_server.add("/ok.xml", feed("City bans facial recognition"))
    store.sync_feeds(
        [FeedSpec(feed_server.url("/hang.xml")), FeedSpec(feed_server.url("/ok.xml"))],
        datetime.now(UTC),
    )
    report = await poll_cycle(store, Fetcher, reader, settings(deadline=1.0, read_timeout=5.0))
    outcomes = {f.url.rsplit("/", 1)[1]: f.outcome for f in report.feeds}
    assert outcomes == {"hang.xml": "failed", "ok.xml": "updated"}


async def test_parse_workers_killed_between_cycles_are_replaced_and_lose_nothing(
    feed_server, store, rules
):
    feed_server.add("/f.xml", feed("City bans facial recognition"))
    store.sync_feeds([FeedSpec(feed_server.url("/f.xml"))], datetime.now(UTC))
    pool = ArticleReader(rules)
    try:
        # Start the workers, then kill them while idle, as an OOM kill would.
        body = feed("Weather").encode()
        await pool.read(body, url="http://x/", headers={}, fetched_at=datetime.now(UTC))
        me = psutil.Process()
        # The spawned workers, not the resource tracker beside them.
        workers = [p for p in me.children() if "--multiprocessing-fork" in p.cmdline()]
        assert workers
        for process in workers:
            process.send_signal(signal.SIGKILL)
        report = await poll_cycle(store, Fetcher, pool, settings())
    finally:
        pool.close()
    assert [(f.outcome, f.new_alerts) for f in report.feeds] == [("updated", 1)]


async def test_console_delivery_prints_and_marks_sent(feed_server, store, reader, capsys):
    feed_server.add("/f.xml", feed("City bans facial recognition"))
    store.sync_feeds([FeedSpec(feed_server.url("/f.xml"), name="City paper")], datetime.now(UTC))
    await poll_cycle(store, Fetcher, reader, settings())
    report = deliver_pending(store, ConsoleSender(), default_channel=None)
    assert (report.sent, report.failed, report.retrying) == (1, 0, 0)
    printed = capsys.readouterr().out
    assert "City bans facial recognition" in printed
    assert "Facial recognition ban" in printed
    assert deliver_pending(store, ConsoleSender(), default_channel=None).sent == 0


FEED_FILES = Path(__file__).resolve().parent / "data" / "feeds"


async def test_every_real_feed_file_yields_articles_or_a_recorded_error(feed_server, store, reader):
    files = sorted(path for path in FEED_FILES.iterdir() if path.name != "SOURCES.md")
    assert len(files) > 40
    for number, path in enumerate(files):
        kind = "application/feed+json" if path.suffix == ".json" else "application/xml"
        feed_server.add(f"/{number}", path.read_bytes(), content_type=kind)
    store.sync_feeds(
        [FeedSpec(feed_server.url(f"/{n}")) for n in range(len(files))], datetime.now(UTC)
    )
    report = await poll_cycle(store, Fetcher, reader, settings())
    assert len(report.feeds) == len(files)
    failed = {feed.url.rsplit("/", 1)[1]: feed.error for feed in report.failed}
    for name, error in failed.items():
        assert error and error.startswith("not a feed"), (files[int(name)].name, error)
    assert len(failed) <= 5, failed
    assert report.new_articles > 800  # fewer than parsed: fixtures share links
    states = {state.url: state for state in store.feeds()}
    assert sum(1 for state in states.values() if state.error_count) == len(failed)


async def test_a_feed_polled_longer_than_the_lease_stays_with_its_worker(
    feed_server, store, reader
):
    """Issue #11: a cycle longer than the lease let a second worker re-claim feeds in progress."""
    feed_server.add("/slow.xml", feed("Slow story"), delay=5.0)
    store.sync_feeds([FeedSpec(feed_server.url("/slow.xml"))], datetime.now(UTC))
    short = replace(settings(), lease=3.0)  # the shortest lease: the test outlives it in seconds
    cycle = asyncio.create_task(poll_cycle(store, Fetcher, reader, short))
    await asyncio.sleep(4.0)  # past the first lease: only its renewals hold the feed now
    other = await asyncio.to_thread(
        store.claim_due_feeds, datetime.now(UTC), short.claim_lease, owner="other"
    )
    report = await cycle

    assert other == []
    assert [feed.outcome for feed in report.feeds] == ["updated"]
    assert len(feed_server.requests_for("/slow.xml")) == 1
    assert [feed.leased_until for feed in store.feeds()] == [None]  # the outcome ended the claim
