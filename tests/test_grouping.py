"""A burst to one channel goes out as grouped messages, not a flood (#9).

Against the local Slack server at Slack's own rate (one message a second per channel,
a burst of three) and the shipped defaults (GROUP_ABOVE, the pacing, the batch). Judged
by what reached the server (count, every headline once, order, 429s) and by what the
database holds (every alert sent, with the ts of the message that carried it).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import regex
from sqlalchemy import create_engine, select

from monitor.config import Settings, load_settings
from monitor.errors import ConfigError
from monitor.model import Article, FeedSpec, Match, TermHit
from monitor.notify.fit import MAX_TOTAL, total_width
from monitor.notify.slack import SlackBotSender
from monitor.pipeline import GROUP_ABOVE, deliver_pending
from monitor.store.schema import articles, deliveries
from monitor.store.store import PollOutcome, Store
from tests.support.slack_server import PostedMessage, SlackServer

FEED = FeedSpec("https://a.example/rss", "Paper A", ())
LINK = regex.compile(r"<(https://[^|>]+)\|([^>]*)>")
log = logging.getLogger(__name__)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    store = Store.open(database_url)
    store.upgrade()
    store.sync_feeds([FEED], datetime.now(UTC))
    yield store
    store.close()


def queue(store: Store, count: int, *, title: str = "Flood {n:03d}", link_length: int = 0) -> None:
    """``count`` alerts to #news; their links sort opposite to the order they were published."""
    now = datetime.now(UTC)
    hit = TermHit("flood", "title", "Flood", 0, 5)
    items = []
    for n in range(count):
        path = f"{count - n:03d}" + "x" * link_length
        article = Article(
            feed_url=FEED.url,
            entry_id=f"urn:{n}",
            title=title.format(n=n),
            published=now - timedelta(minutes=count - n),
            link=f"https://news.example/{path}",
            feed_name=FEED.name,
        )
        items.append((article, (Match("flood", "Floods", "high", "#news", (hit,)),)))
    outcome = PollOutcome(
        feed_url=FEED.url,
        polled_at=now,
        next_poll_at=now + timedelta(minutes=10),
        status=200,
        articles=tuple(items),
    )
    assert store.record_poll(outcome).new_deliveries == count


def headlines(messages: tuple[PostedMessage, ...]) -> list[tuple[str, str]]:
    """(link, headline) of every linked headline, in the order they arrived."""
    found = []
    for message in messages:
        for block in message.blocks:
            if block["type"] == "section":
                found += LINK.findall(block["text"]["text"])
    return found


def references(database_url: str) -> list[str | None]:
    """The stored ts of each alert, in the order its story was published."""
    engine = create_engine(database_url)
    query = (
        select(deliveries.c.reference)
        .join(articles, articles.c.id == deliveries.c.article_id)
        .order_by(articles.c.published)
    )
    try:
        with engine.connect() as connection:
            return [row.reference for row in connection.execute(query)]
    finally:
        engine.dispose()


def bot(server: SlackServer) -> SlackBotSender:
    return SlackBotSender(server.token, base_url=server.api_url)


def test_a_burst_of_200_for_one_channel_goes_out_as_two_grouped_messages(
    store: Store, slack_server: SlackServer, database_url: str
) -> None:
    slack_server.limit_rate(per_second=1, burst=3)  # Slack's rate per channel
    queue(store, 200)
    started = time.monotonic()

    report = deliver_pending(store, bot(slack_server), default_channel=None)

    drained = time.monotonic() - started
    messages = slack_server.messages
    assert (report.sent, report.retrying, report.failed) == (200, 0, 0)
    assert len(messages) == 2  # 100 alerts a grouped message (MAX_GROUP)
    assert [message.blocks[0]["text"]["text"] for message in messages] == ["100 new alerts"] * 2
    assert headlines(messages) == [
        (f"https://news.example/{200 - n:03d}", f"Flood {n:03d}") for n in range(200)
    ]  # every headline once, linked, in published order
    assert all(total_width(m.text or "", m.blocks) <= MAX_TOTAL for m in messages)
    assert slack_server.rate_limited == 0
    assert {request.status for request in slack_server.requests} == {200}
    assert store.delivery_counts() == {"sent": 200}
    ts = [message.ts for message in messages]
    assert references(database_url) == [ts[0]] * 100 + [ts[1]] * 100
    log.info(
        "200-alert burst: %d messages, %d answered 429, drained in %.2f s",
        len(messages),
        slack_server.rate_limited,
        drained,
    )


