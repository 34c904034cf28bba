"""The console sender prints exactly this text: plain, the headline once, why it matched (#9)."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest

from monitor.errors import DeliveryError
from monitor.model import Article, Match, TermHit
from monitor.notify.console import ConsoleSender
from monitor.notify.render import SlackMessage, render_alert, render_group, render_notice

ARTICLE = Article(
    feed_url="https://feeds.example.com/world.rss",
    entry_id="urn:1",
    title="Acme <!channel> recalls widgets & gadgets\x1b[2J",
    published=datetime(2024, 5, 1, 12, 30, tzinfo=UTC),
    link="https://news.example.com/acme?a=1&b=2",
    summary="Acme said it would recall <b>widgets</b>.",
    feed_name="Example News",
)
MATCH = Match(
    "acme",
    "Acme watch",
    "high",
    "#alerts",
    (TermHit("acme", "title", "Acme", 0, 4), TermHit("recall*", "title", "recalls", 16, 23)),
)


def test_prints_a_readable_alert() -> None:
    stream = io.StringIO()

    assert ConsoleSender(stream).send("#alerts", render_alert(ARTICLE, [MATCH])) is None

    # Plain text: no *bold*, no :emoji: code, no `code`, the headline once (issue #9, item 7).
    assert stream.getvalue() == (
        "── #alerts ──\n"
        "Acme <!channel> recalls widgets & gadgets[2J\n"
        "https://news.example.com/acme?a=1&b=2\n"
        "Example News · 2024-05-01 12:30 UTC\n"
        'HIGH · Acme watch (acme): matched "acme" in title; "recall*" as "recalls" in title\n'
        "Acme said it would recall <b>widgets</b>.\n"
        "\n"
    )
    assert "\x1b" not in stream.getvalue()


def test_prints_a_grouped_message_one_headline_a_line() -> None:
    stream = io.StringIO()
    second = Article(
        feed_url=ARTICLE.feed_url,
        entry_id="urn:2",
        title="Second & last",
        published=ARTICLE.published,
        link=None,
        feed_name="Other Paper",
    )
    message, count = render_group([(ARTICLE, [MATCH]), (second, [MATCH])])

    ConsoleSender(stream).send("#alerts", message)

    assert count == 2
    assert stream.getvalue() == (
        "── #alerts ──\n"
        "2 new alerts\n"
        "- Acme <!channel> recalls widgets & gadgets[2J — Example News — Acme watch\n"
        "  https://news.example.com/acme?a=1&b=2\n"
        "- Second & last — Other Paper — Acme watch\n"
        "\n"
    )


def test_a_message_without_a_plain_form_prints_its_fallback_text_unescaped() -> None:
    stream = io.StringIO()
    ConsoleSender(stream).send("#ops", SlackMessage("AT&amp;T &lt;b&gt;", ()))

    assert stream.getvalue() == "── #ops ──\nAT&T <b>\n\n"


def test_prints_a_notice() -> None:
    stream = io.StringIO()
    ConsoleSender(stream).send("#ops", render_notice("rules/a.yaml:3:5: unknown key 'x'"))

    assert stream.getvalue() == (
        "── #ops ──\nmedia-monitor notice\nrules/a.yaml:3:5: unknown key 'x'\n\n"
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
