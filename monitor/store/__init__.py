"""Storage: feeds, articles, matches and deliveries in SQLite or PostgreSQL, with migrations."""

from monitor.store.store import (
    DEFAULT_CHANNEL,
    FeedState,
    PendingDelivery,
    PollOutcome,
    PollSaved,
    Store,
    StoredMatch,
)

__all__ = [
    "DEFAULT_CHANNEL",
    "FeedState",
    "PendingDelivery",
    "PollOutcome",
    "PollSaved",
    "Store",
    "StoredMatch",
]