def test_long_lines_split_the_group_to_stay_within_slack_limits(
    store: Store, slack_server: SlackServer
) -> None:
    slack_server.limit_rate(per_second=1, burst=3)
    # 300-character headlines and 1,900-character links: about 2,300 characters a line.
    queue(store, 60, title="Flood {n:03d} " + "é" * 290, link_length=1900)

    report = deliver_pending(store, bot(slack_server), default_channel=None)

    messages = slack_server.messages
    assert report.sent == 60
    assert 3 <= len(messages) < 60  # split by the 40,000 total, still grouped
    got = headlines(messages)
    assert [title[:9] for _, title in got] == [f"Flood {n:03d}" for n in range(60)]
    assert [len(link) for link, _ in got] == [len("https://news.example/") + 1903] * 60
    assert slack_server.rate_limited == 0
    assert store.delivery_counts() == {"sent": 60}


@pytest.mark.parametrize(
    ("count", "sent_as"), [(GROUP_ABOVE, "alerts"), (GROUP_ABOVE + 1, "group")]
)
def test_only_a_burst_above_the_default_size_is_grouped(
    store: Store, slack_server: SlackServer, count: int, sent_as: str
) -> None:
    queue(store, count)

    deliver_pending(store, bot(slack_server), default_channel=None)

    messages = slack_server.messages
    if sent_as == "alerts":
        assert [m.blocks[0]["text"]["text"] for m in messages] == [
            f"Flood {n:03d}" for n in range(count)
        ]
    else:
        assert len(messages) == 1
        assert messages[0].blocks[0]["text"]["text"] == f"{count} new alerts"
        assert [title for _, title in headlines(messages)] == [
            f"Flood {n:03d}" for n in range(count)
        ]
    assert store.delivery_counts() == {"sent": count}


def test_a_grouped_message_slack_refuses_for_now_is_sent_once_when_it_opens(
    store: Store, slack_server: SlackServer, database_url: str
) -> None:
    queue(store, 30)
    slack_server.fail_next(1, status=503)
    sender = SlackBotSender(slack_server.token, base_url=slack_server.api_url, max_retries=0)

    down = deliver_pending(store, sender, default_channel=None)

    assert (down.sent, down.retrying) == (0, 30)
    assert not slack_server.messages
    later = timedelta(seconds=31)  # past the first retry's backoff (30 s)
    up = deliver_pending(
        store, sender, default_channel=None, clock=lambda: datetime.now(UTC) + later
    )

    assert up.sent == 30
    (message,) = slack_server.messages
    assert [title for _, title in headlines((message,))] == [f"Flood {n:03d}" for n in range(30)]
    assert references(database_url) == [message.ts] * 30


def test_a_grouped_message_to_a_missing_channel_fails_every_alert_it_carried(
    store: Store, slack_server: SlackServer
) -> None:
    queue(store, 15)
    slack_server.channels.pop("news")

    report = deliver_pending(store, bot(slack_server), default_channel=None)

    assert (report.sent, report.failed) == (0, 15)
    assert len(slack_server.requests) == 1  # one refused message, not fifteen
    assert store.delivery_counts() == {"failed": 15}


def test_the_shipped_setting_groups_above_the_same_size() -> None:
    assert Settings().group_above == GROUP_ABOVE


def test_a_burst_size_a_run_could_never_see_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"MONITOR_GROUP_ABOVE": "50"})
    assert str(caught.value) == (
        "MONITOR_GROUP_ABOVE: must be less than MONITOR_DELIVERY_BATCH (50) (got '50')"
    )
