"""Delivery through slack-sdk to the local Slack server: results, retries, waits and errors.

Waits are measured between the requests the server recorded; every test is
bounded (small max_retries, short timeouts) so the file runs in a few seconds.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import pairwise

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from monitor.errors import ConfigError, DeliveryError, RetryLaterError
from monitor.model import Article, Match, TermHit
from monitor.notify.render import SlackMessage, render_alert
from monitor.notify.slack import SlackBotSender, SlackIdentity, SlackWebhookSender, check_slack
from tests.support.slack_server import SlackServer

MESSAGE = render_alert(
    Article(
        feed_url="https://feeds.example.com/world.rss",
        entry_id="urn:1",
        title="Acme recalls widgets",
        published=datetime(2024, 5, 1, 12, 30, tzinfo=UTC),
        link="https://news.example.com/acme",
        summary="Acme said it would recall widgets.",
        feed_name="Example News",
    ),
    [Match("acme", "Acme watch", "high", "#alerts", (TermHit("acme", "title", "Acme", 0, 4),))],
)
RENDER_BUG = "Slack refused the message's format; please report this media-monitor bug"


def bot(server: SlackServer, max_retries: int = 3, max_retry_wait: float = 30.0) -> SlackBotSender:
    return SlackBotSender(
        server.token,
        base_url=server.api_url,
        max_retries=max_retries,
        max_retry_wait=max_retry_wait,
    )


def gaps(server: SlackServer) -> list[float]:
    """Seconds between consecutive requests the server saw."""
    times = [request.at for request in server.requests]
    return [later - earlier for earlier, later in pairwise(times)]


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port nothing listens on: connecting to it is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    yield port


def test_bot_posts_blocks_without_unfurls_and_returns_ts(slack_server: SlackServer) -> None:
    sender = bot(slack_server)

    assert sender.send("#alerts", MESSAGE) == "1700000000.000100"
    assert sender.send("C0NEWS", MESSAGE) == "1700000000.000200"

    first, second = slack_server.messages
    assert (first.channel, first.text, first.blocks) == (
        "C0ALERTS",
        MESSAGE.text,
        tuple(MESSAGE.blocks),
    )
    assert (first.unfurl_links, first.unfurl_media) == (False, False)
    assert second.channel == "C0NEWS"
    request = slack_server.requests[0]
    assert request.path == "/api/chat.postMessage"
    assert request.headers["authorization"] == f"Bearer {slack_server.token}"


def test_rate_limit_waits_retry_after_then_succeeds(slack_server: SlackServer) -> None:
    slack_server.fail_next(1, status=429, retry_after=1)

    assert bot(slack_server).send("#alerts", MESSAGE) == "1700000000.000100"
    assert [request.status for request in slack_server.requests] == [429, 200]
    (waited,) = gaps(slack_server)
    assert waited >= 1.0


def test_retry_after_beyond_the_cap_is_not_slept(slack_server: SlackServer) -> None:
    slack_server.fail_next(1, status=429, retry_after=120)

    with pytest.raises(RetryLaterError) as caught:
        bot(slack_server, max_retry_wait=30).send("#alerts", MESSAGE)

    assert caught.value.retry_after == 120
    assert not caught.value.permanent
    assert str(caught.value) == "#alerts: Slack answered HTTP 429 (ratelimited); retry after 120 s"
    assert len(slack_server.requests) == 1


def test_total_wait_per_send_is_capped(slack_server: SlackServer) -> None:
    slack_server.fail_next(5, status=429, retry_after=1)

    with pytest.raises(RetryLaterError) as caught:
        bot(slack_server, max_retries=5, max_retry_wait=1.5).send("#alerts", MESSAGE)

    # One wait of 1 s fits in 1.5 s; the second would not, so the caller gets it back.
    assert len(slack_server.requests) == 2
    assert caught.value.retry_after == 1
    assert slack_server.messages == ()


def test_server_errors_are_retried_then_handed_back(slack_server: SlackServer) -> None:
    slack_server.fail_next(2, status=500)

    with pytest.raises(RetryLaterError) as caught:
        bot(slack_server, max_retries=1).send("#alerts", MESSAGE)

    assert [request.status for request in slack_server.requests] == [500, 500]
    assert str(caught.value) == (
        "#alerts: Slack answered HTTP 500 (internal_error); will retry later"
    )
    assert caught.value.retry_after is None


def test_one_bad_gateway_is_retried(slack_server: SlackServer) -> None:
    slack_server.fail_next(1, status=502)

    assert bot(slack_server, max_retries=1).send("#alerts", MESSAGE) == "1700000000.000100"
    assert [request.status for request in slack_server.requests] == [502, 200]


def test_down_then_up(slack_server: SlackServer) -> None:
    slack_server.set_down(True)
    with pytest.raises(RetryLaterError, match="HTTP 503"):
        bot(slack_server, max_retries=0).send("#alerts", MESSAGE)

    slack_server.set_down(False)
    assert bot(slack_server, max_retries=0).send("#alerts", MESSAGE) == "1700000000.000100"


def test_connection_refused_is_retry_later(closed_port: int) -> None:
    api_url = f"http://127.0.0.1:{closed_port}/api/"

    with pytest.raises(RetryLaterError) as caught:
        SlackBotSender("xoxb-x", base_url=api_url, max_retries=1, timeout=2).send("#a", MESSAGE)

    assert str(caught.value) == (
        f"#a: cannot reach Slack at {api_url}: [Errno 111] Connection refused; "
        "check the network or SLACK_API_URL"
    )


@pytest.mark.parametrize(
    ("channel", "token", "message"),
    [
        ("#nowhere", None, "#nowhere: channel_not_found: invite the bot to #nowhere or fix the "
         "rule's channel"),
        ("#alerts", "xoxb-wrong", "#alerts: invalid_auth: check SLACK_BOT_TOKEN"),
        ("#alerts", "", "#alerts: not_authed: set SLACK_BOT_TOKEN"),
        ("", None, "(no channel): nothing to post to: give the rule a channel or set "
         "MONITOR_SLACK_CHANNEL"),
    ],
)  # fmt: skip
def test_permanent_errors_say_what_to_fix(
    slack_server: SlackServer, channel: str, token: str | None, message: str
) -> None:
    sender = SlackBotSender(
        slack_server.token if token is None else token, base_url=slack_server.api_url
    )
    with pytest.raises(DeliveryError) as caught:
        sender.send(channel, MESSAGE)

    assert str(caught.value) == message
    assert caught.value.permanent
    assert not isinstance(caught.value, RetryLaterError)
    assert len(slack_server.requests) <= 1  # permanent errors are never retried


def section(text: str) -> dict[str, object]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


@pytest.mark.parametrize(
    ("message", "error"),
    [
        (SlackMessage("t", tuple(section("x") for _ in range(51))), "invalid_blocks"),
        (SlackMessage("t", (section("x" * 3001),)), "invalid_blocks"),
        (
            SlackMessage(
                "t", ({"type": "header", "text": {"type": "plain_text", "text": "h" * 151}},)
            ),
            "invalid_blocks",
        ),
        (SlackMessage("t", ({"type": "section"},)), "invalid_blocks"),
        (SlackMessage("t", ({"type": "marquee", "text": "x"},)), "invalid_blocks"),
        (SlackMessage("x" * 40_001, ()), "msg_too_long"),
        # Each section within its 3,000, all of them over 40,000: Slack refuses the message.
        (SlackMessage("t", tuple(section("x" * 3000) for _ in range(14))), "msg_too_long"),
    ],
)
def test_messages_slack_refuses_are_permanent(
    slack_server: SlackServer, message: SlackMessage, error: str
) -> None:
    with pytest.raises(DeliveryError) as caught:
        bot(slack_server).send("#alerts", message)

    assert str(caught.value) == f"#alerts: {error}: {RENDER_BUG}"
    assert caught.value.permanent


def test_server_takes_form_bodies_and_refuses_empty_messages(slack_server: SlackServer) -> None:
    client = WebClient(base_url=slack_server.api_url)
    form = {"token": slack_server.token, "channel": "alerts", "text": "hi", "unfurl_links": "0"}
    response = client.api_call("chat.postMessage", data=form)
    assert response["ts"] == "1700000000.000100"
    assert slack_server.messages[0].unfurl_links is False

    with pytest.raises(SlackApiError) as caught:
        client.api_call("chat.postMessage", data={"token": slack_server.token, "channel": "alerts"})
    assert caught.value.response["error"] == "no_text"


def test_webhook_posts_and_returns_no_reference(slack_server: SlackServer) -> None:
    assert SlackWebhookSender(slack_server.webhook_url).send("#alerts", MESSAGE) is None

    (message,) = slack_server.messages
    assert (message.via, message.channel, message.text) == ("webhook", "C0ALERTS", MESSAGE.text)
    assert (message.unfurl_links, message.unfurl_media) == (False, False)
    assert message.blocks == tuple(MESSAGE.blocks)


def test_webhook_permanent_errors_hide_the_url(slack_server: SlackServer) -> None:
    gone = slack_server.webhook_url.replace("XXXX", "GONE")
    with pytest.raises(DeliveryError) as caught:
        SlackWebhookSender(gone).send("#alerts", MESSAGE)
    assert str(caught.value) == (
        "#alerts: no_service: the webhook was removed or disabled: create one and update "
        "SLACK_WEBHOOK_URL"
    )
    assert caught.value.permanent

    too_many = SlackMessage("t", tuple(section("x") for _ in range(51)))
    with pytest.raises(DeliveryError) as caught:
        SlackWebhookSender(slack_server.webhook_url).send("#alerts", too_many)
    assert str(caught.value) == f"#alerts: invalid_blocks: {RENDER_BUG}"
    assert caught.value.permanent


def test_webhook_rate_limit_and_server_errors_are_retry_later(slack_server: SlackServer) -> None:
    sender = SlackWebhookSender(slack_server.webhook_url, max_retries=1)
    slack_server.fail_next(1, status=429, retry_after=120)
    with pytest.raises(RetryLaterError) as caught:
        sender.send("#alerts", MESSAGE)
    assert caught.value.retry_after == 120
    assert str(caught.value) == "#alerts: Slack answered HTTP 429 (rate_limited); retry after 120 s"

    slack_server.fail_next(2, status=503)
    with pytest.raises(RetryLaterError, match="HTTP 503"):
        sender.send("#alerts", MESSAGE)

    slack_server.fail_next(1, status=429, retry_after=1)
    assert sender.send("#alerts", MESSAGE) is None
    assert [request.status for request in slack_server.requests] == [429, 503, 503, 429, 200]
    assert gaps(slack_server)[-1] >= 1.0


def test_webhook_connection_refused_is_retry_later_without_the_url(closed_port: int) -> None:
    url = f"http://127.0.0.1:{closed_port}/services/T000/B000/SECRET"
    with pytest.raises(RetryLaterError) as caught:
        SlackWebhookSender(url, max_retries=0, timeout=2).send("#alerts", MESSAGE)

    assert str(caught.value) == (
        "#alerts: cannot reach the Slack webhook: [Errno 111] Connection refused; "
        "check the network or SLACK_WEBHOOK_URL"
    )


def test_check_slack(slack_server: SlackServer, closed_port: int) -> None:
    assert check_slack(slack_server.token, base_url=slack_server.api_url) == SlackIdentity(
        team="Test Team", team_id="T000", user="monitor", user_id="U0BOT"
    )
    with pytest.raises(ConfigError) as caught:
        check_slack("xoxb-wrong", base_url=slack_server.api_url)
    assert str(caught.value) == (
        "SLACK_BOT_TOKEN: auth.test failed with invalid_auth: check SLACK_BOT_TOKEN"
    )
    closed = f"http://127.0.0.1:{closed_port}/api/"
    with pytest.raises(ConfigError) as caught:
        check_slack(slack_server.token, base_url=closed, timeout=2)
    assert str(caught.value) == (
        f"SLACK_API_URL: cannot reach Slack at {closed}: [Errno 111] Connection refused"
    )


@pytest.mark.parametrize(
    ("body", "seen"),
    [("", "an empty body"), ("<html>portal</html>", "'<html>portal</html>'")],
)
def test_webhook_200_that_is_not_ok_is_not_delivered(
    slack_server: SlackServer, body: str, seen: str
) -> None:
    slack_server.fail_next(1, status=200, body=body)
    with pytest.raises(DeliveryError) as caught:
        SlackWebhookSender(slack_server.webhook_url).send("#alerts", MESSAGE)
    assert str(caught.value) == (
        f"#alerts: the webhook answered HTTP 200 with {seen}, not 'ok'; check SLACK_WEBHOOK_URL"
    )
    assert not caught.value.permanent  # kept and retried: the next answer may be Slack's


def test_webhook_200_body_in_the_error_is_bounded(slack_server: SlackServer) -> None:
    slack_server.fail_next(1, status=200, body="x" * 5000)
    with pytest.raises(DeliveryError) as caught:
        SlackWebhookSender(slack_server.webhook_url).send("#alerts", MESSAGE)
    assert len(str(caught.value)) < 200
