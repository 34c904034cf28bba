"""Pure scheduling decisions: when to poll a feed next, whose alerts to send, when to retry.

No clock and no randomness inside: callers pass ``now`` and a ``jitter`` in [-1, 1]
so that the decisions are table-testable. Jitter spreads polls of feeds that
share a host (miniflux #3130); backoff has a ceiling so a broken feed is
retried at least daily instead of being dropped (miniflux #149). A host's own
signals come first: its Retry-After, and a 410 or a run of 404s, which put the
feed on a daily poll until it answers again. Alerts are paced per channel at
Slack's rate (#9): `send_at` says when the next message to a channel may go.

Adaptive polling (#11): after a success the interval follows how often the feed publishes
(half the median gap between its newest items), never sooner than the publisher asks
(``<ttl>``, ``sy:updatePeriod``, ``Cache-Control: max-age``, ``Expires``), within bounds:
never below MONITOR_MIN_INTERVAL (or the feed's own ``interval``), never above
MONITOR_MAX_INTERVAL, so a quiet feed is still looked at and a max-age of 0 hammers nobody.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from itertools import pairwise

JITTER_FRACTION = 0.1
MAX_BACKOFF = timedelta(hours=24)
# Also the ceiling of a Retry-After: a host asking for a week still gets a daily look.
MAX_RETRY_AFTER = MAX_BACKOFF
# A feed that needs attention is polled this rarely, never dropped: it may come back.
ATTENTION_INTERVAL = timedelta(hours=24)
# 404s in a row before a feed needs attention. One 404 is often a botched deploy; five
# in a row at doubling backoff span several hours of a feed poll every few minutes.
NOT_FOUND_LIMIT = 5
DELIVERY_RETRY_BASE = timedelta(seconds=30)
# Minutes, not an hour: a Slack outage rarely lasts long and alerts are news (#9).
MAX_DELIVERY_BACKOFF = timedelta(minutes=5)
# A Retry-After beyond this is not believed: the channel is tried again by then.
MAX_DELIVERY_RETRY_AFTER = timedelta(minutes=15)


def next_poll_at(
    now: datetime,
    interval: float,
    error_count: int,
    jitter: float,
    *,
    retry_after: datetime | None = None,
    attention: bool = False,
) -> datetime:
    """The next poll: ``interval`` after success, doubling per consecutive error up to a day.

    A host's ``retry_after`` is honoured up to MAX_RETRY_AFTER but never brings the poll
    sooner than the backoff; a feed that needs ``attention`` waits ATTENTION_INTERVAL.
    """
    seconds = interval
    if error_count > 0:
        seconds = min(interval * (1 << min(error_count, 20)), MAX_BACKOFF.total_seconds())
    if attention:
        seconds = max(seconds, ATTENTION_INTERVAL.total_seconds())
    seconds *= 1 + JITTER_FRACTION * max(-1.0, min(1.0, jitter))
    backoff = now + timedelta(seconds=seconds)
    if retry_after is None:
        return backoff
    return max(backoff, min(retry_after, now + MAX_RETRY_AFTER))


# The newest items whose gaps say how often a feed publishes: recent enough to follow a
# change of pace, enough to make one late or early item no more than noise.
PACE_SAMPLE = 20
MIN_GAPS = 2  # fewer gaps (three dated items) say nothing: the default interval holds
_SY_PERIODS = {"hourly": 3600, "daily": 86400, "weekly": 7 * 86400, "monthly": 30 * 86400,
               "yearly": 365 * 86400}  # fmt: skip
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)\"?\s*(?:,|$)", re.IGNORECASE)
_NO_CACHE = re.compile(r"(?:^|,)\s*(?:no-cache|no-store)\s*(?:[,=]|$)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class PollBounds:
    """The range of adaptive intervals, in seconds (MONITOR_MIN_INTERVAL, MONITOR_MAX_INTERVAL)."""

    minimum: float = 120.0
    maximum: float = 4 * 3600.0


def publish_gap(published: Iterable[datetime]) -> float | None:
    """Median seconds between the newest PACE_SAMPLE distinct item dates; None if too few."""
    newest = sorted(set(published), reverse=True)[: PACE_SAMPLE + 1]
    gaps = [(later - earlier).total_seconds() for later, earlier in pairwise(newest)]
    return statistics.median(gaps) if len(gaps) >= MIN_GAPS else None


def refresh_hint(
    ttl: str | None, update_period: str | None, update_frequency: str | None
) -> float | None:
    """Seconds a document asks to wait: RSS ``<ttl>`` (minutes), ``sy:updatePeriod`` over
    ``sy:updateFrequency`` (RSS 1.0 syndication module); the longer when both; None if neither."""
    hints: list[float] = []
    if ttl is not None and ttl.strip().isdigit():
        hints.append(int(ttl.strip()) * 60.0)
    period = _SY_PERIODS.get((update_period or "").strip().lower())
    if period is not None:
        frequency = (update_frequency or "1").strip()
        times = int(frequency) if frequency.isdigit() and int(frequency) > 0 else 1
        hints.append(period / times)
    return max(hints) if hints else None


def freshness(now: datetime, headers: Mapping[str, str]) -> float | None:
    """Seconds a response says it stays fresh: ``Cache-Control: max-age``, else ``Expires``.

    As RFC 9111 reads them: max-age wins over Expires; no-cache or no-store, or an Expires
    in the past or unreadable, is 0 (nothing to wait for); None when neither header is sent.
    """
    control = headers.get("cache-control")
    if control is not None:
        if _NO_CACHE.search(control):
            return 0.0
        found = _MAX_AGE.search(control)
        if found is not None:
            return float(found.group(1))
    expires = headers.get("expires")
    if expires is None:
        return None
    try:
        moment = parsedate_to_datetime(expires.strip())
    except (TypeError, ValueError, IndexError):
        return 0.0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - now).total_seconds())


def poll_interval(
    bounds: PollBounds,
    default: float,
    *,
    configured: float | None = None,
    gap: float | None = None,
    hints: Iterable[float | None] = (),
) -> float:
    """Seconds until the next poll of a feed that answered: the adaptive interval.

    Half the publishing ``gap`` (so a new item waits half a gap on average), else the feed's
    ``configured`` interval, else ``default`` (MONITOR_POLL_INTERVAL); never sooner than a
    publisher's ``hints``; at least the configured interval if the operator set one, else
    ``bounds.minimum`` (or ``default``, if lower: an operator who polls every feed every
    minute chose that too); at most ``bounds.maximum`` (or the configured interval, if longer).
    """
    floor = configured if configured is not None else min(bounds.minimum, default)
    ceiling = max(bounds.maximum, floor)
    seconds = gap / 2 if gap is not None else (configured or default)
    seconds = max(seconds, floor, *(hint for hint in hints if hint is not None))
    return min(seconds, ceiling)


def retry_after_at(now: datetime, header: str | None) -> datetime | None:
    """The time a Retry-After header names (delta-seconds or an HTTP-date); None if neither."""
    if header is None:
        return None
    value = header.strip()
    if value.isascii() and value.isdigit():
        return now + timedelta(seconds=min(int(value), MAX_RETRY_AFTER.total_seconds()))
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:  # RFC 9110 dates are GMT; a "-0000" zone parses naive
        moment = moment.replace(tzinfo=UTC)
    return moment


def attention_reason(status: int | None, not_found_count: int) -> str | None:
    """Why a failed feed needs a person, when the host says it is gone; None otherwise."""
    if status == 410:
        return "HTTP 410 Gone: the feed was removed; delete it from the feeds file"
    if status == 404 and not_found_count >= NOT_FOUND_LIMIT:
        return (
            f"HTTP 404 Not Found {not_found_count} times in a row; "
            "fix the feed URL or delete it from the feeds file"
        )
    return None


def alert_since(now: datetime, first_poll: bool, window_hours: float) -> datetime | None:
    """On a feed's first poll only recent items alert, so adding a feed never floods a channel."""
    return now - timedelta(hours=window_hours) if first_poll else None


