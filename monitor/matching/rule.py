"""Validated rules as frozen values: what the loader produces and the compiler consumes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from monitor.matching.condition import Condition, FieldName, Terms
from monitor.model import Severity

DEFAULT_FIELDS: tuple[FieldName, ...] = ("title", "summary")  # searched by unscoped terms


@dataclass(frozen=True, slots=True)
class Term:
    """One term of a list (or an inline phrase), as the author wrote it."""

    text: str  # the phrase (with a trailing '*' for a prefix) or the regex
    kind: Literal["phrase", "regex"] = "phrase"
    case_sensitive: bool = False
    exact: bool = False
    list_name: str | None = None  # None for an inline phrase in a condition


@dataclass(frozen=True, slots=True)
class Sources:
    allow_domains: tuple[str, ...] = ()
    deny_domains: tuple[str, ...] = ()
    allow_tags: tuple[str, ...] = ()
    deny_tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Delivery:
    """How a rule's matches reach Slack: at once (the default), or in a digest on a schedule.

    ``digest`` is a crontab line read in ``timezone``; ``max_per_hour`` caps the rule's
    immediate alerts, the rest going out as one summary (#9).
    """

    digest: str | None = None
    timezone: str = "UTC"
    max_per_hour: int | None = None


@dataclass(frozen=True, slots=True)
class Example:
    """An example article a rule must (or must not) match; `line` is where it is written."""

    should_match: bool
    line: int
    column: int
    title: str = ""
    summary: str = ""
    content: str = ""
    authors: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    link: str | None = None
    feed: str = ""
    tags: tuple[str, ...] = ()
    language: str | None = None

    @property
    def label(self) -> str:
        """Short text naming the example in messages."""
        text = self.title or self.summary or self.content
        return text if len(text) <= 60 else text[:57] + "..."


@dataclass(frozen=True, slots=True)
class Rule:
    """A validated rule; `lists` holds every term list its condition refers to, resolved."""

    id: str
    title: str
    condition: Condition
    lists: Mapping[str, tuple[Term, ...]]
    file: str
    line: int
    description: str = ""
    severity: Severity = "medium"
    channels: tuple[str, ...] = ()  # none: the severity's channel, else the default channel
    tags: tuple[str, ...] = ()
    owner: str | None = None
    enabled: bool = True
    references: tuple[str, ...] = ()
    fields: tuple[FieldName, ...] = DEFAULT_FIELDS
    sources: Sources = field(default_factory=Sources)
    languages: tuple[str, ...] = ()
    examples: tuple[Example, ...] = ()
    delivery: Delivery = field(default_factory=Delivery)

    @property
    def channel(self) -> str | None:
        """The route as a Match carries it: the channels separated by spaces, None for none."""
        return " ".join(self.channels) or None

    def terms_of(self, leaf: Terms) -> tuple[Term, ...]:
        """The terms a leaf of the condition stands for: its list, or its inline phrase."""
        return self.lists[leaf.name] if leaf.name is not None else (Term(str(leaf.phrase)),)
