"""The pipeline's rules on fakes: one bad feed fails alone, store then send, retries.

No socket, process or database: the edges are tests/support/fakes.py. The same paths
against real servers and databases are tests/test_pipeline.py and tests/test_e2e.py.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from monitor.errors import FetchError
from monitor.feeds.fetch import FetchOptions, FetchRequest
from monitor.model import Article, Match
from monitor.notify.render import render_alert
from monitor.pipeline import DeliveryReport, FeedReport, PollSettings, deliver_pending, poll_cycle
from monitor.store.store import PollOutcome
from tests.support.fakes import (
    DeliveryRow,
    FakeClock,
    FakeFetcher,
    FakeReader,
    FakeSender,
    FakeStore,
)

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
SETTINGS = PollSettings(fetch=FetchOptions(), poll_interval=60, jitter=lambda: 0.0)
LEASE = timedelta(minutes=5)  # deliver_pending's default claim lease
GOOD, DOWN, HTML, SAME = (
    f"https://{name}.example/feed" for name in ("good", "down", "html", "same")
)
BAN = Match("fr-ban", "Facial recognition ban", "high", "#alerts")


def story(feed_url: str, title: str = "City bans facial recognition") -> Article:
    return Article(feed_url=feed_url, entry_id=title, title=title, published=NOW)


def clock() -> datetime:
    return NOW


async def test_one_bad_feed_among_good_ones_fails_only_itself():
    fetcher = (
        FakeFetcher()
        .serves(GOOD, b"<rss/>", etag='"v2"')
        .fails(DOWN, FetchError(DOWN, "HTTP 500 Internal Server Error", 500))
        .serves(HTML, b"<html>")
        .not_modified(SAME, etag='"v1"')
    )
    reader = FakeReader().parses(GOOD, (story(GOOD), (BAN,))).rejects(HTML, "not a feed")
    store = FakeStore().has_feed(GOOD).has_feed(DOWN).has_feed(HTML).has_feed(SAME, etag='"v1"')

    report = await poll_cycle(store, fetcher, reader, SETTINGS, clock)

    assert all(feed.fetch_seconds is not None for feed in report.feeds)
    assert tuple(replace(feed, fetch_seconds=None) for feed in report.feeds) == (
        FeedReport(DOWN, "failed", error="HTTP 500 Internal Server Error", status=500),
        FeedReport(GOOD, "updated", new_articles=1, new_matches=1, status=200),
        FeedReport(HTML, "failed", error="not a feed", status=200),
        FeedReport(SAME, "not-modified", status=304),
    )
    assert {outcome.feed_url: outcome.error for outcome in store.outcomes} == {
        DOWN: "HTTP 500 Internal Server Error",
        GOOD: None,
        HTML: "not a feed",
        SAME: None,
    }
    assert FetchRequest(SAME, etag='"v1"') in fetcher.requests  # the stored validator is sent
    assert reader.read_urls == [GOOD, HTML]  # a 304 is never parsed
    assert fetcher.sessions == 1  # one session for the whole cycle


async def test_a_feed_not_due_is_not_polled():
    store = FakeStore().has_feed(GOOD, next_poll_at=NOW + timedelta(seconds=1))

    fetcher = FakeFetcher()

    report = await poll_cycle(store, fetcher, FakeReader(), SETTINGS, clock)

    assert (report.feeds, store.outcomes, fetcher.sessions) == ((), [], 0)


def due_feeds(count: int) -> tuple[list[str], FakeStore, FakeFetcher]:
    """`count` feeds due now, each answering 304."""
    urls = [f"https://f{n}.example/feed" for n in range(count)]
    store, fetcher = FakeStore(), FakeFetcher()
    for url in urls:
        store.has_feed(url)
        fetcher.not_modified(url)
    return urls, store, fetcher


async def test_a_cycle_claims_a_batch_at_a_time_until_none_is_due():
    """Issue #11: one claim took every due feed, so a second worker found nothing to do."""
    urls, store, fetcher = due_feeds(7)
    few = replace(SETTINGS, claim_batch=3)  # a batch smaller than the feeds, to see batches

    report = await poll_cycle(store, fetcher, FakeReader(), few, clock)

    assert sorted(request.url for request in fetcher.requests) == urls
    assert [feed.url for feed in report.feeds] == urls
    assert store.claims[0] == 3
    assert max(store.claims) <= 3
    assert (sum(store.claims), store.claims[-1]) == (7, 0)  # came back until none was due
    assert store.leases == {url: store.leases[urls[0]] for url in urls}  # one owner per cycle


