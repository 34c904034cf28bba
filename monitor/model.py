"""Values passed between the pure core and the edges.

Every type here is a frozen dataclass: parsers, matchers and renderers return
new values and never mutate what they were given. Datetimes are UTC-aware.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, get_args

# A rule's severity, least to most severe. Matches carry it as text (it is stored as text),
# and the renderer shows a value outside this list rather than fail on it.
Severity = Literal["info", "low", "medium", "high", "critical"]
SEVERITIES: tuple[Severity, ...] = get_args(Severity)


@dataclass(frozen=True, slots=True)
class FeedSpec:
    """One feed as the operator configured it in the feeds file."""

    url: str
    name: str = ""
    tags: tuple[str, ...] = ()
    interval: float | None = None  # seconds; None means the global poll interval


@dataclass(frozen=True, slots=True)
class Article:
    """One feed entry normalised to plain text, ready for matching and storage."""

    feed_url: str
    entry_id: str  # guid, else link, else a hash of title + summary
    title: str
    published: datetime  # UTC; fetch time when the feed gave none or an absurd one
    link: str | None = None  # canonical: tracking parameters removed
    summary: str = ""
    content: str = ""
    authors: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    language: str | None = None  # lower-case primary subtag, e.g. "en"
    dated: bool = True  # False when `published` is the fetch time, not the feed's own date
    feed_name: str = ""
    feed_tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    """What parsing one fetched body gave: the feed title, its articles and any warnings."""

    title: str
    articles: tuple[Article, ...]
    warnings: tuple[str, ...] = ()
    refresh_hint: float | None = None  # seconds its ttl / sy:updatePeriod asks between polls


@dataclass(frozen=True, slots=True)
class TermHit:
    """One term found in one field of an article: the evidence behind a match."""

    term: str  # the term as the rule author wrote it
    field: str  # one of monitor.matching.FIELDS
    text: str  # the text as it appears in the article
    start: int  # character offsets into the field's text
    end: int
    list_name: str | None = None  # the named list the term came from, if any


@dataclass(frozen=True, slots=True)
class Match:
    """A rule that matched an article, with the hits that explain why."""

    rule_id: str
    rule_title: str
    severity: str
    channel: str | None  # the rule's channels, separated by spaces; None: the default route
    hits: tuple[TermHit, ...] = field(default=())

    @property
    def matched_terms(self) -> tuple[str, ...]:
        """Distinct matched terms in the order they were found."""
        return tuple(dict.fromkeys(hit.term for hit in self.hits))
