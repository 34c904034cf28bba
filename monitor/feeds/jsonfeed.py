"""JSON Feed 1 and 1.1 (jsonfeed.org) to a ParsedFeed; feedparser 6.0.14 reads none of it.

The document is untrusted: a field of the wrong type counts as absent, and an item
that is not an object is skipped with a warning. Entries go through the same
``build_feed`` as RSS and Atom, so ids, links, dates and limits agree.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from monitor.errors import FeedParseError
from monitor.feeds.parse import EntryFields, build_feed, first_language
from monitor.feeds.text import clean_text, html_to_text
from monitor.model import ParsedFeed

_VERSION = re.compile(r"https?://jsonfeed\.org/version/1(?:\.\d+)?/?")


def parse_json_feed(
    body: bytes,
    *,
    url: str,
    fetched_at: datetime,
    feed_name: str = "",
    feed_tags: tuple[str, ...] = (),
    default_language: str | None = None,
) -> ParsedFeed:
    """Parse a JSON Feed body; ``default_language`` is the Content-Language header's, if any.

    Raises FeedParseError when the body is not JSON or not a JSON Feed.
    """
    try:
        document = json.loads(body)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise FeedParseError(url, f"not a feed: invalid JSON at {where}: {exc.msg}") from exc
    except UnicodeDecodeError as exc:
        raise FeedParseError(url, "not a feed: JSON that is not UTF-8, -16 or -32") from exc
    except RecursionError as exc:
        raise FeedParseError(url, "not a feed: JSON nested too deeply to read") from exc
    if not isinstance(document, dict) or not _VERSION.fullmatch(_string(document.get("version"))):
        raise FeedParseError(
            url, "not a feed: JSON without a jsonfeed.org version; check the feed URL"
        )
    warnings: list[str] = []
    items = document.get("items", [])
    if not isinstance(items, list):
        warnings.append("JSON Feed 'items' is not a list; read no entries")
        items = []
    objects = [item for item in items if isinstance(item, dict)]
    if len(objects) < len(items):
        warnings.append(f"skipped {len(items) - len(objects)} JSON Feed items that are not objects")
    feed_language = first_language(_string(document.get("language")), default_language)
    feed_authors = _authors(document)
    entries = [_entry_fields(item, feed_language, feed_authors) for item in objects]
    return build_feed(
        clean_text(_string(document.get("title"))), entries, url=url, fetched_at=fetched_at,
        feed_name=feed_name, feed_tags=feed_tags, warnings=warnings,
    )  # fmt: skip


def _entry_fields(
    item: dict[str, Any], feed_language: str | None, feed_authors: tuple[str, ...]
) -> EntryFields:
    # content_text is the author's own plain text; content_html is only stripped when alone.
    content_text = _string(item.get("content_text"))
    content = clean_text(content_text) if content_text.strip() else ""
    if not content:
        content = html_to_text(_string(item.get("content_html")))
    raw_dates = [_string(item.get(key)) for key in ("date_published", "date_modified")]
    dates = [_iso_date(raw) for raw in raw_dates if raw]
    published = next((when for when in dates if when is not None), None)
    identifier = item.get("id")
    if isinstance(identifier, int | float) and not isinstance(identifier, bool):
        identifier = str(identifier)  # the spec says string; numbers are common
    tags = item.get("tags")
    return EntryFields(
        entry_id=_string(identifier),
        link=_string(item.get("url")) or _string(item.get("external_url")) or None,
        title=clean_text(_string(item.get("title"))),
        summary=clean_text(_string(item.get("summary"))),
        content=content,
        published=published,
        date_unreadable=published is None and bool(dates),
        authors=_authors(item) or feed_authors,
        categories=tuple(tag for tag in tags if isinstance(tag, str))
        if isinstance(tags, list)
        else (),
        language=first_language(_string(item.get("language"))) or feed_language,
    )


def _authors(node: dict[str, Any]) -> tuple[str, ...]:
    """Names from ``authors`` (1.1) or ``author`` (1.0)."""
    people = node.get("authors")
    if not isinstance(people, list):
        people = [node.get("author")]
    return tuple(
        person["name"]
        for person in people
        if isinstance(person, dict) and isinstance(person.get("name"), str)
    )


def _iso_date(raw: str) -> datetime | None:
    """An RFC 3339 date in UTC (no offset means UTC), None when unreadable."""
    try:
        when = datetime.fromisoformat(raw.strip())
        return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: year 1 with a positive offset
        return None


def _string(value: object) -> str:
    return value if isinstance(value, str) else ""
