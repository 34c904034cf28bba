"""Fewer, better alerts against the local Slack server, a real store and the real CLI (#9).

Digests, the hourly limit, quiet hours and silences each hold matches back in the same
cycle as ordinary alerts go out; each test counts what reached the server, reads what
the CLI printed and what the database holds, and checks that nothing was dropped.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from click.testing import CliRunner

from monitor.cli import main
from monitor.digest import send_digests
from monitor.gate import DeliveryPolicy
from monitor.model import Article, FeedSpec, Match, TermHit
from monitor.notify.slack import SlackBotSender
from monitor.pipeline import deliver_pending
from monitor.schedule import Pacing
from monitor.silence import QuietHours
from monitor.store.store import PollOutcome, Store
from tests.support.slack_server import SlackServer

RULES = """\
rules:
  - id: fr-digest
    title: Facial recognition, daily digest
    channel: "#news"
    terms: {face: [facial recognition]}
    condition: face
    delivery:
      digest: "0 9 * * mon-fri"
      timezone: Europe/Berlin
  - id: ban
    title: Bans
    channel: "#alerts"
    terms: {ban: [ban*]}
    condition: ban
"""


HOSTILE = "<!here> Facial recognition & <http://evil.example|Reuters> `x`"


def rss(items: list[tuple[str, str, datetime]]) -> str:
    entries = "".join(
        f"<item><title>{escape(title)}</title><link>https://news.example/{guid}</link>"
        f"<guid>{guid}</guid><pubDate>{format_datetime(published)}</pubDate></item>"
        for title, guid, published in items
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Local news'
        f"</title><link>https://news.example/</link><description>d</description>{entries}"
        "</channel></rss>"
    )


@pytest.fixture
def env(tmp_path, feed_server, slack_server, database_url) -> dict[str, str]:
    """61 stories: 41 for the digest rule (a hostile one and 20 headlines, each twice),
    5 bans and 15 for neither rule."""
    now = datetime.now(UTC)
    items = [
        (f"Facial recognition story {n % 20:02d}", f"f{n}", now - timedelta(minutes=60 - n))
        for n in range(40)
    ]
    items += [
        (
            "<!channel> City bans <http://evil|Reuters>" if n == 0 else f"Town bans cars {n}",
            f"b{n}",
            now - timedelta(minutes=10 - n),
        )
        for n in range(5)
    ]
    items += [(f"Weather {n}", f"w{n}", now - timedelta(minutes=30)) for n in range(15)]
    # In the same cycle, a hostile headline for the digest: shown as text, pinging nobody.
    items.append((HOSTILE, "evil", now - timedelta(minutes=120)))
    feed_server.add("/news.xml", rss(items))
    (tmp_path / "feeds.yaml").write_text(
        f"feeds:\n  - url: {feed_server.url('/news.xml')}\n    name: Local news\n"
    )
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


def cli(env: dict[str, str], *args: str):
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def texts(message) -> str:
    return "\n".join(
        block["text"]["text"] if "text" in block else block["elements"][0]["text"]
        for block in message.blocks
    )


def test_digest_matches_wait_for_digest_send_and_go_once_grouped(env, slack_server):
    polled = cli(env, "poll", "--once")

    assert polled.exit_code == 0, polled.output
    assert polled.stdout.splitlines() == [
        "polled 1 feeds (1 updated, 0 unchanged, 0 failed): 61 new articles, 46 matches; "
        "alerts: 5 sent, 0 to retry, 0 failed",
        "41 matches wait for a digest; poll --once sends no digests: "
        "`monitor digest send` sends them",
    ]
    assert [m.channel for m in slack_server.messages] == ["C0ALERTS"] * 5  # the bans only
    first = slack_server.messages[0]
    assert "<!channel>" not in texts(first).split("\n", 1)[1]  # the header is plain text

    sent = cli(env, "digest", "send")

    assert sent.stdout == "digests: 1 sent (41 matches), 0 to retry, 0 failed\n"
    digest = slack_server.messages[-1]
    assert (digest.channel, len(slack_server.messages)) == ("C0NEWS", 6)
    body = texts(digest)
    assert digest.blocks[0]["text"]["text"] == "Digest: Facial recognition, daily digest"
    assert "41 matches since the last digest, in 21 stories" in body
    lines = [line for line in body.splitlines() if line.startswith("• ")]
    assert lines[0] == (
        "• <https://news.example/evil|&lt;!here&gt; Facial recognition &amp; "
        "&lt;http://evil.example|Reuters&gt; `x`> — Local news"
    )
    assert "<!here>" not in body and "<http://evil" not in body
    assert lines[1:] == [
        f"• <https://news.example/f{n}|Facial recognition story {n:02d}> — Local news · 2 articles"
        for n in range(20)
    ]  # each story once, linked to its first article, in published order

    again = cli(env, "digest", "send")  # a new process: what was sent is recorded
    assert again.stdout == "no matches wait for a digest\n"
    assert len(slack_server.messages) == 6
    listed = cli(env, "matches", "list", "--limit", "100").stdout
    assert listed.count("fr-digest  [in digest #1: sent]") == 41
    assert listed.count("ban  [sent]") == 5


def test_a_digest_bundled_before_a_crash_is_sent_once_after_the_restart(env, slack_server):
    assert cli(env, "poll", "--once").exit_code == 0
    store = Store.open(env["MONITOR_DATABASE_URL"])
    try:
        assert store.bundle_digests(datetime.now(UTC)) == 1  # then the process died
        assert store.bundle_digests(datetime.now(UTC)) == 0  # nothing is bundled twice
    finally:
        store.close()

    polled = cli(env, "poll", "--once")  # the next run sends what is pending, and only that

    assert polled.exit_code == 0
    assert [m.channel for m in slack_server.messages] == ["C0ALERTS"] * 5 + ["C0NEWS"]
    assert cli(env, "digest", "send", "--rule", "fr-digest").stdout == (
        "no matches wait for the digest of fr-digest\n"
    )
    assert len(slack_server.messages) == 6


def test_a_silence_holds_its_matches_counts_them_and_ends(env, slack_server):
    added = cli(env, "silence", "add", "--rule", "ban", "--for", "2h", "--reason", "known story")
    assert re.fullmatch(
        r"silence #1: rule ban until \d{4}-\d\d-\d\d \d\d:\d\d UTC\n", added.stdout
    ), added.output
    usage = cli(env, "silence", "add", "--for", "2h", "--reason", "x")
    assert usage.exit_code == 2
    assert "name what to silence: --rule, --feed, --domain or --channel" in usage.output

    polled = cli(env, "poll", "--once")

    assert polled.stdout.startswith(
        "polled 1 feeds (1 updated, 0 unchanged, 0 failed): 61 new articles, 46 matches; "
        "alerts: 0 sent"
    )
    assert slack_server.messages == ()
    listed = cli(env, "silence", "list").stdout.splitlines()
    assert re.fullmatch(r"#1  \[active\] until .* UTC  rule ban  held 5", listed[0])
    assert listed[1:] == ["    reason: known story"]
    assert cli(env, "matches", "list").stdout.count("ban  [silenced by #1]") == 5

    removed = cli(env, "silence", "remove", "1")
    assert removed.stdout == "silence #1 removed: rule ban, held 5\n"
    assert cli(env, "silence", "list").stdout == "no silences in force\n"
    assert re.match(r"#1  \[removed\] ended ", cli(env, "silence", "list", "--all").stdout)
    gone = cli(env, "silence", "remove", "1")
    assert gone.exit_code == 1
    assert "no silence #1 in force" in gone.output
    assert slack_server.messages == ()  # silenced matches are kept, not sent later


# -- the hourly limit and quiet hours, on the store and the local Slack server -----------

FEED = FeedSpec("https://a.example/rss", "Paper A", ())


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    store = Store.open(database_url)
    store.upgrade()
    store.sync_feeds([FEED], datetime.now(UTC))
    yield store
    store.close()


def record(
    store: Store, count: int, channel: str, rule: str = "flood", start: int = 0
) -> list[str]:
    """``count`` new matching articles published in that order; their titles."""
    now = datetime.now(UTC)
    hit = TermHit("flood", "title", "Flood", 0, 5)
    items = []
    for n in range(start, start + count):
        article = Article(
            feed_url=FEED.url,
            entry_id=f"urn:{rule}:{n}",
            title=f"Flood {n:03d}",
            published=now - timedelta(minutes=count - n),
            link=f"https://news.example/{rule}/{n:03d}",
            feed_name=FEED.name,
        )
        items.append((article, (Match(rule, rule.title(), "high", channel, (hit,)),)))
    store.record_poll(
        PollOutcome(
            feed_url=FEED.url,
            polled_at=now,
            next_poll_at=now + timedelta(minutes=10),
            status=200,
            articles=tuple(items),
        )
    )
    return [f"Flood {n:03d}" for n in range(start, start + count)]


def bot(server: SlackServer) -> SlackBotSender:
    return SlackBotSender(server.token, base_url=server.api_url)


def deliver(store: Store, server: SlackServer, hours_later: float = 0):
    # Twenty times Slack's pace, with the server limiting at the same rate: 429s would show.
    return deliver_pending(
        store,
        bot(server),
        default_channel=None,
        pacing=Pacing(interval=0.05, burst=2),
        clock=lambda: datetime.now(UTC) + timedelta(hours=hours_later),
    )


def send_later(store: Store, server: SlackServer, hours: float):
    """Send the due digests as if ``hours`` had passed (a throttle hour, quiet hours)."""
    later = lambda: datetime.now(UTC) + timedelta(hours=hours)  # noqa: E731
    return send_digests(store, bot(server), default_channel=None, clock=later)


def headlines(server: SlackServer) -> list[str]:
    found = []
    for message in server.messages:
        header = message.blocks[0]["text"]["text"]
        # Summaries, and grouped messages (above MONITOR_GROUP_ABOVE alerts in a run), link
        # each headline; a single alert's header is its headline.
        if header.startswith(("More matches", "While the channel")) or re.match(
            r"\d+ new alerts", header
        ):
            found += re.findall(r"\|(Flood \d+)>", texts(message))
        else:
            found.append(header)
    return found


def hold_states(store: Store) -> dict[str, int]:
    """How `monitor matches list` shows the held matches: state -> how many."""
    states: dict[str, int] = {}
    for row in store.recent_matches(limit=1000):
        if row.hold is not None:
            states[str(row.hold)] = states.get(str(row.hold), 0) + 1
    return states


def test_over_the_default_hourly_limit_the_rest_go_in_one_summary(store, slack_server):
    slack_server.limit_rate(per_second=20, burst=3)
    store.use_policy(DeliveryPolicy())  # the shipped defaults: 30 alerts an hour a channel
    expected = record(store, 80, "#news")  # more than a delivery batch (50)
    expected += record(store, 3, "#alerts", rule="fire")  # another channel: not limited

    report = deliver(store, slack_server)

    assert (report.sent, report.retrying, report.failed) == (33, 0, 0)
    assert slack_server.rate_limited == 0
    assert store.hold_counts()[("throttle", "waiting")] == 50
    assert hold_states(store) == {"held: over the hourly limit": 50}
    assert store.release_held(datetime.now(UTC)) == (0, 0)  # not before the hour is over
    assert store.release_held(datetime.now(UTC) + timedelta(hours=1)) == (0, 1)

    digests = send_later(store, slack_server, 1)

    assert (digests.sent, digests.matches) == (1, 50)
    summary = slack_server.messages[-1]
    assert summary.channel == "C0NEWS"
    assert (
        texts(summary)
        .splitlines()[1]
        .startswith("…and 50 more matches this hour (over the hourly limit), in 50 stories.")
    )
    assert sorted(headlines(slack_server)) == sorted(expected)  # each once, none dropped
    assert store.hold_counts()[("throttle", "released")] == 50
    assert store.digest_counts() == {"sent": 1}
    assert hold_states(store) == {"in hourly summary #1: sent": 50}


def test_a_rule_limit_holds_only_that_rule(store, slack_server):
    store.use_policy(DeliveryPolicy(rule_max_per_hour={"flood": 2}, channel_max_per_hour=None))
    record(store, 5, "#news")
    record(store, 4, "#news", rule="fire")

    report = deliver(store, slack_server)

    assert report.sent == 6  # two floods and every fire
    assert store.hold_counts()[("throttle", "waiting")] == 3


def quiet_now(channel: str) -> QuietHours:
    now = datetime.now(UTC)
    start, end = (now - timedelta(hours=1)).time(), (now + timedelta(hours=1)).time()
    return QuietHours(
        channel, clock_time(start.hour, start.minute), clock_time(end.hour, end.minute)
    )


def test_quiet_hours_hold_a_channel_and_many_go_out_as_one_summary(store, slack_server):
    store.use_policy(DeliveryPolicy(quiet_hours=(quiet_now("news"),)))
    held = record(store, 12, "#news")
    loud = record(store, 2, "#alerts", rule="fire")  # not quiet: alerts at once

    report = deliver(store, slack_server)

    assert report.sent == 2
    assert [m.channel for m in slack_server.messages] == ["C0ALERTS"] * 2
    assert hold_states(store) == {"held for the end of quiet hours": 12}
    assert store.release_held(datetime.now(UTC)) == (0, 0)
    assert store.release_held(datetime.now(UTC) + timedelta(hours=2)) == (0, 1)
    assert send_later(store, slack_server, 2).sent == 1
    summary = slack_server.messages[-1]
    assert summary.blocks[0]["text"]["text"] == "While the channel was quiet: Flood"
    assert "12 matches held during quiet hours, in 12 stories" in texts(summary)
    assert sorted(headlines(slack_server)) == sorted(held + loud)


def test_a_few_held_through_quiet_hours_go_out_as_ordinary_alerts_in_order(store, slack_server):
    store.use_policy(DeliveryPolicy(quiet_hours=(quiet_now("#news"),)))
    held = record(store, 3, "#news")
    assert deliver(store, slack_server).sent == 0

    assert store.release_held(datetime.now(UTC) + timedelta(hours=2)) == (3, 0)
    report = deliver(store, slack_server, hours_later=2)

    assert report.sent == 3
    assert headlines(slack_server) == held
    assert [m.channel for m in slack_server.messages] == ["C0NEWS"] * 3
    listed = store.recent_matches()
    assert {row.delivery_status for row in listed} == {"sent"}


def test_an_expired_silence_holds_nothing(store, slack_server):
    now = datetime.now(UTC)
    store.add_silence(
        reason="old", now=now - timedelta(hours=3), until=now - timedelta(hours=1), rule_id="flood"
    )
    domain = store.add_silence(
        reason="spam", now=now, until=now + timedelta(hours=1), domain="news.example", channel="#x"
    )
    store.use_policy(DeliveryPolicy())
    record(store, 4, "#news")

    assert deliver(store, slack_server).sent == 4
    assert [s.id for s in store.silences(now)] == [domain.id]  # the other one expired
    assert [s.held for s in store.silences(now, ended=True)] == [0, 0]


def test_monitor_run_sends_a_digest_on_its_cron_schedule(tmp_path, env, slack_server):
    # Every minute, so the test waits at most one; the schedule is all that differs.
    (Path(env["MONITOR_RULES"]) / "fr.yaml").write_text(
        RULES.replace('"0 9 * * mon-fri"', '"* * * * *"')
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "monitor", "run"],
        env={**os.environ, **env},
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and not any(
            m.channel == "C0NEWS" for m in slack_server.messages
        ):
            time.sleep(0.5)
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    digests = [m for m in slack_server.messages if m.channel == "C0NEWS"]
    assert len(digests) == 1, stderr
    assert "41 matches since the last digest, in 21 stories" in texts(digests[0])
    assert sum(m.channel == "C0ALERTS" for m in slack_server.messages) == 5
    assert "digest of rule fr-digest on '* * * * *' (Europe/Berlin): next at " in stderr


def test_held_matches_are_counted_in_the_metrics(env, slack_server):
    from monitor.config import load_settings
    from monitor.service import Service

    store = Store.open(env["MONITOR_DATABASE_URL"])
    store.upgrade()
    service = Service(load_settings(env), store)
    try:
        service.start()
        service.poll()
        service.deliver()
        sample = service.metrics.registry.get_sample_value
        assert sample("monitor_held_matches", {"reason": "digest", "state": "waiting"}) == 41
        assert sample("monitor_held_matches", {"reason": "throttle", "state": "waiting"}) == 0
        service.send_digest()
        assert sample("monitor_digests_total", {"outcome": "sent"}) == 1
    finally:
        service.close()
        store.close()
    assert len(slack_server.messages) == 6


def test_quiet_hours_read_from_the_environment_or_a_config_table(tmp_path):
    from monitor.config import load_settings
    from monitor.errors import ConfigError

    config = tmp_path / "monitor.toml"
    config.write_text('[quiet_hours]\n"#fr-policy" = "22:00-07:00 Europe/London"\n')
    settings = load_settings({"MONITOR_CONFIG": str(config)})
    assert settings.quiet_hours == (
        QuietHours("#fr-policy", clock_time(22), clock_time(7), "Europe/London"),
    )
    assert settings.channel_max_per_hour == 30  # the documented default
    with pytest.raises(ConfigError) as caught:
        load_settings({"MONITOR_QUIET_HOURS": "#news=22:00-07:00 Europe/Lundon"})
    assert str(caught.value).startswith(
        "MONITOR_QUIET_HOURS: #news: 'Europe/Lundon' is not a time zone; use an IANA name"
    )


def test_a_held_rule_is_not_shown_in_another_rules_alert_of_the_same_article(store, slack_server):
    now = datetime.now(UTC)
    hit = TermHit("flood", "title", "Flood", 0, 5)
    article = Article(FEED.url, "urn:both", "Flood and fire", now, "https://news.example/both")
    both = (
        Match("digest", "Digest", "low", "#news", (hit,)),
        Match("fire", "Fire", "high", "#news", (hit,)),
    )
    store.use_policy(DeliveryPolicy(digest_rules=frozenset({"digest"})))
    store.record_poll(
        PollOutcome(FEED.url, now, now + timedelta(minutes=5), 200, articles=((article, both),))
    )

    assert deliver(store, slack_server).sent == 1
    alert = texts(slack_server.messages[0])
    assert "`fire`" in alert and "`digest`" not in alert
    assert store.bundle_digests(now) == 1
    assert send_digests(store, bot(slack_server), default_channel=None).matches == 1
    assert "Flood and fire" in texts(slack_server.messages[1])


def test_workers_bundling_at_the_same_time_take_each_match_once(database_url, store):
    from concurrent.futures import ThreadPoolExecutor

    store.use_policy(DeliveryPolicy(digest_rules=frozenset({"flood"})))
    record(store, 120, "#news")
    workers = [Store.open(database_url) for _ in range(4)]
    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            made = list(pool.map(lambda w: w.bundle_digests(datetime.now(UTC)), workers))
    finally:
        for worker in workers:
            worker.close()

    assert sum(made) == 1
    assert store.digest_counts() == {"pending": 1}
    assert store.hold_counts()[("digest", "released")] == 120


def test_a_digest_slack_refuses_is_failed_and_one_it_cannot_take_now_is_retried(env, slack_server):
    assert cli(env, "poll", "--once").exit_code == 0
    slack_server.set_down(True)

    down = cli(env, "digest", "send")

    assert (down.exit_code, down.stdout) == (
        1,
        "digests: 0 sent (0 matches), 1 to retry, 0 failed\n",
    )
    slack_server.set_down(False)
    assert cli(env, "digest", "send").stdout == "no matches wait for a digest\n"  # not yet due
    store = Store.open(env["MONITOR_DATABASE_URL"])
    try:
        later = lambda: datetime.now(UTC) + timedelta(minutes=6)  # noqa: E731  past the backoff
        retried = send_digests(store, bot(slack_server), default_channel=None, clock=later)
        assert (retried.sent, retried.matches) == (1, 41)

        # A channel Slack does not know: given up with the reason, never retried blindly.
        store.use_policy(DeliveryPolicy(digest_rules=frozenset({"flood"})))
        store.sync_feeds([FEED], datetime.now(UTC))
        record(store, 3, "#nowhere")
        assert store.bundle_digests(datetime.now(UTC)) == 1
        refused = send_digests(store, bot(slack_server), default_channel=None)
        assert (refused.sent, refused.failed) == (0, 1)
        assert store.digest_counts() == {"sent": 1, "failed": 1}
        assert send_digests(store, bot(slack_server), default_channel=None, clock=later).sent == 0
    finally:
        store.close()
    assert [m.channel for m in slack_server.messages] == ["C0ALERTS"] * 5 + ["C0NEWS"]
