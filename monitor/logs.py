"""Where log lines go and what they look like: text, or one JSON object a line.

A log call about one feed, rule or alert passes ``extra={"feed_url": ..., "rule_id": ...,
"delivery_id": ...}`` (whichever apply); JSON lines carry those as fields, text lines
rely on the message naming them. Only the composition root calls ``log_to_stderr``.
Secrets (the bot token, the webhook URL's path) are masked in every line, whichever
library logged it (#9).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TextIO
from urllib.parse import urlsplit

CONTEXT_FIELDS = ("feed_url", "rule_id", "delivery_id")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Libraries that log routine work at INFO: APScheduler every job run ("Running job ...",
# "... executed successfully"), Alembic every schema check. Theirs show with DEBUG only.
QUIET_LOGGERS = ("apscheduler", "alembic")


MASK = "***"


def secret_parts(token: str | None, webhook_url: str | None) -> tuple[str, ...]:
    """What must never be shown: the token, and a webhook URL's path (its credential)."""
    parts = [token] if token else []
    if webhook_url:
        path = urlsplit(webhook_url).path
        parts.append(path if len(path) > 1 else webhook_url)
    return tuple(part for part in parts if len(part) >= 4)


def mask_secrets(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, MASK)
    return text


class SecretMask(logging.Filter):
    """Rewrites each record's message, and its traceback, without the secrets."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = tuple(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            record.msg = mask_secrets(record.getMessage(), self.secrets)
            record.args = None
            if record.exc_info:
                text = logging.Formatter().formatException(record.exc_info)
                record.exc_text = mask_secrets(text, self.secrets)
                record.exc_info = None
        return True


class JsonFormatter(logging.Formatter):
    """time, level, logger, message, and the context fields the call passed."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["traceback"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["traceback"] = record.exc_text
        return json.dumps(line, ensure_ascii=False)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to ``sys.stderr`` as it is at each line: click's test runner swaps it."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self) -> TextIO:
        return sys.stderr


@contextmanager
def log_to_stderr(level: str, log_format: str, secrets: Iterable[str] = ()) -> Iterator[None]:
    """Send log lines at ``level`` and above to stderr for the duration of a command."""
    handler = _StderrHandler()
    handler.addFilter(SecretMask(secrets))
    handler.setFormatter(
        JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    root = logging.getLogger()
    quiet = [logging.getLogger(name) for name in QUIET_LOGGERS]
    saved = [(logger, logger.level) for logger in (root, *quiet)]
    root.addHandler(handler)
    root.setLevel(level)
    for logger in quiet:
        logger.setLevel(logging.DEBUG if level == "DEBUG" else logging.WARNING)
    try:
        yield
    finally:
        root.removeHandler(handler)
        for logger, previous in saved:
            logger.setLevel(previous)
