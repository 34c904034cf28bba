"""The console sender prints exactly this text, links and dates made readable."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest

from monitor.errors import DeliveryError
from monitor.model import Article, Match, TermHit
from monitor.notify.console import ConsoleSender, plain_text
from monitor.notify.render import render_alert, render_notice

ARTICLE = Article(
    feed_url="https://feeds.example.com/world.rss",
    entry_id="urn:1",
    title="Acme <!channel> recalls widgets & gadgets\x1b[2J",
    published=datetime(2024, 5, 1, 12, 30, tzinfo=UTC),
    link="https://news.example.com/acme?a=1&b=2",
    summary="Acme said it would recall <b>widgets</b>.",
    feed_name="Example News",
)
MATCH = Match("acme", "Acme watch", "high", "#alerts", (TermHit("acme", "title", "Acme", 0, 4),))


def test_prints_a_readable_alert() -> None:
    stream = io.StringIO()

    assert ConsoleSender(stream).send("#alerts", render_alert(ARTICLE, [MATCH])) is None

    assert stream.getvalue() == (
        "── #alerts ──\n"
        "Acme <!channel> recalls widgets & gadgets[2J\n"
        "Acme <!channel> recalls widgets & gadgets[2J (https://news.example.com/acme?a=1&b=2)\n"
        "*Example News* · 2024-05-01 12:30 UTC\n"
        ":red_circle: *HIGH* · *Acme watch* `acme`\n"
        "Matched `acme` in title\n"
        "Acme said it would recall <b>widgets</b>.\n"
        "\n"
    )
    assert "\x1b" not in stream.getvalue()


def test_prints_a_notice() -> None:
    stream = io.StringIO()
    ConsoleSender(stream).send("#ops", render_notice("rules/a.yaml:3:5: unknown key 'x'"))

    assert stream.getvalue() == (
        "── #ops ──\nmedia-monitor notice\n```rules/a.yaml:3:5: unknown key 'x'```\n\n"
    )


def test_defaults_to_standard_output(capsys: pytest.CaptureFixture[str]) -> None:
    ConsoleSender().send("#alerts", render_alert(ARTICLE, []))

    assert capsys.readouterr().out.startswith("── #alerts ──\nAcme <!channel> recalls")


def test_a_closed_stream_is_a_delivery_error() -> None:
    stream = io.StringIO()
    stream.close()

    with pytest.raises(DeliveryError) as caught:
        ConsoleSender(stream).send("#alerts", render_alert(ARTICLE, []))
    assert str(caught.value) == (
        "#alerts: cannot write the alert to the console: I/O operation on closed file"
    )


@pytest.mark.parametrize(
    ("mrkdwn", "plain"),
    [
        ("<https://x.example/a|the &lt;label&gt;>", "the <label> (https://x.example/a)"),
        ("<https://x.example/a>", "https://x.example/a"),
        ("<!date^1714566600^{date_short_pretty}|2024-05-01 12:30 UTC>", "2024-05-01 12:30 UTC"),
        ("AT&amp;amp;T &amp; &lt;!here&gt;", "AT&amp;T & <!here>"),
    ],
)
def test_plain_text(mrkdwn: str, plain: str) -> None:
    assert plain_text(mrkdwn) == plain
