"""The one exception tree of media-monitor.

    MonitorError
    ├── ConfigError        a setting is missing or invalid (names the variable)
    ├── FeedError          one feed failed (carries the feed URL)
    │   ├── FetchError     network, HTTP status, size, redirect or address refusal
    │   └── FeedParseError the body is not a feed we can read
    ├── RuleError          rule files are invalid (carries every problem with file:line:col)
    ├── InputError         a dry run's input file is unreadable or malformed (names file:line)
    ├── StoreError         the database is unreachable or refused a write
    └── DeliveryError      Slack (or the console) did not take an alert (carries the channel)
        └── RetryLaterError  a transient failure (429, 5xx, network): the alert is re-queued

Third-party exceptions are wrapped once, at the edge that called the library,
with ``raise ... from exc``. Messages say what to check next.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

MAX_MESSAGE = 300  # characters of an error kept or shown: servers can put anything in one


class MonitorError(Exception):
    """Base class: the CLI prints ``str(error)`` on one line and exits non-zero.

    Errors raised in a parse worker travel back to the main process by pickle. The
    default pickling calls ``cls(*args)``, which breaks for every subclass whose
    ``__init__`` takes other arguments than its message, and a failed unpickle breaks
    the whole process pool. So every error here is rebuilt from its args and its
    attributes instead, without calling ``__init__``.
    """

    def __reduce__(self) -> tuple[Any, ...]:
        return (_restore, (type(self), self.args, self.__dict__))


def _restore(cls: type[MonitorError], args: tuple[Any, ...], state: dict[str, Any]) -> MonitorError:
    error = cls.__new__(cls, *args)
    error.args = args
    error.__dict__.update(state)
    return error


class ConfigError(MonitorError):
    def __init__(self, setting: str, message: str) -> None:
        self.setting = setting
        super().__init__(f"{setting}: {message}")


class FeedError(MonitorError):
    def __init__(self, url: str, message: str) -> None:
        self.url = url
        self.message = message
        super().__init__(f"{url}: {message}")


class FetchError(FeedError):
    """``retry_after``: the server's Retry-After header (bounded text), read by the scheduler."""

    def __init__(
        self, url: str, message: str, status: int | None = None, retry_after: str | None = None
    ) -> None:
        self.status = status
        self.retry_after = retry_after
        super().__init__(url, message)


class FeedParseError(FeedError):
    pass


@dataclass(frozen=True, slots=True)
class RuleProblem:
    """One problem in a rule file, located to the character."""

    file: str
    line: int  # 1-based
    column: int  # 1-based
    message: str
    severity: str = "error"  # "error" or "warning"
    hint: str | None = None
    follow_on: bool = False  # caused by another problem, which is reported first

    def __str__(self) -> str:
        text = f"{self.file}:{self.line}:{self.column}: {self.message}"
        if self.severity == "warning":
            text = f"{self.file}:{self.line}:{self.column}: warning: {self.message}"
        return f"{text} ({self.hint})" if self.hint else text


class RuleError(MonitorError):
    def __init__(self, problems: Sequence[RuleProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))


class InputError(MonitorError):
    """An input file (a dry run's articles, an OPML import) is unreadable or malformed."""


class StoreError(MonitorError):
    pass


class DeliveryError(MonitorError):
    def __init__(self, channel: str, message: str, *, permanent: bool = False) -> None:
        self.channel = channel
        self.permanent = permanent
        super().__init__(f"{channel}: {message}")


class RetryLaterError(DeliveryError):
    """A transient failure (429, 5xx, network); ``retry_after``: Slack's wait in seconds."""

    def __init__(self, channel: str, message: str, *, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(channel, message, permanent=False)


def shorten(text: str, limit: int = MAX_MESSAGE) -> str:
    """At most ``limit`` printable characters: error text may quote what a server sent."""
    printable = "".join(char if char.isprintable() else " " for char in text[: limit + 1])
    return printable if len(printable) <= limit else printable[: limit - 3] + "..."
