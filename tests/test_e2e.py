"""End to end: local feeds -> `monitor poll --once` -> database rows -> the local Slack server.

Runs on SQLite and PostgreSQL (the `database_url` fixture), through the real CLI,
the real fetcher, parser, matcher, store and slack-sdk.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from click.testing import CliRunner

from monitor.cli import main
from monitor.notify.slack import SlackBotSender
from monitor.pipeline import deliver_pending
from monitor.store.store import Store
from tests.support.slack_server import WEBHOOK_PATH

RULES = """\
rules:
  - id: fr-ban
    title: Facial recognition ban or moratorium
    severity: high
    channel: "#alerts"
    terms:
      face: [facial recognition, face surveillance]
      action: [ban*, moratorium]
    condition: face and action
"""


def rss(items: list[tuple[str, str, datetime]]) -> str:
    entries = "".join(
        f"<item><title>{escape(title)}</title><link>https://news.example/{guid}?utm_source=rss"
        f"</link><guid>{guid}</guid><pubDate>{format_datetime(published)}</pubDate>"
        f"<description>{escape('<p>Story about ' + title + '</p>')}</description></item>"
        for title, guid, published in items
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Local news'
        f"</title><link>https://news.example/</link><description>d</description>{entries}"
        "</channel></rss>"
    )


@pytest.fixture
def setup(tmp_path, feed_server, slack_server, database_url):
    now = datetime.now(UTC)
    feed_server.add(
        "/news.xml",
        rss(
            [
                ("City council bans facial recognition for police", "a1", now - timedelta(hours=1)),
                (
                    "<!channel> Moratorium on face surveillance <http://evil|Reuters>",
                    "a2",
                    now - timedelta(hours=2),
                ),
                ("Apple unveils a faster Face ID", "a3", now - timedelta(hours=3)),
                ("Old story: county bans facial recognition", "a4", now - timedelta(days=10)),
            ]
        ),
        etag='"v1"',
        last_modified=format_datetime(now - timedelta(hours=1), usegmt=True),
    )
    feed_server.add("/broken.xml", "oops", status=500)
    (tmp_path / "feeds.yaml").write_text(
        f"feeds:\n  - url: {feed_server.url('/news.xml')}\n    name: Local news\n"
        f"  - url: {feed_server.url('/broken.xml')}\n"
    )
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "fr.yaml").write_text(RULES)
    env = {
        "MONITOR_DATABASE_URL": database_url,
        "MONITOR_FEEDS": str(tmp_path / "feeds.yaml"),
        "MONITOR_RULES": str(rules),
        "MONITOR_ALLOW_PRIVATE_ADDRESSES": "true",
        "MONITOR_SLACK_MAX_RETRIES": "1",
        "SLACK_BOT_TOKEN": slack_server.token,
        "SLACK_API_URL": slack_server.api_url,
        "MONITOR_SLACK_CHANNEL": "#news",
    }
    return env


STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ")
RETRY_AT = re.compile(r"retry at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC")
SUMMARY = (
    "polled 2 feeds (1 updated, 0 unchanged, 1 failed): 4 new articles, 3 matches; "
    "alerts: 2 sent, 0 to retry, 0 failed"
)


def poll_once(env: dict[str, str], *options: str):
    return CliRunner().invoke(main, ["poll", "--once", *options], env=env, catch_exceptions=False)


def log_lines(stderr: str) -> list[str]:
    """stderr without the time stamps of its log lines, and with retry times as TIME."""
    return [RETRY_AT.sub("retry at TIME", STAMP.sub("", line)) for line in stderr.splitlines()]


def first_poll_lines(env: dict[str, str], news: str, broken: str) -> list[str]:
    """What a first `poll --once` of the setup logs: each failure once, the held-back match."""
    return [
        f"INFO monitor.service: feeds file {env['MONITOR_FEEDS']}: 2 feeds",
        f"WARNING monitor.pipeline: feed {broken} failed (1 in a row), retry at TIME: HTTP 500 "
        "Internal Server "
        "Error: the feed server failed; it will be retried, tell its operator if it persists",
        f"INFO monitor.service: {news}: first poll: 1 match stored without an alert, published "
        "more than 24h ago (the alert window, MONITOR_ALERT_WINDOW_HOURS)",
    ]


def test_poll_stores_matches_and_delivers_escaped_alerts(setup, feed_server, slack_server):
    result = poll_once(setup)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [SUMMARY]
    news, broken = feed_server.url("/news.xml"), feed_server.url("/broken.xml")
    assert log_lines(result.stderr) == first_poll_lines(setup, news, broken)

    store = Store.open(setup["MONITOR_DATABASE_URL"])
    try:
        matches = store.recent_matches()
        assert sorted(row.article.entry_id for row in matches) == ["a1", "a2", "a4"]
        status = {row.article.entry_id: row.delivery_status for row in matches}
        assert status == {
            "a1": "sent",
            "a2": "sent",
            "a4": None,
        }  # a4 is backlog: stored, not alerted
        assert store.delivery_counts() == {"sent": 2}
        broken = next(feed for feed in store.feeds() if feed.url.endswith("/broken.xml"))
        assert broken.error_count == 1 and "HTTP 500" in (broken.last_error or "")
    finally:
        store.close()

    messages = slack_server.messages
    assert len(messages) == 2
    assert {message.channel for message in messages} == {"C0ALERTS"}
    assert all(
        message.unfurl_links is False and message.unfurl_media is False for message in messages
    )
    hostile = next(m for m in messages if "Moratorium" in (m.text or ""))
    # Slack parses mentions and links only in mrkdwn (and the fallback text); there the feed
    # text must arrive escaped. The header is plain_text, which Slack shows literally.
    mrkdwn = [hostile.text or ""] + [
        block["text"]["text"]
        for block in hostile.blocks
        if block["type"] == "section" and block["text"]["type"] == "mrkdwn"
    ]
    assert all("<!channel>" not in text and "<http://evil" not in text for text in mrkdwn)
    assert "&lt;!channel&gt; Moratorium on face surveillance &lt;http://evil|Reuters&gt;" in (
        hostile.text or ""
    )
    header = hostile.blocks[0]
    assert header["type"] == "header" and header["text"]["type"] == "plain_text"


def test_json_log_lines_name_the_feed_rule_and_alert(setup, feed_server, slack_server):
    env = {**setup, "MONITOR_LOG_FORMAT": "json"}
    news = feed_server.url("/news.xml")
    Path(env["MONITOR_FEEDS"]).write_text(f"feeds:\n  - url: {news}\n")
    (Path(env["MONITOR_RULES"]) / "fr.yaml").write_text(RULES.replace('"#alerts"', '"#missing"'))
    result = poll_once(env)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    stamps = [datetime.fromisoformat(line.pop("time")) for line in lines]
    assert all(stamp.utcoffset() == timedelta(0) for stamp in stamps)
    ids = [line.pop("delivery_id") for line in lines if "delivery_id" in line]
    assert lines == [
        {
            "level": "INFO",
            "logger": "monitor.service",
            "message": f"feeds file {env['MONITOR_FEEDS']}: 1 feeds",
        },
        {
            "level": "INFO",
            "logger": "monitor.service",
            "message": f"{news}: first poll: 1 match stored without an alert, published more "
            "than 24h ago (the alert window, MONITOR_ALERT_WINDOW_HOURS)",
            "feed_url": news,
        },
        *(
            {
                "level": "ERROR",
                "logger": "monitor.pipeline",
                "message": f"alert {delivery} to #missing failed permanently: #missing: "
                "channel_not_found: invite the bot to #missing or fix the rule's channel",
                "feed_url": news,
                "rule_id": "fr-ban",
            }
            for delivery in ids
        ),
    ]
    store = Store.open(env["MONITOR_DATABASE_URL"])
    try:
        assert store.delivery_counts() == {"failed": 2}
    finally:
        store.close()


def test_second_poll_is_conditional_and_adds_nothing(setup, feed_server, slack_server):
    assert poll_once(setup).exit_code == 0
    early = poll_once(setup)  # nothing is due yet: each feed keeps its interval or backoff
    assert early.stdout.splitlines()[-1] == (
        "polled 0 feeds (0 updated, 0 unchanged, 0 failed): 0 new articles, 0 matches; "
        "alerts: 0 sent, 0 to retry, 0 failed"
    )
    assert log_lines(early.stderr)[-1].startswith(
        "INFO monitor: 2 feeds are not due yet (the next at "
    )
    assert log_lines(early.stderr)[-1].endswith("`monitor poll --once --all` polls them now")
    second = poll_once(setup, "--all")
    assert second.exit_code == 0, second.output
    assert second.stdout.splitlines()[-1] == (
        "polled 2 feeds (0 updated, 1 unchanged, 1 failed): 0 new articles, 0 matches; "
        "alerts: 0 sent, 0 to retry, 0 failed"
    )
    conditional = feed_server.requests_for("/news.xml")[-1].headers
    assert conditional.get("If-None-Match") == '"v1"'
    assert "If-Modified-Since" in conditional
    assert len(slack_server.messages) == 2


def test_slack_outage_loses_nothing_and_a_later_run_delivers_once(setup, slack_server):
    slack_server.set_down(True)
    first = poll_once(setup)
    assert first.exit_code == 0, first.output
    assert first.stdout.splitlines()[-1].endswith("alerts: 0 sent, 2 to retry, 0 failed")
    retries = [line for line in log_lines(first.stderr) if "will be retried" in line]
    assert len(retries) == 2
    assert slack_server.messages == ()

    slack_server.set_down(False)
    store = Store.open(setup["MONITOR_DATABASE_URL"])
    try:
        assert store.delivery_counts() == {"pending": 2}
        sender = SlackBotSender(slack_server.token, base_url=slack_server.api_url, max_retries=1)
        later = datetime.now(UTC) + timedelta(hours=2)  # past the retry backoff
        report = deliver_pending(store, sender, default_channel="#news", clock=lambda: later)
        assert (report.sent, report.retrying, report.failed) == (2, 0, 0)
        again = deliver_pending(store, sender, default_channel="#news", clock=lambda: later)
        assert again.sent == 0
        assert store.delivery_counts() == {"sent": 2}
    finally:
        store.close()
    assert len(slack_server.messages) == 2


def test_permanent_slack_error_is_recorded_and_does_not_block_others(setup, tmp_path, slack_server):
    rules = Path(setup["MONITOR_RULES"]) / "fr.yaml"
    rules.write_text(RULES.replace('channel: "#alerts"', 'channel: "#missing"'))
    result = poll_once(setup)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1].endswith("alerts: 0 sent, 0 to retry, 2 failed")
    assert "channel_not_found" in result.stderr
    store = Store.open(setup["MONITOR_DATABASE_URL"])
    try:
        assert store.delivery_counts() == {"failed": 2}
    finally:
        store.close()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_python_dash_m_runs_a_cycle_with_console_alerts(setup, tmp_path, feed_server):
    env = {key: value for key, value in setup.items() if not key.startswith("SLACK_")}
    completed = subprocess.run(
        [sys.executable, "-m", "monitor", "poll", "--once"],
        env={**os.environ, **env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    assert "City council bans facial recognition for police" in completed.stdout
    summaries = [line for line in completed.stdout.splitlines() if line.startswith("polled ")]
    assert summaries == [SUMMARY]
    assert completed.stdout.splitlines()[-1] == SUMMARY
    news, broken = feed_server.url("/news.xml"), feed_server.url("/broken.xml")
    assert log_lines(completed.stderr) == first_poll_lines(setup, news, broken)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_database_down_and_restarted_loses_and_duplicates_nothing(
    setup, postgres_server, slack_server
):
    from monitor.config import load_settings
    from monitor.service import Service

    postgres_server.stop()
    try:
        down = poll_once(setup)
    finally:
        postgres_server.start()
    assert down.exit_code == 1
    assert down.stderr.startswith("error: database postgresql+psycopg://")
    assert down.stderr.rstrip().endswith("(is the server running? check MONITOR_DATABASE_URL)")

    # Restart between storing the alerts and sending them: the pool reconnects.
    settings = load_settings(setup)
    store = Store.open(settings.database_url)
    store.upgrade()
    service = Service(settings, store)
    try:
        polled = service.poll(every=True)
        assert polled.new_alerts == 2
        postgres_server.restart()
        delivered = service.deliver()
        assert (delivered.sent, delivered.retrying, delivered.failed) == (2, 0, 0)
        assert service.deliver().sent == 0
    finally:
        service.close()
        store.close()
    assert len(slack_server.messages) == 2
    assert poll_once(setup).stdout.splitlines()[-1].endswith("alerts: 0 sent, 0 to retry, 0 failed")
    assert len(slack_server.messages) == 2


def test_a_failing_run_logs_neither_the_token_nor_the_webhook(setup, feed_server, slack_server):
    # DEBUG, not the default INFO: slack-sdk's debug lines carry the request's headers.
    slack_server.set_down(True)
    bot = poll_once({**setup, "MONITOR_LOG_LEVEL": "DEBUG"})
    now = datetime.now(UTC)
    story = ("Town bans facial recognition", "b1", now - timedelta(minutes=5))
    feed_server.add("/news.xml", rss([story]), etag='"v2"')  # a new alert for the webhook
    webhook = {**setup, "SLACK_WEBHOOK_URL": slack_server.webhook_url, "MONITOR_LOG_LEVEL": "DEBUG"}
    del webhook["SLACK_BOT_TOKEN"]
    hook = poll_once(webhook, "--all")
    bad = CliRunner().invoke(
        main, ["poll", "--once"], env={**webhook, "SLACK_WEBHOOK_URL": "ftp://h" + WEBHOOK_PATH}
    )

    lines = (bot.stderr + hook.stderr + bad.output).splitlines()
    assert "will be retried" in bot.stderr and "will be retried" in hook.stderr
    assert "SLACK_WEBHOOK_URL" in bad.output
    assert [line for line in lines if slack_server.token in line or WEBHOOK_PATH in line] == []
