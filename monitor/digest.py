"""Digests and summaries: many held matches for one channel as one Slack message (#9).

A rule's digest (on its schedule), the matches a throttle held back in an hour, and
those held through a channel's quiet hours all go out as one message listing the
stories, each headline linked. Grouping into stories is `group_stories`, a pure
function of a key (the exact headline today; a story cluster id when articles carry
one). Rendering is pure and stays within Slack's Block Kit limits; `send_digests` is
the one edge, and it marks a digest sent only after Slack accepted it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, Protocol

from monitor.errors import DeliveryError, RetryLaterError
from monitor.model import Article, Match
from monitor.notify.base import AlertSender
from monitor.notify.render import SlackMessage, escape_mrkdwn, safe_link
from monitor.schedule import delivery_retry_at

if TYPE_CHECKING:
    from collections.abc import Iterable

log = logging.getLogger(__name__)

DigestKind = Literal["digest", "throttle", "quiet"]
# Slack's limits (render.py holds the same), with room for the header and the closing line.
MAX_BLOCKS = 50
MAX_SECTION = 3000
MAX_HEADER = 150
MAX_TOTAL = 38_000  # of Slack's 40,000 characters a message
MAX_TITLE = 300  # characters of one headline in a list
# Quiet hours end: this many held alerts or fewer go out one by one, more as one summary.
QUIET_SUMMARY_FROM = 4
# The characters render.py strips from feed text: control, and bidi that reorders it.
_INVISIBLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


@dataclass(frozen=True, slots=True)
class HeldItem:
    """A held match with its article, as a digest lists it."""

    article_id: int
    article: Article
    match: Match


@dataclass(frozen=True, slots=True)
class Story:
    """Articles that tell one story: the first published leads; the others are counted."""

    key: str
    items: tuple[HeldItem, ...]

    @property
    def lead(self) -> HeldItem:
        return self.items[0]


def headline_key(item: HeldItem) -> str:
    """One story per exact headline (spaces collapsed): the grouping until stories cluster."""
    return " ".join(item.article.title.split())


def group_stories(
    items: Iterable[HeldItem], key: Callable[[HeldItem], str] = headline_key
) -> tuple[Story, ...]:
    """Items grouped by ``key``, each story's items and the stories in published order."""
    ordered = sorted(items, key=lambda item: (item.article.published, item.article_id))
    groups: dict[str, list[HeldItem]] = {}
    for item in ordered:
        groups.setdefault(key(item), []).append(item)
    return tuple(Story(k, tuple(group)) for k, group in groups.items())


@dataclass(frozen=True, slots=True)
class PendingDigest:
    """A digest to send: its channel ("" is the default), what it is, the matches it holds."""

    id: int
    channel: str
    kind: DigestKind
    rule_id: str | None
    attempts: int
    items: tuple[HeldItem, ...]


def render_digest(
    digest: PendingDigest, key: Callable[[HeldItem], str] = headline_key
) -> SlackMessage:
    """The digest as Block Kit: a header, what it holds, then one linked line per story."""
    stories = group_stories(digest.items, key)
    rules = _rule_counts(digest.items)
    header = _clip(_plain_header(digest, rules), MAX_HEADER)
    intro = _intro(digest, rules, len(stories))
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": header, "emoji": False}},
        _section(intro),
    ]
    used = _width(header) + _width(intro)
    lines: list[str] = []
    chunk = 0
    shown = 0
    for story in stories:
        line = _story_line(story)
        width = _width(line) + 1
        full = chunk + width > MAX_SECTION
        if full and (len(blocks) >= MAX_BLOCKS - 2 or used + width > MAX_TOTAL):
            break
        if full:
            blocks.append(_section("\n".join(lines)))
            lines, chunk = [], 0
        if used + width > MAX_TOTAL:
            break
        lines.append(line)
        chunk += width
        used += width
        shown += 1
    if lines:
        blocks.append(_section("\n".join(lines)))
    if shown < len(stories):
        rest = len(stories) - shown
        more = f"…and {rest} more {'story' if rest == 1 else 'stories'}: `monitor matches list`"
        blocks.append({"type": "context", "elements": [_mrkdwn(more)]})
    return SlackMessage(
        text=escape_mrkdwn(_plain_summary(digest, rules, len(stories))), blocks=tuple(blocks)
    )


def _rule_counts(items: Sequence[HeldItem]) -> dict[str, tuple[str, int]]:
    """rule id -> (title, matches), most matches first."""
    counts: dict[str, tuple[str, int]] = {}
    for item in items:
        title, count = counts.get(item.match.rule_id, (item.match.rule_title, 0))
        counts[item.match.rule_id] = (title, count + 1)
    return dict(sorted(counts.items(), key=lambda pair: (-pair[1][1], pair[0])))


