"""The Store: every read and write of feeds, articles, matches and deliveries.

It takes and returns values (monitor.model and the dataclasses below); SQLAlchemy
connections never leave this module. Store-then-send: record_poll writes articles,
matches and pending deliveries in one transaction; the notifier claims deliveries
later and marks them sent or failed. Claims use leases (and SKIP LOCKED on
PostgreSQL) so several workers or overlapping cycles never take the same row.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from alembic import command
from alembic.runtime.migration import MigrationContext
from sqlalchemy import (
    Connection,
    Engine,
    Insert,
    Row,
    Select,
    Table,
    and_,
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

from monitor.errors import StoreError
from monitor.model import Article, FeedSpec, Match, TermHit
from monitor.store.engine import WRITE_OPTION, create_store_engine, mask, parse_url, wrap_error
from monitor.store.migrate import alembic_config
from monitor.store.schema import (
    UTCDateTime,
    articles,
    deliveries,
    feeds,
    matches,
)

# Arbitrary constant key: concurrent `upgrade()` calls on PostgreSQL migrate one at a time.
_MIGRATION_LOCK_KEY = 0x6D6F6E69746F72
# Delivery channel of matches whose rule named none; the sender picks its default channel.
DEFAULT_CHANNEL = ""
# Keeps IN (...) lists well under SQLite's bound-parameter limit.
_CHUNK = 500


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


@dataclass(frozen=True, slots=True)
class PollOutcome:
    """Everything one poll of one feed produced, written in one transaction.

    On success, etag/last_modified/body_digest replace the stored ones; None keeps the
    stored value (a 304 need not repeat its validators). On error they are left alone.
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


@dataclass(frozen=True, slots=True)
class StoredMatch:
    """A stored match with its article and the state of its delivery (None: none created)."""

    article: Article
    match: Match
    created_at: datetime
    delivery_status: str | None


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


