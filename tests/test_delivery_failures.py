"""Delivery failures an operator must be able to trust (#9), against the local Slack server.

Ambiguous failures (Slack stored the message, then the connection reset or the answer came
too late) are never retried at once and cost at most one duplicate per delivery, ever.
Permanent failures are failed with their reason, never retried on their own and never hold
up another channel. Stale alerts (too old, or their rule gone) expire instead of going out.
Judged by what reached the server and what the store holds.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from monitor.metrics import Metrics
from monitor.model import Article, FeedSpec, Match, TermHit
from monitor.notify.slack import SlackBotSender, SlackWebhookSender
from monitor.pipeline import Expiry, deliver_pending
from monitor.schedule import Pacing
from monitor.store.store import DeliveryInfo, PollOutcome, Store
from tests.support.slack_server import SlackServer

FEED = FeedSpec("https://a.example/rss", "Paper A", ())
# Slack's pace (one a second) would make 60 alerts a minute-long test; the server is not
# rate-limited here and the pacing is twenty times faster, the same shape in 3 s. The
# default pace is covered in test_delivery.py.
FAST = Pacing(interval=0.05, burst=2)
LATER = timedelta(seconds=31)  # past the first retry's backoff (30 s)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    store = Store.open(database_url)
    store.upgrade()
    store.sync_feeds([FEED], datetime.now(UTC))
    yield store
    store.close()


def queue(
    store: Store,
    count: int,
    channel: str = "#news",
    *,
    rule: str = "flood",
    found: datetime | None = None,
    start: int = 0,
) -> list[str]:
    """``count`` alerts of ``rule`` to ``channel``, found at ``found``; their titles in order."""
    now = found or datetime.now(UTC)
    hit = TermHit("flood", "title", "Flood", 0, 5)
    items = []
    for n in range(start, start + count):
        article = Article(
            feed_url=FEED.url,
            entry_id=f"urn:{rule}:{n}",
            title=f"Flood {rule} {n:03d}",
            published=now - timedelta(minutes=1000 - n),
            link=f"https://news.example/{rule}/{n:03d}",
            feed_name=FEED.name,
        )
        items.append((article, (Match(rule, "Floods", "high", channel, (hit,)),)))
    outcome = PollOutcome(
        feed_url=FEED.url,
        polled_at=now,
        next_poll_at=now + timedelta(minutes=10),
        status=200,
        articles=tuple(items),
    )
    assert store.record_poll(outcome).new_deliveries == count
    return [f"Flood {rule} {n:03d}" for n in range(start, start + count)]


def titles(server: SlackServer, channel: str | None = None) -> list[str]:
    """The headlines that reached Slack, in order: an alert's header, or each linked line of
    a grouped message (a burst above MONITOR_GROUP_ABOVE)."""
    found: list[str] = []
    for message in server.messages:
        if channel is not None and message.channel != channel:
            continue
        header = message.blocks[0]["text"]["text"]
        if re.fullmatch(r"\d+ new alerts", header):
            lines = "\n".join(block["text"]["text"] for block in message.blocks[1:])
            found += re.findall(r"<https?://[^|>]+\|([^>]+)>", lines)
        else:
            found.append(header)
    return found


def bot(server: SlackServer, token: str | None = None) -> SlackBotSender:
    return SlackBotSender(token or server.token, base_url=server.api_url)


def later(delta: timedelta):
    return lambda: datetime.now(UTC) + delta


def by_title(store: Store) -> dict[str, DeliveryInfo]:
    return {row.headline: row for row in store.list_deliveries()}


# -- ambiguous failures ------------------------------------------------------------------


def test_a_reset_after_slack_stored_the_message_is_retried_once_later_not_at_once(
    store, slack_server
):
    expected = queue(store, 60)  # more than one batch (50)
    slack_server.reset_after_store(1)

    # One message per alert (grouping off), so one alert is the uncertain one; the default,
    # grouped, is the next test.
    first = deliver_pending(
        store, bot(slack_server), default_channel=None, pacing=FAST, group_above=0
    )

    # Slack has the message once: the client did not post it again at once.
    assert titles(slack_server) == expected[:1]
    assert slack_server.resets == 1
    assert (first.sent, first.uncertain) == (0, 1)
    assert store.delivery_counts() == {"pending": 60}
    row = by_title(store)[expected[0]]
    assert (row.state, row.uncertain_sends) == ("uncertain", 1)
    assert "may have been posted" in str(row.reason)

    second = deliver_pending(
        store,
        bot(slack_server),
        default_channel=None,
        pacing=FAST,
        clock=later(LATER),
        group_above=0,
    )

    assert second.sent == 60
    # Every alert arrived, in order; the uncertain one twice: the one duplicate allowed.
    assert titles(slack_server) == expected[:1] + expected[:1] + expected[1:]
    assert store.delivery_counts() == {"sent": 60}

    metrics = Metrics()
    metrics.record_delivery(first)
    assert (
        metrics.registry.get_sample_value(
            "monitor_alert_deliveries_total", {"outcome": "uncertain"}
        )
        == 1
    )


def test_a_grouped_message_slack_stored_before_a_reset_is_sent_once_more_later(store, slack_server):
    expected = queue(store, 60)  # above MONITOR_GROUP_ABOVE: one grouped message
    slack_server.reset_after_store(1)

    first = deliver_pending(store, bot(slack_server), default_channel=None, pacing=FAST)

    assert titles(slack_server) == expected  # stored once, not posted again at once
    assert (first.sent, first.uncertain) == (0, 60)
    second = deliver_pending(
        store, bot(slack_server), default_channel=None, pacing=FAST, clock=later(LATER)
    )
    assert second.sent == 60
    assert titles(slack_server) == expected + expected  # the one duplicate each allows
    assert store.delivery_counts() == {"sent": 60}


def test_resets_that_go_on_cost_at_most_one_duplicate_ever(store, slack_server):
    expected = queue(store, 3)
    slack_server.reset_after_store(100)  # every message is stored, none answered

    for step in range(8):
        deliver_pending(
            store,
            bot(slack_server),
            default_channel=None,
            pacing=FAST,
            clock=later(LATER * 20 * step),
        )

    # Each alert was posted once, then once more after a delay, then never again.
    assert Counter(titles(slack_server)) == {title: 2 for title in expected}
    assert titles(slack_server) == [title for title in expected for _ in range(2)]  # in order
    for title in expected:
        row = by_title(store)[title]
        assert (row.state, row.uncertain_sends) == ("failed", 2)
        assert "not sent again" in str(row.reason)
        assert "deliveries retry" in str(row.reason)


def test_an_answer_later_than_the_timeout_is_uncertain_and_not_posted_again_at_once(
    store, slack_server
):
    expected = queue(store, 2)
    slack_server.delay_after_store(12)  # past the sender's default 10 s timeout

    report = deliver_pending(store, bot(slack_server), default_channel=None, pacing=FAST)

    assert report.uncertain == 1
    assert titles(slack_server) == expected[:1]
    assert by_title(store)[expected[0]].state == "uncertain"


def test_a_webhook_reset_after_storing_is_uncertain_too(store, slack_server):
    expected = queue(store, 3)
    slack_server.reset_after_store(1)
    webhook = SlackWebhookSender(slack_server.webhook_url)

    first = deliver_pending(store, webhook, default_channel=None, pacing=FAST)
    deliver_pending(store, webhook, default_channel=None, pacing=FAST, clock=later(LATER))

    assert first.uncertain == 1
    assert titles(slack_server) == expected[:1] + expected  # one duplicate, then in order


def test_a_refused_connection_is_not_uncertain(store, slack_server):
    expected = queue(store, 2)
    slack_server.stop()  # connection refused: the request never left; retrying is safe
    refused = bot(slack_server)
    report = deliver_pending(store, refused, default_channel=None, pacing=FAST)
    assert (report.sent, report.uncertain, report.retrying) == (0, 0, 2)
    assert all(row.state == "pending" for row in store.list_deliveries())
    assert set(by_title(store)) == set(expected)


# -- permanent failures ------------------------------------------------------------------

BOT_ERRORS = (
    "channel_not_found",
    "not_in_channel",
    "is_archived",
    "invalid_auth",
    "account_inactive",
    "msg_too_long",
    "invalid_blocks",
)


@pytest.mark.parametrize("error", BOT_ERRORS)
def test_a_permanent_error_fails_its_alerts_once_and_never_blocks_another_channel(
    store, slack_server, error
):
    refused = queue(store, 5, "#news", rule="storm")
    good = queue(store, 55, "#alerts")  # with the refused ones, more than a batch
    slack_server.refuse("news", error)

    report = deliver_pending(store, bot(slack_server), default_channel=None, pacing=FAST)

    assert titles(slack_server, "C0ALERTS") == good
    assert titles(slack_server, "C0NEWS") == []
    assert (report.sent, report.failed, report.retrying) == (55, 5, 0)
    rows = by_title(store)
    for title in refused:
        assert rows[title].state == "failed"
        assert rows[title].channel == "#news"
        assert str(rows[title].reason).startswith(f"#news: {error}: ")
        assert rows[title].attempts == 1
    requests = len(slack_server.requests)

    again = deliver_pending(
        store, bot(slack_server), default_channel=None, pacing=FAST, clock=later(timedelta(days=1))
    )

    assert (again.sent, again.failed) == (0, 0)
    assert len(slack_server.requests) == requests  # never retried on its own

    slack_server.refuse("news", None)  # the operator fixed the channel
    assert store.requeue_failed(datetime.now(UTC), channel="#news") == 5
    fixed = deliver_pending(store, bot(slack_server), default_channel=None, pacing=FAST)
    assert fixed.sent == 5
    assert titles(slack_server, "C0NEWS") == refused


def test_a_wrong_token_fails_every_alert_once_with_its_reason(store, slack_server):
    queue(store, 3)
    report = deliver_pending(store, bot(slack_server, "xoxb-wrong"), default_channel=None)
    assert (report.sent, report.failed) == (0, 3)
    assert {str(row.reason) for row in store.list_deliveries()} == {
        "#news: invalid_auth: check SLACK_BOT_TOKEN"
    }


@pytest.mark.parametrize(
    ("status", "body"),
    [(404, "no_service"), (403, "action_prohibited"), (400, "invalid_payload"), (410, "gone")],
)
def test_a_webhook_4xx_is_permanent(store, slack_server, status, body):
    expected = queue(store, 3)
    slack_server.fail_next(1, status=status, body=body)
    webhook = SlackWebhookSender(slack_server.webhook_url)

    report = deliver_pending(store, webhook, default_channel=None, pacing=FAST)

    assert (report.sent, report.failed, report.retrying) == (2, 1, 0)
    assert titles(slack_server) == expected[1:]
    assert str(by_title(store)[expected[0]].reason).startswith(f"#news: {body}")
    assert by_title(store)[expected[0]].state == "failed"


# -- expiry ------------------------------------------------------------------------------


def test_a_three_day_old_alert_of_a_deleted_rule_is_expired_not_posted(store, slack_server):
    stale = queue(store, 1, rule="deleted", found=datetime.now(UTC) - timedelta(days=3))
    moved = queue(store, 1, rule="moved")  # its rule now names #alerts, not #news
    fresh = queue(store, 55, rule="flood")
    expiry = Expiry(
        max_age=timedelta(hours=24),
        routes={"flood": frozenset({"#news"}), "moved": frozenset({"#alerts"})},
    )

    report = deliver_pending(
        store, bot(slack_server), default_channel=None, pacing=FAST, expiry=expiry
    )

    assert titles(slack_server) == fresh
    assert (report.sent, report.expired) == (55, 2)
    rows = by_title(store)
    assert rows[stale[0]].state == "expired"
    assert rows[stale[0]].reason == "rule deleted is no longer loaded; not sent"
    assert rows[moved[0]].state == "expired"
    assert rows[moved[0]].reason == "rule moved no longer names #news; not sent"
    assert store.delivery_counts() == {"sent": 55, "expired": 2}


def test_an_alert_older_than_the_max_age_expires_even_if_its_rule_is_live(store, slack_server):
    old = queue(store, 1, found=datetime.now(UTC) - timedelta(hours=25))
    expiry = Expiry(max_age=timedelta(hours=24), routes={"flood": frozenset({"#news"})})

    report = deliver_pending(store, bot(slack_server), default_channel=None, expiry=expiry)

    assert (report.sent, report.expired) == (0, 1)
    assert slack_server.messages == ()
    assert str(by_title(store)[old[0]].reason).startswith("older than 24h (found ")
