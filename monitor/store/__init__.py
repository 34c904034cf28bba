"""Storage: feeds, articles, matches and deliveries in SQLite or PostgreSQL, with migrations."""

from monitor.store.store import (
    FeedState,
    PendingDelivery,
    PollOutcome,
    PollSaved,
    Store,
    StoredMatch,
)

__all__ = ["FeedState", "PendingDelivery", "PollOutcome", "PollSaved", "Store", "StoredMatch"]
