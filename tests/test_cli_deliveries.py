"""What an operator sees and does about alerts that did not go out (#9), through `monitor`.

A stale alert of a deleted rule expires instead of being posted, a channel the bot is not
in fails its alerts with the reason, both are listed with `monitor deliveries list`, and
`monitor deliveries retry` sends the failed ones once the channel is fixed. Judged by what
reached the local Slack server and what the command printed.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from monitor.cli import main
from monitor.model import Article, FeedSpec, Match, TermHit
from monitor.store.store import PollOutcome, Store
from tests.support.slack_server import SlackServer

FEED = FeedSpec("https://a.example/rss", "Paper A", ())
RULES = """\
rules:
  - id: fr-ban
    title: Facial recognition ban
    severity: high
    channel: "#news"
    terms:
      face: [facial recognition]
    condition: face
  - id: storm
    title: Storms
    severity: low
    channel: "#alerts"
    terms:
      storm: [storm]
    condition: storm
"""


def seed(database_url: str, alerts: list[tuple[str, str, str, datetime]]) -> None:
    """Pending alerts (title, rule, channel, found at), as a poll would have queued them."""
    store = Store.open(database_url)
    store.upgrade()
    store.sync_feeds([FEED], datetime.now(UTC))
    hit = TermHit("t", "title", "x", 0, 1)
    for n, (title, rule, channel, found) in enumerate(alerts):
        article = Article(
            feed_url=FEED.url,
            entry_id=f"urn:{n}",
            title=title,
            published=found,
            link=f"https://news.example/{n}",
            feed_name=FEED.name,
        )
        outcome = PollOutcome(
            feed_url=FEED.url,
            polled_at=found,
            next_poll_at=found + timedelta(minutes=10),
            status=200,
            articles=((article, (Match(rule, rule.title(), "high", channel, (hit,)),)),),
        )
        assert store.record_poll(outcome).new_deliveries == 1
    store.close()


def environment(tmp_path: Path, slack: SlackServer) -> dict[str, str]:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "pack.yaml").write_text(RULES)
    return {
        "MONITOR_DATABASE_URL": f"sqlite:///{tmp_path / 'm.db'}",
        "MONITOR_FEEDS": "",
        "MONITOR_RULES": str(rules),
        "SLACK_BOT_TOKEN": slack.token,
        "SLACK_API_URL": slack.api_url,
    }


def invoke(env: dict[str, str], *args: str):
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def test_expired_and_failed_alerts_are_listed_and_failed_ones_retried(tmp_path, slack_server):
    env = environment(tmp_path, slack_server)
    now = datetime.now(UTC)
    seed(
        env["MONITOR_DATABASE_URL"],
        [
            ("Old news of a deleted rule", "deleted", "#news", now - timedelta(days=3)),
            ("City bans facial recognition", "fr-ban", "#news", now - timedelta(minutes=2)),
            ("Storm warning", "storm", "#alerts", now - timedelta(minutes=1)),
        ],
    )
    slack_server.refuse("alerts", "not_in_channel")

    polled = invoke(env, "poll", "--once")

    assert polled.exit_code == 0, polled.output
    assert polled.stdout.splitlines()[-1].endswith(
        "alerts: 1 sent, 0 to retry, 1 failed; 1 expired"
    )
    assert [m.blocks[0]["text"]["text"] for m in slack_server.messages] == [
        "City bans facial recognition"
    ]

    listed = invoke(env, "deliveries", "list")
    assert listed.exit_code == 0
    lines = listed.stdout.splitlines()
    assert lines[0] == "#1  expired   #news  deleted"
    assert lines[1] == "    Old news of a deleted rule"
    assert lines[3] == "    reason: rule deleted is no longer loaded; not sent"
    assert lines[4] == "#3  failed    #alerts  storm"
    assert lines[7] == (
        "    reason: #alerts: not_in_channel: invite the bot to #alerts (/invite) or fix the"
        " rule's channel"
    )
    assert len(lines) == 8  # the sent one is not listed

    as_json = json.loads(invoke(env, "deliveries", "list", "--failed", "--format", "json").stdout)
    assert [(row["id"], row["state"], row["channel"], row["rules"]) for row in as_json] == [
        (1, "expired", "#news", ["deleted"]),
        (3, "failed", "#alerts", ["storm"]),
    ]
    assert as_json[1]["headline"] == "Storm warning"
    assert as_json[1]["attempts"] == 1
    assert as_json[1]["next_attempt_at"] is None
    assert invoke(env, "deliveries", "list", "--pending").stdout == (
        "no alerts waiting, failed or expired\n"
    )
    matches = invoke(env, "matches", "list").stdout
    assert "[failed]" in matches
    assert "    reason: #alerts: not_in_channel: invite the bot" in matches

    slack_server.refuse("alerts", None)  # the bot was invited
    assert invoke(env, "deliveries", "retry", "--channel", "alerts").stdout == (
        "1 failed alert queued again\n"
    )
    assert invoke(env, "deliveries", "retry", "--id", "3").stdout == (
        "0 failed alerts queued again\n"
    )
    pending = invoke(env, "matches", "list").stdout
    assert "[pending]" in pending
    assert "    next attempt: " in pending

    again = invoke(env, "poll", "--once")

    assert again.stdout.splitlines()[-1].endswith("alerts: 1 sent, 0 to retry, 0 failed")
    assert [m.blocks[0]["text"]["text"] for m in slack_server.messages] == [
        "City bans facial recognition",
        "Storm warning",
    ]
    assert invoke(env, "deliveries", "list").stdout.splitlines()[0] == (
        "#1  expired   #news  deleted"
    )


def test_while_a_rule_file_is_broken_alerts_are_not_expired_for_their_rule(tmp_path, slack_server):
    env = environment(tmp_path, slack_server)
    (Path(env["MONITOR_RULES"]) / "broken.yaml").write_text("rules:\n  - id: gone\n    terms: [\n")
    seed(
        env["MONITOR_DATABASE_URL"],
        [("Alert of the rule in the broken file", "gone", "#news", datetime.now(UTC))],
    )

    polled = invoke(env, "poll", "--once")

    # The rule may be the broken one: the alert is not expired for it, and goes out.
    assert polled.stdout.splitlines()[-1].endswith("alerts: 1 sent, 0 to retry, 0 failed")
    assert [m.blocks[0]["text"]["text"] for m in slack_server.messages] == [
        "Alert of the rule in the broken file"
    ]
