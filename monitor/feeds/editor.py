"""Edit the feeds file as a person would: add and remove entries, keep everything else.

The feeds file is the one source of truth for which feeds are watched (the database follows
it), so `monitor feeds add|remove|import` change the file. ruamel.yaml's round trip keeps the
operator's comments, order and indentation; only the entries added or removed change. Pure:
text in, text out. The caller checks the result with `load_feeds` before it replaces the file.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.util import load_yaml_guess_indent

from monitor.model import FeedSpec


def add_feeds(text: str, specs: Sequence[FeedSpec], intervals: Sequence[str | None]) -> str:
    """``text`` with one entry per spec appended to its feeds, ``intervals`` as written."""
    document, yaml = _load(text)
    entries = _entries(document)
    if entries is None:
        document = CommentedMap() if document is None else document
        document["feeds"] = entries = CommentedSeq()
    for spec, interval in zip(specs, intervals, strict=True):
        entry = CommentedMap(url=spec.url)
        if spec.name:
            entry["name"] = spec.name
        if spec.tags:
            tags = CommentedSeq(spec.tags)
            tags.fa.set_flow_style()
            entry["tags"] = tags
        if interval is not None:
            entry["interval"] = interval
        entries.append(entry)
    return _dump(yaml, document)


def remove_feed(text: str, url: str) -> str | None:
    """``text`` without the entry of ``url``; None when no entry has that URL."""
    document, yaml = _load(text)
    entries = _entries(document) or []
    for index, entry in enumerate(entries):
        given = entry.get("url") if isinstance(entry, dict) else entry
        if isinstance(given, str) and given.strip() == url:
            if index > 0:
                _keep_comments_after(entry, entries[index - 1])
            del entries[index]
            return _dump(yaml, document)
    return None


def _keep_comments_after(removed: Any, previous: Any) -> None:
    """Give the lines after ``removed`` (the next section's comment) to ``previous``.

    ruamel.yaml keeps a comment with the value before it, so deleting an entry would delete
    the comment that heads the entries after it. Its own end-of-line comment goes with it.
    """
    after = _after_last_value(removed)
    if after is None or "\n" not in after.value:
        return
    lines = after.value[after.value.index("\n") + 1 :]  # drop its end-of-line comment
    mine = _after_last_value(previous)
    if mine is None:
        if not isinstance(previous, CommentedMap) or not previous:
            return
        previous.ca.items[list(previous)[-1]] = [None, None, after, None]
        after.value = "\n" + lines
        return
    own, newline, _ = mine.value.partition("\n")
    mine.value = own + newline + lines if newline else own + "\n" + lines


def _after_last_value(entry: Any) -> Any:
    """The comment token after an entry mapping's last value, if it has one."""
    if not isinstance(entry, CommentedMap) or not entry:
        return None
    tokens = entry.ca.items.get(list(entry)[-1])
    return tokens[2] if tokens and len(tokens) > 2 else None


def _load(text: str) -> tuple[Any, YAML]:
    """The round-trip document, and a dumper set to the file's own indentation."""
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never fold a long URL onto two lines
    document, indent, offset = load_yaml_guess_indent(text, yaml=yaml)
    if indent is None:  # nothing to go by: the shipped feeds file's style
        indent, offset = 4, 2
    yaml.indent(mapping=max(indent - (offset or 0), 2), sequence=indent, offset=offset or 0)
    return document, yaml


def _entries(document: Any) -> Any:
    """The list of feeds: under ``feeds:``, or the document itself (a bare list)."""
    if isinstance(document, list):
        return document
    if isinstance(document, dict):
        return document.get("feeds")
    return None


def _dump(yaml: YAML, document: Any) -> str:
    out = io.StringIO()
    yaml.dump(document, out)
    return out.getvalue()
