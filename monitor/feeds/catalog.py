"""Read the operator's feeds file (``feeds.yaml``) into FeedSpec values.

Pure apart from reading the one file: every problem is reported at once as
``file:line:col: message`` so an operator can fix them in one pass. The YAML is read by
monitor.yamlsource, the rule files' reader: plain values stay text, duplicate keys and tags are
reported, and a syntax error comes with a hint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from monitor.config import parse_duration
from monitor.errors import ConfigError
from monitor.model import FeedSpec
from monitor.yamlsource import Kind, PathKey, Position, SourceMap, YamlProblem, read_yaml

FEED_KEYS = ("url", "name", "tags", "interval")
MIN_INTERVAL = 10.0
KIND = Kind("feeds file", escaped="values with a backslash")


def load_feeds(path: Path) -> tuple[FeedSpec, ...]:
    """Load and validate the feeds file; raise ConfigError listing every problem."""
    file = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            "MONITOR_FEEDS", f"cannot read feeds file {path}: {exc.strerror}"
        ) from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        where = _located(file, Position(1, 1), f"not UTF-8 text (byte {exc.start})")
        raise ConfigError("MONITOR_FEEDS", f"{where} (save the file as UTF-8)") from exc
    try:
        document, source = read_yaml(text, KIND)
    except YamlProblem as exc:
        raise ConfigError("MONITOR_FEEDS", _problem(file, exc)) from exc
    # Problems that leave the file readable (a duplicate key keeps its first value) come
    # first, then whatever the values themselves get wrong.
    problems = [_problem(file, problem) for _, problem in source.problems]
    feeds = _read_document(document, _Places(file, source), problems)
    if problems:
        raise ConfigError("MONITOR_FEEDS", "\n".join(problems))
    return feeds


def url_problem(url: str) -> str | None:
    """What is wrong with a feed URL, or None: it must be http(s) with a host."""
    try:
        parts = urlsplit(url)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:  # e.g. a bracketed host that is no IPv6 address
        valid = False
    return None if valid else f"{url!r} is not an http(s) URL"


def _located(file: str, where: Position, message: str) -> str:
    return f"{file}:{where.line}:{where.column}: {message}"


def _problem(file: str, problem: YamlProblem) -> str:
    text = _located(file, problem.position, problem.message)
    return f"{text} ({problem.hint})" if problem.hint else text


class _Places:
    """Messages located at a value or a key of the feeds file, by path."""

    def __init__(self, file: str, source: SourceMap) -> None:
        self._file = file
        self._source = source

    def value(self, path: PathKey, message: str) -> str:
        return _located(self._file, self._source.at(path), message)

    def key(self, path: PathKey, message: str) -> str:
        return _located(self._file, self._source.key(path), message)

    def line(self, path: PathKey) -> int:
        return self._source.at(path).line


def _read_document(document: Any, places: _Places, problems: list[str]) -> tuple[FeedSpec, ...]:
    entries: Any = document
    base: PathKey = ()
    if isinstance(document, dict):
        entries, base = document.get("feeds"), ("feeds",)
        for key in document:
            if key != "feeds":
                problems.append(places.key((key,), f"unknown key {key!r} (expected 'feeds')"))
    if not isinstance(entries, list):
        problems.append(places.value((), "expected a list of feeds under 'feeds:'"))
        return ()
    feeds: list[FeedSpec] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(entries):
        path = (*base, index)
        if isinstance(entry, str):
            entry = {"url": entry}  # its keys are located at the entry itself
        if not isinstance(entry, dict):
            problems.append(places.value(path, "each feed is a URL or a mapping with 'url'"))
            continue
        spec = _read_feed(entry, path, places, problems)
        if spec is None:
            continue
        if spec.url in seen:
            problems.append(
                places.value(path, f"duplicate feed {spec.url} (first at line {seen[spec.url]})")
            )
            continue
        seen[spec.url] = places.line(path)
        feeds.append(spec)
    return tuple(feeds)


def _read_feed(
    entry: dict[str, Any], path: PathKey, places: _Places, problems: list[str]
) -> FeedSpec | None:
    def at(key: str, message: str) -> str:
        return places.value((*path, key), message)

    before = len(problems)
    for key in entry:
        if key not in FEED_KEYS:
            problems.append(
                places.key((*path, key), f"unknown key {key!r} (feeds take {', '.join(FEED_KEYS)})")
            )
    url = entry.get("url")
    if not isinstance(url, str) or not url.strip():
        problems.append(places.value(path, "feed has no 'url'"))
        return None
    url = url.strip()
    problem = url_problem(url)
    if problem is not None:
        problems.append(at("url", problem))
    name = entry.get("name", "")
    if not isinstance(name, str):
        problems.append(at("name", "'name' must be text"))
        name = ""
    tags = entry.get("tags", [])
    if isinstance(tags, str):
        tags = [tags]
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        problems.append(at("tags", "'tags' must be a list of words"))
        tags = []
    interval: float | None = None
    if "interval" in entry:
        try:
            interval = parse_duration(entry["interval"])
        except ValueError as exc:
            problems.append(at("interval", f"{exc} (got {entry['interval']!r})"))
        else:
            if interval < MIN_INTERVAL:
                problems.append(at("interval", f"interval must be at least {MIN_INTERVAL:g}s"))
    if len(problems) > before:
        return None
    return FeedSpec(url=url, name=name.strip(), tags=tuple(tags), interval=interval)
