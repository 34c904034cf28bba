"""The Store: every read and write of feeds, articles, matches and deliveries.

It takes and returns values (monitor.model and the dataclasses below); SQLAlchemy
connections never leave this module. Store-then-send: record_poll writes articles,
matches and pending deliveries in one transaction; the notifier claims deliveries
later and marks them sent or failed. Claims use leases (and SKIP LOCKED on
PostgreSQL) so several workers or overlapping cycles never take the same row.
Each method is one transaction, run again as a whole when it fails for a transient
reason; so each must be safe to run twice (a lost commit answer may hide a commit).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.util import CommandError
from sqlalchemy import (
    Connection,
    Engine,
    Insert,
    Row,
    Select,
    Table,
    and_,
    bindparam,
    delete,
    func,
    literal,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from monitor.errors import StoreError, shorten
from monitor.model import Article, FeedSpec, Match, TermHit
from monitor.store.engine import (
    WRITE_OPTION,
    create_store_engine,
    mask,
    parse_url,
    transient_reason,
    wrap_error,
)
from monitor.store.holds import Gatekeeper, HoldState, HoldStore
from monitor.store.migrate import alembic_config, head_revision, is_known
from monitor.store.schema import (
    UTCDateTime,
    articles,
    deliveries,
    digests,
    feeds,
    holds,
    matches,
)
from monitor.stories import Story, StoryIndex, story_of

# Arbitrary constant key: concurrent `upgrade()` calls on PostgreSQL migrate one at a time.
_MIGRATION_LOCK_KEY = 0x6D6F6E69746F72
# Another: writers that store new articles cluster them one transaction at a time (#10).
_CLUSTER_LOCK_KEY = 0x73746F72696573
# Articles the story index is rebuilt from at start, newest first: a bound on start-up time.
MAX_INDEXED_STORIES = 20_000
# Delivery channel of matches whose rule named none; the sender picks its default channel.
DEFAULT_CHANNEL = ""
# Keeps IN (...) lists well under SQLite's bound-parameter limit.
_CHUNK = 500
# Tries of a transaction that fails for a transient reason; the wait before try n+1 is
# random up to _RETRY_DELAY_S * 2**(n-1), at most _RETRY_MAX_DELAY_S.
RETRY_ATTEMPTS = 5
_RETRY_DELAY_S = 0.05
_RETRY_MAX_DELAY_S = 1.0

# How stale an article's last_seen_at may get while its feed still carries it: a changed
# feed refreshes it at most this often, so keeping track costs a write a day, not a poll.
SEEN_REFRESH = timedelta(days=1)
PRUNE_BATCH = 1_000  # articles removed per transaction: locks stay short
MAX_PRUNE_BATCHES = 10_000  # a bound on one run; the next run goes on
# Deliveries that will never be attempted again; an article with any other keeps its rows.
FINAL_DELIVERY_STATES = ("sent", "failed", "expired")

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class FeedState:
    """What the pipeline needs to poll a feed and decide what to do with the result."""

    url: str
    name: str
    tags: tuple[str, ...]
    interval: float | None
    etag: str | None
    last_modified: str | None
    body_digest: str | None
    error_count: int  # consecutive failed polls
    last_error: str | None
    last_status: int | None
    last_polled_at: datetime | None
    last_success_at: datetime | None
    next_poll_at: datetime | None
    first_polled_at: datetime | None  # None until the first successful poll: the backlog poll
    active: bool
    fetch_url: str | None = None  # where a permanent redirect moved the feed; None: `url`
    failing_since: datetime | None = None  # first failed poll of the current run of failures
    not_found_count: int = 0  # consecutive 404s
    attention: str | None = None  # why the feed needs a person (410, repeated 404s)
    leased_until: datetime | None = None  # a worker's cycle holds the feed until then
    # Set by a claim that found another cycle's lease run out: that worker stopped or stalled.
    taken_over: bool = False
    publish_gap: float | None = None  # median seconds between items of its last document
    refresh_hint: float | None = None  # seconds its document's ttl / sy:update* asks for

    @property
    def source_url(self) -> str:
        """The URL polled: where the feed moved to, else the feeds-file URL."""
        return self.fetch_url or self.url

    @property
    def health(self) -> str:
        """One word for `feeds list` and the metrics: removed, attention, failing, new or ok."""
        return feed_health(
            active=self.active,
            attention=bool(self.attention),
            failing=bool(self.error_count),
            succeeded=self.last_success_at is not None,
        )


def feed_health(*, active: bool, attention: bool, failing: bool, succeeded: bool) -> str:
    """FeedState.health from the facts it rests on, so a count in SQL agrees with it."""
    if not active:
        return "removed"
    if attention:
        return "attention"
    if failing:
        return "failing"
    return "ok" if succeeded else "new"


@dataclass(frozen=True, slots=True)
class FeedTally:
    """How many active feeds are in each health, and how many were moved: the metrics'
    gauges, counted by the database rather than by loading every feed each cycle."""

    by_health: dict[str, int]
    moved: int


@dataclass(frozen=True, slots=True)
class PollOutcome:
    """Everything one poll of one feed produced, written in one transaction.

    On success, etag/last_modified/body_digest replace the stored ones; None keeps the
    stored value (a 304 need not repeat its validators). On error they are left alone.
    A success clears the failing run and the attention reason; `moved_to` replaces the
    URL the feed is fetched from, never its identity `feed_url`. An error sets `attention`
    when it is given and keeps the stored one otherwise: only a success clears it.
    A match whose channel is None gets a delivery to DEFAULT_CHANNEL (""): the sender
    resolves it to its default channel, so an alert is never dropped here.
    """

    feed_url: str
    polled_at: datetime
    next_poll_at: datetime
    status: int | None  # HTTP status, None if no response
    error: str | None = None  # set when the poll failed: error_count += 1, fetch state kept
    etag: str | None = None
    last_modified: str | None = None
    body_digest: str | None = None
    articles: Sequence[tuple[Article, Sequence[Match]]] = ()
    alert_since: datetime | None = None  # deliveries only for articles published >= this
    moved_to: str | None = None  # success after a permanent redirect: fetch from here now
    not_found_count: int = 0  # consecutive 404s, this poll included
    attention: str | None = None  # failure: the feed needs a person, for this reason
    # Success with a parsed document: its pace (adaptive polling); None keeps the stored one.
    publish_gap: float | None = None
    refresh_hint: float | None = None


@dataclass(frozen=True, slots=True)
class PollSaved:
    """What record_poll added: only articles never seen before count."""

    new_articles: int
    new_matches: int
    new_deliveries: int
    held_back: int = 0  # matches stored without an alert: older than a first poll's window


@dataclass(frozen=True, slots=True)
class StoredArticle:
    """An article as stored, with its row id (to record matches found later)."""

    id: int
    article: Article


@dataclass(frozen=True, slots=True)
class BackfillSaved:
    """What record_backfill added: matches and alerts the articles did not have yet."""

    new_matches: int
    new_deliveries: int
    by_rule: dict[str, int]  # rule id -> new matches


@dataclass(frozen=True, slots=True)
class PendingDelivery:
    """One alert to send: an article and its matches for one channel.

    `channel` is DEFAULT_CHANNEL ("") for matches that named none: send to the default.
    """

    id: int
    channel: str
    attempts: int
    article: Article
    matches: tuple[Match, ...]
    thread: ThreadParent | None = None  # a later article of a story: its first alert here
    created_at: datetime | None = None  # when it was queued; None: unknown (not expired by age)


@dataclass(frozen=True, slots=True)
class ThreadParent:
    """The first alert of a story in a channel, as claimed: later articles reply to it (#10).

    The first is the oldest delivery of the story's articles to that channel that has
    not failed for good; `reference` is its Slack ts once sent (None: sent where
    messages have no ts, a webhook or the console).
    """

    id: int
    status: str  # "pending" or "sent"
    reference: str | None
    next_attempt_at: datetime


# A delivery given up after this many sends with no answer: Slack may hold two copies (#9).
MAX_UNCERTAIN_SENDS = 2
INTERRUPTED = "the process stopped during the send: it may have been posted"


@dataclass(frozen=True, slots=True)
class DeliveryInfo:
    """One delivery as `monitor deliveries list` shows it.

    ``state`` is the stored status, except ``uncertain``: pending after a send that may
    have reached Slack without an answer.
    """

    id: int
    channel: str
    rules: tuple[str, ...]
    headline: str
    state: str
    reason: str | None
    attempts: int
    uncertain_sends: int
    next_attempt_at: datetime | None  # None once sent, failed or expired
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Settled:
    """Sends a crash interrupted, found when their claim ran out."""

    uncertain: int = 0  # to be retried once
    failed: int = 0  # already uncertain once: given up


@dataclass(frozen=True, slots=True)
class PendingSummary:
    """One channel's queue: how many alerts wait and since when."""

    count: int
    oldest: datetime


@dataclass(frozen=True, slots=True)
class StoredMatch:
    """A stored match with its article and the state of its delivery (None: none created)."""

    article: Article
    match: Match
    created_at: datetime
    delivery_status: str | None  # as DeliveryInfo.state: "uncertain" is a pending one
    hold: HoldState | None = None  # held back from an immediate alert, and why
    delivery_reason: str | None = None  # the last failure, or why it expired
    next_attempt_at: datetime | None = None  # of a pending delivery


_ARTICLE_COLUMNS = (
    articles.c.entry_id,
    articles.c.link,
    articles.c.title,
    articles.c.summary,
    articles.c.content,
    articles.c.authors,
    articles.c.categories,
    articles.c.language,
    articles.c.published,
    articles.c.dated,
    feeds.c.url.label("feed_url"),
    feeds.c.name.label("feed_name"),
    feeds.c.tags.label("feed_tags"),
)
_MATCH_COLUMNS = (
    matches.c.rule_id,
    matches.c.rule_title,
    matches.c.severity,
    matches.c.channel,
    matches.c.hits,
)


class Store(HoldStore):
    """The database behind one narrow, intent-named API. Safe to share between threads."""

    def __init__(self, engine: Engine, url: URL) -> None:
        """Use `Store.open`; this only wires an existing engine."""
        self._engine = engine
        self._url = url
        self._stories: StoryIndex | None = None  # None: new articles are not clustered

    @classmethod
    def open(cls, url: str) -> Store:
        """Open and check the database at `url`.

        Raises StoreError when it is unreachable, or when its schema revision is one this
        code does not know (a newer media-monitor migrated it): nothing may read it then.
        """
        parsed = parse_url(url)
        store = cls(create_store_engine(parsed), parsed)
        try:
            # Connect now, so a wrong URL or a down server fails at start.
            store._check_known(store.revision())
        except StoreError:
            store.close()
            raise
        return store

    def close(self) -> None:
        self._engine.dispose()

    @property
    def location(self) -> str:
        """The database URL with its password masked, for messages and logs."""
        return mask(self._url)

    def _run(self, work: Callable[[Connection], T], *, write: bool = False) -> T:
        """Run `work` in one transaction; driver errors become StoreError here, once.

        A transient failure (deadlock, serialization failure, lost connection, SQLite busy)
        rolls the transaction back, and all of `work` runs again in a new one: its earlier
        statements were undone too. So `work` must act on the database only.
        """
        attempt = 1
        while True:
            try:
                with self._engine.connect() as connection:
                    if write:
                        connection.execution_options(**{WRITE_OPTION: True})
                    with connection.begin():
                        return work(connection)
            except DBAPIError as exc:
                reason = transient_reason(exc)
                if reason is None or attempt >= RETRY_ATTEMPTS:
                    raise wrap_error(self._url, exc, attempt) from exc
                # Jittered, so transactions that failed together do not collide again.
                delay = random.uniform(
                    0, min(_RETRY_MAX_DELAY_S, _RETRY_DELAY_S * 2 ** (attempt - 1))
                )
                log.warning(
                    "database %s: transaction failed (%s), attempt %d of %d; "
                    "running it again in %.2fs",
                    self.location,
                    reason,
                    attempt,
                    RETRY_ATTEMPTS,
                    delay,
                )
                time.sleep(delay)
                attempt += 1

    # -- schema ---------------------------------------------------------------------------

    def upgrade(self) -> None:
        """Migrate the schema to the newest revision (creates it in an empty database)."""
        self._migrate(partial(command.upgrade, revision="head"))

    def downgrade(self, revision: str) -> None:
        """Undo migrations down to `revision` ("base": all of them, dropping every table)."""
        if revision != "base":
            self._check_known(revision, target=True)
        self._migrate(partial(command.downgrade, revision=revision))

    def _migrate(self, step: Callable[[Config], None]) -> None:
        """Run an Alembic command on one connection, one migrating process at a time."""

        def migrate(connection: Connection) -> None:
            if connection.dialect.name == "postgresql":
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY}
                )
            self._check_known(MigrationContext.configure(connection).get_current_revision())
            try:
                step(alembic_config(connection))
            except CommandError as exc:  # e.g. a downgrade "to" a revision above the current
                raise StoreError(f"database {self.location}: {exc}") from exc

        self._run(migrate, write=True)

    def revision(self) -> str | None:
        """The schema revision of the database; None before the first upgrade."""
        return self._run(lambda c: MigrationContext.configure(c).get_current_revision())

    def _check_known(self, revision: str | None, *, target: bool = False) -> None:
        """Refuse a revision this code has no migration for, saying what to run instead."""
        if revision is None or is_known(revision):
            return
        head = head_revision()
        if target:
            raise StoreError(
                f"revision {revision!r} is not one of this media-monitor's migrations "
                f"(its newest is {head!r}; `monitor db current` shows the database's)"
            )
        raise StoreError(
            f"database {self.location} is at revision {revision!r}, which this media-monitor "
            f"does not know (its newest is {head!r}): run the newer media-monitor, "
            f"or `monitor db downgrade {head}` with it"
        )

    # -- feeds ----------------------------------------------------------------------------

    def sync_feeds(self, specs: Sequence[FeedSpec], now: datetime) -> None:
        """Make the feeds table follow the feeds file, keeping history.

        New feeds are due at once; feeds gone from the file are deactivated, and
        reactivated if they return. A changed interval takes effect now: the next poll
        moves earlier if the new interval says so (to "due now" for the global one).
        """
        wanted = {spec.url: spec for spec in sorted(specs, key=lambda spec: spec.url)}

        def sync(connection: Connection) -> None:
            # Workers starting together all sync: the insert skips rows another one added
            # meanwhile (issue #11), and rows are written in URL order, so none deadlock.
            stored = {row.url: row for row in connection.execute(select(feeds))}
            new_rows = [
                {
                    "url": spec.url,
                    "name": spec.name,
                    "tags": list(spec.tags),
                    "interval": spec.interval,
                    "active": True,
                    "error_count": 0,
                }
                for spec in wanted.values()
                if spec.url not in stored
            ]
            for chunk in _chunks(new_rows):
                connection.execute(_insert_ignoring_conflicts(connection, feeds), list(chunk))
            for spec in wanted.values():
                row = stored.get(spec.url)
                if row is None:
                    continue
                changes: dict[str, Any] = {}
                if row.name != spec.name:
                    changes["name"] = spec.name
                if tuple(row.tags) != spec.tags:
                    changes["tags"] = list(spec.tags)
                if row.interval != spec.interval:
                    changes["interval"] = spec.interval
                    changes["next_poll_at"] = _sooner_poll(row.next_poll_at, now, spec.interval)
                if not row.active:
                    changes["active"] = True
                if changes:
                    connection.execute(update(feeds).where(feeds.c.id == row.id).values(changes))
            gone = sorted(url for url, row in stored.items() if url not in wanted and row.active)
            for chunk in _chunks(gone):
                connection.execute(update(feeds).where(feeds.c.url.in_(chunk)).values(active=False))

        self._run(sync, write=True)

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
        """Claim up to `limit` active feeds no worker holds, soonest due first, until now+lease.

        Due means due at `since` (the cycle's start; default `now`), so a cycle never takes
        a feed it polled itself. `every` (`monitor poll --once --all`) takes feeds whatever
        their schedule, but only those not polled since `since`. SKIP LOCKED lets concurrent
        claims pass each other instead of waiting; each gets different feeds.
        """
        cutoff = now if since is None else since
        if every:
            wanted = true() if since is None else feeds.c.last_polled_at < since
            scheduled = or_(feeds.c.last_polled_at.is_(None), wanted)
        else:
            scheduled = or_(feeds.c.next_poll_at.is_(None), feeds.c.next_poll_at <= cutoff)
        due = (
            select(feeds.c.id, feeds.c.leased_until)
            .where(
                feeds.c.active,
                or_(feeds.c.leased_until.is_(None), feeds.c.leased_until <= now),
                scheduled,
            )
            .order_by(feeds.c.next_poll_at.asc().nulls_first(), feeds.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )

        def take(connection: Connection) -> list[FeedState]:
            # A cycle clears its leases when it writes or gives back a feed, so a lease still
            # set here ran out in the hands of a worker that died or stalled.
            found = connection.execute(due).all()
            expired = {row.id for row in found if row.leased_until is not None}
            claim = (
                update(feeds)
                .where(feeds.c.id.in_([row.id for row in found]))
                .values(leased_until=now + lease, leased_by=owner)
                .returning(*feeds.c)
            )
            rows = connection.execute(claim).all() if found else []
            return [_feed_state(row, taken_over=row.id in expired) for row in rows]

        states = self._run(take, write=True)
        return sorted(states, key=lambda state: state.url)

    def renew_leases(self, urls: Sequence[str], now: datetime, lease: timedelta, owner: str) -> int:
        """Extend `owner`'s leases on `urls` to now+lease; returns how many it still held."""
        return self._change_leases(urls, owner, {"leased_until": now + lease})

    def release_leases(self, urls: Sequence[str], owner: str) -> int:
        """Give back `owner`'s claims on `urls` unpolled, so another worker takes them at once."""
        return self._change_leases(urls, owner, {"leased_until": None, "leased_by": None})

    def _change_leases(self, urls: Sequence[str], owner: str, values: dict[str, Any]) -> int:
        def change(connection: Connection) -> int:
            changed = 0
            for chunk in _chunks(sorted(urls)):
                # Locked first, in URL order as record_polls writes: no deadlock.
                held = (
                    select(feeds.c.id)
                    .where(feeds.c.url.in_(chunk), feeds.c.leased_by == owner)
                    .order_by(feeds.c.url)
                    .with_for_update()
                )
                ids = list(connection.execute(held).scalars())
                if ids:
                    statement = update(feeds).where(feeds.c.id.in_(ids)).values(values)
                    changed += connection.execute(statement).rowcount
            return changed

        return self._run(change, write=True)

    def feeds(self) -> list[FeedState]:
        """Every feed, active or not, by URL."""
        rows = self._run(lambda c: c.execute(select(feeds).order_by(feeds.c.url)).all())
        return [_feed_state(row) for row in rows]

    def tally_feeds(self) -> FeedTally:
        """The active feeds counted by health (FeedState.health) and moved or not."""
        facts = (
            func.coalesce(feeds.c.attention, "") != "",
            feeds.c.error_count > 0,
            feeds.c.last_success_at.is_not(None),
            feeds.c.fetch_url.is_not(None),
        )
        counted = select(*facts, func.count()).where(feeds.c.active).group_by(*facts)
        rows = self._run(lambda connection: connection.execute(counted).all())
        by_health: dict[str, int] = {}
        moved = 0
        for attention, failing, succeeded, was_moved, count in rows:
            health = feed_health(
                active=True, attention=attention, failing=failing, succeeded=succeeded
            )
            by_health[health] = by_health.get(health, 0) + count
            moved += count if was_moved else 0
        return FeedTally(by_health, moved)

    def items_per_day(self, since: datetime, now: datetime) -> dict[str, float]:
        """Articles published between `since` and `now` per day, by feed URL (feeds with any)."""
        days = max((now - since).total_seconds() / 86400, 1 / 24)
        counts = (
            select(feeds.c.url, func.count(articles.c.id))
            .select_from(feeds.join(articles, articles.c.feed_id == feeds.c.id))
            .where(articles.c.published >= since, articles.c.published <= now)
            .group_by(feeds.c.url)
        )
        rows = self._run(lambda connection: connection.execute(counts).all())
        return {url: count / days for url, count in rows}

    def ping(self) -> str | None:
        """None if the database answers a query now, else why not. One try, no retries: a
        health probe wants the present, and must answer fast."""
        try:
            with self._engine.connect() as connection:
                connection.execute(select(1))
        except DBAPIError as exc:
            return shorten(str(wrap_error(self._url, exc, 1)))
        return None

    # -- retention ------------------------------------------------------------------------

    def prune(self, cutoff: datetime, *, dry_run: bool = False) -> dict[str, int]:
        """Remove articles not seen since `cutoff`, with their matches and deliveries.

        Kept whatever their age: an article its feed may still carry (only a removed feed,
        or one that changed after `cutoff` + SEEN_REFRESH without it, lets it go: else a
        prune would make the next poll alert on it as new), and one with a delivery still
        to make. Removes in bounded batches; returns the rows removed (or, with `dry_run`,
        that would be) per table.
        """
        seen = func.coalesce(articles.c.last_seen_at, articles.c.seen_at)
        unfinished = select(deliveries.c.id).where(
            deliveries.c.article_id == articles.c.id,
            deliveries.c.status.not_in(FINAL_DELIVERY_STATES),
        )
        prunable = (
            select(articles.c.id)
            .join(feeds, feeds.c.id == articles.c.feed_id)
            .where(
                seen < cutoff,
                or_(~feeds.c.active, feeds.c.last_changed_at > cutoff + SEEN_REFRESH),
                ~unfinished.exists(),
            )
            .order_by(articles.c.id)
        )
        counts = {"articles": 0, "matches": 0, "deliveries": 0}

        def batch(connection: Connection, after: int) -> tuple[list[int], dict[str, int]]:
            ids = list(
                connection.execute(
                    prunable.where(articles.c.id > after).limit(PRUNE_BATCH)
                ).scalars()
            )
            found = {"articles": len(ids)}
            for table in (matches, deliveries):
                count = select(func.count()).select_from(table)
                found[table.name] = connection.execute(
                    count.where(table.c.article_id.in_(ids))
                ).scalar_one()
            if ids and not dry_run:  # matches and deliveries go with them (ON DELETE CASCADE)
                connection.execute(delete(articles).where(articles.c.id.in_(ids)))
            return ids, found

        last = 0
        for _ in range(MAX_PRUNE_BATCHES):
            ids, found = self._run(partial(batch, after=last), write=not dry_run)
            for table, count in found.items():
                counts[table] += count
            if len(ids) < PRUNE_BATCH:
                break
            last = ids[-1]
        return counts

    # -- polls ----------------------------------------------------------------------------

    def record_poll(self, outcome: PollOutcome) -> PollSaved:
        """Write one poll's result atomically; only never-seen articles get matches and alerts.

        An article is new unless its (feed, entry_id) or its canonical link is already
        stored, in any feed. Inserts use ON CONFLICT DO NOTHING, so concurrent writers of
        the same article store it, and alert on it, exactly once.
        """
        return self.record_polls([outcome])[0]

    def record_polls(self, outcomes: Sequence[PollOutcome]) -> list[PollSaved]:
        """Write several polls' results in one transaction (a cycle's writer batches them).

        Each outcome is written as record_poll describes; all of them commit, or none.
        """
        for outcome in outcomes:
            for article, _ in outcome.articles:
                if article.feed_url != outcome.feed_url:
                    raise StoreError(
                        f"{outcome.feed_url}: poll outcome holds an article of "
                        f"{article.feed_url} ({article.entry_id!r}); a poll records articles "
                        "of its own feed only"
                    )
        # Written in feed-URL order, so concurrent writers lock feed rows in the same order.
        order = sorted(range(len(outcomes)), key=lambda i: outcomes[i].feed_url)
        plain = [i for i in order if _is_plain(outcomes[i])]
        full = [i for i in order if not _is_plain(outcomes[i])]
        index = self._stories if any(outcome.articles for outcome in outcomes) else None
        staged: list[Story] = []

        def record(connection: Connection) -> list[PollSaved]:
            staged.clear()  # a transaction run again starts over
            ids = _lock_feeds(connection, [outcomes[i].feed_url for i in order])
            # A 304 or an unchanged body: one UPDATE for all of them (#11, the warm cycle).
            if plain:
                connection.execute(
                    _PLAIN_UPDATE,
                    [_plain_row(ids[outcomes[i].feed_url], outcomes[i]) for i in plain],
                )
            if index is not None:
                _catch_up(connection, index, min(o.polled_at for o in outcomes))
            saved = {
                i: _record(
                    connection,
                    outcomes[i],
                    ids[outcomes[i].feed_url],
                    self.gatekeeper(connection, outcomes[i].polled_at),
                    index,
                    staged,
                )
                for i in full
            }
            return [saved.get(i, PollSaved(0, 0, 0)) for i in range(len(outcomes))]

        saved = self._run(record, write=True)
        if index is not None:  # committed: this worker's own stories join the index
            for story in staged:
                index.add(story)
            index.forget_before(max(o.polled_at for o in outcomes) - index.window)
        return saved

    def cluster_stories(self, window: timedelta, now: datetime) -> int:
        """Cluster the articles recorded from now on, rebuilding the index from the database.

        Loads the stories published within `window` of `now` (at most MAX_INDEXED_STORIES,
        the newest), so a restart keeps threading them. Returns how many were loaded.
        The index is this Store's: record_polls then runs from one thread at a time (a poll
        cycle's writer thread does), other workers' articles reach it through the database.
        """
        index = StoryIndex(window)
        newest = _story_rows(now - window).order_by(articles.c.id.desc())
        rows = self._run(
            lambda connection: connection.execute(newest.limit(MAX_INDEXED_STORIES)).all()
        )
        for row in reversed(rows):
            index.add(_story(row))
        self._stories = index
        return len(index)

    def articles(
        self, since: datetime | None = None, feed_url: str | None = None, limit: int | None = None
    ) -> list[Article]:
        """Stored articles, newest published first, for dry runs of rules over what was seen."""
        return [stored.article for stored in self.stored_articles(since, feed_url, limit)]

    def stored_articles(
        self, since: datetime | None = None, feed_url: str | None = None, limit: int | None = None
    ) -> list[StoredArticle]:
        """Like `articles`, with the row ids that `record_backfill` takes."""
        query = _article_select(articles.c.id.label("article_id"))
        if since is not None:
            query = query.where(articles.c.published >= since)
        if feed_url is not None:
            query = query.where(feeds.c.url == feed_url)
        query = query.order_by(articles.c.published.desc(), articles.c.id.desc()).limit(limit)
        rows = self._run(lambda connection: connection.execute(query).all())
        return [StoredArticle(row.article_id, _article(row)) for row in rows]

    def record_backfill(
        self,
        matched: Sequence[tuple[int, Sequence[Match]]],
        now: datetime,
        *,
        alert: bool = False,
    ) -> BackfillSaved:
        """Record the matches stored articles lack (changed or new rules applied to them).

        A rule that already matched an article keeps its stored match; with `alert`, one pending
        delivery per channel of the new matches, unless the article already has one there.
        Running it twice adds nothing the second time. One transaction.
        """
        rows = [
            _match_row(article_id, match, now)
            for article_id, article_matches in matched
            for match in _first_per_rule(article_matches)
        ]
        if not rows:
            return BackfillSaved(0, 0, {})

        def backfill(connection: Connection) -> tuple[list[Row[Any]], list[Row[Any]]]:
            inserted = _insert_new(
                connection,
                matches,
                rows,
                matches.c.article_id,
                matches.c.rule_id,
                matches.c.channel,
            )
            if not (alert and inserted):
                return inserted, []
            wanted = {
                (row.article_id, channel)
                for row in inserted
                for channel in _delivery_channels(row.channel)
            }
            delivery_rows = [
                _delivery_row(article_id, channel, now) for article_id, channel in sorted(wanted)
            ]
            return inserted, _insert_new(connection, deliveries, delivery_rows, deliveries.c.id)

        inserted, added = self._run(backfill, write=True)
        by_rule: dict[str, int] = {}
        for row in inserted:
            by_rule[row.rule_id] = by_rule.get(row.rule_id, 0) + 1
        return BackfillSaved(len(inserted), len(added), dict(sorted(by_rule.items())))

    def recent_matches(self, limit: int = 50, since: datetime | None = None) -> list[StoredMatch]:
        """Stored matches, newest first, with their article and delivery status."""
        query = (
            select(
                *_ARTICLE_COLUMNS,
                *_MATCH_COLUMNS,
                matches.c.created_at,
                deliveries.c.status,
                holds.c.reason.label("hold_reason"),
                holds.c.silence_id,
                holds.c.digest_id,
                holds.c.released_at,
                digests.c.status.label("digest_status"),
                deliveries.c.uncertain_sends,
                deliveries.c.last_error,
                deliveries.c.next_attempt_at,
            )
            .select_from(
                matches.join(articles, articles.c.id == matches.c.article_id)
                .join(feeds, feeds.c.id == articles.c.feed_id)
                .outerjoin(
                    deliveries,
                    and_(
                        deliveries.c.article_id == matches.c.article_id,
                        or_(
                            deliveries.c.channel
                            == func.coalesce(matches.c.channel, DEFAULT_CHANNEL),
                            # A rule with several channels: the delivery to its first one.
                            func.substr(matches.c.channel, 1, func.length(deliveries.c.channel) + 1)
                            == deliveries.c.channel + " ",
                        ),
                    ),
                )
                .outerjoin(holds, _hold_of_match)
                .outerjoin(digests, digests.c.id == holds.c.digest_id)
            )
            .order_by(matches.c.created_at.desc(), matches.c.id.desc())
            .limit(limit)
        )
        if since is not None:
            query = query.where(matches.c.created_at >= since)
        rows = self._run(lambda connection: connection.execute(query).all())
        return [
            StoredMatch(
                _article(row),
                _match(row),
                row.created_at,
                None if row.status is None else _state(row.status, row.uncertain_sends),
                _hold_state(row),
                row.last_error if row.status not in (None, "sent") else None,
                row.next_attempt_at if row.status == "pending" else None,
            )
            for row in rows
        ]

    # -- deliveries -----------------------------------------------------------------------

    def claim_deliveries(
        self, now: datetime, lease: timedelta, limit: int, holding: Collection[int] = ()
    ) -> list[PendingDelivery]:
        """Pending deliveries due at `now`, each leased until now+lease.

        `holding` are the deliveries the caller claimed and has not sent yet: the alerts
        behind them may come too (a run topping up a grouped message).

        In the order the stories were published, then found: a channel reads them as they
        happened, not in link-string order (#9). None is claimed while an earlier one to its
        channel waits (another run holds it, a crashed worker's claim has not run out, or
        the channel is paused), so a channel's alerts never overtake one another.
        """
        due = (
            select(deliveries.c.id)
            .join(articles, articles.c.id == deliveries.c.article_id)
            .where(
                deliveries.c.status == "pending",
                deliveries.c.next_attempt_at <= now,
                ~_waits_behind(now, holding),
            )
            .order_by(articles.c.published, deliveries.c.created_at, deliveries.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=deliveries)
        )
        claim = (
            update(deliveries)
            .where(deliveries.c.id.in_(due))
            .values(next_attempt_at=now + lease)
            .returning(
                deliveries.c.id,
                deliveries.c.article_id,
                deliveries.c.channel,
                deliveries.c.attempts,
                deliveries.c.created_at,
            )
        )

        def take(
            connection: Connection,
        ) -> tuple[list[Row[Any]], dict[int, Article], dict[tuple[int, str], list[Match]]]:
            claimed = sorted(connection.execute(claim).all(), key=lambda r: (r.created_at, r.id))
            article_ids = list({row.article_id for row in claimed})
            by_id: dict[int, Article] = {}
            found: dict[tuple[int, str], list[Match]] = {}
            for chunk in _chunks(article_ids):
                for row in connection.execute(
                    _article_select(articles.c.id).where(articles.c.id.in_(chunk))
                ):
                    by_id[row.id] = _article(row)
                for row in connection.execute(
                    select(matches.c.article_id, *_MATCH_COLUMNS)
                    .select_from(matches.outerjoin(holds, _hold_of_match))
                    .where(matches.c.article_id.in_(chunk), _alerts_now)
                    .order_by(matches.c.id)
                ):
                    for channel in _delivery_channels(row.channel):
                        found.setdefault((row.article_id, channel), []).append(_match(row))
            return claimed, by_id, found

        def take_with_threads(
            connection: Connection,
        ) -> tuple[
            list[Row[Any]],
            dict[int, Article],
            dict[tuple[int, str], list[Match]],
            dict[int, ThreadParent],
        ]:
            claimed, by_id, found = take(connection)
            return claimed, by_id, found, _thread_parents(connection, claimed)

        claimed, by_id, found, parents = self._run(take_with_threads, write=True)
        claimed.sort(key=lambda row: (by_id[row.article_id].published, row.created_at, row.id))
        return [
            PendingDelivery(
                id=row.id,
                channel=row.channel,
                attempts=row.attempts,
                article=by_id[row.article_id],
                matches=tuple(found.get((row.article_id, row.channel), ())),
                thread=parents.get(row.id),
                created_at=row.created_at,
            )
            for row in claimed
        ]

    def release_deliveries(self, delivery_ids: Sequence[int], at: datetime) -> None:
        """Hand claimed deliveries back, due at `at`; not an attempt, so not counted as one.

        Alerts queued behind a failed send go out when the channel opens again, not when
        their lease runs out (#9). One that is no longer pending is left as it is.
        """
        release = (
            update(deliveries)
            .where(deliveries.c.id.in_(list(delivery_ids)), deliveries.c.status == "pending")
            .values(next_attempt_at=at)
        )
        if delivery_ids:
            self._run(lambda connection: connection.execute(release), write=True)

    def mark_delivered(self, delivery_id: int, now: datetime, reference: str | None) -> None:
        """Record a successful send (reference: the Slack message ts, if any)."""
        sent = (
            update(deliveries)
            .where(deliveries.c.id == delivery_id)
            .values(
                status="sent",
                attempts=deliveries.c.attempts + 1,
                last_attempt_at=now,
                sent_at=now,
                reference=reference,
                sending_at=None,
            )
        )
        if self._run(lambda connection: connection.execute(sent).rowcount, write=True) == 0:
            raise StoreError(f"delivery {delivery_id} does not exist; cannot mark it sent")

    def mark_failed(
        self, delivery_id: int, now: datetime, error: str, retry_at: datetime | None
    ) -> None:
        """Record a failed send: retry at `retry_at`, or give up for good when it is None.

        A delivery that is no longer pending (another worker sent it after our lease ran
        out) is left as it is, so a late failure never re-queues a sent alert.
        """
        changes: dict[str, Any] = {
            "attempts": deliveries.c.attempts + 1,
            "last_attempt_at": now,
            "last_error": error,
            "sending_at": None,
        }
        if retry_at is None:
            changes["status"] = "failed"
        else:
            changes["next_attempt_at"] = retry_at
        failed = (
            update(deliveries)
            .where(deliveries.c.id == delivery_id, deliveries.c.status == "pending")
            .values(changes)
        )
        exists = select(deliveries.c.id).where(deliveries.c.id == delivery_id)

        def mark(connection: Connection) -> bool:
            """False if there is no such delivery."""
            changed = connection.execute(failed).rowcount > 0
            return changed or connection.execute(exists).first() is not None

        if not self._run(mark, write=True):
            raise StoreError(f"delivery {delivery_id} does not exist; cannot mark it failed")

    def delivery_counts(self) -> dict[str, int]:
        """Deliveries per status, for the statuses that have any."""
        counts = select(deliveries.c.status, func.count()).group_by(deliveries.c.status)
        rows = self._run(lambda connection: connection.execute(counts).all())
        return {status: count for status, count in rows}

    def start_send(self, delivery_ids: Sequence[int], now: datetime) -> None:
        """Note, committed before the request, that a send of these deliveries (one alert,
        or a grouped message's) begins: a crash leaves it set."""
        starting = (
            update(deliveries)
            .where(deliveries.c.id.in_(delivery_ids), deliveries.c.status == "pending")
            .values(sending_at=now)
        )
        self._run(lambda connection: connection.execute(starting), write=True)

    def mark_uncertain(
        self, delivery_id: int, now: datetime, error: str, retry_at: datetime
    ) -> bool:
        """Record a send that may have reached Slack: retried once at `retry_at`, then given up.

        Returns True when it was given up (failed): a third send could be a second duplicate.
        """

        def mark(connection: Connection) -> bool:
            row = connection.execute(
                select(deliveries.c.uncertain_sends, deliveries.c.status).where(
                    deliveries.c.id == delivery_id
                )
            ).first()
            if row is None:
                raise StoreError(f"delivery {delivery_id} does not exist; cannot mark it")
            if row.status != "pending":
                return False
            uncertain = row.uncertain_sends + 1
            changes: dict[str, Any] = {
                "attempts": deliveries.c.attempts + 1,
                "last_attempt_at": now,
                "uncertain_sends": uncertain,
                "sending_at": None,
                "last_error": _uncertain_reason(error, uncertain),
                "next_attempt_at": retry_at,
            }
            if uncertain >= MAX_UNCERTAIN_SENDS:
                changes["status"] = "failed"
            connection.execute(
                update(deliveries).where(deliveries.c.id == delivery_id).values(changes)
            )
            return bool(uncertain >= MAX_UNCERTAIN_SENDS)

        return self._run(mark, write=True)

    def settle_interrupted(self, now: datetime) -> Settled:
        """Sends a crash interrupted (begun, claim run out): uncertain, or given up if twice."""
        interrupted = and_(
            deliveries.c.status == "pending",
            deliveries.c.sending_at.is_not(None),
            deliveries.c.next_attempt_at <= now,
        )

        def settle(connection: Connection) -> Settled:
            given_up = connection.execute(
                update(deliveries)
                .where(interrupted, deliveries.c.uncertain_sends >= MAX_UNCERTAIN_SENDS - 1)
                .values(
                    status="failed",
                    sending_at=None,
                    attempts=deliveries.c.attempts + 1,
                    uncertain_sends=deliveries.c.uncertain_sends + 1,
                    last_error=_uncertain_reason(INTERRUPTED, MAX_UNCERTAIN_SENDS),
                )
            ).rowcount
            retried = connection.execute(
                update(deliveries)
                .where(interrupted)
                .values(
                    sending_at=None,
                    attempts=deliveries.c.attempts + 1,
                    uncertain_sends=deliveries.c.uncertain_sends + 1,
                    last_error=_uncertain_reason(INTERRUPTED, 1),
                )
            ).rowcount
            return Settled(uncertain=retried, failed=given_up)

        return self._run(settle, write=True)

    def pause_channel(self, channel: str, until: datetime) -> int:
        """Make a paused channel's pending alerts due no sooner than `until`, keeping their order.

        Alerts claimed later in the run, or by another worker, would otherwise go out
        before the ones waiting for the channel to open (#9). Returns how many moved.
        """
        pause = (
            update(deliveries)
            .where(
                deliveries.c.status == "pending",
                deliveries.c.channel == channel,
                deliveries.c.next_attempt_at < until,
            )
            .values(next_attempt_at=until)
        )
        return int(self._run(lambda connection: connection.execute(pause).rowcount, write=True))

    def mark_expired(self, delivery_id: int, now: datetime, reason: str) -> None:
        """Give up a pending delivery that should no longer go out, with the reason."""
        expired = (
            update(deliveries)
            .where(deliveries.c.id == delivery_id, deliveries.c.status == "pending")
            .values(status="expired", last_error=reason, last_attempt_at=now, sending_at=None)
        )
        self._run(lambda connection: connection.execute(expired), write=True)

    def requeue_failed(
        self, now: datetime, *, channel: str | None = None, delivery_id: int | None = None
    ) -> int:
        """Make failed deliveries pending again, due now (the operator fixed the cause).

        Their count of uncertain sends starts again: the operator asked for this send.
        """
        requeue = (
            update(deliveries)
            .where(deliveries.c.status == "failed")
            .values(status="pending", next_attempt_at=now, uncertain_sends=0, sending_at=None)
        )
        if channel is not None:
            requeue = requeue.where(deliveries.c.channel.in_(_channel_spellings(channel)))
        if delivery_id is not None:
            requeue = requeue.where(deliveries.c.id == delivery_id)
        return int(self._run(lambda connection: connection.execute(requeue).rowcount, write=True))

    def list_deliveries(self, states: Sequence[str] = (), limit: int = 1000) -> list[DeliveryInfo]:
        """Deliveries, oldest first, optionally in `states` (stored ones, or ``uncertain``)."""
        query = (
            select(
                deliveries.c.id,
                deliveries.c.channel,
                deliveries.c.status,
                deliveries.c.last_error,
                deliveries.c.attempts,
                deliveries.c.uncertain_sends,
                deliveries.c.next_attempt_at,
                deliveries.c.created_at,
                articles.c.title,
                deliveries.c.article_id,
            )
            .join(articles, articles.c.id == deliveries.c.article_id)
            .order_by(deliveries.c.created_at, deliveries.c.id)
            .limit(limit)
        )
        wanted = set(states)
        if wanted:
            stored = {"pending" if state == "uncertain" else state for state in wanted}
            query = query.where(deliveries.c.status.in_(sorted(stored)))

        def read(connection: Connection) -> tuple[list[Any], dict[tuple[int, str], list[str]]]:
            rows = list(connection.execute(query).all())
            rules: dict[tuple[int, str], list[str]] = {}
            for chunk in _chunks(list({row.article_id for row in rows})):
                for match in connection.execute(
                    select(matches.c.article_id, matches.c.channel, matches.c.rule_id)
                    .where(matches.c.article_id.in_(chunk))
                    .order_by(matches.c.id)
                ):
                    for channel in _delivery_channels(match.channel):
                        key = (match.article_id, channel)
                        rules.setdefault(key, []).append(match.rule_id)
            return rows, rules

        rows, rules = self._run(read)
        found = [
            DeliveryInfo(
                id=row.id,
                channel=row.channel,
                rules=tuple(rules.get((row.article_id, row.channel), ())),
                headline=row.title,
                state=_state(row.status, row.uncertain_sends),
                reason=row.last_error,
                attempts=row.attempts,
                uncertain_sends=row.uncertain_sends,
                next_attempt_at=row.next_attempt_at if row.status == "pending" else None,
                created_at=row.created_at,
            )
            for row in rows
        ]
        return [info for info in found if not wanted or info.state in wanted]

    def pending_by_channel(self) -> dict[str, PendingSummary]:
        """Pending deliveries per channel with the oldest one's queue time, for the gauges."""
        query = (
            select(deliveries.c.channel, func.count(), func.min(deliveries.c.created_at))
            .where(deliveries.c.status == "pending")
            .group_by(deliveries.c.channel)
        )
        rows = self._run(lambda connection: connection.execute(query).all())
        return {channel: PendingSummary(count, first) for channel, count, first in rows}


# A match an alert shows: not held, or held through quiet hours and then queued as an alert.
# A match held for a digest, a summary or by a silence is not shown in another rule's alert.
_hold_of_match = and_(
    holds.c.article_id == matches.c.article_id, holds.c.rule_id == matches.c.rule_id
)
_alerts_now = or_(
    holds.c.id.is_(None), and_(holds.c.released_at.is_not(None), holds.c.digest_id.is_(None))
)


def _hold_state(row: Row[*tuple[Any, ...]]) -> HoldState | None:
    if row.hold_reason is None:
        return None
    return HoldState(
        row.hold_reason,
        row.silence_id,
        row.digest_id,
        row.digest_status,
        row.released_at is not None,
    )


def _delivery_channels(channel: str | None) -> tuple[str, ...]:
    """A match's delivery channels: each its rule names (stored separated by spaces)."""
    return tuple(dict.fromkeys(channel.split())) if channel else (DEFAULT_CHANNEL,)


def _thread_parents(connection: Connection, claimed: Sequence[Row[Any]]) -> dict[int, ThreadParent]:
    """For each claimed delivery of a clustered article, the first alert of its story in its
    channel, when that is another delivery: the oldest by id that is pending or sent."""
    clusters: dict[int, int] = {}  # article id -> cluster id
    for chunk in _chunks(list({row.article_id for row in claimed})):
        for article_id, cluster_id in connection.execute(
            select(articles.c.id, articles.c.cluster_id).where(
                articles.c.id.in_(chunk), articles.c.cluster_id.is_not(None)
            )
        ):
            clusters[article_id] = cluster_id
    firsts: dict[tuple[int, str], ThreadParent] = {}
    for chunk in _chunks(sorted(set(clusters.values()))):
        rows = connection.execute(
            select(
                articles.c.cluster_id,
                deliveries.c.id,
                deliveries.c.channel,
                deliveries.c.status,
                deliveries.c.reference,
                deliveries.c.next_attempt_at,
            )
            .join(articles, articles.c.id == deliveries.c.article_id)
            .where(articles.c.cluster_id.in_(chunk), deliveries.c.status.in_(("pending", "sent")))
            .order_by(deliveries.c.id)
        )
        for found in rows:
            parent = ThreadParent(found.id, found.status, found.reference, found.next_attempt_at)
            firsts.setdefault((found.cluster_id, found.channel), parent)
    parents: dict[int, ThreadParent] = {}
    for row in claimed:
        cluster = clusters.get(row.article_id)
        first = firsts.get((cluster, row.channel)) if cluster is not None else None
        if first is not None and first.id < row.id:
            parents[row.id] = first
    return parents


def _waits_behind(now: datetime, holding: Collection[int] = ()) -> Any:
    """EXISTS an earlier pending delivery to the same channel that is not due yet, and that
    is not one of `holding` (the caller's own claims)."""
    earlier = deliveries.alias("earlier")
    earlier_article = articles.alias("earlier_article")
    mine = (articles.c.published, deliveries.c.created_at, deliveries.c.id)
    theirs = (earlier_article.c.published, earlier.c.created_at, earlier.c.id)
    before = or_(
        theirs[0] < mine[0],
        and_(theirs[0] == mine[0], theirs[1] < mine[1]),
        and_(theirs[0] == mine[0], theirs[1] == mine[1], theirs[2] < mine[2]),
    )
    return (
        select(literal(1))
        .select_from(earlier.join(earlier_article, earlier_article.c.id == earlier.c.article_id))
        .where(
            earlier.c.channel == deliveries.c.channel,
            earlier.c.status == "pending",
            earlier.c.next_attempt_at > now,
            earlier.c.id.not_in(sorted(holding)) if holding else true(),
            before,
        )
        .exists()
    )


def _state(status: str, uncertain_sends: int) -> str:
    return "uncertain" if status == "pending" and uncertain_sends > 0 else status


def _uncertain_reason(error: str, uncertain_sends: int) -> str:
    if uncertain_sends >= MAX_UNCERTAIN_SENDS:
        return shorten(
            f"{error}; sent twice without an answer, so not sent again: check the channel; "
            "`monitor deliveries retry --id N` sends it anyway"
        )
    return shorten(f"{error}; sent once more after a delay")


def _channel_spellings(channel: str) -> list[str]:
    """A channel as a rule may have written it: with or without its '#'."""
    name = channel.removeprefix("#")
    return [name, f"#{name}"] if name else [DEFAULT_CHANNEL]


def _sooner_poll(
    next_poll_at: datetime | None, now: datetime, interval: float | None
) -> datetime | None:
    if interval is None or next_poll_at is None:
        return None
    return min(next_poll_at, now + timedelta(seconds=interval))


def _fetch_state(outcome: PollOutcome) -> dict[str, Any]:
    state: dict[str, Any] = {
        "last_polled_at": outcome.polled_at,
        "last_status": outcome.status,
        "next_poll_at": outcome.next_poll_at,
        "leased_until": None,  # the outcome ends the claim
        "leased_by": None,
    }
    if outcome.error is not None:
        state["error_count"] = feeds.c.error_count + 1
        state["last_error"] = shorten(outcome.error)  # last guard: never store a server's bytes
        state["failing_since"] = func.coalesce(
            feeds.c.failing_since, literal(outcome.polled_at, UTCDateTime())
        )
        state["not_found_count"] = outcome.not_found_count
        if outcome.attention is not None:
            state["attention"] = shorten(outcome.attention)
        return state
    state["error_count"] = 0
    state["last_error"] = None
    state["failing_since"] = None
    state["not_found_count"] = 0
    state["attention"] = None
    if outcome.moved_to is not None:  # moved back to the feeds-file URL: no move to show
        state["fetch_url"] = None if outcome.moved_to == outcome.feed_url else outcome.moved_to
    state["last_success_at"] = outcome.polled_at
    if outcome.articles:  # a new document was parsed: what it lacks, the feed dropped
        state["last_changed_at"] = outcome.polled_at
    state["first_polled_at"] = func.coalesce(
        feeds.c.first_polled_at, literal(outcome.polled_at, UTCDateTime())
    )
    for name in ("etag", "last_modified", "body_digest", "publish_gap", "refresh_hint"):
        if getattr(outcome, name) is not None:
            state[name] = getattr(outcome, name)
    return state


def _is_plain(outcome: PollOutcome) -> bool:
    """A success that brought nothing to store: a 304, or a body equal to the last one."""
    return (
        outcome.error is None
        and not outcome.articles
        and outcome.moved_to is None
        and outcome.publish_gap is None
        and outcome.refresh_hint is None
    )


def _lock_feeds(connection: Connection, urls: Sequence[str]) -> dict[str, int]:
    """The ids of the feeds at `urls`, their rows locked in URL order (PostgreSQL).

    Locking them all first, in the order every writer uses, lets a batch then write them
    in any order without deadlocking another writer.
    """
    ids: dict[str, int] = {}
    for chunk in _chunks(sorted(set(urls))):
        found = (
            select(feeds.c.id, feeds.c.url)
            .where(feeds.c.url.in_(chunk))
            .order_by(feeds.c.url)
            .with_for_update()
        )
        ids.update((row.url, row.id) for row in connection.execute(found))
    missing = [url for url in urls if url not in ids]
    if missing:
        raise StoreError(
            f"{missing[0]}: feed is not in the database; "
            "sync the feeds file (Store.sync_feeds) before recording polls"
        )
    return ids


# The feed-row writes of a plain success, as _fetch_state makes them, with bound values.
_PLAIN_UPDATE = (
    update(feeds)
    .where(feeds.c.id == bindparam("b_id"))
    .values(
        last_polled_at=bindparam("b_polled_at", type_=UTCDateTime()),
        last_success_at=bindparam("b_polled_at", type_=UTCDateTime()),
        last_status=bindparam("b_status"),
        next_poll_at=bindparam("b_next_poll_at", type_=UTCDateTime()),
        leased_until=None,
        leased_by=None,
        error_count=0,
        last_error=None,
        failing_since=None,
        not_found_count=0,
        attention=None,
        first_polled_at=func.coalesce(
            feeds.c.first_polled_at, bindparam("b_polled_at", type_=UTCDateTime())
        ),
        etag=func.coalesce(bindparam("b_etag", type_=feeds.c.etag.type), feeds.c.etag),
        last_modified=func.coalesce(
            bindparam("b_last_modified", type_=feeds.c.last_modified.type), feeds.c.last_modified
        ),
        body_digest=func.coalesce(
            bindparam("b_body_digest", type_=feeds.c.body_digest.type), feeds.c.body_digest
        ),
    )
)


def _plain_row(feed_id: int, outcome: PollOutcome) -> dict[str, Any]:
    return {
        "b_id": feed_id,
        "b_polled_at": outcome.polled_at,
        "b_status": outcome.status,
        "b_next_poll_at": outcome.next_poll_at,
        "b_etag": outcome.etag,
        "b_last_modified": outcome.last_modified,
        "b_body_digest": outcome.body_digest,
    }


def _record(
    connection: Connection,
    outcome: PollOutcome,
    feed_id: int,
    gate: Gatekeeper | None = None,
    index: StoryIndex | None = None,
    staged: list[Story] | None = None,
) -> PollSaved:
    """One outcome of record_polls that is not plain, inside its transaction; ``gate`` may
    hold matches back.

    Given the story index, it clusters what it stores (the stories it adds go to `staged`,
    for after the commit)."""
    # Updating the feed row first also serialises concurrent polls of one feed.
    connection.execute(update(feeds).where(feeds.c.id == feed_id).values(_fetch_state(outcome)))
    _refresh_seen(connection, feed_id, outcome)
    fresh = _unseen(connection, feed_id, outcome.articles)
    if not fresh:
        return PollSaved(0, 0, 0)
    # One multi-row INSERT .. ON CONFLICT DO NOTHING RETURNING: the rows it returns
    # are exactly the articles this writer stored first.
    inserted = connection.execute(
        _insert_ignoring_conflicts(connection).returning(articles.c.id, articles.c.entry_id),
        [_article_row(feed_id, article, outcome.polled_at) for article, _ in fresh],
    ).all()
    stored = {row.entry_id: row.id for row in inserted}
    if index is not None and staged is not None:
        _assign_clusters(connection, index, staged, fresh, stored)
    match_rows: list[dict[str, Any]] = []
    delivery_rows: list[dict[str, Any]] = []
    held_back = 0
    # In published order, so an hourly limit admits a burst's earliest stories first.
    for article, article_matches in sorted(fresh, key=lambda pair: pair[0].published):
        article_id = stored.get(article.entry_id)
        if article_id is None:
            continue  # stored meanwhile by another writer, or by another feed's link
        unique = _first_per_rule(article_matches)
        match_rows += [_match_row(article_id, m, outcome.polled_at) for m in unique]
        if outcome.alert_since is not None and article.published < outcome.alert_since:
            held_back += len(unique)
            continue
        routes = (channel for match in unique for channel in _delivery_channels(match.channel))
        for channel in dict.fromkeys(routes):
            found = [m for m in unique if channel in _delivery_channels(m.channel)]
            if gate is None or gate.admit(article_id, article, channel, found):
                delivery_rows.append(_delivery_row(article_id, channel, outcome.polled_at))
    if match_rows:
        connection.execute(matches.insert(), match_rows)
    if delivery_rows:
        connection.execute(deliveries.insert(), delivery_rows)
    if gate is not None:
        gate.write()
    return PollSaved(len(stored), len(match_rows), len(delivery_rows), held_back)


def _story_rows(since: datetime) -> Select[Any]:
    """Clustered articles published since `since`: what the story index holds."""
    return select(
        articles.c.id,
        articles.c.cluster_id,
        articles.c.title,
        articles.c.summary,
        articles.c.published,
    ).where(articles.c.cluster_id.is_not(None), articles.c.published >= since)


def _story(row: Row[Any]) -> Story:
    return story_of(row.id, row.title, row.summary, row.published, row.cluster_id)


def _catch_up(connection: Connection, index: StoryIndex, now: datetime) -> None:
    """Take the clustering lock, then index the articles other workers stored since.

    The database is the source of truth: under the lock (on SQLite, the write lock
    every write transaction holds) no other writer stores articles, so what this
    transaction clusters against is everything committed before it.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CLUSTER_LOCK_KEY})
    newer = _story_rows(now - index.window).where(articles.c.id > index.last_key)
    for row in connection.execute(newer.order_by(articles.c.id)):
        index.add(_story(row))


def _assign_clusters(
    connection: Connection,
    index: StoryIndex,
    staged: list[Story],
    fresh: Sequence[tuple[Article, Sequence[Match]]],
    stored: dict[str, int],
) -> None:
    """Give each stored article the cluster of its story: the most similar earlier
    article's, else its own id. In the order they were inserted, so ids rise."""
    changes: list[dict[str, int]] = []
    for article, _ in fresh:
        article_id = stored.get(article.entry_id)
        if article_id is None:
            continue
        new = story_of(article_id, article.title, article.summary, article.published)
        joined = index.find(new.signature, article.published, staged, new)
        story = replace(new, cluster=article_id if joined is None else joined)
        staged.append(story)
        changes.append({"row_id": article_id, "row_cluster": story.cluster})
    if changes:
        connection.execute(
            update(articles)
            .where(articles.c.id == bindparam("row_id"))
            .values(cluster_id=bindparam("row_cluster")),
            changes,
        )


def _refresh_seen(connection: Connection, feed_id: int, outcome: PollOutcome) -> None:
    """Mark the stored articles this fetch still carries as seen, at most once a
    SEEN_REFRESH each, so retention keeps what dedupe still needs."""
    stale = outcome.polled_at - SEEN_REFRESH
    seen = func.coalesce(articles.c.last_seen_at, articles.c.seen_at)
    for chunk in _chunks(sorted({article.entry_id for article, _ in outcome.articles})):
        connection.execute(
            update(articles)
            .where(articles.c.feed_id == feed_id, articles.c.entry_id.in_(chunk), seen < stale)
            .values(last_seen_at=outcome.polled_at)
        )


def _first_per_rule(found: Sequence[Match]) -> list[Match]:
    """One match per rule (the first): a stored match is unique per article and rule."""
    by_rule: dict[str, Match] = {}
    for match in found:
        by_rule.setdefault(match.rule_id, match)
    return list(by_rule.values())


def _unseen(
    connection: Connection, feed_id: int, batch: Sequence[tuple[Article, Sequence[Match]]]
) -> list[tuple[Article, Sequence[Match]]]:
    """Articles of `batch` not stored yet, in an order every writer shares.

    A cheap pre-filter: the ON CONFLICT inserts stay the authority under concurrency.
    Sorting by link makes concurrent writers take the unique-index locks in the same
    order, so two feeds carrying the same stories cannot deadlock on PostgreSQL.
    """
    by_entry: dict[str, tuple[Article, Sequence[Match]]] = {}
    for article, article_matches in batch:
        by_entry.setdefault(article.entry_id, (article, article_matches))  # first one wins
    known_entries, known_links = _known(connection, feed_id, [a for a, _ in by_entry.values()])
    fresh = [
        (article, article_matches)
        for article, article_matches in by_entry.values()
        if article.entry_id not in known_entries and article.link not in known_links
    ]
    return sorted(fresh, key=lambda pair: (pair[0].link or "", pair[0].entry_id))


def _known(
    connection: Connection, feed_id: int, candidates: Sequence[Article]
) -> tuple[set[str], set[str]]:
    """The entry ids (in this feed) and links (in any feed) of `candidates` already stored."""
    known_entries: set[str] = set()
    known_links: set[str] = set()
    links = [article.link for article in candidates if article.link is not None]
    for chunk in _chunks([article.entry_id for article in candidates]):
        known_entries.update(
            connection.execute(
                select(articles.c.entry_id).where(
                    articles.c.feed_id == feed_id, articles.c.entry_id.in_(chunk)
                )
            ).scalars()
        )
    for chunk in _chunks(links):
        known_links.update(
            connection.execute(select(articles.c.link).where(articles.c.link.in_(chunk))).scalars()
        )
    return known_entries, known_links


def _insert_new(
    connection: Connection, table: Table, rows: Sequence[dict[str, Any]], *returning: Any
) -> list[Row[Any]]:
    """Insert `rows` in chunks, skipping those a unique constraint already holds; return the
    `returning` columns of the rows inserted."""
    inserted: list[Row[Any]] = []
    for chunk in _chunks(rows):
        statement = _insert_ignoring_conflicts(connection, table).returning(*returning)
        inserted += connection.execute(statement, list(chunk)).all()
    return inserted


def _insert_ignoring_conflicts(connection: Connection, table: Table = articles) -> Insert:
    if connection.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()


def _article_row(feed_id: int, article: Article, seen_at: datetime) -> dict[str, Any]:
    return {
        "feed_id": feed_id,
        "entry_id": article.entry_id,
        "link": article.link,
        "title": article.title,
        "summary": article.summary,
        "content": article.content,
        "authors": list(article.authors),
        "categories": list(article.categories),
        "language": article.language,
        "published": article.published,
        "dated": article.dated,
        "seen_at": seen_at,
    }


def _match_row(article_id: int, match: Match, created_at: datetime) -> dict[str, Any]:
    return {
        "article_id": article_id,
        "rule_id": match.rule_id,
        "rule_title": match.rule_title,
        "severity": match.severity,
        "channel": match.channel,
        "hits": [asdict(hit) for hit in match.hits],
        "created_at": created_at,
    }


def _delivery_row(article_id: int, channel: str, created_at: datetime) -> dict[str, Any]:
    """A pending delivery of an article to one channel, due at once."""
    return {
        "article_id": article_id,
        "channel": channel,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": created_at,
        "created_at": created_at,
    }


def _article_select(*extra: Any) -> Select[Any]:
    return select(*_ARTICLE_COLUMNS, *extra).select_from(
        articles.join(feeds, feeds.c.id == articles.c.feed_id)
    )


def _article(row: Row[*tuple[Any, ...]]) -> Article:
    return Article(
        feed_url=row.feed_url,
        entry_id=row.entry_id,
        title=row.title,
        published=row.published,
        link=row.link,
        summary=row.summary,
        content=row.content,
        authors=tuple(row.authors),
        categories=tuple(row.categories),
        language=row.language,
        dated=row.dated,
        feed_name=row.feed_name,
        feed_tags=tuple(row.feed_tags),
    )


def _match(row: Row[*tuple[Any, ...]]) -> Match:
    return Match(
        rule_id=row.rule_id,
        rule_title=row.rule_title,
        severity=row.severity,
        channel=row.channel,
        hits=tuple(TermHit(**hit) for hit in row.hits),
    )


def _feed_state(row: Row[*tuple[Any, ...]], *, taken_over: bool = False) -> FeedState:
    return FeedState(
        url=row.url,
        name=row.name,
        tags=tuple(row.tags),
        interval=row.interval,
        etag=row.etag,
        last_modified=row.last_modified,
        body_digest=row.body_digest,
        error_count=row.error_count,
        last_error=row.last_error,
        last_status=row.last_status,
        last_polled_at=row.last_polled_at,
        last_success_at=row.last_success_at,
        next_poll_at=row.next_poll_at,
        first_polled_at=row.first_polled_at,
        active=row.active,
        fetch_url=row.fetch_url,
        failing_since=row.failing_since,
        not_found_count=row.not_found_count,
        attention=row.attention,
        leased_until=row.leased_until,
        publish_gap=row.publish_gap,
        refresh_hint=row.refresh_hint,
        taken_over=taken_over,
    )


def _chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]
