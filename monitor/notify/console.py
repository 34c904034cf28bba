"""Print alerts as plain text when no Slack is configured (a dry run, a first try).

It prints the message's plain form, which the renderer writes for a terminal: no mrkdwn
markup, no emoji codes, the headline once, then the link, the source and why it matched.
Feed text was stripped of control characters by the renderer, so it cannot drive the
terminal.
"""

from __future__ import annotations

import sys
from typing import TextIO

from monitor.errors import DeliveryError
from monitor.notify.render import SlackMessage


class ConsoleSender:
    """Writes each alert to ``stream`` (default: standard output) and returns no reference."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    def send(self, channel: str, message: SlackMessage) -> str | None:
        """Print ``message`` under a line naming ``channel``."""
        stream = self._stream if self._stream is not None else sys.stdout
        body = message.plain or _unescape(message.text)
        try:
            stream.write(f"── {channel} ──\n{body}\n\n")
            stream.flush()
        except (OSError, ValueError) as exc:  # ValueError: the stream was closed
            raise DeliveryError(channel, f"cannot write the alert to the console: {exc}") from exc
        return None


def _unescape(text: str) -> str:
    # A message built without a plain form: its fallback text, its three escapes undone.
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
