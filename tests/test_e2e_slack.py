"""End to end through `monitor poll --once`: grouping, templates and the console (#9).

Local feed server -> the real CLI, fetcher, parser, matcher and store -> the local Slack
server at Slack's rate per channel (or the console). Shipped defaults throughout.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from click.testing import CliRunner, Result

from monitor.cli import main
from monitor.store.store import Store
from tests.support.feed_server import FeedServer
from tests.support.slack_server import SlackServer

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


def rss(count: int) -> str:
    now = datetime.now(UTC)
    items = "".join(
        f"<item><title>{escape(f'Town {n:02d} bans facial recognition <!channel>')}</title>"
        f"<link>https://news.example/{n}</link><guid>g{n}</guid>"
        f"<pubDate>{format_datetime(now - timedelta(minutes=count - n))}</pubDate></item>"
        for n in range(count)
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Local</title>'
        f"<link>https://news.example/</link><description>d</description>{items}</channel></rss>"
    )


def environment(
    tmp_path: Path, feed_server: FeedServer, database_url: str, count: int
) -> dict[str, str]:
    feed_server.add("/news.xml", rss(count))
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
    }


def slack(env: dict[str, str], server: SlackServer) -> dict[str, str]:
    return {**env, "SLACK_BOT_TOKEN": server.token, "SLACK_API_URL": server.api_url}


def poll_once(env: dict[str, str]) -> Result:
    return CliRunner().invoke(main, ["poll", "--once"], env=env, catch_exceptions=False)


def test_a_burst_from_one_poll_reaches_slack_as_one_grouped_message(
    tmp_path: Path, feed_server: FeedServer, slack_server: SlackServer, database_url: str
) -> None:
    slack_server.limit_rate(per_second=1, burst=3)  # Slack's rate per channel
    env = slack(environment(tmp_path, feed_server, database_url, 40), slack_server)

    result = poll_once(env)

    # The shipped defaults: a channel takes 30 alerts an hour (MONITOR_CHANNEL_MAX_PER_HOUR);
    # the other 10 wait for the hourly summary, stored, not dropped.
    assert result.exit_code == 0, result.output
    assert result.stdout.endswith("alerts: 30 sent, 0 to retry, 0 failed\n"), result.stdout
    (message,) = slack_server.messages
    assert message.blocks[0]["text"]["text"] == "30 new alerts"
    lines = "\n".join(block["text"]["text"] for block in message.blocks[1:]).splitlines()
    assert lines == [
        f":red_circle: <https://news.example/{n}|Town {n:02d} bans facial recognition "
        "&lt;!channel&gt;> · *Local news* · Facial recognition ban"
        for n in range(30)
    ]
    assert slack_server.rate_limited == 0
    store = Store.open(database_url)
    try:
        assert store.delivery_counts() == {"sent": 30}
        assert store.hold_counts()[("throttle", "waiting")] == 10
    finally:
        store.close()


def test_a_template_lays_out_the_alerts_and_a_bad_one_stops_the_start(
    tmp_path: Path, feed_server: FeedServer, slack_server: SlackServer, database_url: str
) -> None:
    env = slack(environment(tmp_path, feed_server, database_url, 2), slack_server)
    template = tmp_path / "alert.j2"
    template.write_text("ok\n{{ title }\n")

    refused = CliRunner().invoke(
        main, ["poll", "--once"], env={**env, "MONITOR_SLACK_TEMPLATE": str(template)}
    )

    assert refused.exit_code != 0
    assert f"MONITOR_SLACK_TEMPLATE: {template}:2: unexpected '}}'" in refused.output
    assert slack_server.requests == ()

    template.write_text("*{{ rules[0].title }}* {{ headline }}\n")
    result = poll_once({**env, "MONITOR_SLACK_TEMPLATE": str(template)})

    assert result.exit_code == 0, result.output
    assert [message.blocks[1]["text"]["text"] for message in slack_server.messages] == [
        f"*Facial recognition ban* <https://news.example/{n}|Town {n:02d} bans facial "
        "recognition &lt;!channel&gt;>"
        for n in range(2)
    ]


@pytest.mark.parametrize(("count", "grouped"), [(2, False), (12, True)])
def test_the_console_prints_plain_text(
    tmp_path: Path, feed_server: FeedServer, database_url: str, count: int, grouped: bool
) -> None:
    result = poll_once(environment(tmp_path, feed_server, database_url, count))

    assert result.exit_code == 0, result.output
    out = result.stdout
    markup = out.replace('"ban*"', "")  # the rule's own term, quoted, is the only star
    assert "*" not in markup and ":red_circle:" not in out and "`" not in out and "&lt;" not in out
    if grouped:
        assert out.startswith(f"── #alerts ──\n{count} new alerts\n")
    else:
        assert out.startswith(
            "── #alerts ──\nTown 00 bans facial recognition <!channel>\nhttps://news.example/0\n"
        )
    for n in range(count):
        assert out.count(f"Town {n:02d} bans facial recognition") == 1  # the headline once
