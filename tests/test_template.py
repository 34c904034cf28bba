"""Alert templates: the documented example, escaping by the engine, errors at start (#9).

Rendered messages are posted to the local Slack server, which refuses what Slack refuses.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.errors import ConfigError
from monitor.model import Article, Match, TermHit
from monitor.notify.fit import MAX_SECTION, MAX_TOTAL, total_width
from monitor.notify.render import render_alert
from monitor.notify.slack import SlackBotSender
from monitor.notify.template import AlertTemplate
from tests.support.slack_server import SlackServer

DELIVERY_DOC = Path(__file__).resolve().parents[1] / "docs" / "delivery.md"

ARTICLE = Article(
    feed_url="https://feeds.example.com/world.rss",
    entry_id="urn:1",
    title="<!channel> Acme & AT&amp;T <@U123> <http://evil|Reuters>",
    published=datetime(2024, 5, 1, 12, 30, tzinfo=UTC),
    link="https://news.example.com/acme?a=1&b=2",
    summary="<!subteam^S1|@team> recalls *widgets*",
    authors=("Jane <!here> Doe",),
    feed_name="Example News",
)
MATCH = Match("acme", "Acme watch", "high", "#alerts", (TermHit("acme", "title", "Acme", 11, 15),))
ESCAPED_TITLE = "&lt;!channel&gt; Acme &amp; AT&amp;amp;T &lt;@U123&gt; &lt;http://evil|Reuters&gt;"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "alert.j2"
    path.write_text(text, encoding="utf-8")
    return path


def sections(template: AlertTemplate, article: Article = ARTICLE) -> list[str]:
    message = template.render(article, [MATCH])
    return [block["text"]["text"] for block in message.blocks[1:]]


def post(server: SlackServer, template: AlertTemplate, article: Article = ARTICLE) -> None:
    sender = SlackBotSender(server.token, base_url=server.api_url, max_retries=0)
    assert sender.send("#alerts", template.render(article, [MATCH])) is not None


def test_the_documented_example_renders_hostile_text_inert(
    tmp_path: Path, slack_server: SlackServer
) -> None:
    (example,) = re.findall(r"```jinja\n(.*?)```", DELIVERY_DOC.read_text(), re.DOTALL)
    template = AlertTemplate.load(write(tmp_path, example))

    message = template.render(ARTICLE, [MATCH])

    assert sections(template) == [
        f":red_circle: *<https://news.example.com/acme?a=1&b=2|{ESCAPED_TITLE}>*\n"
        "Example News · by Jane &lt;!here&gt; Doe · "
        "<!date^1714566600^{date_short_pretty} {time}|2024-05-01 12:30 UTC>",
        "*HIGH* · Acme watch · Matched `acme` in title",
        "&gt; &lt;!subteam^S1|@team&gt; recalls *widgets*".replace("&gt; &lt;", "> &lt;", 1),
    ]
    default = render_alert(ARTICLE, [MATCH])
    assert (message.blocks[0], message.text, message.plain) == (
        default.blocks[0],
        default.text,
        default.plain,
    )
    post(slack_server, template)
    assert slack_server.messages[0].blocks == message.blocks


@pytest.mark.parametrize(
    "expression",
    [
        "{{ title }}",
        "{{ title | e }}",
        "{{ title | safe }}",
        "{{ title | escape | safe }}",
        "{{ title ~ '' }}",
        "{% set t = title %}{{ t }}",
        "{{ [title] | join('') }}",
        "{{ title | replace('x', 'x') }}",
    ],
)
def test_feed_text_is_escaped_once_whatever_the_template_does(
    tmp_path: Path, expression: str
) -> None:
    template = AlertTemplate.load(write(tmp_path, expression))
    assert sections(template) == [ESCAPED_TITLE]


def test_built_fragments_print_as_they_are_and_lose_that_once_changed(tmp_path: Path) -> None:
    template = AlertTemplate.load(write(tmp_path, "{{ headline }}\n---\n{{ headline | lower }}"))
    linked = f"<https://news.example.com/acme?a=1&b=2|{ESCAPED_TITLE}>"
    # Changed by a filter, a fragment is plain text again and is escaped: never a live link.
    lowered = linked.lower().replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    assert sections(template) == [linked, lowered]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("ok\n{{ title }\n", "alert.j2:2: unexpected '}'"),
        (
            "ok\n\n{% for rule in rules %}{{ rule.title }}",
            "alert.j2:3: Unexpected end of template. Jinja was looking for the following tags: "
            "'endfor' or 'else'. The innermost block that needs to be closed is 'for'.",
        ),
        ("{{ title }}\n{{ headlin }}\n", "alert.j2:2: 'headlin' is undefined"),
        ("{{ title }}\n{{ rules[0].nope }}\n", "alert.j2:2: 'dict object' has no attribute 'nope'"),
        (
            "{{ title.__class__.__mro__ }}",
            "alert.j2:1: access to attribute '__class__' of 'str' object is unsafe.",
        ),
        ("{% if false %}x{% endif %}\n---\n", "alert.j2: renders nothing for a sample alert"),
    ],
)
def test_a_bad_template_is_one_clear_error_at_start_naming_file_and_line(
    tmp_path: Path, text: str, error: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        AlertTemplate.load(path)
    assert str(caught.value) == f"MONITOR_SLACK_TEMPLATE: {tmp_path}/{error}"


def test_a_missing_template_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        AlertTemplate.load(tmp_path / "gone.j2")
    assert str(caught.value) == (
        f"MONITOR_SLACK_TEMPLATE: {tmp_path}/gone.j2: no such file; give the template's path "
        "or unset MONITOR_SLACK_TEMPLATE"
    )


def test_an_alert_the_template_fails_on_goes_out_in_the_default_layout(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    template = AlertTemplate.load(write(tmp_path, "{{ title }}\nby {{ authors[0] }}\n"))
    anonymous = replace(ARTICLE, authors=())

    with caplog.at_level(logging.WARNING):
        message = template.render(anonymous, [MATCH])

    assert message == render_alert(anonymous, [MATCH])
    assert caplog.messages == [
        f"{tmp_path}/alert.j2:2: list object has no element 0; "
        "this alert went out in the default layout"
    ]


def test_long_template_output_is_cut_to_slack_limits(
    tmp_path: Path, slack_server: SlackServer
) -> None:
    # 60 sections of the whole 100 KB summary: each is cut to 3,000, all to 40,000.
    text = "{% for n in range(60) %}{{ headline }} {{ summary }}\n---\n{% endfor %}"
    template = AlertTemplate.load(write(tmp_path, text))
    article = replace(ARTICLE, summary="日本語 & 👩‍👩‍👧 " * 10_000)

    message = template.render(article, [MATCH])

    texts = [block["text"]["text"] for block in message.blocks[1:]]
    assert all(len(text) <= MAX_SECTION and text.endswith("…") for text in texts)
    assert total_width(message.text, message.blocks) <= MAX_TOTAL
    assert len(texts) == (MAX_TOTAL - total_width(message.text, message.blocks[:1])) // 3000
    post(slack_server, template, article)