async def test_a_stop_gives_back_at_once_the_feeds_not_polled_yet():
    urls, store, fetcher = due_feeds(4)
    one_at_a_time = replace(SETTINGS, fetch=FetchOptions(concurrency=1))  # a stop mid-cycle

    report = await poll_cycle(
        store, fetcher, FakeReader(), one_at_a_time, clock, stopping=lambda: bool(fetcher.requests)
    )

    assert [feed.url for feed in report.feeds] == urls[:1]
    assert sorted(store.released) == urls[1:]
    assert store.claims == [4]  # no claim after the stop


@pytest.mark.parametrize(
    ("errors_before", "status", "retry_after", "wait"),
    [
        (0, 500, None, timedelta(seconds=120)),  # the interval, doubled once
        (2, 500, None, timedelta(seconds=480)),  # doubled per failure in a row
        (20, 500, None, timedelta(hours=24)),  # the ceiling: retried daily, never dropped
        (0, 503, "600", timedelta(seconds=600)),  # the host's Retry-After, past our backoff
        (3, 429, "10", timedelta(seconds=960)),  # a Retry-After never brings a poll sooner
    ],
)
async def test_a_failing_feed_backs_off(
    errors_before: int, status: int, retry_after: str | None, wait: timedelta
):
    error = FetchError(DOWN, f"HTTP {status}", status, retry_after)
    store = FakeStore().has_feed(DOWN, error_count=errors_before)

    await poll_cycle(store, FakeFetcher().fails(DOWN, error), FakeReader(), SETTINGS, clock)

    assert store.outcomes == [
        PollOutcome(
            feed_url=DOWN,
            polled_at=NOW,
            next_poll_at=NOW + wait,
            status=status,
            error=f"HTTP {status}",
        )
    ]


async def test_a_feed_that_answers_again_is_back_on_its_interval():
    store = FakeStore().has_feed(GOOD, error_count=5, last_error="HTTP 500")
    fetcher = FakeFetcher().serves(GOOD, b"<rss/>")

    await poll_cycle(store, fetcher, FakeReader().parses(GOOD), SETTINGS, clock)

    (outcome,) = store.outcomes
    assert (outcome.error, outcome.next_poll_at) == (None, NOW + timedelta(seconds=60))


def test_an_alert_is_marked_sent_only_after_the_sender_returned():
    events: list[str] = []
    store = FakeStore(events).has_delivery(story(GOOD), BAN)
    sender = FakeSender(events)

    report = deliver_pending(store, sender, default_channel=None, clock=clock)

    # The last claim finds nothing due: the run drains the queue, then stops (#9).
    assert events == ["claim [1]", "send #news", "sent 1", "claim []"]
    assert report == DeliveryReport(sent=1)
    assert store.deliveries[1].status == "sent"
    assert store.deliveries[1].reference == "ts-1"  # what the sender returned


@pytest.mark.parametrize(
    ("attempts", "wait"),
    [(0, timedelta(seconds=30)), (2, timedelta(seconds=120)), (20, timedelta(minutes=5))],
)
def test_a_sender_failure_leaves_the_alert_pending_with_its_retry_time(
    attempts: int, wait: timedelta
):
    events: list[str] = []
    store = FakeStore(events).has_delivery(story(GOOD), BAN, attempts=attempts)
    sender = FakeSender(events).breaks("#news", "HTTP 500")
    fake = FakeClock(NOW, events)

    # A run shorter than the retry wait (the default is ten minutes): the failed alert is
    # left for a later run, with its retry time.
    report = deliver_pending(
        store, sender, default_channel=None, clock=fake, sleep=fake.sleep, time_limit=10
    )

    assert events == ["claim [1]", "send #news", "failed 1", "claim []"]
    assert report == DeliveryReport(retrying=1, errors=("#news: HTTP 500",))
    assert store.deliveries[1] == DeliveryRow(
        store.deliveries[1].pending,
        next_attempt_at=NOW + wait,
        attempts=attempts + 1,
        last_error="#news: HTTP 500",
    )


