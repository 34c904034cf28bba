"""What every alert sender promises.

A sender delivers one rendered message to one channel and either returns a
reference (Slack's ``ts``), raises ``DeliveryError(permanent=True)`` when trying
again cannot help, or raises ``RetryLaterError`` when it can: the caller stores
that and re-queues the alert instead of sleeping (elastalert #1345). Both errors are in
``monitor.errors``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from monitor.model import Article, Match
from monitor.notify.render import SlackMessage

# Lays out one alert: the default layout (render_alert) or an operator's template.
AlertRenderer = Callable[[Article, Sequence[Match]], SlackMessage]


class AlertSender(Protocol):
    """Delivers one message to one channel."""

    def send(self, channel: str, message: SlackMessage) -> str | None:
        """Deliver ``message``; return a reference to it (Slack ``ts``) when there is one."""
        ...
