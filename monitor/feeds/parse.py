"""Fetched bytes to a ParsedFeed: feedparser reads RSS, Atom and RDF; jsonfeed reads JSON Feed.

Pure: the result depends only on the body, the response headers, the feed URL and the
fetch time. feedparser only ever gets a BytesIO, so a feed can never make it fetch a URL
or open a file. This runs in a process pool: everything here is top level and picklable,
and importing the module starts nothing.

Every reader hands its entries to ``build_feed`` as ``EntryFields``, so ids, links,
dates, text limits and duplicate handling are the same whatever the format.
"""

from __future__ import annotations

import hashlib
import io
import re
import xml.sax
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from time import struct_time
from typing import Any

import feedparser

from monitor.errors import FeedParseError
from monitor.feeds.links import absolute_link
from monitor.feeds.text import clean_text, html_to_text, language_tag, truncate
from monitor.model import Article, ParsedFeed
from monitor.schedule import refresh_hint

TITLE_LIMIT = 500
SUMMARY_LIMIT = 2_000
CONTENT_LIMIT = 20_000
NAME_LIMIT = 200  # one author or category
ID_LIMIT = 512  # longer ids are stored as their hash
MAX_ARTICLES = 1_000  # per document; feeds list their newest entries first
MAX_AUTHORS = 20
MAX_CATEGORIES = 50
EARLIEST = datetime(1995, 1, 1, tzinfo=UTC)  # before the first feeds: a placeholder date
FUTURE_SLACK = timedelta(days=1)  # more ahead of the fetch than any time zone explains

_EMPTY = "not a feed: empty document; check the feed URL, or tell the feed's operator"
_JSON_TYPES = ("application/feed+json", "application/json")
_HTML_STARTS = (b"<!doctype html", b"<html", b"<head", b"<body")
# feedparser 6.0.14 misreads "2020/1/10 14:33:00" as 2020-11-01: read this form ourselves.
_SLASH_DATE = re.compile(
    r"\s*(\d{4})/(\d{1,2})/(\d{1,2})(?:[ T]+(\d{1,2}):(\d{2})(?::(\d{2}))?)?"
    r"\s*(Z|GMT|UTC|[+-]\d{2}:?\d{2})?\s*",
    re.IGNORECASE,
)
# A broken generator writes <rss:item> without declaring "rss:"; feedparser then sees no
# items. Binding the prefix to the RSS 2.0 namespace makes them plain RSS elements again.
_RSS_PREFIXED = re.compile(rb"<rss:(?:channel|item)\b")
_RSS_ROOT = re.compile(rb"<rss(?=[\s>])")
_RSS_BINDING = b'<rss xmlns:rss="http://backend.userland.com/rss2"'


@dataclass(frozen=True, slots=True)
class EntryFields:
    """One entry as a format reader found it: text already plain, nothing yet checked or capped."""

    entry_id: str  # the feed's own id, "" when it gave none
    link: str | None  # as written; resolved and made canonical by build_feed
    title: str
    summary: str
    content: str
    published: datetime | None  # UTC; None when absent or unreadable
    date_unreadable: bool = False  # a date was given but could not be read
    authors: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    language: str | None = None  # already a primary subtag


def body_digest(body: bytes) -> str:
    """SHA-256 of the body: the pipeline skips parsing when it equals the stored one."""
    return hashlib.sha256(body).hexdigest()


