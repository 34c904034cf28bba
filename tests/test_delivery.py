"""Delivery runs against the local Slack server and a real store (#9).

A run drains the queue batch after batch, paces each channel below Slack's rate, keeps
each channel in the order the stories were published, and waits out a short pause
Slack asks for. Judged by what reached the server: count, order, content, 429s.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from monitor.model import Article, FeedSpec, Match, TermHit
from monitor.notify.slack import SlackBotSender
from monitor.pipeline import deliver_pending
from monitor.schedule import Pacing
from monitor.store.store import PollOutcome, Store
from tests.support.slack_server import SlackServer

FEED = FeedSpec("https://a.example/rss", "Paper A", ())


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    store = Store.open(database_url)
    store.upgrade()
    store.sync_feeds([FEED], datetime.now(UTC))
    yield store
    store.close()


def queue(store: Store, count: int, channel: str = "#news") -> list[str]:
    """``count`` alerts, their links in the opposite order of publication; titles in order."""
    now = datetime.now(UTC)
    hit = TermHit("flood", "title", "Flood", 0, 5)
    items = []
    for n in range(count):
        article = Article(
            feed_url=FEED.url,
            entry_id=f"urn:{n}",
            title=f"Flood {n:03d}",
            published=now - timedelta(minutes=count - n),
            link=f"https://news.example/{count - n:03d}",
            feed_name=FEED.name,
        )
        items.append((article, (Match("flood", "Floods", "high", channel, (hit,)),)))
    outcome = PollOutcome(
        feed_url=FEED.url,
        polled_at=now,
        next_poll_at=now + timedelta(minutes=10),
        status=200,
        articles=tuple(items),
    )
    assert store.record_poll(outcome).new_deliveries == count
    return [f"Flood {n:03d}" for n in range(count)]


def titles(server: SlackServer) -> list[str]:
    return [message.blocks[0]["text"]["text"] for message in server.messages]


def statuses(server: SlackServer) -> list[int]:
    return [request.status for request in server.requests]


def bot(server: SlackServer) -> SlackBotSender:
    return SlackBotSender(server.token, base_url=server.api_url)


def test_a_burst_of_200_drains_in_one_run_paced_in_order(store, slack_server):
    # Slack's rate (1 a second) would make this 200 s; the server and the pacing are both
    # twenty times faster here, so the run is the same shape in 10 s. Grouping is off
    # (group_above=0): this is the pacing of one message per alert; the shipped default,
    # grouped messages, is tested by tests/test_grouping.py.
    slack_server.limit_rate(per_second=20, burst=3)
    expected = queue(store, 200)
    started = datetime.now(UTC)

    report = deliver_pending(
        store,
        bot(slack_server),
        default_channel=None,
        pacing=Pacing(interval=0.05, burst=2),
        group_above=0,
    )

    drained = (datetime.now(UTC) - started).total_seconds()
    assert (report.sent, report.retrying, report.failed) == (200, 0, 0)  # past the batch of 50
    assert titles(slack_server) == expected  # published order, not link order, no duplicate
    assert slack_server.rate_limited == 0
    assert 429 not in statuses(slack_server)
    assert store.delivery_counts() == {"sent": 200}
    assert drained >= 199 * 0.05 - 0.05 * 2  # paced: it could not go faster than the rate
    logging.getLogger(__name__).info("200 alerts drained in %.1f s", drained)


def test_five_alerts_at_the_default_pace_meet_no_429(store, slack_server):
    slack_server.limit_rate(per_second=1, burst=3)  # Slack's rate per channel
    expected = queue(store, 5)

    report = deliver_pending(store, bot(slack_server), default_channel=None)

    assert report.sent == 5
    assert titles(slack_server) == expected
    assert slack_server.rate_limited == 0
    assert set(statuses(slack_server)) == {200}
    times = [request.at for request in slack_server.requests]
    assert times[-1] - times[0] >= 3 - 0.1  # a burst of two, then one a second


def test_a_short_pause_slack_asks_for_is_waited_out_and_order_kept(store, slack_server):
    expected = queue(store, 5)
    # Refused until slack-sdk's own retries (3 by default) are spent: the run must pause.
    slack_server.fail_next(4, status=429, retry_after=2)

    report = deliver_pending(store, bot(slack_server), default_channel=None)

    assert (report.sent, report.retrying, report.failed) == (5, 0, 0)
    assert titles(slack_server) == expected
    assert statuses(slack_server) == [429] * 4 + [200] * 5
    refused = [r.at for r in slack_server.requests if r.status == 429]
    accepted = [r.at for r in slack_server.requests if r.status == 200]
    assert accepted[0] - refused[-1] >= 2 - 0.1  # its Retry-After was honoured
    recovery = accepted[-1] - (refused[-1] + 2)
    logging.getLogger(__name__).info("recovery to the last alert: %.1f s", recovery)
    assert store.delivery_counts() == {"sent": 5}


def test_an_outage_releases_the_alerts_behind_and_the_next_run_sends_them_in_order(
    store, slack_server
):
    expected = queue(store, 4)
    slack_server.set_down(True)
    sender = SlackBotSender(slack_server.token, base_url=slack_server.api_url, max_retries=0)

    down = deliver_pending(store, sender, default_channel=None)

    assert (down.sent, down.retrying) == (0, 4)
    assert len(slack_server.requests) == 1  # the rest of the channel was not attempted
    rows = store.claim_deliveries(datetime.now(UTC) + timedelta(seconds=31), timedelta(0), 10)
    assert [row.attempts for row in rows] == [1, 0, 0, 0]  # released, not left to the lease

    slack_server.set_down(False)
    later = timedelta(seconds=31)  # past the first retry's backoff (30 s)
    up = deliver_pending(
        store, sender, default_channel=None, clock=lambda: datetime.now(UTC) + later
    )

    assert up.sent == 4
    assert titles(slack_server) == expected
    assert store.delivery_counts() == {"sent": 4}
