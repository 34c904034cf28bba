"""OPML in and out: the subscription lists feed readers import and export.

Pure: bytes in, values out, and values in, bytes out. An OPML file comes from elsewhere (a
reader's export, a colleague's list), so it is read through defusedxml with no DTD allowed:
OPML needs none, and a DTD is how entity bombs ("billion laughs") and external entities get
in. Readers nest feeds in category outlines; each category becomes a tag of its feeds.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from xml.etree.ElementTree import Element

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from monitor.errors import InputError, shorten
from monitor.feeds.catalog import url_problem
from monitor.model import FeedSpec

MAX_FEEDS = 10_000  # more outlines than any reader's export: the rest is refused, not read
_TAG = re.compile(r"[^\w-]+")


@dataclass(frozen=True, slots=True)
class OpmlFeeds:
    """The feeds an OPML file lists, and why each outline that could not be one was skipped."""

    feeds: tuple[FeedSpec, ...]
    skipped: tuple[str, ...]


def read_opml(data: bytes, source: str) -> OpmlFeeds:
    """Read the feed outlines (those with an ``xmlUrl``) of an OPML document, in order.

    Raises InputError naming ``source`` when the document is not OPML, is not well-formed,
    or declares a DTD or entities (refused whatever they say).
    """
    try:
        root = fromstring(data, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise InputError(
            f"{source}: refused: the document declares a DTD or entities ({type(exc).__name__}), "
            "which OPML never needs and which can expand without bound or read local files; "
            "export the list again from the feed reader"
        ) from exc
    except ElementTree.ParseError as exc:
        line, column = exc.position
        raise InputError(
            f"{source}:{line}:{column}: not well-formed XML ({shorten(str(exc), 100)}); "
            "is this an OPML file?"
        ) from exc
    body = root.find("body")
    if _local(root.tag) != "opml" or body is None:
        raise InputError(f"{source}: not an OPML document (expected <opml> with a <body>)")
    feeds: list[FeedSpec] = []
    skipped: list[str] = []
    seen: set[str] = set()
    for outline, categories in _outlines(body, ()):
        url = _attribute(outline, "xmlUrl").strip()
        label = _attribute(outline, "title") or _attribute(outline, "text")
        if not url:
            continue  # a category, or a link that is not a feed
        problem = url_problem(url)
        if problem is not None:
            skipped.append(f"{shorten(label or url, 100)}: {problem}")
            continue
        if url in seen:
            skipped.append(f"{shorten(url, 200)}: listed twice; kept the first")
            continue
        if len(feeds) == MAX_FEEDS:
            skipped.append(f"more than {MAX_FEEDS} feeds; the rest were not read")
            break
        seen.add(url)
        tags = [*categories, *_attribute(outline, "category").split(",")]
        feeds.append(FeedSpec(url=url, name=shorten(label.strip(), 200), tags=_tags(tags)))
    return OpmlFeeds(tuple(feeds), tuple(skipped))


def _outlines(
    parent: Element, categories: tuple[str, ...]
) -> Iterator[tuple[Element, tuple[str, ...]]]:
    """Every outline below ``parent`` with the names of the category outlines around it."""
    for outline in parent:
        if _local(outline.tag) != "outline":
            continue
        yield outline, categories
        if len(outline):
            name = _attribute(outline, "title") or _attribute(outline, "text")
            yield from _outlines(outline, (*categories, name) if name else categories)


def _attribute(outline: Element, name: str) -> str:
    """An attribute by name, any case (``xmlurl`` and ``xmlUrl`` are both in the wild)."""
    for key, value in outline.attrib.items():
        if key.lower() == name.lower():
            return value
    return ""


def _local(tag: str) -> str:
    return tag.rpartition("}")[2].lower()


def _tags(names: Sequence[str]) -> tuple[str, ...]:
    """Category names as feeds-file tags: lower case, words joined by dashes, each once."""
    tags = (_TAG.sub("-", name.strip().lower()).strip("-") for name in names)
    return tuple(dict.fromkeys(tag for tag in tags if tag))


def write_opml(feeds: Sequence[FeedSpec], title: str, now: datetime) -> bytes:
    """An OPML 2.0 document of ``feeds``, flat, each with its tags as ``category``."""
    root = Element("opml", version="2.0")
    head = ElementTree.SubElement(root, "head")
    ElementTree.SubElement(head, "title").text = title
    ElementTree.SubElement(head, "dateCreated").text = format_datetime(now, usegmt=True)
    body = ElementTree.SubElement(root, "body")
    for feed in feeds:
        name = feed.name or feed.url
        outline = ElementTree.SubElement(
            body, "outline", type="rss", text=name, title=name, xmlUrl=feed.url
        )
        if feed.tags:
            outline.set("category", ",".join(feed.tags))
    ElementTree.indent(root)
    document: bytes = ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)
    return document + b"\n"