def test_retry_later_pauses_the_channel_and_its_alerts_go_in_order_when_it_opens():
    events: list[str] = []
    store = (
        FakeStore(events)
        .has_delivery(story(GOOD, "first"), BAN, channel="#news")
        .has_delivery(story(GOOD, "second"), BAN, channel="#news")
        .has_delivery(story(GOOD, "third"), BAN, channel="#ops")
    )
    sender = FakeSender(events).rate_limits("#news", retry_after=20, times=1)
    fake = FakeClock(NOW, events)

    report = deliver_pending(store, sender, default_channel=None, clock=fake, sleep=fake.sleep)

    assert events == [
        "claim [1, 2, 3]",
        "send #news",
        "failed 1",
        "send #ops",  # another channel goes on
        "sent 3",
        "sleep 20",  # #news opens again: its alerts in their order, then paced
        "send #news",
        "sent 1",
        "sleep 1",
        "send #news",
        "sent 2",
        "claim []",
    ]
    assert [message.text for _, message in sender.sent] == [
        render_alert(story(GOOD, title), [BAN]).text for title in ("third", "first", "second")
    ]
    assert report == DeliveryReport(sent=3, errors=("#news: HTTP 429: rate limited",))


def test_a_long_pause_releases_the_alerts_behind_to_the_retry_time():
    events: list[str] = []
    store = (
        FakeStore(events)
        .has_delivery(story(GOOD, "first"), BAN, channel="#news")
        .has_delivery(story(GOOD, "second"), BAN, channel="#news")
    )
    sender = FakeSender(events).rate_limits("#news", retry_after=900, times=1)
    fake = FakeClock(NOW, events)

    report = deliver_pending(store, sender, default_channel=None, clock=fake, sleep=fake.sleep)

    assert events == ["claim [1, 2]", "send #news", "failed 1", "release [2]", "claim []"]
    assert report == DeliveryReport(retrying=2, errors=("#news: HTTP 429: rate limited",))
    rows = store.deliveries
    retry_at = NOW + timedelta(seconds=900)
    assert (rows[1].attempts, rows[1].next_attempt_at) == (1, retry_at)
    # Not an attempt, and due when the channel opens, not when its lease runs out.
    assert (rows[2].attempts, rows[2].next_attempt_at) == (0, retry_at)


def test_alerts_to_one_channel_are_paced_and_other_channels_do_not_wait():
    events: list[str] = []
    store = FakeStore(events)
    for n in range(4):
        store.has_delivery(story(GOOD, f"news {n}"), BAN, channel="#news")
    store.has_delivery(story(GOOD, "ops"), BAN, channel="#ops")
    sender = FakeSender(events)
    fake = FakeClock(NOW, events)

    report = deliver_pending(store, sender, default_channel=None, clock=fake, sleep=fake.sleep)

    sends = [event for event in events if event.startswith(("send", "sleep"))]
    # A burst of two, then one a second; #ops goes at once, between them.
    assert sends == [
        "send #news",
        "send #news",
        "send #ops",
        "sleep 1",
        "send #news",
        "sleep 1",
        "send #news",
    ]
    assert report == DeliveryReport(sent=5)
    assert fake.now == NOW + timedelta(seconds=2)


def test_a_queue_longer_than_a_batch_is_drained_in_one_run():
    store = FakeStore()
    for n in range(7):
        store.has_delivery(story(GOOD, f"story {n}"), BAN, channel=f"#c{n}")
    fake = FakeClock(NOW)

    report = deliver_pending(
        store, FakeSender(), default_channel=None, batch=2, clock=fake, sleep=fake.sleep
    )

    assert report == DeliveryReport(sent=7)
    assert {row.status for row in store.deliveries.values()} == {"sent"}


def test_a_permanent_delivery_error_marks_the_alert_failed():
    store = FakeStore().has_delivery(story(GOOD), BAN, channel="#gone")
    sender = FakeSender().refuses("#gone", "channel_not_found")

    report = deliver_pending(store, sender, default_channel=None, clock=clock)

    assert report == DeliveryReport(failed=1, errors=("#gone: channel_not_found",))
    assert (store.deliveries[1].status, store.deliveries[1].attempts) == ("failed", 1)
    assert deliver_pending(store, sender, default_channel=None, clock=clock) == DeliveryReport()


def test_an_alert_without_a_channel_goes_to_the_default_one():
    store = FakeStore().has_delivery(story(GOOD), BAN, channel="")
    sender = FakeSender()

    deliver_pending(store, sender, default_channel="#news", clock=clock)

    assert [channel for channel, _ in sender.sent] == ["#news"]
