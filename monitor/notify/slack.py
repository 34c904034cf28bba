"""Deliver rendered alerts to Slack through slack-sdk: a bot token or an incoming webhook.

Only this module talks to Slack. It maps every outcome to one of three results:
a ``ts`` (delivered), ``RetryLaterError`` (429, 5xx, network: re-queue),
``UncertainDeliveryError`` (no answer after the request was sent: Slack may have posted
it) or ``DeliveryError(permanent=True)`` whose message says what the operator must fix.
Secrets (the token, the webhook URL) never appear in an error message.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from http.client import HTTPException
from typing import Any
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.webhook import WebhookClient

from monitor.config import DEFAULT_SLACK_API_URL
from monitor.errors import ConfigError, DeliveryError, RetryLaterError, UncertainDeliveryError
from monitor.notify.render import SlackMessage
from monitor.notify.retry import build_retry_handlers, retry_after

# Slack errors that retrying the same request can fix.
TRANSIENT_ERRORS = frozenset(
    {
        "ratelimited",
        "rate_limited",
        "internal_error",
        "fatal_error",
        "service_unavailable",
        "request_timeout",
    }
)
_RENDER_BUG = "Slack refused the message's format; please report this media-monitor bug"
BOT_ADVICE = {
    "channel_not_found": "invite the bot to {channel} or fix the rule's channel",
    "not_in_channel": "invite the bot to {channel} (/invite) or fix the rule's channel",
    "is_archived": "{channel} is archived: unarchive it or point the rule at another channel",
    "invalid_auth": "check SLACK_BOT_TOKEN",
    "not_authed": "set SLACK_BOT_TOKEN",
    "account_inactive": "the bot's account is deactivated: reinstall the app, update "
    "SLACK_BOT_TOKEN",
    "token_revoked": "the token was revoked: reinstall the app and update SLACK_BOT_TOKEN",
    "invalid_blocks": _RENDER_BUG,
    "msg_too_long": _RENDER_BUG,
    "no_text": _RENDER_BUG,
    "restricted_action": "a workspace admin restricts posting in {channel}: ask them to allow "
    "the bot",
    "missing_scope": "the app lacks the {needed} scope: add it and reinstall the app",
}
WEBHOOK_ADVICE = {
    "no_service": "the webhook was removed or disabled: create one and update SLACK_WEBHOOK_URL",
    "channel_not_found": "the webhook's channel is gone: create a new webhook and update "
    "SLACK_WEBHOOK_URL",
    "channel_is_archived": "the webhook's channel is archived: unarchive it or create a new "
    "webhook",
    "action_prohibited": "an admin restricts posting to the webhook's channel: ask them to "
    "allow it",
    "invalid_payload": _RENDER_BUG,
    "invalid_blocks": _RENDER_BUG,
    "no_text": _RENDER_BUG,
}


@dataclass(frozen=True, slots=True)
class SlackIdentity:
    """Who a bot token is, as auth.test reports it."""

    team: str
    team_id: str
    user: str
    user_id: str


class SlackBotSender:
    """Posts with chat.postMessage (channel per rule), link previews off."""

    def __init__(
        self,
        token: str,
        *,
        base_url: str = DEFAULT_SLACK_API_URL,
        max_retries: int = 3,
        timeout: float = 10.0,
        max_retry_wait: float = 30.0,
    ) -> None:
        self._base_url = base_url
        self._client = WebClient(
            token=token,
            base_url=base_url,
            timeout=_whole_seconds(timeout),
            retry_handlers=build_retry_handlers(max_retries, max_retry_wait),
        )

    def send(self, channel: str, message: SlackMessage) -> str | None:
        """Post ``message`` to ``channel``; return its ``ts``."""
        if not channel.strip():
            raise DeliveryError(
                "(no channel)",
                "nothing to post to: give the rule a channel or set MONITOR_SLACK_CHANNEL",
                permanent=True,
            )
        try:
            response = self._client.chat_postMessage(
                channel=channel,
                text=message.text,
                blocks=[dict(block) for block in message.blocks],
                unfurl_links=False,
                unfurl_media=False,
                link_names=False,  # "@channel" typed in feed text must stay text
                thread_ts=message.thread_ts,  # a reply to a story's first alert (#10)
            )
        except SlackApiError as exc:
            raise _bot_error(
                channel, exc.response.status_code, exc.response.headers, exc.response.data
            ) from exc
        except URLError as exc:  # before the request was sent: it never reached Slack
            raise RetryLaterError(
                channel,
                f"cannot reach Slack at {self._base_url}: {_reason(exc)}; "
                "check the network or SLACK_API_URL",
            ) from exc
        except (HTTPException, OSError) as exc:
            raise _uncertain(channel, exc) from exc
        except SlackClientError as exc:
            raise DeliveryError(
                channel, f"slack-sdk refused the request: {exc}", permanent=True
            ) from exc
        ts = response.get("ts")
        return str(ts) if ts else None


class SlackWebhookSender:
    """Posts to one incoming webhook; its channel is fixed, ``channel`` only labels errors.

    A webhook cannot post into a thread: a story's later articles arrive as their short
    "Also:" messages in the channel itself (docs/delivery.md).
    """

    def __init__(
        self,
        url: str,
        *,
        max_retries: int = 3,
        timeout: float = 10.0,
        max_retry_wait: float = 30.0,
    ) -> None:
        self._client = WebhookClient(
            url,
            timeout=_whole_seconds(timeout),
            retry_handlers=build_retry_handlers(max_retries, max_retry_wait),
        )

    def send(self, channel: str, message: SlackMessage) -> str | None:
        """Post ``message``; webhooks return no reference, so this returns None."""
        try:
            response = self._client.send(
                text=message.text,
                blocks=[dict(block) for block in message.blocks],
                unfurl_links=False,
                unfurl_media=False,
            )
        except URLError as exc:
            raise RetryLaterError(
                channel,
                f"cannot reach the Slack webhook: {_reason(exc)}; "
                "check the network or SLACK_WEBHOOK_URL",
            ) from exc
        except (HTTPException, OSError) as exc:
            raise _uncertain(channel, exc) from exc
        except SlackClientError as exc:
            raise DeliveryError(
                channel, f"slack-sdk refused the request: {exc}", permanent=True
            ) from exc
        body = response.body or ""
        if response.status_code == 200:
            if body.strip() == "ok":
                return None
            # Slack answers "ok"; anything else at 200 (a proxy, a portal) delivered nothing.
            text = " ".join(body.split())[:100]
            seen = repr(text) if text else "an empty body"
            raise DeliveryError(
                channel,
                f"the webhook answered HTTP 200 with {seen}, not 'ok'; check SLACK_WEBHOOK_URL",
            )
        # One line, bounded: the body is whatever answered at that URL.
        error = " ".join(body.split())[:100] or f"HTTP {response.status_code}"
        status = response.status_code
        if status == 429 or status >= 500:
            raise _retry_later(channel, status, response.headers, error)
        advice = WEBHOOK_ADVICE.get(
            error, "see https://docs.slack.dev/messaging/sending-messages-using-incoming-webhooks"
        )
        raise DeliveryError(channel, f"{error}: {advice}", permanent=True)


def check_slack(
    token: str, *, base_url: str = DEFAULT_SLACK_API_URL, timeout: float = 10.0
) -> SlackIdentity:
    """Validate a bot token at startup with auth.test, so a bad token fails fast and clearly."""
    # No retries: a startup check should fail fast; the service retries deliveries itself.
    client = WebClient(
        token=token, base_url=base_url, timeout=_whole_seconds(timeout), retry_handlers=[]
    )
    try:
        data = client.auth_test().data
    except SlackApiError as exc:
        error = _error_code(exc.response.data, exc.response.status_code)
        advice = BOT_ADVICE.get(error, "check SLACK_BOT_TOKEN and SLACK_API_URL")
        raise ConfigError("SLACK_BOT_TOKEN", f"auth.test failed with {error}: {advice}") from exc
    except (URLError, HTTPException, OSError) as exc:
        raise ConfigError(
            "SLACK_API_URL", f"cannot reach Slack at {base_url}: {_reason(exc)}"
        ) from exc
    fields = data if isinstance(data, Mapping) else {}
    return SlackIdentity(
        team=str(fields.get("team", "")),
        team_id=str(fields.get("team_id", "")),
        user=str(fields.get("user", "")),
        user_id=str(fields.get("user_id", "")),
    )


def _bot_error(
    channel: str, status: int, headers: Mapping[str, Any], data: object
) -> DeliveryError:
    error = _error_code(data, status)
    if status == 429 or status >= 500 or error in TRANSIENT_ERRORS:
        return _retry_later(channel, status, headers, error)
    needed = data.get("needed") if isinstance(data, Mapping) else None
    advice = BOT_ADVICE.get(error)
    if advice is None:
        advice = "see https://docs.slack.dev/reference/methods/chat.postMessage#errors"
        if status != 200:
            advice = f"Slack answered HTTP {status}; check SLACK_API_URL"
    return DeliveryError(
        channel,
        f"{error}: " + advice.format(channel=channel, needed=needed or "chat:write"),
        permanent=True,
    )


def _uncertain(channel: str, exc: BaseException) -> UncertainDeliveryError:
    return UncertainDeliveryError(
        channel,
        f"no answer after the message was sent ({_reason(exc)}): it may have been posted",
    )


def _retry_later(
    channel: str, status: int, headers: Mapping[str, Any], error: str
) -> RetryLaterError:
    wait = retry_after(headers)
    when = f"retry after {wait:g} s" if wait is not None else "will retry later"
    return RetryLaterError(
        channel, f"Slack answered HTTP {status} ({error}); {when}", retry_after=wait
    )


def _error_code(data: object, status: int) -> str:
    if isinstance(data, Mapping) and isinstance(data.get("error"), str):
        return str(data["error"])[:100]
    return f"HTTP {status}"


def _reason(exc: BaseException) -> str:
    reason = exc.reason if isinstance(exc, URLError) else exc
    return str(reason) or type(exc).__name__


def _whole_seconds(timeout: float) -> int:
    # slack-sdk declares its timeout as int; round up so a short timeout never becomes 0.
    return max(1, math.ceil(timeout))