class Store:
    """The database behind one narrow, intent-named API. Safe to share between threads."""

    def __init__(self, engine: Engine, url: URL) -> None:
        """Use `Store.open`; this only wires an existing engine."""
        self._engine = engine
        self._url = url

    @classmethod
    def open(cls, url: str) -> Store:
        """Open and check the database at `url` (raises StoreError when unreachable)."""
        parsed = parse_url(url)
        store = cls(create_store_engine(parsed), parsed)
        try:
            with store._transaction():
                pass  # connect now, so a wrong URL or a down server fails at start
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

    @contextmanager
    def _transaction(self, *, write: bool = False) -> Iterator[Connection]:
        """One connection in one transaction; driver errors become StoreError here, once."""
        try:
            with self._engine.connect() as connection:
                if write:
                    connection.execution_options(**{WRITE_OPTION: True})
                with connection.begin():
                    yield connection
        except DBAPIError as exc:
            raise wrap_error(self._url, exc) from exc

    # -- schema ---------------------------------------------------------------------------

    def upgrade(self) -> None:
        """Migrate the schema to the newest revision (creates it in an empty database)."""
        with self._transaction(write=True) as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY}
                )
            command.upgrade(alembic_config(connection), "head")

    def revision(self) -> str | None:
        """The schema revision of the database; None before the first upgrade."""
        with self._transaction() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    # -- feeds ----------------------------------------------------------------------------

    def sync_feeds(self, specs: Sequence[FeedSpec], now: datetime) -> None:
        """Make the feeds table follow the feeds file, keeping history.

        New feeds are due at once; feeds gone from the file are deactivated, and
        reactivated if they return. A changed interval takes effect now: the next poll
        moves earlier if the new interval says so (to "due now" for the global one).
        """
        wanted = {spec.url: spec for spec in specs}
        with self._transaction(write=True) as connection:
            stored = {row.url: row for row in connection.execute(select(feeds))}
            for spec in wanted.values():
                row = stored.get(spec.url)
                if row is None:
                    connection.execute(
                        feeds.insert().values(
                            url=spec.url,
                            name=spec.name,
                            tags=list(spec.tags),
                            interval=spec.interval,
                            active=True,
                            error_count=0,
                        )
                    )
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
            gone = [row.id for url, row in stored.items() if url not in wanted and row.active]
            for chunk in _chunks(gone):
                connection.execute(update(feeds).where(feeds.c.id.in_(chunk)).values(active=False))

    def claim_due_feeds(
        self, now: datetime, lease: timedelta, limit: int | None = None, *, every: bool = False
    ) -> list[FeedState]:
        """Active feeds due at `now` (all of them with `every`), each leased until now+lease.

        The lease keeps other workers from polling the same feed; the returned states carry
        it as next_poll_at, and record_poll replaces it. `every` is for `monitor poll --once`,
        which polls every feed whatever its schedule.
        """
        due = (
            select(feeds.c.id)
            .where(
                feeds.c.active,
                true()
                if every
                else or_(feeds.c.next_poll_at.is_(None), feeds.c.next_poll_at <= now),
            )
            .order_by(feeds.c.next_poll_at.asc().nulls_first(), feeds.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        claim = (
            update(feeds)
            .where(feeds.c.id.in_(due))
            .values(next_poll_at=now + lease)
            .returning(*feeds.c)
        )
        with self._transaction(write=True) as connection:
            rows = connection.execute(claim).all()
        return sorted((_feed_state(row) for row in rows), key=lambda state: state.url)

    def feeds(self) -> list[FeedState]:
        """Every feed, active or not, by URL."""
        with self._transaction() as connection:
            rows = connection.execute(select(feeds).order_by(feeds.c.url)).all()
        return [_feed_state(row) for row in rows]

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
        with self._transaction(write=True) as connection:
            return [_record(connection, outcome) for outcome in outcomes]

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
        with self._transaction() as connection:
            rows = connection.execute(query).all()
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
        with self._transaction(write=True) as connection:
            inserted = _insert_new(
                connection,
                matches,
                rows,
                matches.c.article_id,
                matches.c.rule_id,
                matches.c.channel,
            )
            added: list[Row[Any]] = []
            if alert and inserted:
                wanted = {(row.article_id, _delivery_channel(row.channel)) for row in inserted}
                delivery_rows = [
                    _delivery_row(article_id, channel, now)
                    for article_id, channel in sorted(wanted)
                ]
                added = _insert_new(connection, deliveries, delivery_rows, deliveries.c.id)
        by_rule: dict[str, int] = {}
        for row in inserted:
            by_rule[row.rule_id] = by_rule.get(row.rule_id, 0) + 1
        return BackfillSaved(len(inserted), len(added), dict(sorted(by_rule.items())))

    def recent_matches(self, limit: int = 50, since: datetime | None = None) -> list[StoredMatch]:
        """Stored matches, newest first, with their article and delivery status."""
        query = (
            select(*_ARTICLE_COLUMNS, *_MATCH_COLUMNS, matches.c.created_at, deliveries.c.status)
            .select_from(
                matches.join(articles, articles.c.id == matches.c.article_id)
                .join(feeds, feeds.c.id == articles.c.feed_id)
                .outerjoin(
                    deliveries,
                    and_(
                        deliveries.c.article_id == matches.c.article_id,
                        deliveries.c.channel == func.coalesce(matches.c.channel, DEFAULT_CHANNEL),
                    ),
                )
            )
            .order_by(matches.c.created_at.desc(), matches.c.id.desc())
            .limit(limit)
        )
        if since is not None:
            query = query.where(matches.c.created_at >= since)
        with self._transaction() as connection:
            rows = connection.execute(query).all()
        return [StoredMatch(_article(row), _match(row), row.created_at, row.status) for row in rows]

    # -- deliveries -----------------------------------------------------------------------

    def claim_deliveries(
        self, now: datetime, lease: timedelta, limit: int
    ) -> list[PendingDelivery]:
        """Pending deliveries due at `now`, oldest first, each leased until now+lease."""
        due = (
            select(deliveries.c.id)
            .where(deliveries.c.status == "pending", deliveries.c.next_attempt_at <= now)
            .order_by(deliveries.c.created_at, deliveries.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
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
        with self._transaction(write=True) as connection:
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
                    .where(matches.c.article_id.in_(chunk))
                    .order_by(matches.c.id)
                ):
                    key = (row.article_id, _delivery_channel(row.channel))
                    found.setdefault(key, []).append(_match(row))
        return [
            PendingDelivery(
                id=row.id,
                channel=row.channel,
                attempts=row.attempts,
                article=by_id[row.article_id],
                matches=tuple(found.get((row.article_id, row.channel), ())),
            )
            for row in claimed
        ]

    def mark_delivered(self, delivery_id: int, now: datetime, reference: str | None) -> None:
        """Record a successful send (reference: the Slack message ts, if any)."""
        with self._transaction(write=True) as connection:
            result = connection.execute(
                update(deliveries)
                .where(deliveries.c.id == delivery_id)
                .values(
                    status="sent",
                    attempts=deliveries.c.attempts + 1,
                    last_attempt_at=now,
                    sent_at=now,
                    reference=reference,
                )
            )
            if result.rowcount == 0:
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
        }
        if retry_at is None:
            changes["status"] = "failed"
        else:
            changes["next_attempt_at"] = retry_at
        with self._transaction(write=True) as connection:
            result = connection.execute(
                update(deliveries)
                .where(deliveries.c.id == delivery_id, deliveries.c.status == "pending")
                .values(changes)
            )
            if (
                result.rowcount == 0
                and not connection.execute(
                    select(deliveries.c.id).where(deliveries.c.id == delivery_id)
                ).first()
            ):
                raise StoreError(f"delivery {delivery_id} does not exist; cannot mark it failed")

    def delivery_counts(self) -> dict[str, int]:
        """Deliveries per status, for the statuses that have any."""
        with self._transaction() as connection:
            rows = connection.execute(
                select(deliveries.c.status, func.count()).group_by(deliveries.c.status)
            ).all()
        return {status: count for status, count in rows}


def _delivery_channel(channel: str | None) -> str:
    return DEFAULT_CHANNEL if channel is None else channel


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
    }
    if outcome.error is not None:
        state["error_count"] = feeds.c.error_count + 1
        state["last_error"] = outcome.error
        return state
    state["error_count"] = 0
    state["last_error"] = None
    state["last_success_at"] = outcome.polled_at
    state["first_polled_at"] = func.coalesce(
        feeds.c.first_polled_at, literal(outcome.polled_at, UTCDateTime())
    )
    for name in ("etag", "last_modified", "body_digest"):
        if getattr(outcome, name) is not None:
            state[name] = getattr(outcome, name)
    return state


def _record(connection: Connection, outcome: PollOutcome) -> PollSaved:
    """One outcome of record_polls, inside its transaction."""
    feed_id = connection.execute(
        select(feeds.c.id).where(feeds.c.url == outcome.feed_url)
    ).scalar_one_or_none()
    if feed_id is None:
        raise StoreError(
            f"{outcome.feed_url}: feed is not in the database; "
            "sync the feeds file (Store.sync_feeds) before recording polls"
        )
    # Updating the feed row first also serialises concurrent polls of one feed.
    connection.execute(update(feeds).where(feeds.c.id == feed_id).values(_fetch_state(outcome)))
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
    match_rows: list[dict[str, Any]] = []
    delivery_rows: list[dict[str, Any]] = []
    held_back = 0
    for article, article_matches in fresh:
        article_id = stored.get(article.entry_id)
        if article_id is None:
            continue  # stored meanwhile by another writer, or by another feed's link
        unique = _first_per_rule(article_matches)
        match_rows += [_match_row(article_id, m, outcome.polled_at) for m in unique]
        if outcome.alert_since is not None and article.published < outcome.alert_since:
            held_back += len(unique)
            continue
        for channel in dict.fromkeys(_delivery_channel(m.channel) for m in unique):
            delivery_rows.append(_delivery_row(article_id, channel, outcome.polled_at))
    if match_rows:
        connection.execute(matches.insert(), match_rows)
    if delivery_rows:
        connection.execute(deliveries.insert(), delivery_rows)
    return PollSaved(len(stored), len(match_rows), len(delivery_rows), held_back)


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


def _feed_state(row: Row[*tuple[Any, ...]]) -> FeedState:
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
    )


def _chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]
