"""Rendering: the exact blocks of a normal alert, hostile feed text made literal, Slack's limits.

Messages that hit the limits are also posted to the local Slack server, which
refuses what real Slack refuses (invalid_blocks, msg_too_long).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
import regex

from monitor.model import Article, Match, TermHit
from monitor.notify.fit import MAX_BLOCKS, MAX_TOTAL, total_width
from monitor.notify.render import (
    SlackMessage,
    escape_mrkdwn,
    render_alert,
    render_group,
    render_notice,
    safe_link,
)
from monitor.notify.slack import SlackBotSender
from tests.support.slack_server import SlackServer

PUBLISHED = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)  # epoch 1714566600

ARTICLE = Article(
    feed_url="https://feeds.example.com/world.rss",
    entry_id="urn:1",
    title="Acme recalls 10,000 widgets",
    published=PUBLISHED,
    link="https://news.example.com/acme-recall",
    summary="Acme Corp said on Wednesday it would recall widgets sold since March.",
    authors=("Jane Doe",),
    feed_name="Example News",
)
MATCH = Match(
    rule_id="acme-recalls",
    rule_title="Acme product recalls",
    severity="high",
    channel="#alerts",
    hits=(
        TermHit("acme", "title", "Acme", 0, 4),
        TermHit("recall*", "title", "recalls", 5, 12),
        TermHit("acme", "summary", "Acme", 0, 4),
        TermHit("widget", "summary", "widgets", 40, 47, list_name="products"),
    ),
)


def mrkdwn(text: str) -> dict[str, object]:
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def texts(message: SlackMessage) -> list[str]:
    """Every text in the message, in block order."""
    found: list[str] = []
    for block in message.blocks:
        if "text" in block:
            found.append(block["text"]["text"])
        found.extend(element["text"] for element in block.get("elements", ()))
    return found


def post(server: SlackServer, message: SlackMessage) -> None:
    """The local server refuses whatever real Slack would: a limit broken raises DeliveryError."""
    ts = SlackBotSender(server.token, base_url=server.api_url, max_retries=0).send(
        "#alerts", message
    )
    assert ts is not None


def test_normal_alert_golden() -> None:
    message = render_alert(ARTICLE, [MATCH])

    assert message == SlackMessage(
        text=(
            ":red_circle: Acme recalls 10,000 widgets — Example News · matched Acme product recalls"
        ),
        blocks=(
            {
                "type": "header",
                "text": {
                    "type": "plain_text",
                    "text": "Acme recalls 10,000 widgets",
                    "emoji": False,
                },
            },
            {
                "type": "section",
                "text": mrkdwn(
                    "<https://news.example.com/acme-recall|Acme recalls 10,000 widgets>\n"
                    "*Example News* · by Jane Doe · "
                    "<!date^1714566600^{date_short_pretty} {time}|2024-05-01 12:30 UTC>"
                ),
            },
            {
                "type": "section",
                "text": mrkdwn(
                    ":red_circle: *HIGH* · *Acme product recalls* `acme-recalls`\n"
                    "Matched `acme` in title, summary; `recall*` as “recalls” in title; "
                    "`widget` (list products) as “widgets” in summary"
                ),
            },
            {
                "type": "context",
                "elements": [
                    mrkdwn("Acme Corp said on Wednesday it would recall widgets sold since March.")
                ],
            },
        ),
        plain=(
            "Acme recalls 10,000 widgets\n"
            "https://news.example.com/acme-recall\n"
            "Example News · by Jane Doe · 2024-05-01 12:30 UTC\n"
            'HIGH · Acme product recalls (acme-recalls): matched "acme" in title, summary; '
            '"recall*" as "recalls" in title; "widget" (list products) as "widgets" in summary\n'
            "Acme Corp said on Wednesday it would recall widgets sold since March."
        ),
    )


def test_undated_article_says_when_it_was_seen_and_source_falls_back_to_domain() -> None:
    article = replace(ARTICLE, dated=False, feed_name="", authors=(), summary="")
    message = render_alert(article, [])

    assert texts(message) == [
        "Acme recalls 10,000 widgets",
        "<https://news.example.com/acme-recall|Acme recalls 10,000 widgets>\n*news.example.com* · "
        "seen <!date^1714566600^{date_short_pretty} {time}|2024-05-01 12:30 UTC> "
        "(the feed gave no date)",
    ]
    assert message.text == "Acme recalls 10,000 widgets — news.example.com"


def test_rules_are_ordered_by_severity_with_an_emoji_each() -> None:
    matches = [
        replace(MATCH, rule_id=f"r-{severity}", rule_title=severity, severity=severity, hits=())
        for severity in ("low", "odd", "critical", "info", "medium")
    ]
    message = render_alert(ARTICLE, matches)

    assert [text.split("\n")[0] for text in texts(message)[2:7]] == [
        ":rotating_light: *CRITICAL* · *critical* `r-critical`",
        ":large_orange_circle: *MEDIUM* · *medium* `r-medium`",
        ":large_blue_circle: *LOW* · *low* `r-low`",
        ":information_source: *INFO* · *info* `r-info`",
        ":white_circle: *ODD* · *odd* `r-odd`",
    ]
    assert message.text.startswith(":rotating_light: ")


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("<!channel> now", "&lt;!channel&gt; now"),
        ("<!here>", "&lt;!here&gt;"),
        ("hi <@U123> and <#C1>", "hi &lt;@U123&gt; and &lt;#C1&gt;"),
        ("<!subteam^S123|@team> <!everyone>", "&lt;!subteam^S123|@team&gt; &lt;!everyone&gt;"),
        ("<javascript:alert(1)|Reuters>", "&lt;javascript:alert(1)|Reuters&gt;"),
        ("half \ud83d an emoji", "half  an emoji"),
        ("<http://evil|Reuters>", "&lt;http://evil|Reuters&gt;"),
        ("AT&amp;T & co", "AT&amp;amp;T &amp; co"),
        ("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"),
        ("\x00\x1b[31mred\x7f\x9b", "[31mred"),
        ("abc\u202edcba\u2066x\u2069", "abcdcbax"),
        ("line\none\ttab\r", "line\none\ttab"),
        ("*bold* _it_ :smile: `code`", "*bold* _it_ :smile: `code`"),
    ],
)
def test_escape_mrkdwn(raw: str, escaped: str) -> None:
    assert escape_mrkdwn(raw) == escaped


def test_hostile_feed_text_is_literal_everywhere() -> None:
    article = replace(
        ARTICLE,
        title="<!channel> <@U123> <#C1> <http://evil|Reuters> &amp; <script>\x00\x1b[31m\u202eX",
        summary="<!here> pay <http://evil|here> & <b>now</b>\x1b]0;title\x07",
        feed_name="<!everyone>",
        authors=("<@U999>",),
        link="https://evil.example/a|b>c<d?x=1&y=2",
    )
    match = replace(
        MATCH,
        rule_title="<!channel> rule",
        rule_id="id`with`ticks",
        hits=(TermHit("<@U1>", "title", "<@U1>", 0, 5),),
    )
    message = render_alert(article, [match])

    escaped_title = (
        "&lt;!channel&gt; &lt;@U123&gt; &lt;#C1&gt; &lt;http://evil|Reuters&gt; &amp;amp; "
        "&lt;script&gt;[31mX"
    )
    assert texts(message) == [
        "<!channel> <@U123> <#C1> <http://evil|Reuters> &amp; <script>[31mX",  # plain_text
        f"<https://evil.example/a%7Cb%3Ec%3Cd?x=1&y=2|{escaped_title}>\n"
        "*&lt;!everyone&gt;* · by &lt;@U999&gt; · "
        "<!date^1714566600^{date_short_pretty} {time}|2024-05-01 12:30 UTC>",
        ":red_circle: *HIGH* · *&lt;!channel&gt; rule* `id'with'ticks`\n"
        "Matched `&lt;@U1&gt;` in title",
        "&lt;!here&gt; pay &lt;http://evil|here&gt; &amp; &lt;b&gt;now&lt;/b&gt;]0;title",
    ]
    assert message.text == (
        f":red_circle: {escaped_title} — &lt;!everyone&gt; · matched &lt;!channel&gt; rule"
    )


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        ("https://example.com/a?b=1&c=2#f", "https://example.com/a?b=1&c=2#f"),
        ("HTTP://Example.com/x y", "http://Example.com/x%20y"),
        ("https://example.com/é", "https://example.com/%C3%A9"),
        ("https://example.com/%7C", "https://example.com/%7C"),
        ("https://example.com/a>|<b", "https://example.com/a%3E%7C%3Cb"),
        ("javascript:alert(1)", None),
        ("ftp://example.com/file", None),
        ("https:///no-host", None),
        ("http://[::1", None),
        ("", None),
        (None, None),
        ("https://example.com/" + "a" * 3000, None),
    ],
)
def test_safe_link(link: str | None, expected: str | None) -> None:
    assert safe_link(link) == expected


def test_unsafe_link_leaves_the_headline_unlinked() -> None:
    message = render_alert(replace(ARTICLE, link="javascript:alert(1)//"), [MATCH])
    assert texts(message)[1].startswith("Acme recalls 10,000 widgets\n*Example News*")


def test_sixty_rules_fit_in_fifty_blocks(slack_server: SlackServer) -> None:
    matches = [
        replace(MATCH, rule_id=f"rule-{n:02d}", rule_title=f"Rule {n:02d}") for n in range(60)
    ]
    message = render_alert(ARTICLE, matches)

    assert len(message.blocks) == MAX_BLOCKS
    assert texts(message)[-2] == "…and 14 more rules: " + ", ".join(
        f"Rule {n:02d} (high)" for n in range(46, 60)
    )
    post(slack_server, message)


def test_long_texts_are_cut_to_slack_limits(slack_server: SlackServer) -> None:
    article = replace(ARTICLE, title="Headline " * 50, summary="word " * 2000)
    message = render_alert(article, [MATCH])
    header, headline, _rule, snippet = texts(message)

    assert header == ("Headline " * 16).rstrip() + "…"  # cut at a word, within 150
    assert len(headline) <= 3000
    assert len(snippet) <= 300 and snippet.endswith("word…")
    assert len(message.text) <= 3000
    post(slack_server, message)


def test_ampersands_never_push_text_past_a_limit_or_split_an_entity(
    slack_server: SlackServer,
) -> None:
    article = replace(ARTICLE, title="&" * 5000, summary="<" * 10_000)
    many_terms = tuple(TermHit(f"term{n}&<>" * 5, "summary", "x", 0, 1) for n in range(400))
    message = render_alert(article, [replace(MATCH, rule_title="&" * 1000, hits=many_terms)])
    header, headline, rule, snippet = texts(message)

    assert header == "&" * 149 + "…"
    assert snippet == "&lt;" * 74 + "…"
    assert len(rule) <= 3000 and rule.endswith("more terms")
    for text in (headline, rule, message.text):
        assert len(text) <= 3000
        assert text.replace("&amp;", "").replace("&lt;", "").replace("&gt;", "").count("&") == 0
    post(slack_server, message)


def test_emoji_count_as_two_units_toward_the_header_limit() -> None:
    message = render_alert(replace(ARTICLE, title="🚨" * 100), [])
    header = texts(message)[0]
    assert header == "🚨" * 74 + "…"
    assert len(header.encode("utf-16-le")) // 2 <= 150


def test_untitled_article_and_empty_term_still_render(slack_server: SlackServer) -> None:
    article = replace(ARTICLE, title="\x00 \u202e ", link=None)
    match = replace(MATCH, rule_title="", hits=(TermHit("", "title", "", 0, 0),))
    message = render_alert(article, [match])

    assert texts(message)[:3] == [
        "(no title)",
        "(no title)\n*Example News* · by Jane Doe · "
        "<!date^1714566600^{date_short_pretty} {time}|2024-05-01 12:30 UTC>",
        ":red_circle: *HIGH* · *(untitled rule)* `acme-recalls`\nMatched `(empty)` in title",
    ]
    post(slack_server, message)


def test_notice_is_preformatted_and_escaped(slack_server: SlackServer) -> None:
    message = render_notice("rules/a.yaml:3:5: unknown key <!channel>\nrules/b.yaml: ```x```")

    assert message == SlackMessage(
        text=":warning: media-monitor: rules/a.yaml:3:5: unknown key &lt;!channel&gt;",
        blocks=(
            {
                "type": "header",
                "text": {"type": "plain_text", "text": "media-monitor notice", "emoji": False},
            },
            {
                "type": "section",
                "text": mrkdwn(
                    "```rules/a.yaml:3:5: unknown key &lt;!channel&gt;\nrules/b.yaml: '''x'''```"
                ),
            },
        ),
        plain=(
            "media-monitor notice\nrules/a.yaml:3:5: unknown key <!channel>\nrules/b.yaml: ```x```"
        ),
    )
    post(slack_server, render_notice("x" * 10_000))


def boundaries(text: str) -> set[int]:
    """Offsets in ``text`` between grapheme clusters."""
    return {match.end() for match in regex.finditer(r"\X", text)} | {0}


def cut_cleanly(clipped: str, full: str) -> bool:
    """``clipped`` is ``full`` cut between two grapheme clusters, then an ellipsis."""
    kept = clipped.removesuffix("…")
    return clipped.endswith("…") and full.startswith(kept) and len(kept) in boundaries(full)


# Family (ZWJ sequence), a flag, a skin tone, an accent as a combining mark, CJK.
MIXED = "👩‍👩‍👧 🇫🇷 👍🏽 e\u0301te 日本語のニュース & <b> "


def test_a_100_kb_summary_with_emoji_and_cjk_is_cut_cleanly_and_slack_takes_it(
    slack_server: SlackServer,
) -> None:
    summary = (MIXED * 4000)[:100_000]
    article = replace(ARTICLE, title=MIXED * 20, summary=summary, content=summary)
    terms = tuple(TermHit(f"{MIXED}{n}", "summary", MIXED, 0, 5) for n in range(200))
    message = render_alert(article, [replace(MATCH, hits=terms)])
    header, headline, rule, snippet = texts(message)

    assert cut_cleanly(header, " ".join((MIXED * 20).split()))
    assert cut_cleanly(
        snippet,
        " ".join(summary.split()).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"),
    )
    assert len(rule.encode("utf-16-le")) // 2 <= 3000
    for text in (header, headline, rule, snippet, message.text):
        text.encode("utf-8")  # no lone surrogate: it would not encode
    for text in (headline, rule, snippet, message.text):  # mrkdwn; the header is plain_text
        assert text.replace("&amp;", "").replace("&lt;", "").replace("&gt;", "").count("&") == 0
    post(slack_server, message)
    (posted,) = slack_server.messages
    assert posted.blocks == message.blocks  # arrived whole: nothing was cut on the way


def test_sixty_rules_with_long_evidence_stay_within_the_40000_total(
    slack_server: SlackServer,
) -> None:
    many_terms = tuple(TermHit(f"term{n:03d}", "summary", "x", 0, 1) for n in range(400))
    matches = [
        replace(MATCH, rule_id=f"rule-{n:02d}", rule_title=f"Rule {n:02d}", hits=many_terms)
        for n in range(60)
    ]
    message = render_alert(ARTICLE, matches)

    assert total_width(message.text, message.blocks) <= MAX_TOTAL
    rules = texts(message)[2:-1]
    assert rules[-1].startswith("…and ") and "more rules: " in rules[-1]
    shown = len(rules) - 1
    assert rules[-1].startswith(f"…and {60 - shown} more rules: Rule {shown:02d} (high)")
    post(slack_server, message)


@pytest.mark.parametrize(
    "run",
    ["👩\u200d👩\u200d👧", "🇫🇷", "👍🏽", "e\u0301", "日本", "&<>"],
    ids=["zwj-family", "flag", "skin-tone", "combining-accent", "cjk", "escapes"],
)
def test_text_without_spaces_is_cut_between_graphemes(run: str) -> None:
    article = replace(ARTICLE, title=run * 200, summary=run * 2000)
    header, _headline, _rule, snippet = texts(render_alert(article, [MATCH]))

    assert cut_cleanly(header, run * 200)
    escaped = run.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    assert cut_cleanly(snippet, escaped * 2000)
    if run == "&<>":
        kept = snippet.removesuffix("…")
        assert kept == escaped * (len(kept) // len(escaped)) + escaped[: len(kept) % len(escaped)]
        assert not kept.endswith(("&", "&a", "&am", "&amp", "&l", "&lt", "&g", "&gt"))


def test_grouped_message_golden_with_hostile_text(slack_server: SlackServer) -> None:
    hostile = replace(
        ARTICLE,
        title="<!channel> <http://evil|Reuters> & co",
        link="javascript:alert(1)",
        feed_name="<@U1>",
    )
    low = replace(MATCH, rule_title="<!here> watch", severity="low")
    message, count = render_group([(ARTICLE, [MATCH]), (hostile, [low, MATCH])])

    assert count == 2
    assert message == SlackMessage(
        text=(
            "2 new alerts: Acme recalls 10,000 widgets; "
            "&lt;!channel&gt; &lt;http://evil|Reuters&gt; &amp; co"
        ),
        blocks=(
            {
                "type": "header",
                "text": {"type": "plain_text", "text": "2 new alerts", "emoji": False},
            },
            {
                "type": "section",
                "text": mrkdwn(
                    ":red_circle: <https://news.example.com/acme-recall|Acme recalls 10,000 "
                    "widgets> · *Example News* · Acme product recalls\n"
                    ":red_circle: &lt;!channel&gt; &lt;http://evil|Reuters&gt; &amp; co · "
                    "*&lt;@U1&gt;* · Acme product recalls, &lt;!here&gt; watch"
                ),
            },
        ),
        plain=(
            "2 new alerts\n"
            "- Acme recalls 10,000 widgets — Example News — Acme product recalls\n"
            "  https://news.example.com/acme-recall\n"
            "- <!channel> <http://evil|Reuters> & co — <@U1> — Acme product recalls, <!here> watch"
        ),
    )
    post(slack_server, message)


def test_a_group_takes_at_most_100_alerts_and_says_how_many() -> None:
    alerts = [(replace(ARTICLE, title=f"Story {n}"), [MATCH]) for n in range(150)]
    message, count = render_group(alerts)

    assert count == 100
    assert message.blocks[0]["text"]["text"] == "100 new alerts"
    assert total_width(message.text, message.blocks) <= MAX_TOTAL
    with pytest.raises(ValueError, match="at least one alert"):
        render_group([])
