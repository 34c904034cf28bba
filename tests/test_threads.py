"""One story, one alert (#10): `monitor poll --once` -> the local Slack server.

Several outlets carry one story (a syndicated copy, an edited headline): one top-level
alert, the others as replies in its thread; a different story on the same topic in the
same week is its own alert. Across cycles, with a restart between (each `poll --once` is
a new process state), a later copy still replies in the first alert's thread. Headlines
and summaries are real rows of tests/data/story-clusters.jsonl. SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, select

from monitor.cli import main
from monitor.model import Article, FeedSpec, Match, TermHit
from monitor.notify.render import render_alert
from monitor.notify.slack import SlackBotSender
from monitor.pipeline import GROUP_ABOVE, deliver_pending
from monitor.schedule import Pacing
from monitor.store.schema import articles
from monitor.store.store import PollOutcome, Store

DATA = Path(__file__).parent / "data" / "story-clusters.jsonl"
ROWS = {row["id"]: row for row in map(json.loads, DATA.read_text(encoding="utf-8").splitlines())}
RULES = """\
rules:
  - id: fr-ban
    title: Facial recognition ban
    severity: high
    channel: "#alerts"
    terms:
      face: [facial recognition]
      action: [ban*]
    condition: face and action
"""
OUTLETS = {"wire": "Wire Service", "verge": "The Verge", "local": "Bay Local", "late": "Late Daily"}


def rss(outlet: str, items: list[tuple[str, datetime]]) -> str:
    """A feed of `outlet` carrying the dev-set rows `items` (row id, published)."""
    entries = "".join(
        f"<item><title>{escape(ROWS[row]['title'])}</title>"
        f"<link>https://{outlet}.example/{row.lower()}</link><guid>{outlet}-{row}</guid>"
        f"<pubDate>{format_datetime(published)}</pubDate>"
        f"<description>{escape(ROWS[row]['summary'])}</description></item>"
        for row, published in items
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{outlet}'
        f"</title><link>https://{outlet}.example/</link><description>d</description>{entries}"
        "</channel></rss>"
    )


@pytest.fixture
def env(tmp_path, feed_server, slack_server, database_url):
    now = datetime.now(UTC)
    # San Francisco's ban lawsuit: the wire's story, a syndicated copy, an edited headline;
    # and New York's schools ban the same week, a different story on the same topic.
    feed_server.add(
        "/wire.xml",
        rss("wire", [("D136", now - timedelta(hours=3)), ("D068", now - timedelta(minutes=30))]),
    )
    feed_server.add("/verge.xml", rss("verge", [("D136", now - timedelta(hours=2))]))
    feed_server.add("/local.xml", rss("local", [("D138", now - timedelta(hours=1))]))
    feeds = "".join(
        f"  - url: {feed_server.url(f'/{key}.xml')}\n    name: {name}\n"
        for key, name in OUTLETS.items()
        if key != "late"
    )
    (tmp_path / "feeds.yaml").write_text(f"feeds:\n{feeds}")
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "fr.yaml").write_text(RULES)
    return {
        "MONITOR_DATABASE_URL": database_url,
        "MONITOR_FEEDS": str(tmp_path / "feeds.yaml"),
        "MONITOR_RULES": str(rules),
        "MONITOR_ALLOW_PRIVATE_ADDRESSES": "true",
        "SLACK_BOT_TOKEN": slack_server.token,
        "SLACK_API_URL": slack_server.api_url,
    }


def poll_once(env, *options):
    result = CliRunner().invoke(main, ["poll", "--once", *options], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def text_of(message) -> str:
    return " ".join(block["text"]["text"] for block in message.blocks if "text" in block)


def test_one_story_from_three_outlets_is_one_alert_and_two_replies(env, slack_server):
    poll_once(env)
    messages = slack_server.messages
    top = [m for m in messages if m.thread_ts is None]
    replies = [m for m in messages if m.thread_ts is not None]
    assert len(messages) == 4
    assert len(top) == 2  # San Francisco's lawsuit, New York's ban: two stories
    sf = next(m for m in top if "San Francisco" in text_of(m) or "SFPD" in text_of(m))
    assert {m.channel for m in messages} == {"C0ALERTS"}
    assert [m.thread_ts for m in replies] == [sf.ts, sf.ts]
    assert all(text_of(m).startswith("Also: *<https://") for m in replies)
    # Every outlet of the story is there once: the alert's and each reply's link.
    outlets = {
        host
        for m in (sf, *replies)
        for host in ("wire", "verge", "local")
        if f"https://{host}.example/" in text_of(m)
    }
    assert outlets == {"wire", "verge", "local"}
    assert sum("Cuomo" in text_of(m) for m in top) == 1


def test_a_copy_seen_after_a_restart_replies_in_the_first_alerts_thread(
    env, tmp_path, feed_server, slack_server
):
    poll_once(env)
    first = [m for m in slack_server.messages if m.thread_ts is None]
    sf = next(m for m in first if "San Francisco" in text_of(m) or "SFPD" in text_of(m))
    # A fourth outlet picks the edited headline up later: a new feed, polled by a new process.
    feed_server.add("/late.xml", rss("late", [("D138", datetime.now(UTC))]))
    feeds = Path(env["MONITOR_FEEDS"])
    feeds.write_text(
        feeds.read_text() + f"  - url: {feed_server.url('/late.xml')}\n    name: Late Daily\n"
    )
    poll_once(env)
    messages = slack_server.messages
    assert len(messages) == 5
    assert [m.ts for m in messages if m.thread_ts is None] == [m.ts for m in first]
    late = messages[-1]
    assert late.thread_ts == sf.ts
    assert "<https://late.example/d138|Late Daily>" in text_of(late)


def test_a_reply_whose_alert_failed_for_good_becomes_the_alert(env, slack_server):
    # The story's first alert (the first message sent: New York's story is the newest) is
    # refused for good, the channel archived; the story is not lost: another of its
    # articles is sent as the alert, and the last one replies to that one.
    slack_server.fail_next(1, status=200, body='{"ok": false, "error": "is_archived"}')
    poll_once(env)
    messages = slack_server.messages
    top = [m for m in messages if m.thread_ts is None]
    replies = [m for m in messages if m.thread_ts is not None]
    assert len(messages) == 3  # one refused
    assert len(top) == 2
    assert len(replies) == 1
    assert replies[0].thread_ts in {m.ts for m in top}


def test_webhook_replies_are_short_also_messages_in_the_channel(env, slack_server):
    webhook = {**env, "SLACK_BOT_TOKEN": "", "SLACK_WEBHOOK_URL": slack_server.webhook_url}
    poll_once(webhook)
    messages = slack_server.messages
    assert len(messages) == 4
    also = [m for m in messages if text_of(m).startswith("Also: ")]
    assert len(also) == 2  # a webhook cannot thread: the replies are short messages
    assert all(m.via == "webhook" and m.thread_ts is None for m in messages)


def test_console_prints_replies_indented_under_the_story(env):
    console = {**env, "SLACK_BOT_TOKEN": ""}
    result = poll_once(console)
    replies = [line for line in result.stdout.splitlines() if line.startswith("    ↳ Also: ")]
    assert len(replies) == 2
    assert sum(line.startswith("── ") for line in result.stdout.splitlines()) == 2


@pytest.mark.postgres
def test_two_workers_clustering_at_once_agree_on_the_story(postgres_url):
    """Two stores (two workers) record copies of one story in one instant: one cluster."""
    setup = Store.open(postgres_url)
    setup.upgrade()
    setup.sync_feeds(
        [FeedSpec("https://a.example/f"), FeedSpec("https://b.example/f")], datetime.now(UTC)
    )
    setup.close()
    now = datetime.now(UTC)
    workers = [Store.open(postgres_url) for _ in range(2)]
    for worker in workers:
        worker.cluster_stories(timedelta(days=3), now)
    row = ROWS["D136"]
    barrier = threading.Barrier(2, timeout=30)
    errors: list[BaseException] = []

    def record(worker: Store, feed: str) -> None:
        article = Article(feed, "e1", row["title"], now, link=f"{feed}/sf", summary=row["summary"])
        outcome = PollOutcome(feed, now, now + timedelta(minutes=5), 200, articles=[(article, [])])
        try:
            barrier.wait()
            worker.record_polls([outcome])
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=record, args=(worker, feed))
        for worker, feed in zip(
            workers, ["https://a.example/f", "https://b.example/f"], strict=True
        )
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for worker in workers:
        worker.close()
    assert not errors
    engine = create_engine(postgres_url)
    with engine.connect() as connection:
        rows = connection.execute(select(articles.c.id, articles.c.cluster_id)).all()
    engine.dispose()
    assert len(rows) == 2
    assert {cluster for _, cluster in rows} == {min(id_ for id_, _ in rows)}


@pytest.mark.parametrize("group_above", [GROUP_ABOVE, 0], ids=["grouped", "one-by-one"])
def test_forty_stories_from_two_outlets_thread_past_a_batch_at_the_rate_limit(
    database_url, slack_server, group_above
):
    """80 alerts (more than a batch of 50), 40 stories. By default (a burst above
    MONITOR_GROUP_ABOVE) one grouped message lists each story once and the 40 copies reply
    in its thread; without grouping, 40 alerts, each with its copy in its thread."""

    # One row of each of the dev set's first 40 stories: none of them join another.
    firsts = list({row["cluster"]: row for row in reversed(list(ROWS.values()))}.values())[:40]
    feeds = [
        FeedSpec("https://wire.example/rss", "Wire"),
        FeedSpec("https://copy.example/rss", "Copy"),
    ]
    store = Store.open(database_url)
    store.upgrade()
    now = datetime.now(UTC)
    store.sync_feeds(feeds, now)
    store.cluster_stories(timedelta(days=3), now)
    hit = TermHit("face", "title", "face", 0, 4)
    match = Match("fr", "Face", "high", "#alerts", (hit,))
    for offset, feed in enumerate(feeds):
        items = tuple(
            (
                Article(
                    feed.url,
                    f"{feed.name}-{row['id']}",
                    row["title"],
                    now - timedelta(minutes=2 * (40 - n) - offset),
                    link=f"{feed.url}/{row['id']}",
                    summary=row["summary"],
                    feed_name=feed.name,
                ),
                (match,),
            )
            for n, row in enumerate(firsts)
        )
        outcome = PollOutcome(feed.url, now, now + timedelta(minutes=5), 200, articles=items)
        assert store.record_poll(outcome).new_deliveries == 40
    # Slack's rate (1 a second) would make this 80 s; the server and the pacing are both
    # twenty times faster here, as in test_delivery.py; the CLI tests above use the default.
    slack_server.limit_rate(per_second=20, burst=3)
    sender = SlackBotSender(slack_server.token, base_url=slack_server.api_url)
    report = deliver_pending(
        store,
        sender,
        default_channel=None,
        pacing=Pacing(interval=0.05, burst=2),
        group_above=group_above,
    )
    counts = store.delivery_counts()
    store.close()
    assert (report.sent, report.retrying, report.failed) == (80, 0, 0)
    assert counts == {"sent": 80}
    assert slack_server.rate_limited == 0
    messages = slack_server.messages
    top = {m.ts: m for m in messages if m.thread_ts is None}
    replies = [m for m in messages if m.thread_ts is not None]
    assert len(replies) == 40
    if group_above:
        (group,) = top.values()
        listed = text_of(group)
        for row in firsts:  # each story once, by its first outlet
            assert listed.count(f"wire.example/rss/{row['id']}|") == 1
            assert f"copy.example/rss/{row['id']}|" not in listed
        assert {m.thread_ts for m in replies} == {group.ts}
        assert sorted(row["id"] for row in firsts) == sorted(
            next(r["id"] for r in firsts if f"copy.example/rss/{r['id']}|" in text_of(m))
            for m in replies
        )
        return
    assert len(top) == 40
    assert sorted(m.thread_ts for m in replies) == sorted(top)  # one reply in each thread
    for reply in replies:
        wire = text_of(top[reply.thread_ts])
        story = next(row for row in firsts if f"wire.example/rss/{row['id']}|" in wire)
        assert f"copy.example/rss/{story['id']}|Copy>" in text_of(reply)


def _one_story_from_three_outlets(database_url: str) -> tuple[Store, datetime]:
    """A store holding one story's three alerts (the wire's first), clustered."""

    feeds = [FeedSpec(f"https://{name}.example/rss", name) for name in ("wire", "verge", "local")]
    store = Store.open(database_url)
    store.upgrade()
    now = datetime.now(UTC)
    store.sync_feeds(feeds, now)
    store.cluster_stories(timedelta(days=3), now)
    match = Match("fr", "Face", "high", "#alerts", (TermHit("ban", "title", "ban", 0, 3),))
    for minutes, (feed, row) in enumerate(zip(feeds, ["D136", "D136", "D138"], strict=True)):
        article = Article(
            feed.url,
            row,
            ROWS[row]["title"],
            now - timedelta(minutes=30 - minutes),
            link=f"{feed.url}/{row}",
            summary=ROWS[row]["summary"],
            feed_name=feed.name,
        )
        outcome = PollOutcome(feed.url, now, now, 200, articles=[(article, [match])])
        assert store.record_poll(outcome).new_deliveries == 1
    return store, now


def test_replies_wait_for_an_alert_slack_refused_for_now_then_thread_under_it(
    database_url, slack_server
):

    store, now = _one_story_from_three_outlets(database_url)
    sender = SlackBotSender(slack_server.token, base_url=slack_server.api_url)
    slack_server.fail_next(4, status=503, retry_after=None)  # slack-sdk's 3 retries, then ours
    first = deliver_pending(store, sender, default_channel=None, sleep=lambda _: None)
    assert (first.sent, first.retrying, first.failed) == (0, 3, 0)
    assert slack_server.messages == ()  # no reply went ahead of its alert
    later = now + timedelta(minutes=10)  # past the alert's backoff
    second = deliver_pending(store, sender, default_channel=None, clock=lambda: later)
    store.close()
    assert (second.sent, second.retrying, second.failed) == (3, 0, 0)
    alert, *replies = slack_server.messages
    assert alert.thread_ts is None and "wire.example" in text_of(alert)
    assert [m.thread_ts for m in replies] == [alert.ts, alert.ts]


def test_replies_whose_alert_another_worker_holds_wait_for_it(database_url, slack_server):

    store, now = _one_story_from_three_outlets(database_url)
    sender = SlackBotSender(slack_server.token, base_url=slack_server.api_url)
    (held,) = store.claim_deliveries(now, timedelta(minutes=5), 1)  # another worker's claim
    assert held.thread is None and held.article.feed_name == "wire"
    waiting = deliver_pending(store, sender, default_channel=None)
    # Not even claimed: no alert of a channel is claimed while an earlier one is out (#9).
    assert (waiting.sent, waiting.retrying) == (0, 0)
    assert slack_server.messages == ()
    ts = sender.send("#alerts", render_alert(held.article, held.matches))  # that worker sends
    store.mark_delivered(held.id, now, ts)
    later = now + timedelta(minutes=1)
    replied = deliver_pending(store, sender, default_channel=None, clock=lambda: later)
    store.close()
    assert replied.sent == 2
    assert [m.thread_ts for m in slack_server.messages] == [None, ts, ts]
