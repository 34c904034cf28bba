"""Read the operator's feeds file (``feeds.yaml``) into FeedSpec values.

Pure apart from reading the one file: every problem is reported at once as
``file:line:col: message`` so an operator can fix them in one pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from monitor.config import parse_duration
from monitor.errors import ConfigError
from monitor.model import FeedSpec

FEED_KEYS = ("url", "name", "tags", "interval")
MIN_INTERVAL = 10.0


def load_feeds(path: Path) -> tuple[FeedSpec, ...]:
    """Load and validate the feeds file; raise ConfigError listing every problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            "MONITOR_FEEDS", f"cannot read feeds file {path}: {exc.strerror}"
        ) from exc
    yaml = YAML(typ="rt", pure=True)
    yaml.allow_duplicate_keys = False
    try:
        document = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise ConfigError(
            "MONITOR_FEEDS", f"{path}:{line}:{column}: {exc.problem or exc.context}"
        ) from exc
    problems: list[str] = []
    feeds = _read_document(document, str(path), problems)
    if problems:
        raise ConfigError("MONITOR_FEEDS", "\n".join(problems))
    return feeds


def _read_document(document: Any, file: str, problems: list[str]) -> tuple[FeedSpec, ...]:
    entries: Any = document.get("feeds") if isinstance(document, CommentedMap) else document
    if isinstance(document, CommentedMap):
        for key in document:
            if key != "feeds":
                line, column = document.lc.key(key)
                problems.append(
                    f"{file}:{line + 1}:{column + 1}: unknown key {key!r} (expected 'feeds')"
                )
    if not isinstance(entries, CommentedSeq):
        problems.append(f"{file}:1:1: expected a list of feeds under 'feeds:'")
        return ()
    feeds: list[FeedSpec] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(entries):
        line, column = entries.lc.item(index)
        where = f"{file}:{line + 1}:{column + 1}"
        if isinstance(entry, str):
            entry = CommentedMap(url=entry)
            entry.lc.line, entry.lc.col = line, column
        if not isinstance(entry, CommentedMap):
            problems.append(f"{where}: each feed is a URL or a mapping with 'url'")
            continue
        spec = _read_feed(entry, file, where, problems)
        if spec is None:
            continue
        if spec.url in seen:
            problems.append(f"{where}: duplicate feed {spec.url} (first at line {seen[spec.url]})")
            continue
        seen[spec.url] = line + 1
        feeds.append(spec)
    return tuple(feeds)


def _read_feed(entry: CommentedMap, file: str, where: str, problems: list[str]) -> FeedSpec | None:
    def at(key: str) -> str:
        try:
            line, column = entry.lc.value(key)
        except KeyError:
            return where
        return f"{file}:{line + 1}:{column + 1}"

    before = len(problems)
    for key in entry:
        if key not in FEED_KEYS:
            line, column = entry.lc.key(key)
            problems.append(
                f"{file}:{line + 1}:{column + 1}: unknown key {key!r} "
                f"(feeds take {', '.join(FEED_KEYS)})"
            )
    url = entry.get("url")
    if not isinstance(url, str) or not url.strip():
        problems.append(f"{where}: feed has no 'url'")
        return None
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        problems.append(f"{at('url')}: {url!r} is not an http(s) URL")
    name = entry.get("name", "")
    if not isinstance(name, str):
        problems.append(f"{at('name')}: 'name' must be text")
        name = ""
    tags = entry.get("tags", [])
    if isinstance(tags, str):
        tags = [tags]
    if not isinstance(tags, Sequence) or not all(isinstance(tag, str) for tag in tags):
        problems.append(f"{at('tags')}: 'tags' must be a list of words")
        tags = []
    interval: float | None = None
    if "interval" in entry:
        try:
            interval = parse_duration(entry["interval"])
        except ValueError as exc:
            problems.append(f"{at('interval')}: {exc} (got {entry['interval']!r})")
        else:
            if interval < MIN_INTERVAL:
                problems.append(f"{at('interval')}: interval must be at least {MIN_INTERVAL:g}s")
    if len(problems) > before:
        return None
    return FeedSpec(url=url, name=name.strip(), tags=tuple(tags), interval=interval)
