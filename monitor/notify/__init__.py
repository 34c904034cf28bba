"""Alert rendering (pure) and delivery (Slack bot, Slack webhook, console)."""

from monitor.notify.base import AlertSender
from monitor.notify.console import ConsoleSender
from monitor.notify.render import (
    SlackMessage,
    escape_mrkdwn,
    render_alert,
    render_notice,
    render_reply,
)
from monitor.notify.slack import SlackBotSender, SlackIdentity, SlackWebhookSender, check_slack

__all__ = [
    "AlertSender",
    "ConsoleSender",
    "SlackBotSender",
    "SlackIdentity",
    "SlackMessage",
    "SlackWebhookSender",
    "check_slack",
    "escape_mrkdwn",
    "render_alert",
    "render_notice",
    "render_reply",
]