def parse_feed(
    body: bytes,
    *,
    url: str,
    headers: Mapping[str, str],
    fetched_at: datetime,
    feed_name: str = "",
    feed_tags: tuple[str, ...] = (),
) -> ParsedFeed:
    """Parse one fetched body (RSS, Atom, RDF or JSON Feed) into normalised articles.

    Raises FeedParseError when the body is not a feed at all: empty, an HTML page,
    garbage, or JSON that is not a JSON Feed. An ill-formed feed keeps what could be
    read and says what was wrong in ``ParsedFeed.warnings``.
    """
    headers = {key.lower(): value for key, value in headers.items()}
    content_type = headers.get("content-type", "").partition(";")[0].strip().lower()
    start = body.lstrip(b" \t\r\n\xef\xbb\xbf")
    if not start:
        raise FeedParseError(url, _EMPTY)
    header_language = language_tag(headers.get("content-language"))
    if start.startswith(b"{") or (content_type in _JSON_TYPES and not start.startswith(b"<")):
        # jsonfeed builds on this module, so it is imported where it is needed.
        from monitor.feeds.jsonfeed import parse_json_feed

        return parse_json_feed(
            body, url=url, fetched_at=fetched_at, feed_name=feed_name, feed_tags=feed_tags,
            default_language=header_language,
        )  # fmt: skip
    title, entries, warnings, hint = _read_xml(body, url=url, headers=headers)
    parsed = build_feed(
        title, entries, url=url, fetched_at=fetched_at, feed_name=feed_name,
        feed_tags=feed_tags, warnings=warnings, default_language=header_language,
    )  # fmt: skip
    return replace(parsed, refresh_hint=hint)


def build_feed(
    title: str,
    entries: Iterable[EntryFields],
    *,
    url: str,
    fetched_at: datetime,
    feed_name: str = "",
    feed_tags: tuple[str, ...] = (),
    warnings: Sequence[str] = (),
    default_language: str | None = None,
) -> ParsedFeed:
    """Normalise entries into articles the same way for every format.

    Links are resolved against ``url`` and made canonical, text is capped, absurd
    dates become the fetch time, and an id repeated inside the document keeps its
    first entry (broken feeds repeat guids).
    """
    if fetched_at.tzinfo is None:
        raise ValueError("parse: fetched_at must be timezone-aware (UTC)")
    fetched_at = fetched_at.astimezone(UTC)
    articles: dict[str, Article] = {}
    repeated = empty = undated = dropped = 0
    for entry in entries:
        if len(articles) == MAX_ARTICLES:
            dropped += 1
            continue
        link = absolute_link(entry.link, url)
        entry_id = _entry_id(entry, link)
        if entry_id is None:
            empty += 1
            continue
        if entry_id in articles:
            repeated += 1
            continue
        # Each of summary and content stands in for the other when missing (feedparser does
        # this for a content-only RSS item); the content is kept only when it says more than
        # the capped summary shows, so a long description is not cut short for matching.
        summary = entry.summary or entry.content
        content = entry.content or entry.summary
        if content == summary and len(summary) <= SUMMARY_LIMIT:
            content = ""
        published = entry.published
        dated = published is not None and EARLIEST <= published <= fetched_at + FUTURE_SLACK
        if not dated and (published is not None or entry.date_unreadable):
            undated += 1
        articles[entry_id] = Article(
            feed_url=url,
            entry_id=entry_id,
            title=truncate(entry.title, TITLE_LIMIT),
            published=published if dated and published is not None else fetched_at,
            link=link,
            summary=truncate(summary, SUMMARY_LIMIT),
            content=truncate(content, CONTENT_LIMIT),
            authors=_names(entry.authors, MAX_AUTHORS),
            categories=_names(entry.categories, MAX_CATEGORIES),
            language=entry.language or default_language,
            dated=dated,
            feed_name=feed_name,
            feed_tags=feed_tags,
        )
    notes = list(warnings)
    if repeated:
        notes.append(
            f"{_entries(repeated)} repeated an id seen earlier in the feed; kept the first"
        )
    if dropped:
        notes.append(f"kept the first {MAX_ARTICLES} entries; ignored {dropped} more")
    if empty:
        notes.append(f"skipped {_entries(empty)} with no id, link, title or text")
    if undated:
        notes.append(f"{_entries(undated)} had an unreadable or implausible date; used fetch time")
    return ParsedFeed(
        title=truncate(title, TITLE_LIMIT), articles=tuple(articles.values()), warnings=tuple(notes)
    )


