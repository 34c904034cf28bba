"""Pure scheduling decisions: when to poll a feed next, whose alerts to send, when to retry.

No clock and no randomness inside: callers pass ``now`` and a ``jitter`` in [-1, 1]
so that the decisions are table-testable. Jitter spreads polls of feeds that
share a host (miniflux #3130); backoff has a ceiling so a broken feed is
retried at least daily instead of being dropped (miniflux #149).
"""

from __future__ import annotations

from datetime import datetime, timedelta

JITTER_FRACTION = 0.1
MAX_BACKOFF = timedelta(hours=24)
DELIVERY_RETRY_BASE = timedelta(seconds=30)
MAX_DELIVERY_BACKOFF = timedelta(hours=1)


def next_poll_at(now: datetime, interval: float, error_count: int, jitter: float) -> datetime:
    """The next poll: ``interval`` after success, doubling per consecutive error up to a day."""
    seconds = interval
    if error_count > 0:
        seconds = min(interval * (1 << min(error_count, 20)), MAX_BACKOFF.total_seconds())
    seconds *= 1 + JITTER_FRACTION * max(-1.0, min(1.0, jitter))
    return now + timedelta(seconds=seconds)


def alert_since(now: datetime, first_poll: bool, window_hours: float) -> datetime | None:
    """On a feed's first poll only recent items alert, so adding a feed never floods a channel."""
    return now - timedelta(hours=window_hours) if first_poll else None


def delivery_retry_at(now: datetime, attempts: int, retry_after: float | None) -> datetime:
    """When to retry a failed delivery: after Slack's Retry-After if given, else backing off."""
    backoff = min(DELIVERY_RETRY_BASE * (1 << min(attempts, 20)), MAX_DELIVERY_BACKOFF)
    if retry_after is not None:
        backoff = max(timedelta(seconds=retry_after), timedelta(seconds=1))
    return now + backoff