def _plain_header(digest: PendingDigest, rules: dict[str, tuple[str, int]]) -> str:
    titles = ", ".join(_one_line(title) for title, _ in rules.values()) or "(no rule)"
    if digest.kind == "digest":
        return f"Digest: {titles}"
    if digest.kind == "throttle":
        return f"More matches this hour: {titles}"
    return f"While the channel was quiet: {titles}"


def _plain_summary(digest: PendingDigest, rules: dict[str, tuple[str, int]], stories: int) -> str:
    matches = _plural(len(digest.items), "match", "matches")
    return f"{_plain_header(digest, rules)} — {matches} in {_plural(stories, 'story', 'stories')}"


def _intro(digest: PendingDigest, rules: dict[str, tuple[str, int]], stories: int) -> str:
    parts = [
        f"*{_escaped(title, 100)}* `{_escaped(rule_id, 100).replace('`', chr(39))}`: {count}"
        for rule_id, (title, count) in rules.items()
    ][:20]
    per_rule = "; ".join(parts) + (" …" if len(rules) > 20 else "")
    count = _plural(len(digest.items), "match", "matches")
    told = _plural(stories, "story", "stories")
    if digest.kind == "throttle":
        more = "more match" if len(digest.items) == 1 else "more matches"
        lead = f"…and {len(digest.items)} {more} this hour (over the hourly limit), in {told}"
    elif digest.kind == "quiet":
        lead = f"{count} held during quiet hours, in {told}"
    else:
        lead = f"{count} since the last digest, in {told}"
    return f"{lead}. {per_rule}"


def _story_line(story: Story) -> str:
    article = story.lead.article
    title = _escaped(_one_line(article.title), MAX_TITLE) or "(no title)"
    link = safe_link(article.link)
    headline = f"<{link}|{title}>" if link else title
    source = _escaped(_one_line(article.feed_name) or article.feed_url, 100)
    line = f"• {headline} — {source}"
    if len(story.items) > 1:
        line += f" · {len(story.items)} articles"
    return line


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": _mrkdwn(text)}


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def _one_line(text: str) -> str:
    """Plain text on one line, without control or bidi characters (as render.py strips)."""
    return " ".join(_INVISIBLE.sub("", text).split())


def _escaped(text: str, limit: int) -> str:
    """Cut the plain text first, then escape: an escape sequence is never cut."""
    return escape_mrkdwn(_clip(text, limit))


def _clip(text: str, limit: int) -> str:
    """At most ``limit`` UTF-16 units (an ellipsis included); never splits a character."""
    if _width(text) <= limit:
        return text
    out: list[str] = []
    used = 1
    for char in text:
        used += _width(char)
        if used > limit:
            break
        out.append(char)
    return "".join(out).rstrip() + "…"


def _width(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


class DigestStore(Protocol):
    """The part of the store that sends digests (the real one: `store.Store`)."""

    def claim_digests(self, now: datetime, lease: timedelta, limit: int) -> list[PendingDigest]: ...

    def mark_digest_sent(self, digest_id: int, now: datetime, reference: str | None) -> None: ...

    def mark_digest_failed(
        self, digest_id: int, now: datetime, error: str, retry_at: datetime | None
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class DigestReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    matches: int = 0  # in the digests sent


MAX_DIGESTS_A_RUN = 500


def send_digests(
    store: DigestStore,
    sender: AlertSender,
    *,
    default_channel: str | None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    lease: timedelta = timedelta(minutes=5),
) -> DigestReport:
    """Send every digest that is due; each is marked sent only after Slack accepted it."""
    sent = retrying = failed = matches = 0
    for digest in store.claim_digests(clock(), lease, MAX_DIGESTS_A_RUN):
        channel = digest.channel or default_channel or ""
        try:
            reference = sender.send(channel, render_digest(digest))
        except DeliveryError as exc:
            retry_at = None
            if not exc.permanent:
                wait = exc.retry_after if isinstance(exc, RetryLaterError) else None
                retry_at = delivery_retry_at(clock(), digest.attempts, wait)
            store.mark_digest_failed(digest.id, clock(), str(exc), retry_at)
            log.warning(
                "digest %d to %s %s: %s",
                digest.id,
                channel,
                "failed permanently"
                if retry_at is None
                else f"will be retried at {retry_at:%H:%M:%S}",
                exc,
            )
            if retry_at is None:
                failed += 1
            else:
                retrying += 1
            continue
        store.mark_digest_sent(digest.id, clock(), reference)
        sent += 1
        matches += len(digest.items)
    return DigestReport(sent, retrying, failed, matches)