def delivery_retry_at(now: datetime, attempts: int, retry_after: float | None) -> datetime:
    """When to retry a failed delivery: after Slack's Retry-After if given, else backing off."""
    backoff = min(DELIVERY_RETRY_BASE * (1 << min(attempts, 20)), MAX_DELIVERY_BACKOFF)
    if retry_after is not None:
        wait = min(timedelta(seconds=retry_after), MAX_DELIVERY_RETRY_AFTER)
        backoff = max(wait, timedelta(seconds=1))
    return now + backoff


@dataclass(frozen=True, slots=True)
class Pacing:
    """Slack's per-channel rate: one message per ``interval`` seconds, ``burst`` at once.

    Slack allows about one message per second per channel with short bursts, and answers
    429 beyond that; pacing below it means a burst of matches never meets a 429.
    """

    interval: float = 1.0
    burst: int = 2


SLACK_PACING = Pacing()


def send_at(pacing: Pacing, due: datetime | None, now: datetime) -> datetime:
    """When the next message to a channel may go, given its ``due`` (None: never used).

    ``due`` is the channel's theoretical arrival time (GCRA): a message may go once
    ``now`` is within ``burst - 1`` intervals of it.
    """
    if due is None:
        return now
    return max(now, due - timedelta(seconds=pacing.interval * (pacing.burst - 1)))


def after_send(pacing: Pacing, due: datetime | None, sent_at: datetime) -> datetime:
    """A channel's ``due`` after a message went at ``sent_at``."""
    start = sent_at if due is None else max(due, sent_at)
    return start + timedelta(seconds=pacing.interval)


def after_pause(pacing: Pacing, due: datetime | None, retry_at: datetime) -> datetime:
    """A channel's ``due`` once it must wait until ``retry_at``: then one message, then paced."""
    paused = retry_at + timedelta(seconds=pacing.interval * (pacing.burst - 1))
    return paused if due is None else max(due, paused)
