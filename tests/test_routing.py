"""Routing (#9): a rule names one or more channels, severity may route, a default catches the rest.

Rules are loaded from YAML, matched, stored and delivered against the local Slack server;
judged by which channel each message reached and what it says.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.config import load_settings
from monitor.errors import ConfigError
from monitor.matching import load_rules, match_article
from monitor.model import Article, FeedSpec
from monitor.notify.slack import SlackBotSender
from monitor.pipeline import deliver_pending
from monitor.store.store import PollOutcome, Store
from tests.support.slack_server import SlackServer

FEED = FeedSpec("https://a.example/rss", "Paper A", ())
CHANNELS = {"alerts": "C0ALERTS", "news": "C0NEWS", "urgent": "C0URGENT", "ops": "C0OPS"}
RULES = """\
rules:
  - id: multi
    title: Two channels
    channels: ["#alerts", "#news"]
    terms: {a: [acme]}
  - id: single
    title: One channel
    channel: "#alerts"
    terms: {a: [widget]}
  - id: urgent
    title: High, no channel
    severity: high
    terms: {a: [recall]}
  - id: quiet
    title: Low, no channel
    severity: low
    terms: {a: [gadget]}
"""


@pytest.fixture
def server() -> Iterator[SlackServer]:
    server = SlackServer(CHANNELS)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    store = Store.open(database_url)
    store.upgrade()
    store.sync_feeds([FEED], datetime.now(UTC))
    yield store
    store.close()


def rules_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_rule_names_one_channel_or_several(tmp_path: Path) -> None:
    load = load_rules(rules_file(tmp_path, RULES))

    assert load.ok, load.problems
    article = Article(FEED.url, "urn:1", "Acme widget", datetime(2024, 5, 1, tzinfo=UTC))
    matches = match_article(load.ruleset, article)
    # A match carries its rule's channels separated by spaces (no channel name has one).
    assert {(m.rule_id, m.channel) for m in matches} == {
        ("multi", "#alerts #news"),
        ("single", "#alerts"),
    }


@pytest.mark.parametrize(
    ("route", "problem"),
    [
        (
            "channel: '#a'\n    channels: ['#b']",
            "5:15: channels cannot be given with `channel`: list every channel in `channels`",
        ),
        ("channels: []", "4:15: channels must list at least one item"),
        ("channel: '#a b'", "4:14: channel '#a b' must be one Slack channel: no spaces or commas"),
        (
            "channels: ['#a', 'b,c']",
            "4:22: each item of channels 'b,c' must be one Slack channel: no spaces or commas",
        ),
        ("channels: '#a'", "4:15: channels must be a list (got '#a')"),
    ],
)
def test_a_bad_route_names_file_and_line(tmp_path: Path, route: str, problem: str) -> None:
    text = f"rules:\n  - id: r\n    title: R\n    {route}\n    terms: {{a: [x]}}\n"
    path = rules_file(tmp_path, text)

    (found,) = load_rules(path).problems

    assert str(found).startswith(f"{path}:{problem}")


def test_each_alert_reaches_its_rules_channels_its_severity_channel_or_the_default(
    tmp_path: Path, store: Store, server: SlackServer
) -> None:
    ruleset = load_rules(rules_file(tmp_path, RULES)).ruleset
    now = datetime.now(UTC)
    titles = ["Acme story", "Recall story", "Gadget story", "Acme recall widget"]
    articles = [
        Article(FEED.url, f"urn:{n}", title, now - timedelta(minutes=10 - n), f"https://n.ex/{n}")
        for n, title in enumerate(titles)
    ]
    outcome = PollOutcome(
        feed_url=FEED.url,
        polled_at=now,
        next_poll_at=now + timedelta(minutes=10),
        status=200,
        articles=tuple((article, match_article(ruleset, article)) for article in articles),
    )
    store.record_poll(outcome)
    sender = SlackBotSender(server.token, base_url=server.api_url)

    report = deliver_pending(
        store, sender, default_channel="#ops", severity_channels={"high": "#urgent"}
    )

    assert report.sent == 7
    got = {
        (message.channel, message.blocks[0]["text"]["text"]): [
            block["text"]["text"].split("`")[1]  # the rule id, after its title
            for block in message.blocks[2:]
            if block["type"] == "section"
        ]
        for message in server.messages
    }
    assert got == {
        ("C0ALERTS", "Acme story"): ["multi"],
        ("C0NEWS", "Acme story"): ["multi"],
        ("C0URGENT", "Recall story"): ["urgent"],
        ("C0OPS", "Gadget story"): ["quiet"],
        # One article, three rules: one alert per channel, each listing the rules routed there.
        ("C0ALERTS", "Acme recall widget"): ["multi", "single"],
        ("C0NEWS", "Acme recall widget"): ["multi"],
        ("C0URGENT", "Acme recall widget"): ["urgent"],
    }
    assert len(server.messages) == 7  # no channel got one twice
    recent = store.recent_matches()
    assert len(recent) == 6  # one line per match, whatever number of channels it went to
    assert {m.delivery_status for m in recent} == {"sent"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("high=#fr-urgent, critical=#fr-urgent", {"high": "#fr-urgent", "critical": "#fr-urgent"}),
        ("", {}),
    ],
)
def test_severity_channels_setting(value: str, expected: dict[str, str]) -> None:
    settings = load_settings({"MONITOR_SEVERITY_CHANNELS": value})
    assert settings.severity_channels == expected


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("urgent=#x", "'urgent' is not a severity (info, low, medium, high, critical)"),
        ("high", "expected severity=channel pairs such as high=#fr-urgent"),
        ("high=#a b", "'#a b' is not a channel name such as #fr-urgent"),
    ],
)
def test_a_bad_severity_channels_setting_says_what_to_fix(value: str, error: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"MONITOR_SEVERITY_CHANNELS": value})
    assert str(caught.value) == f"MONITOR_SEVERITY_CHANNELS: {error} (got {value!r})"


def test_severity_channels_from_a_config_file_table(tmp_path: Path) -> None:
    config = tmp_path / "monitor.toml"
    config.write_text('[severity_channels]\nhigh = "#fr-urgent"\nCritical = "#fr-urgent"\n')
    settings = load_settings({"MONITOR_CONFIG": str(config)})
    assert settings.severity_channels == {"high": "#fr-urgent", "critical": "#fr-urgent"}
