"""Storage: feeds, articles, matches and deliveries in SQLite or PostgreSQL, with migrations."""

from monitor.store.store import (
    DEFAULT_CHANNEL,
    BackfillSaved,
    FeedState,
    PendingDelivery,
    PollOutcome,
    PollSaved,
    Store,
    StoredArticle,
    StoredMatch,
)

__all__ = [
    "DEFAULT_CHANNEL",
    "BackfillSaved",
    "FeedState",
    "PendingDelivery",
    "PollOutcome",
    "PollSaved",
    "Store",
    "StoredArticle",
    "StoredMatch",
]
