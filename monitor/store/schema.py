"""The database tables, as SQLAlchemy Core metadata.

This module only describes the schema; `store.py` owns every query and the
Alembic migrations in `migrations/` must produce exactly this metadata (a test
compares them). Datetimes are stored as UTC and always come back UTC-aware.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

# Deterministic constraint names, so migrations can name what they alter on every backend.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)


class UTCDateTime(TypeDecorator[datetime]):
    """A datetime stored as UTC and returned UTC-aware, on SQLite (naive text) and PostgreSQL.

    Naive datetimes are refused on the way in: guessing their zone silently shifts alerts.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} given; use a UTC-aware one")
        value = value.astimezone(UTC)
        # SQLite keeps text without an offset; writing it naive keeps ordering by text correct.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


feeds = Table(
    "feeds",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("url", Text, nullable=False, unique=True),
    Column("name", Text, nullable=False, default=""),
    Column("tags", JSON, nullable=False),
    Column("interval", Float, nullable=True),  # seconds; NULL means the global interval
    Column("active", Boolean, nullable=False, default=True),
    Column("etag", Text, nullable=True),
    Column("last_modified", Text, nullable=True),
    Column("body_digest", Text, nullable=True),
    Column("last_status", Integer, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("error_count", Integer, nullable=False, default=0),  # consecutive failed polls
    Column("last_polled_at", UTCDateTime, nullable=True),
    Column("last_success_at", UTCDateTime, nullable=True),
    Column("next_poll_at", UTCDateTime, nullable=True),  # NULL: due now
    Column("first_polled_at", UTCDateTime, nullable=True),  # NULL until the backlog poll succeeded
    # Where a 301/308 moved the feed; NULL: fetched from `url`, which stays its identity.
    Column("fetch_url", Text, nullable=True),
    Column("failing_since", UTCDateTime, nullable=True),  # first failure of the current run
    Column("not_found_count", Integer, nullable=False, default=0, server_default="0"),
    Column("attention", Text, nullable=True),  # why the feed needs a person; NULL: it does not
    # The claim of one worker's cycle (issue #11): renewed while polled, cleared by its outcome.
    Column("leased_until", UTCDateTime, nullable=True),
    Column("leased_by", Text, nullable=True),
    # The last poll that parsed a new document: articles it lacked have left the feed.
    Column("last_changed_at", UTCDateTime, nullable=True),
    # Adaptive polling (issue #11), from the last parsed document; NULL: not known yet.
    Column("publish_gap", Float, nullable=True),  # median seconds between its items
    Column("refresh_hint", Float, nullable=True),  # its ttl / sy:updatePeriod, in seconds
    Index(None, "active", "next_poll_at"),
)

articles = Table(
    "articles",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("feed_id", Integer, ForeignKey("feeds.id", ondelete="CASCADE"), nullable=False),
    Column("entry_id", Text, nullable=False),
    Column("link", Text, nullable=True),  # canonical; unique so one story alerts once across feeds
    Column("title", Text, nullable=False),
    Column("summary", Text, nullable=False),
    Column("content", Text, nullable=False),
    Column("authors", JSON, nullable=False),
    Column("categories", JSON, nullable=False),
    Column("language", String(35), nullable=True),
    Column("published", UTCDateTime, nullable=False),
    Column("dated", Boolean, nullable=False),
    Column("seen_at", UTCDateTime, nullable=False),
    # Refreshed (at most daily) while the feed still carries it; NULL: not since seen_at.
    Column("last_seen_at", UTCDateTime, nullable=True),
    UniqueConstraint("feed_id", "entry_id"),
    UniqueConstraint("link"),
    Index(None, "published"),
)

matches = Table(
    "matches",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("article_id", Integer, ForeignKey("articles.id", ondelete="CASCADE"), nullable=False),
    Column("rule_id", Text, nullable=False),
    Column("rule_title", Text, nullable=False),
    Column("severity", String(32), nullable=False),
    Column("channel", Text, nullable=True),
    Column("hits", JSON, nullable=False),  # list of TermHit fields
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("article_id", "rule_id"),
    Index(None, "created_at"),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("article_id", Integer, ForeignKey("articles.id", ondelete="CASCADE"), nullable=False),
    Column("channel", Text, nullable=False),
    Column("status", String(16), nullable=False),  # pending, sent or failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("last_error", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_attempt_at", UTCDateTime, nullable=True),
    Column("sent_at", UTCDateTime, nullable=True),
    Column("reference", Text, nullable=True),  # Slack message ts
    UniqueConstraint("article_id", "channel"),
    CheckConstraint("status IN ('pending', 'sent', 'failed')", name="status"),
    Index(None, "status", "next_attempt_at"),
)

# Fewer, better alerts (#9): matches held back from an immediate alert, the summaries
# (digests) that carry them, and the operators' silences.
silences = Table(
    "silences",
    metadata,
    Column("id", Integer, primary_key=True),
    # Each one given must match; at least one is given (the CLI checks).
    Column("rule_id", Text, nullable=True),
    Column("feed_url", Text, nullable=True),
    Column("domain", Text, nullable=True),
    Column("channel", Text, nullable=True),
    Column("reason", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("removed_at", UTCDateTime, nullable=True),
)

digests = Table(
    "digests",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("channel", Text, nullable=False),  # "" for the default channel, as deliveries
    Column("rule_id", Text, nullable=True),  # a rule's digest; NULL: a channel's summary
    Column("kind", String(16), nullable=False),  # digest, throttle or quiet
    Column("status", String(16), nullable=False),  # pending, sent or failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("last_error", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime, nullable=True),
    Column("reference", Text, nullable=True),  # Slack message ts
    CheckConstraint("status IN ('pending', 'sent', 'failed')", name="status"),
    Index(None, "status", "next_attempt_at"),
)

holds = Table(
    "holds",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("article_id", Integer, ForeignKey("articles.id", ondelete="CASCADE"), nullable=False),
    Column("rule_id", Text, nullable=False),  # with article_id: the match held
    Column("channel", Text, nullable=False),
    Column("reason", String(16), nullable=False),  # digest, throttle, quiet or silence
    Column("silence_id", Integer, ForeignKey("silences.id"), nullable=True),
    Column("held_at", UTCDateTime, nullable=False),
    Column("release_at", UTCDateTime, nullable=True),  # throttle, quiet: when it goes out
    Column("digest_id", Integer, ForeignKey("digests.id"), nullable=True),  # the summary it is in
    Column("released_at", UTCDateTime, nullable=True),  # bundled, or queued as an alert
    UniqueConstraint("article_id", "rule_id"),
    Index(None, "reason", "released_at"),
)