def first_language(*candidates: str | None) -> str | None:
    """The first candidate that is a usable language tag, as a primary subtag."""
    for candidate in candidates:
        tag = language_tag(candidate)
        if tag:
            return tag
    return None


def _entry_id(entry: EntryFields, link: str | None) -> str | None:
    """The feed's id, else the canonical link, else a hash of the text; None for an empty entry."""
    own = clean_text(entry.entry_id)
    if own:
        return own if len(own) <= ID_LIMIT else "sha256:" + _sha256(own)
    if link:
        return link
    if entry.title or entry.summary or entry.content:
        return "sha256:" + _sha256(f"{entry.title}\n{entry.summary or entry.content}")
    return None


def _entries(count: int) -> str:
    return f"{count} entry" if count == 1 else f"{count} entries"


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _names(values: Iterable[str], limit: int) -> tuple[str, ...]:
    """Cleaned, capped names without repeats (case-insensitive), first spelling kept."""
    seen: dict[str, str] = {}
    for value in values:
        name = truncate(clean_text(value), NAME_LIMIT)
        if name and name.casefold() not in seen:
            seen[name.casefold()] = name
    return tuple(seen.values())[:limit]


# --- RSS, Atom and RDF through feedparser ----------------------------------------------


def _read_xml(
    body: bytes, *, url: str, headers: Mapping[str, str]
) -> tuple[str, list[EntryFields], list[str], float | None]:
    # Whitespace before the XML declaration makes expat reject the document, and
    # feedparser then falls back to its slower, laxer parser: drop it.
    if body[:1] in (b" ", b"\t", b"\r", b"\n"):
        body = body.lstrip()
    # Content-Type alone: it decides the encoding (RFC 3023). Any other header without
    # it makes feedparser assume ISO-8859-1 and skip chardet. No Content-Location either:
    # feedparser would resolve bare guids ("1559104147038") against it and ids would
    # change with the feed URL; build_feed resolves links against the URL instead.
    given = {"content-type": headers["content-type"]} if headers.get("content-type") else {}
    result = _feedparser(body, given)
    warnings: list[str] = []
    if not result.entries and _RSS_PREFIXED.search(body) and b"xmlns:rss" not in body:
        repaired = _feedparser(_RSS_ROOT.sub(_RSS_BINDING, body, count=1), given)
        if repaired.entries:
            result = repaired
            warnings.append("elements use the undeclared prefix 'rss:'; read them as RSS")
    if not result.get("version") and not result.entries:
        raise FeedParseError(url, _not_a_feed(body, headers, result))
    exc = result.get("bozo_exception")
    # "declared as us-ascii" is RFC 3023's default for text/xml without a charset, which
    # most servers send: the document's own declaration then rightly wins. Not a defect.
    if result.get("bozo") and "declared as us-ascii," not in str(exc):
        warnings.append(_bozo_warning(exc, len(result.entries)))
    feed = result.feed
    feed_language = first_language(feed.get("language"), headers.get("content-language"))
    feed_authors = _authors(feed) if str(result.get("version", "")).startswith("atom") else ()
    entries = [_entry_fields(entry, feed_language, feed_authors) for entry in result.entries]
    hint = refresh_hint(
        feed.get("ttl"), feed.get("sy_updateperiod"), feed.get("sy_updatefrequency")
    )
    return _text(feed.get("title"), feed.get("title_detail")), entries, warnings, hint


def _feedparser(body: bytes, headers: dict[str, str]) -> Any:
    # Always a BytesIO: given str or bytes, feedparser treats them as a URL or file path.
    return feedparser.parse(
        io.BytesIO(body), response_headers=headers, sanitize_html=False,
        resolve_relative_uris=False,
    )  # fmt: skip


