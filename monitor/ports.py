"""The edges a poll cycle and a delivery run drive, as Protocols.

`monitor.pipeline` names only these, never an adapter, so its rules run in unit tests
against the fakes in tests/support/fakes.py. The real adapters are built in one place,
`monitor.service.build_edges`. The alert sender's Protocol is `notify.base.AlertSender`.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from monitor.model import Article, Match, ParsedFeed

if TYPE_CHECKING:  # the values only; importing them would import aiohttp and SQLAlchemy
    from monitor.feeds.fetch import FetchOptions, FetchRequest, FetchResult
    from monitor.matching import RuleSet
    from monitor.store.store import FeedState, PendingDelivery, PollOutcome, PollSaved, Settled

MatchedArticles = tuple[tuple[Article, tuple[Match, ...]], ...]


class FeedFetcher(Protocol):
    """One open fetch session (the real one: `feeds.fetch.Fetcher`)."""

    async def fetch(self, request: FetchRequest) -> FetchResult:
        """The body or a 304; raises only ``FetchError`` for what a feed server can cause."""
        ...


class OpenFetcher(Protocol):
    """Opens the fetch session of one poll cycle, with its limits; closed when it ends."""

    def __call__(self, options: FetchOptions) -> AbstractAsyncContextManager[FeedFetcher]: ...


class FeedReader(Protocol):
    """Parses a fetched body and matches its articles (the real one: `reader.ArticleReader`)."""

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
        """Raises ``FeedParseError`` for this feed alone, whatever went wrong."""
        ...

    def close(self) -> None: ...


class OpenReader(Protocol):
    """Builds a reader for one set of rules: a reload means a new reader."""

    def __call__(self, rules: RuleSet) -> FeedReader: ...


class PollStore(Protocol):
    """The part of the store a poll cycle uses (the real one: `store.Store`)."""

    def claim_due_feeds(
        self,
        now: datetime,
        lease: timedelta,
        limit: int | None = None,
        *,
        every: bool = False,
        since: datetime | None = None,
        owner: str = "",
    ) -> list[FeedState]: ...

    def renew_leases(
        self, urls: Sequence[str], now: datetime, lease: timedelta, owner: str
    ) -> int: ...

    def release_leases(self, urls: Sequence[str], owner: str) -> int: ...

    def record_polls(self, outcomes: Sequence[PollOutcome]) -> list[PollSaved]: ...


class DeliveryStore(Protocol):
    """The part of the store a delivery run uses: claim, then mark each sent or failed."""

    def claim_deliveries(
        self, now: datetime, lease: timedelta, limit: int, holding: Collection[int] = ()
    ) -> list[PendingDelivery]: ...

    def release_deliveries(self, delivery_ids: Sequence[int], at: datetime) -> None: ...

    def mark_delivered(self, delivery_id: int, now: datetime, reference: str | None) -> None: ...

    def mark_failed(
        self, delivery_id: int, now: datetime, error: str, retry_at: datetime | None
    ) -> None: ...

    def start_send(self, delivery_ids: Sequence[int], now: datetime) -> None: ...

    def mark_uncertain(
        self, delivery_id: int, now: datetime, error: str, retry_at: datetime
    ) -> bool: ...

    def settle_interrupted(self, now: datetime) -> Settled: ...

    def mark_expired(self, delivery_id: int, now: datetime, reason: str) -> None: ...

    def pause_channel(self, channel: str, until: datetime) -> int: ...
