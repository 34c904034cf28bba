"""slack-sdk retry handlers whose total sleep per send is capped.

slack-sdk retries only connection errors unless told (USERS.md #12), and its
rate-limit handler sleeps whatever Retry-After says. Its connection-error handler also
retries a reset or a timeout after the request was sent, when Slack may already have
posted the message (#9): ours retries only what urllib raises before the request is
sent (URLError: refused, unreachable, a failed connect), through the handler's documented
``error_types``; the sender reports the rest as uncertain. These subclasses of the
SDK's documented extension point (``RetryHandler``) share one wait budget per
request: a Retry-After that does not fit is not slept, so the SDK hands the 429
back and the sender raises ``RetryLaterError`` for the caller to re-queue.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from urllib.error import URLError

from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

RETRIED_STATUSES = frozenset({500, 502, 503, 504})
DEFAULT_RATE_LIMIT_WAIT = 1.0  # what slack-sdk waits when a 429 has no Retry-After
_SLEPT = "media_monitor_slept"


def build_retry_handlers(max_retries: int, max_wait: float) -> list[RetryHandler]:
    """Handlers for 429 (Retry-After), 5xx and connection errors, at most ``max_wait`` asleep."""
    return [
        CappedRateLimitRetryHandler(max_retries, max_wait),
        CappedServerErrorRetryHandler(max_retries, max_wait),
        CappedConnectionErrorRetryHandler(max_retries, max_wait),
    ]


def retry_after(headers: Mapping[str, object]) -> float | None:
    """Seconds from a Retry-After header (any case, str or list value), None if absent or bad."""
    for name, value in headers.items():
        if name.lower() != "retry-after":
            continue
        first = value[0] if isinstance(value, list | tuple) and value else value
        try:
            seconds = float(str(first).strip())
        except ValueError:
            return None
        return max(seconds, 0.0)
    return None


class CappedRateLimitRetryHandler(RateLimitErrorRetryHandler):
    """Waits out a 429's Retry-After only when it fits in what is left of ``max_wait``."""

    def __init__(self, max_retry_count: int, max_wait: float) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.max_wait = max_wait

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is None or response.status_code != 429:
            return False
        return _wait(response) <= _remaining(state, self.max_wait)

    def prepare_for_next_attempt(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        state.next_attempt_requested = True
        _sleep(state, _wait(response) if response is not None else DEFAULT_RATE_LIMIT_WAIT)
        state.increment_current_attempt()


class _CappedBackoff(RetryHandler):
    """The SDK's exponential backoff with jitter, each sleep clipped to the remaining budget."""

    max_wait: float

    def prepare_for_next_attempt(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        state.next_attempt_requested = True
        delay = self.interval_calculator.calculate_sleep_duration(state.current_attempt)
        _sleep(state, min(delay, _remaining(state, self.max_wait)))
        state.increment_current_attempt()


class CappedServerErrorRetryHandler(_CappedBackoff, ServerErrorRetryHandler):
    """Retries 500, 502, 503 and 504 (the SDK's handler alone retries only 500 and 503)."""

    def __init__(self, max_retry_count: int, max_wait: float) -> None:
        ServerErrorRetryHandler.__init__(self, max_retry_count=max_retry_count)
        self.max_wait = max_wait

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        return response is not None and response.status_code in RETRIED_STATUSES


class CappedConnectionErrorRetryHandler(_CappedBackoff, ConnectionErrorRetryHandler):
    """Retries a request that never reached Slack (refused, unreachable), within the budget.

    urllib wraps in URLError only what fails before the request is sent; a reset or a
    timeout while waiting for the answer comes raw and is not retried here.
    """

    def __init__(self, max_retry_count: int, max_wait: float) -> None:
        ConnectionErrorRetryHandler.__init__(
            self, max_retry_count=max_retry_count, error_types=[URLError]
        )
        self.max_wait = max_wait


def _wait(response: HttpResponse) -> float:
    seconds = retry_after(response.headers)
    return DEFAULT_RATE_LIMIT_WAIT if seconds is None else seconds


def _remaining(state: RetryState, max_wait: float) -> float:
    slept = float((state.custom_values or {}).get(_SLEPT, 0.0))
    return max(max_wait - slept, 0.0)


def _sleep(state: RetryState, seconds: float) -> None:
    # The SDK creates one RetryState per request; it is where the budget is kept.
    time.sleep(seconds)
    values = dict(state.custom_values or {})
    values[_SLEPT] = float(values.get(_SLEPT, 0.0)) + seconds
    state.custom_values = values
