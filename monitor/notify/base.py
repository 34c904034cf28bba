"""What every alert sender promises, and the error that asks the caller to try again later.

A sender delivers one rendered message to one channel and either returns a
reference (Slack's ``ts``), raises ``DeliveryError(permanent=True)`` when trying
again cannot help, or raises ``RetryLaterError`` when it can: the caller stores
that and re-queues the alert instead of sleeping (elastalert #1345).
"""

from __future__ import annotations

from typing import Protocol

from monitor.errors import DeliveryError
from monitor.notify.render import SlackMessage


class RetryLaterError(DeliveryError):
    """A transient failure (429, 5xx, network); ``retry_after``: Slack's wait in seconds."""

    def __init__(self, channel: str, message: str, *, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(channel, message, permanent=False)


class AlertSender(Protocol):
    """Delivers one message to one channel."""

    def send(self, channel: str, message: SlackMessage) -> str | None:
        """Deliver ``message``; return a reference to it (Slack ``ts``) when there is one."""
        ...
