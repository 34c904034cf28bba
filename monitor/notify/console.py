"""Print alerts as plain text when no Slack is configured (a dry run, a first try).

The message's blocks are turned back into readable lines: links become
``label (url)``, dates their UTC fallback, entities their characters. Feed text
was stripped of control characters by the renderer, so it cannot drive the terminal.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from typing import Any, TextIO

from monitor.errors import DeliveryError
from monitor.notify.render import SlackMessage

_TOKEN = re.compile(r"<([^<>|]*)(?:\|([^<>]*))?>")


class ConsoleSender:
    """Writes each alert to ``stream`` (default: standard output) and returns no reference."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    def send(self, channel: str, message: SlackMessage) -> str | None:
        """Print ``message`` under a line naming ``channel``."""
        stream = self._stream if self._stream is not None else sys.stdout
        lines = [] if message.reply else [f"── {channel} ──"]
        for block in message.blocks:
            lines.extend(_block_lines(block))
        if message.reply:  # under the story it belongs to, which was printed before it
            lines = [f"    ↳ {line}" for line in lines]
        try:
            stream.write("\n".join(lines) + "\n\n")
            stream.flush()
        except (OSError, ValueError) as exc:  # ValueError: the stream was closed
            raise DeliveryError(channel, f"cannot write the alert to the console: {exc}") from exc
        return None


def plain_text(mrkdwn: str) -> str:
    """Readable text from our mrkdwn: ``<url|label>`` -> ``label (url)``, dates -> fallback."""
    return _unescape(_TOKEN.sub(_token_text, mrkdwn))


def _block_lines(block: Mapping[str, Any]) -> list[str]:
    kind = block.get("type")
    if kind == "header":
        return [str(block["text"]["text"])]  # plain_text: shown literally
    if kind == "section":
        texts = [block["text"], *block.get("fields", ())] if "text" in block else block["fields"]
        return [line for text in texts for line in _text_lines(text)]
    if kind == "context":
        texts = [plain_text(element["text"]) for element in block["elements"] if "text" in element]
        return [" ".join(texts)] if texts else []
    return []


def _text_lines(text: Mapping[str, Any]) -> list[str]:
    value = str(text["text"])
    return (plain_text(value) if text.get("type") == "mrkdwn" else value).splitlines()


def _token_text(token: re.Match[str]) -> str:
    target, label = token.group(1), token.group(2)
    if target.startswith("!date^"):
        return label or target
    if label:
        return f"{label} ({target})"
    return target


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