def _not_a_feed(body: bytes, headers: Mapping[str, str], result: Any) -> str:
    exc = result.get("bozo_exception")
    if isinstance(exc, xml.sax.SAXParseException) and exc.getMessage() == "no element found":
        return _EMPTY
    content_type = headers.get("content-type", "").partition(";")[0].strip().lower()
    head = body[:512].lstrip().lower()
    if "html" in content_type or head.startswith(_HTML_STARTS) or b"<html" in head:
        shown = content_type or "no content type given"
        return f"not a feed: the server returned an HTML page ({shown}); check the feed URL"
    shown = content_type or "no content type given"
    return f"not a feed: no RSS, Atom, RDF or JSON Feed document ({shown}); check the feed URL"


def _bozo_warning(exc: object, kept: int) -> str:
    if isinstance(exc, xml.sax.SAXParseException):
        problem = f"not well-formed XML at line {exc.getLineNumber()}: {exc.getMessage()}"
    else:  # feedparser's encoding and content-type complaints quote the document: clean them
        problem = truncate(clean_text(f"{type(exc).__name__}: {exc}"), 300)
    return f"{problem}; kept {_entries(kept)}"


def _entry_fields(
    entry: Any, feed_language: str | None, feed_authors: tuple[str, ...]
) -> EntryFields:
    contents = [item for item in entry.get("content") or () if item.get("value")]
    summary_detail = entry.get("summary_detail") or (contents[0] if contents else None)
    published, unreadable = _entry_date(entry)
    return EntryFields(
        entry_id=entry.get("id") or "",
        # FeedBurner rewrites links to its redirector; origLink is the article itself.
        link=entry.get("feedburner_origlink") or entry.get("link"),
        title=_text(entry.get("title"), entry.get("title_detail")),
        summary=_text(entry.get("summary"), summary_detail),
        content=_text(contents[0]["value"], contents[0]) if contents else "",
        published=published,
        date_unreadable=unreadable,
        authors=_authors(entry) or feed_authors,
        categories=tuple(
            tag.get("term") or tag.get("label") or "" for tag in entry.get("tags") or ()
        ),
        language=first_language(
            entry.get("language"),
            (entry.get("title_detail") or {}).get("language"),
            (summary_detail or {}).get("language"),
        )
        or feed_language,
    )


def _text(value: str | None, detail: Mapping[str, Any] | None) -> str:
    """Plain text of a feedparser value: markup stripped unless its type says plain text."""
    if not value:
        return ""
    if (detail or {}).get("type") == "text/plain":
        return clean_text(value)  # "History of the <blink> tag" is words, not markup
    return html_to_text(value)


def _authors(node: Any) -> tuple[str, ...]:
    names = [
        author.get("name") or author.get("email") or "" for author in node.get("authors") or ()
    ]
    if not any(names) and node.get("author"):
        names = [node["author"]]
    return tuple(name for name in names if name)


def _entry_date(entry: Any) -> tuple[datetime | None, bool]:
    """The entry's own date (published, else updated) in UTC, and whether one was unreadable."""
    # dict.get: feedparser's own get() maps a missing "updated" to "published" and warns.
    raws = [dict.get(entry, key) for key in ("published", "updated")]
    for key, raw in zip(("published", "updated"), raws, strict=True):
        if not raw:
            continue
        slash = _SLASH_DATE.fullmatch(raw)
        when = _slash_date(slash) if slash else _from_struct(dict.get(entry, f"{key}_parsed"))
        if when is not None:
            return when, False
    return None, any(raws)


def _from_struct(parsed: struct_time | None) -> datetime | None:
    if parsed is None:
        return None
    try:
        return datetime(*parsed[:5], min(parsed[5], 59), tzinfo=UTC)
    except (ValueError, OverflowError):
        return None


def _slash_date(match: re.Match[str]) -> datetime | None:
    """A ``YYYY/M/D [H:MM[:SS]] [zone]`` date; no zone means UTC, as feedparser assumes too."""
    year, month, day, hour, minute, second, zone = match.groups()
    try:
        when = datetime(
            int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0),
            tzinfo=UTC,
        )  # fmt: skip
    except ValueError:
        return None
    if zone and zone[0] in "+-":
        digits = zone[1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        when -= offset if zone[0] == "+" else -offset
    return when
