"""Hand-written fakes of the pipeline's edges (`monitor.ports`, `notify.base.AlertSender`).

Each is set up with builder methods that return the fake, and records what the
pipeline asked of it, so a test states the world in one expression and then
compares whole values. No sockets, no processes, no database.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

from monitor.errors import DeliveryError, FeedParseError, FetchError, RetryLaterError
from monitor.feeds.fetch import FetchOptions, FetchRequest, FetchResult
from monitor.model import Article, Match, ParsedFeed
from monitor.notify.render import SlackMessage
from monitor.ports import MatchedArticles
from monitor.store.store import (
    MAX_UNCERTAIN_SENDS,
    FeedState,
    PendingDelivery,
    PollOutcome,
    PollSaved,
    Settled,
)


class FakeFetcher:
    """An `OpenFetcher` whose sessions answer each URL as told; unknown URLs are a test bug."""

    def __init__(self) -> None:
        self._answers: dict[str, FetchResult | FetchError] = {}
        self.requests: list[FetchRequest] = []
        self.sessions = 0  # sessions opened

    def serves(self, url: str, body: bytes, *, etag: str | None = None) -> FakeFetcher:
        self._answers[url] = _result(url, 200, body, etag)
        return self

    def not_modified(self, url: str, *, etag: str | None = None) -> FakeFetcher:
        self._answers[url] = _result(url, 304, None, etag)
        return self

    def fails(self, url: str, error: FetchError) -> FakeFetcher:
        self._answers[url] = error
        return self

    def __call__(self, options: FetchOptions) -> FakeFetcher:
        self.sessions += 1
        return self

    async def __aenter__(self) -> FakeFetcher:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    async def fetch(self, request: FetchRequest) -> FetchResult:
        self.requests.append(request)
        answer = self._answers[request.url]
        if isinstance(answer, FetchError):
            raise answer
        return answer


def _result(url: str, status: int, body: bytes | None, etag: str | None) -> FetchResult:
    return FetchResult(
        url=url,
        final_url=url,
        moved_to=None,
        status=status,
        body=body,
        headers={},
        etag=etag,
        last_modified=None,
        elapsed=0.0,
    )


class FakeReader:
    """A `FeedReader` that returns the articles it was told a feed has, or rejects the feed."""

    def __init__(self) -> None:
        self._answers: dict[str, tuple[ParsedFeed, MatchedArticles] | FeedParseError] = {}
        self.read_urls: list[str] = []
        self.closed = False

    def parses(
        self, url: str, *matched: tuple[Article, tuple[Match, ...]], warnings: Sequence[str] = ()
    ) -> FakeReader:
        articles = tuple(article for article, _ in matched)
        self._answers[url] = (ParsedFeed("feed", articles, tuple(warnings)), tuple(matched))
        return self

    def rejects(self, url: str, message: str) -> FakeReader:
        self._answers[url] = FeedParseError(url, message)
        return self

    async def read(
        self,
        body: bytes,
        *,
        url: str,
        headers: dict[str, str],
        fetched_at: datetime,
        feed_name: str = "",
        feed_tags: tuple[str, ...] = (),
    ) -> tuple[ParsedFeed, MatchedArticles]:
        self.read_urls.append(url)
        answer = self._answers[url]
        if isinstance(answer, FeedParseError):
            raise answer
        return answer

    def close(self) -> None:
        self.closed = True


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    """A delivery as the fake store holds it: the columns the delivery rules change."""

    pending: PendingDelivery
    next_attempt_at: datetime | None  # None: due at once
    status: str = "pending"  # "pending", "sent" or "failed"
    attempts: int = 0
    last_error: str | None = None
    reference: str | None = None
    uncertain_sends: int = 0


class FakeStore:
    """A `PollStore` and `DeliveryStore` in memory.

    It claims and leases like the real store and keeps delivery state, which is all the
    pipeline's rules depend on. Poll outcomes are recorded as given, not applied: how a
    real store folds them into feed state, and which articles are new, is the store
    tests' business (tests/test_store.py, against SQLite and PostgreSQL).
    """

    def __init__(self, events: list[str] | None = None) -> None:
        self._feeds: dict[str, FeedState] = {}
        self.deliveries: dict[int, DeliveryRow] = {}
        self.outcomes: list[PollOutcome] = []
        self.leases: dict[str, str] = {}  # feed URL -> the owner of its claim
        self.released: list[str] = []  # feed URLs given back unpolled
        self.claims: list[int] = []  # feeds each claim took, in order
        self.events = [] if events is None else events  # shared with a FakeSender: the order

    def has_feed(self, url: str, **state: Any) -> FakeStore:
        """A feed never polled, due now; ``state`` overrides any FeedState field."""
        feed = FeedState(
            url=url,
            name="",
            tags=(),
            interval=None,
            etag=None,
            last_modified=None,
            body_digest=None,
            error_count=0,
            last_error=None,
            last_status=None,
            last_polled_at=None,
            last_success_at=None,
            next_poll_at=None,
            first_polled_at=None,
            active=True,
        )
        self._feeds[url] = replace(feed, **state)
        return self

    def has_delivery(
        self,
        article: Article,
        *matches: Match,
        channel: str = "#news",
        attempts: int = 0,
    ) -> FakeStore:
        """A pending alert, due now; ids count from 1 in the order they are added."""
        delivery_id = len(self.deliveries) + 1
        pending = PendingDelivery(delivery_id, channel, attempts, article, matches)
        self.deliveries[delivery_id] = DeliveryRow(pending, None, attempts=attempts)
        return self

    def claim_due_feeds(
        self,
        now: datetime,
        lease: timedelta,
        limit: int | None = None,
        *,
        every: bool = False,
        since: datetime | None = None,
        owner: str = "",
    ) -> list[FeedState]:
        cutoff = now if since is None else since
        due = [
            feed
            for feed in self._feeds.values()
            if feed.active
            and (feed.leased_until is None or feed.leased_until <= now)
            and (
                (every and (since is None or feed.last_polled_at is None))
                or (not every and (feed.next_poll_at is None or feed.next_poll_at <= cutoff))
            )
        ][:limit]
        for feed in due:
            self._feeds[feed.url] = replace(feed, leased_until=now + lease)
            self.leases[feed.url] = owner
        self.claims.append(len(due))
        return sorted((self._feeds[feed.url] for feed in due), key=lambda feed: feed.url)

    def renew_leases(self, urls: Sequence[str], now: datetime, lease: timedelta, owner: str) -> int:
        held = [url for url in urls if self.leases.get(url) == owner]
        for url in held:
            self._feeds[url] = replace(self._feeds[url], leased_until=now + lease)
        return len(held)

    def release_leases(self, urls: Sequence[str], owner: str) -> int:
        held = [url for url in urls if self.leases.pop(url, None) == owner]
        for url in held:
            self._feeds[url] = replace(self._feeds[url], leased_until=None)
        self.released.extend(held)
        return len(held)

    def record_polls(self, outcomes: Sequence[PollOutcome]) -> list[PollSaved]:
        self.outcomes.extend(outcomes)
        return [
            PollSaved(
                new_articles=len(outcome.articles),
                new_matches=sum(len(found) for _, found in outcome.articles),
                new_deliveries=0,
            )
            for outcome in outcomes
        ]

    def claim_deliveries(
        self, now: datetime, lease: timedelta, limit: int, holding: Collection[int] = ()
    ) -> list[PendingDelivery]:
        due = [
            row
            for row in self.deliveries.values()
            if row.status == "pending"
            and (row.next_attempt_at is None or row.next_attempt_at <= now)
        ][:limit]
        for row in due:
            self._update(row, next_attempt_at=now + lease)
        self.events.append(f"claim {[row.pending.id for row in due]}")
        return [replace(row.pending, attempts=row.attempts) for row in due]

    def release_deliveries(self, delivery_ids: Sequence[int], at: datetime) -> None:
        for delivery_id in delivery_ids:
            row = self.deliveries[delivery_id]
            if row.status == "pending":
                self._update(row, next_attempt_at=at)
        self.events.append(f"release {list(delivery_ids)}")

    def mark_delivered(self, delivery_id: int, now: datetime, reference: str | None) -> None:
        row = self.deliveries[delivery_id]
        self._update(row, status="sent", attempts=row.attempts + 1, reference=reference)
        self.events.append(f"sent {delivery_id}")

    def mark_failed(
        self, delivery_id: int, now: datetime, error: str, retry_at: datetime | None
    ) -> None:
        row = self.deliveries[delivery_id]
        self.events.append(f"failed {delivery_id}")
        if row.status != "pending":  # as the real store: a late failure never re-queues
            return
        if retry_at is None:
            self._update(row, status="failed", attempts=row.attempts + 1, last_error=error)
        else:
            self._update(row, attempts=row.attempts + 1, last_error=error, next_attempt_at=retry_at)

    def start_send(self, delivery_ids: Sequence[int], now: datetime) -> None:
        """Not an event: the order tests read is claim, send, mark."""

    def mark_uncertain(
        self, delivery_id: int, now: datetime, error: str, retry_at: datetime
    ) -> bool:
        row = self.deliveries[delivery_id]
        self.events.append(f"uncertain {delivery_id}")
        given_up = row.uncertain_sends + 1 >= MAX_UNCERTAIN_SENDS
        self._update(
            row,
            status="failed" if given_up else row.status,
            attempts=row.attempts + 1,
            last_error=error,
            next_attempt_at=retry_at,
            uncertain_sends=row.uncertain_sends + 1,
        )
        return given_up

    def settle_interrupted(self, now: datetime) -> Settled:
        return Settled()  # the fake never crashes mid-send

    def pause_channel(self, channel: str, until: datetime) -> int:
        paused = [
            row
            for row in self.deliveries.values()
            if row.status == "pending"
            and row.pending.channel == channel
            and (row.next_attempt_at is None or row.next_attempt_at < until)
        ]
        for row in paused:
            self._update(row, next_attempt_at=until)
        return len(paused)

    def mark_expired(self, delivery_id: int, now: datetime, reason: str) -> None:
        self._update(self.deliveries[delivery_id], status="expired", last_error=reason)
        self.events.append(f"expired {delivery_id}")

    def _update(self, row: DeliveryRow, **changes: Any) -> None:
        self.deliveries[row.pending.id] = replace(row, **changes)


class FakeClock:
    """A clock whose ``sleep`` moves it on, recording each wait among the events."""

    def __init__(self, now: datetime, events: list[str] | None = None) -> None:
        self.now = now
        self.events = [] if events is None else events

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.events.append(f"sleep {seconds:g}")
        self.now += timedelta(seconds=seconds)


class FakeSender:
    """An `AlertSender` that accepts every message unless told how a channel fails."""

    def __init__(self, events: list[str] | None = None) -> None:
        self._failures: dict[str, DeliveryError] = {}
        self._times: dict[str, int | None] = {}  # failures left per channel; None: for ever
        self.sent: list[tuple[str, SlackMessage]] = []
        self.events = [] if events is None else events  # shared with a FakeStore: the order

    def rate_limits(
        self, channel: str, retry_after: float | None, *, times: int | None = None
    ) -> FakeSender:
        self._failures[channel] = RetryLaterError(
            channel, "HTTP 429: rate limited", retry_after=retry_after
        )
        self._times[channel] = times
        return self

    def breaks(self, channel: str, message: str, *, times: int | None = None) -> FakeSender:
        """A transient failure without a Retry-After (a 5xx, a network error)."""
        self._failures[channel] = DeliveryError(channel, message)
        self._times[channel] = times
        return self

    def refuses(self, channel: str, message: str) -> FakeSender:
        """A permanent failure: trying again cannot help (an unknown channel)."""
        self._failures[channel] = DeliveryError(channel, message, permanent=True)
        self._times[channel] = None
        return self

    def send(self, channel: str, message: SlackMessage) -> str | None:
        self.events.append(f"send {channel}")
        if channel in self._failures:
            left = self._times.get(channel)
            if left is None or left > 0:
                if left is not None:
                    self._times[channel] = left - 1
                raise self._failures[channel]
        self.sent.append((channel, message))
        return f"ts-{len(self.sent)}"
