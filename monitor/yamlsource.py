"""Read one YAML file into plain data plus the line and column of every node.

The one YAML reader of media-monitor: the rule files (through monitor.matching.yamlsource) and
the feeds file. Its messages name the file by its `Kind`.

Built from ruamel.yaml's event stream so that nothing is ever constructed from a tag: plain
scalars stay the exact text written (YAML 1.2 spirit: `NO`, `on`, `0755`, `1:30` are strings;
the validators decide what a boolean is), only `null`, `~` and empty become None. Duplicate keys,
non-standard tags, several documents and alias bombs are reported, not obeyed. A duplicate key
does not stop the reading (the first value is kept), so the file's other problems are reported
with it; a syntax error does, and its hint names the likely fix.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.events import (
    AliasEvent,
    DocumentStartEvent,
    Event,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)

MAX_NODES = 100_000  # after alias expansion; a 1 MiB rule file or feeds file stays far below
_NULLS = {"", "~", "null", "Null", "NULL"}
_ALLOWED_TAGS = {"tag:yaml.org,2002:str", "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq", "!"}

PathKey = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Position:
    line: int  # 1-based
    column: int  # 1-based


@dataclass(frozen=True, slots=True)
class Scalar:
    """How a string value was written, to locate offsets inside it (conditions)."""

    position: Position
    style: str | None  # None (plain), "'", '"', "|", ">"


@dataclass(slots=True)
class SourceMap:
    """Where each value (by path) and each mapping key starts in the file."""

    values: dict[PathKey, Position] = field(default_factory=dict)
    keys: dict[PathKey, Position] = field(default_factory=dict)
    scalars: dict[PathKey, Scalar] = field(default_factory=dict)
    problems: list[tuple[PathKey, YamlProblem]] = field(default_factory=list)  # not fatal

    def at(self, path: PathKey) -> Position:
        """Position of the value at `path`, or of its nearest located ancestor."""
        while path not in self.values and path:
            path = path[:-1]
        return self.values.get(path, Position(1, 1))

    def key(self, path: PathKey) -> Position:
        return self.keys.get(path) or self.at(path)


@dataclass(frozen=True, slots=True)
class Kind:
    """What sort of file is read, in the words of its messages."""

    noun: str  # "rule file": "only one YAML document per rule file"
    escaped: str  # what holds backslashes there: "write regexes in single quotes"


class YamlProblem(Exception):
    def __init__(self, position: Position, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.position = position
        self.message = message
        self.hint = hint


def read_yaml(text: str, kind: Kind) -> tuple[Any, SourceMap]:
    """Parse one YAML document; raise YamlProblem with the position of a fatal problem.

    Problems that leave the document readable (duplicate keys, list items indented less than
    the next one) are in `SourceMap.problems`, with the path of the value they spoil.

    Events come from libyaml (ruamel.yaml.clib), much faster than ruamel's pure-Python
    parser, with the same events and positions. A file libyaml rejects is parsed again by the
    pure parser, whose messages are the ones `_describe` knows how to explain.
    """
    try:
        return read_events(text, kind, pure=False)
    except MarkedYAMLError:
        try:
            return read_events(text, kind, pure=True)
        except MarkedYAMLError as exc:
            raise _describe(exc, text.splitlines(), kind) from None


def read_events(text: str, kind: Kind, *, pure: bool) -> tuple[Any, SourceMap]:
    """`read_yaml` with one parser: libyaml's (`pure=False`) or ruamel's own; raises its errors."""
    source = SourceMap()
    events = YAML(typ="safe", pure=pure).parse(io.StringIO(text))
    return _Reader(events, source, text.splitlines(), kind).document(), source


def _describe(exc: MarkedYAMLError, lines: list[str], kind: Kind) -> YamlProblem:
    mark = exc.problem_mark or exc.context_mark
    position = Position(mark.line + 1, mark.column + 1) if mark else Position(1, 1)
    problem = str(exc.problem or exc.context or "invalid YAML")
    if "'\\t'" in problem:
        return YamlProblem(position, "tab character in indentation", "indent with spaces")
    message = f"invalid YAML: {problem}"
    if exc.context and exc.problem:
        message += f" ({exc.context})"
    line = lines[position.line - 1] if position.line <= len(lines) else ""
    items = _misaligned_items(lines, position.line)
    if items is not None:
        return _misaligned_problem(lines, *items)
    hint = "check the indentation of this line and the one before"
    if "unknown escape character" in problem:
        hint = (
            f"write {kind.escaped} in single quotes: {_single_quoted(lines, exc.context_mark)} "
            "(in double quotes a backslash starts a YAML escape)"
        )
    elif "found '<scalar>'" in problem and _after_quotes(line, position.column - 1):
        key, _, value = line.partition(": ")
        quoted = "'" + value.strip().replace("'", "''") + "'"
        hint = f"quote the whole value with single quotes: {key.strip()}: {quoted}"
    elif "mapping values are not allowed" in problem:
        hint = "quote this value: ': ' inside a plain value starts a mapping"
        above = _line_above(lines, position.line - 1)
        inside = ": " in line[: position.column - 1]
        if not inside and above is not None and _key_column(line) > _key_column(lines[above]):
            hint = _align_hint(lines, position.line - 1, above)
    elif "found '<block mapping start>'" in problem:
        sibling = _sibling_above(lines, position.line - 1)
        if sibling is not None:
            hint = _align_hint(lines, position.line - 1, sibling)
    return YamlProblem(position, message, hint)


def _single_quoted(lines: list[str], start: Any) -> str:
    """The double-quoted value that starts at `start`, written in single quotes."""
    text = lines[start.line][start.column + 1 :] if start and start.line < len(lines) else ""
    value = text.split('"', 1)[0]
    if not value or text == value or value.endswith("\\"):
        return "'\\d+'"  # not on one line: an example
    return "'" + value.replace("'", "''") + "'"


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _key_column(line: str) -> int:
    """Where the key of a `key:` or `- key:` line starts (0-based)."""
    text = line.lstrip(" ")
    while text.startswith("- "):
        text = text[2:].lstrip(" ")
    return len(line) - len(text)


def _key(line: str) -> str:
    return line[_key_column(line) :].split(":", 1)[0]


def _align_hint(lines: list[str], index: int, other: int) -> str:
    """Name two keys of one mapping that are indented differently."""
    width = _key_column(lines[index])
    return (
        f"'{_key(lines[index])}' is indented {width} space{'s' * (width != 1)} but "
        f"'{_key(lines[other])}' on line {other + 1} is at {_key_column(lines[other])}: "
        "give the keys of one mapping the same indentation"
    )


def _after_quotes(line: str, column: int) -> bool:
    """True when the value before `column` is a complete quoted string (`"a" and b`)."""
    _, _, value = line[:column].partition(": ")
    value = value.strip()
    return len(value) >= 2 and value[0] in "'\"" and value[-1] == value[0]


def _shown(lines: list[str], start: int, stop: int) -> list[int]:
    """Indexes of the lines in [start, stop) that hold more than blanks or a comment."""
    return [
        number
        for number in range(start, min(stop, len(lines)))
        if lines[number].strip() and not lines[number].lstrip().startswith("#")
    ]


def _line_above(lines: list[str], index: int) -> int | None:
    """The nearest line above `index` that holds a `key:`, skipping blanks and comments."""
    above = _shown(lines, 0, index)
    return above[-1] if above and ":" in lines[above[-1]] else None


def _sibling_above(lines: list[str], index: int) -> int | None:
    """The `key:` line that `index` most likely belongs beside, when its value came between.

    YAML reports a key indented between two levels only there, after the whole value of the
    key above. Its sibling is the shallowest key of that value if it is shallower than the
    key (the key left that mapping too early), else the key that opened the value.
    """
    width = _indent(lines[index])
    between: list[int] = []
    for number in reversed(_shown(lines, 0, index)):
        if _indent(lines[number]) >= width:
            between.append(number)
            continue
        text = lines[number].strip()
        if not text.endswith(":") or text.startswith("- ") or not between:
            return None
        level = min(_indent(lines[n]) for n in between)
        keys = [n for n in between if _indent(lines[n]) == level]
        left = keys[-1]  # the first of them in the file
        if ":" in lines[left] and not lines[left].lstrip().startswith("- "):
            return left
        return number
    return None


def _misaligned_problem(lines: list[str], first: int, second: int) -> YamlProblem:
    """Blame the item that differs from the items after it: the first if they agree."""
    after = _shown(lines, second + 1, len(lines))
    following = lines[after[0]] if after else ""
    if following.lstrip().startswith("- ") and _indent(following) == _indent(lines[second]):
        return YamlProblem(
            Position(first + 1, _indent(lines[first]) + 1),
            "list item is indented less than the item after it, "
            "so YAML reads the items below it as more of its text",
            f"indent it like the items below it ({_indent(lines[second])} spaces)",
        )
    return YamlProblem(
        Position(second + 1, _indent(lines[second]) + 1),
        "list item is indented more than the item before it, "
        "so YAML reads it as more of that item's text",
        f"indent it like the item above it ({_indent(lines[first])} spaces)",
    )


def _misaligned_items(lines: list[str], end: int) -> tuple[int, int] | None:
    """A plain `- item` line before line `end` and the deeper `- item` that continues it.

    `   - a` followed by `    - b` makes one scalar "a - b": YAML reports it only where the
    text runs into a `key:`, often many lines later, or not at all.
    """
    shown = _shown(lines, 0, end)
    for first, second in itertools.pairwise(shown):
        head, nxt = lines[first].lstrip(), lines[second].lstrip()
        if (
            head.startswith("- ")
            and nxt.startswith("- ")
            and _indent(lines[second]) > _indent(lines[first])
            and not head.rstrip().endswith(":")
            and ": " not in head
            and all(_indent(lines[n]) > _indent(lines[first]) for n in shown if n > first)
        ):
            return first, second
    return None


def _position(event: Event) -> Position:
    return Position(event.start_mark.line + 1, event.start_mark.column + 1)


class _Reader:
    def __init__(
        self, events: Iterator[Event], source: SourceMap, lines: list[str], kind: Kind
    ) -> None:
        self._events = events
        self._kind = kind.noun
        self._lines = lines
        self._source = source
        self._anchors: dict[str, tuple[Any, int]] = {}
        self._nodes = 0

    def document(self) -> Any:
        data: Any = None
        documents = 0
        for event in self._events:
            if isinstance(event, DocumentStartEvent):
                documents += 1
                if documents > 1:
                    raise YamlProblem(
                        _position(event),
                        f"only one YAML document per {self._kind}",
                        "remove the '---' line or split the file",
                    )
            elif isinstance(event, StreamEndEvent):
                break
            elif not isinstance(
                event, (ScalarEvent, MappingStartEvent, SequenceStartEvent, AliasEvent)
            ):
                continue
            else:
                data, _ = self._node(event, ())
        return data

    def _count(self, event: Event, nodes: int) -> None:
        self._nodes += nodes
        if self._nodes > MAX_NODES:
            raise YamlProblem(
                _position(event),
                f"more than {MAX_NODES} values after expanding aliases",
                "this looks like an alias bomb; remove repeated aliases",
            )

    def _check_tag(self, event: Event) -> None:
        tag = getattr(event, "tag", None)
        if tag is not None and str(tag) not in _ALLOWED_TAGS:
            shown = str(tag).replace("tag:yaml.org,2002:", "!!")
            raise YamlProblem(
                _position(event),
                f"tag '{shown}' is not allowed in {self._kind}s",
                f"remove it: {self._kind}s hold plain strings, lists and mappings",
            )

    def _node(self, event: Event, path: PathKey) -> tuple[Any, int]:
        """Build the value starting at `event`; return it and its node count."""
        self._source.values[path] = _position(event)
        if isinstance(event, AliasEvent):
            anchor = str(event.anchor)
            if anchor not in self._anchors:
                raise YamlProblem(_position(event), f"unknown alias '*{anchor}'")
            shared, size = self._anchors[anchor]
            self._count(event, size)
            return shared, size
        self._check_tag(event)
        self._count(event, 1)
        value: Any
        size = 1
        if isinstance(event, ScalarEvent):
            style = event.style or None  # libyaml gives "" for plain, ruamel's parser None
            plain = style is None and not event.tag
            value = None if plain and event.value in _NULLS else event.value
            self._source.scalars[path] = Scalar(_position(event), style)
            first, last = event.start_mark.line, event.end_mark.line
            items = _misaligned_items(self._lines, last + 1) if style is None else None
            if items is not None and items[0] == first < last:
                self._source.problems.append((path, _misaligned_problem(self._lines, *items)))
        elif isinstance(event, SequenceStartEvent):
            value = []
            for item in self._until(SequenceEndEvent):
                item_value, item_size = self._node(item, (*path, len(value)))
                value.append(item_value)
                size += item_size
        else:
            value, size = self._mapping(event, path)
        anchor_name = getattr(event, "anchor", None)
        if anchor_name:
            self._anchors[str(anchor_name)] = (value, size)
        return value, size

    def _mapping(self, start: Event, path: PathKey) -> tuple[dict[str, Any], int]:
        value: dict[str, Any] = {}
        size = 1
        first_seen: dict[str, Position] = {}
        keys = self._until(MappingEndEvent)
        for key_event in keys:
            where = _position(key_event)
            if not isinstance(key_event, ScalarEvent) or key_event.value is None:
                raise YamlProblem(where, "mapping keys must be plain words", "quote this key")
            self._check_tag(key_event)
            key = str(key_event.value)
            if key in first_seen:
                self._source.problems.append(
                    (
                        (*path, key),
                        YamlProblem(
                            where,
                            f"duplicate key '{key}' (first at line {first_seen[key].line})",
                            "remove one of them",
                        ),
                    )
                )
                self._skip(next(keys))
                continue
            first_seen[key] = where
            self._source.keys[(*path, key)] = where
            item_value, item_size = self._node(next(keys), (*path, key))
            value[key] = item_value
            size += item_size
        return value, size

    def _skip(self, event: Event) -> None:
        """Read past the value starting at `event` without keeping it (a duplicate key's)."""
        depth = int(isinstance(event, (MappingStartEvent, SequenceStartEvent)))
        while depth:
            event = next(self._events)
            if isinstance(event, (MappingStartEvent, SequenceStartEvent)):
                depth += 1
            elif isinstance(event, (MappingEndEvent, SequenceEndEvent)):
                depth -= 1

    def _until(self, end: type[Event]) -> Iterator[Event]:
        for event in self._events:
            if isinstance(event, end):
                return
            yield event
