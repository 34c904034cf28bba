"""Render one alert (an article and the rules it matched) as a Slack Block Kit message.

Pure: no I/O, no clock. Feed text is untrusted: it is stripped of control and
bidi characters and escaped for mrkdwn (exactly ``&``, ``<``, ``>``, as Slack
documents) so that a headline such as ``<!channel>`` shows as text and pings
nobody (elastalert #1497). Operator text (rule titles, terms) is escaped too.
Every Slack limit is respected by construction, so a message is never refused
for its size (alertmanager #2769).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC
from typing import Any
from urllib.parse import quote, urlsplit

from monitor.model import SEVERITIES, Article, Match, TermHit

MAX_BLOCKS = 50
MAX_HEADER = 150
MAX_SECTION = 3000
MAX_FALLBACK = 3000
MAX_SNIPPET = 300
MAX_LINK = 2000  # longer links are dropped rather than risk a refused message

SEVERITY_EMOJI = {
    "critical": ":rotating_light:",
    "high": ":red_circle:",
    "medium": ":large_orange_circle:",
    "low": ":large_blue_circle:",
    "info": ":information_source:",
}
UNKNOWN_SEVERITY_EMOJI = ":white_circle:"
NOTICE_EMOJI = ":warning:"
_SEVERITY_ORDER = SEVERITIES[::-1]  # most severe first

# Bidi embeddings/overrides/isolates and marks: they reorder what the reader sees.
_BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_INVISIBLE = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI}]")
_SPACES = re.compile(r"[\s\u2028\u2029]+")
_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
# Characters percent-encoded in links: the three that end `<url|label>`, and
# anything that is not a printable ASCII URL character.
_URL_SAFE = "!#$%&'()*+,/:;=?@[]~-._"


@dataclass(frozen=True, slots=True)
class SlackMessage:
    """A message ready for chat.postMessage or a webhook: fallback text and blocks."""

    text: str  # notification/fallback text (escaped)
    blocks: tuple[Mapping[str, Any], ...]
    reply: bool = False  # a later article of a story: a reply under its first alert (#10)
    thread_ts: str | None = None  # the first alert's Slack ts, when it has one


def escape_mrkdwn(text: str) -> str:
    """Make text literal in mrkdwn: remove control/bidi characters, escape ``& < >``."""
    cleaned = _INVISIBLE.sub("", text)
    return cleaned.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render_alert(article: Article, matches: Sequence[Match]) -> SlackMessage:
    """Build the alert for ``article``: headline, link, source, time, why each rule matched."""
    ordered = sorted(matches, key=_severity_rank)
    blocks: list[dict[str, Any]] = [_header(article), _headline(article)]
    snippet = _snippet(article)
    room = MAX_BLOCKS - len(blocks) - (1 if snippet else 0)
    if len(ordered) > room:
        shown, rest = ordered[: room - 1], ordered[room - 1 :]
        blocks.extend(_rule(match) for match in shown)
        blocks.append(_more_rules(rest))
    else:
        blocks.extend(_rule(match) for match in ordered)
    if snippet:
        blocks.append(snippet)
    return SlackMessage(text=_fallback(article, ordered), blocks=tuple(blocks))


def render_reply(article: Article, thread_ts: str | None) -> SlackMessage:
    """A later article of a story, for the thread of its first alert: "Also: <outlet>: <headline>".

    Short on purpose: the first alert already says what matched and why.
    """
    source = _escaped(_source(article), 200)
    link = safe_link(article.link)
    outlet = f"<{link}|{source}>" if link else source
    title = _escaped(_one_line(article.title), 500) or "(no title)"
    text = _escaped(f"Also: {_source(article)}: {_one_line(article.title)}", MAX_FALLBACK)
    block = _section(f"Also: *{outlet}*: {title}")
    return SlackMessage(text=text, blocks=(block,), reply=True, thread_ts=thread_ts)


def render_notice(summary: str) -> SlackMessage:
    """An operator notice (e.g. rule files that failed to reload) as a preformatted block."""
    # A run of three backticks would close the preformatted block early.
    body = _escaped(summary.strip().replace("```", "'''"), MAX_SECTION - 6) or "(empty notice)"
    lines = summary.strip().splitlines()
    first = _one_line(lines[0]) if lines else "(empty notice)"
    text = _escaped(f"media-monitor: {first}", MAX_FALLBACK - len(NOTICE_EMOJI) - 1)
    header = {"type": "plain_text", "text": "media-monitor notice", "emoji": False}
    return SlackMessage(
        text=f"{NOTICE_EMOJI} {text}",
        blocks=({"type": "header", "text": header}, _section(f"```{body}```")),
    )


def safe_link(url: str | None) -> str | None:
    """An http(s) URL that cannot break out of ``<url|label>``, or None if there is none."""
    if not url:
        return None
    try:
        parts = urlsplit(_INVISIBLE.sub("", url).strip())
    except ValueError:
        return None
    if parts.scheme.lower() not in {"http", "https"} or not parts.hostname:
        return None
    link = quote(parts.geturl(), safe=_URL_SAFE)
    return link if len(link) <= MAX_LINK else None


def _header(article: Article) -> dict[str, Any]:
    title = _clip(_one_line(article.title), MAX_HEADER) or "(no title)"
    return {"type": "header", "text": {"type": "plain_text", "text": title, "emoji": False}}


def _headline(article: Article) -> dict[str, Any]:
    title = _escaped(_one_line(article.title), 500) or "(no title)"
    link = safe_link(article.link)
    first = f"<{link}|{title}>" if link else title
    details = [f"*{_escaped(_source(article), 200)}*"]
    if article.authors:
        details.append("by " + _escaped(_one_line(", ".join(article.authors)), 200))
    details.append(_when(article))
    return _section(first + "\n" + " · ".join(details))


def _when(article: Article) -> str:
    published = article.published.astimezone(UTC)
    stamp = (
        f"<!date^{int(published.timestamp())}^{{date_short_pretty}} {{time}}"
        f"|{published:%Y-%m-%d %H:%M} UTC>"
    )
    return stamp if article.dated else f"seen {stamp} (the feed gave no date)"


def _source(article: Article) -> str:
    if article.feed_name.strip():
        return _one_line(article.feed_name)
    for url in (article.link, article.feed_url):
        host = _host(url)
        if host:
            return host
    return article.feed_url


def _host(url: str | None) -> str | None:
    try:
        host = urlsplit(url or "").hostname
    except ValueError:
        return None
    return host.removeprefix("www.") if host else None


def _rule(match: Match) -> dict[str, Any]:
    severity = _one_line(match.severity) or "unknown"
    title = _escaped(_one_line(match.rule_title), 300) or "(untitled rule)"
    head = (
        f"{_emoji(match.severity)} *{_escaped(severity.upper(), 30)}* · *{title}* "
        f"{_code(match.rule_id, 100)}"
    )
    evidence = _evidence(match.hits, MAX_SECTION - _width(head) - 1)
    return _section(head + ("\n" + evidence if evidence else ""))


def _evidence(hits: Sequence[TermHit], budget: int) -> str:
    """``term`` (as "text") in field, ...: what fired and where, cut to fit ``budget``."""
    groups: dict[tuple[str, str | None], list[TermHit]] = {}
    for hit in hits:
        groups.setdefault((hit.term, hit.list_name), []).append(hit)
    parts: list[str] = []
    used = len("Matched ")
    for index, ((term, list_name), group) in enumerate(groups.items()):
        part = _term(term, list_name, group)
        more = f" and {len(groups) - index} more terms"
        if used + _width(part) + 2 + len(more) > budget:
            parts.append(more.strip())
            break
        parts.append(part)
        used += _width(part) + 2
    return "Matched " + "; ".join(parts) if parts else ""


def _term(term: str, list_name: str | None, group: Sequence[TermHit]) -> str:
    text = _code(term, 100)
    if list_name:
        text += f" (list {_escaped(_one_line(list_name), 60)})"
    seen = [hit.text for hit in group if _one_line(hit.text).casefold() != term.casefold()]
    shown = list(dict.fromkeys(_one_line(value) for value in seen))[:3]
    if shown:
        text += " as " + ", ".join(f"“{_escaped(value, 80)}”" for value in shown)
    fields = dict.fromkeys(_one_line(hit.field) for hit in group)
    return text + " in " + ", ".join(_escaped(field, 30) for field in fields)


def _more_rules(rest: Sequence[Match]) -> dict[str, Any]:
    head = f"…and {len(rest)} more rules: "
    names: list[str] = []
    used = len(head)
    for match in rest:
        name = f"{_escaped(_one_line(match.rule_title), 100)} ({_escaped(match.severity, 20)})"
        if used + _width(name) + 2 > MAX_SECTION - 1:
            names.append("…")
            break
        names.append(name)
        used += _width(name) + 2
    return _section(head + ", ".join(names))


def _snippet(article: Article) -> dict[str, Any] | None:
    text = _escaped(_one_line(article.summary or article.content), MAX_SNIPPET)
    if not text:
        return None
    return {"type": "context", "elements": [_mrkdwn(text)]}


def _fallback(article: Article, matches: Sequence[Match]) -> str:
    emoji = _emoji(matches[0].severity) if matches else ""
    plain = f"{_one_line(article.title) or '(no title)'} — {_source(article)}"
    if matches:
        plain += " · matched " + ", ".join(_one_line(m.rule_title) for m in matches)
    text = _escaped(plain, MAX_FALLBACK - len(emoji) - 1)
    return f"{emoji} {text}" if emoji else text


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": _mrkdwn(text)}


def _mrkdwn(text: str) -> dict[str, Any]:
    # verbatim: Slack must not auto-link channel names or parse mentions in feed text.
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def _code(text: str, limit: int) -> str:
    # A backtick inside would end the code span early.
    inner = _escaped(_one_line(text).replace("`", "'"), limit)
    return f"`{inner}`" if inner else "`(empty)`"


def _emoji(severity: str) -> str:
    return SEVERITY_EMOJI.get(severity.strip().lower(), UNKNOWN_SEVERITY_EMOJI)


def _severity_rank(match: Match) -> int:
    severity = match.severity.strip().lower()
    if severity in _SEVERITY_ORDER:
        return _SEVERITY_ORDER.index(severity)
    return len(_SEVERITY_ORDER)


def _one_line(text: str) -> str:
    return _SPACES.sub(" ", _INVISIBLE.sub("", text)).strip()


def _width(text: str) -> int:
    # Counted in UTF-16 units, the stricter of the ways Slack may count an emoji.
    return len(text.encode("utf-16-le")) // 2


def _clip(text: str, limit: int) -> str:
    """Plain text cut to ``limit`` (ellipsis included), at a word boundary when one is near."""
    if _width(text) <= limit:
        return text
    out: list[str] = []
    used = 1
    for char in text:
        used += _width(char)
        if used > limit:
            break
        out.append(char)
    return _at_word("".join(out)) + "…"


def _escaped(text: str, limit: int) -> str:
    """Escaped mrkdwn cut to ``limit`` without splitting an ``&amp;``-style entity."""
    escaped = escape_mrkdwn(text)
    if _width(escaped) <= limit:
        return escaped
    out: list[str] = []
    used = 1
    for char in _INVISIBLE.sub("", text):
        piece = _ESCAPES.get(char, char)
        used += _width(piece)
        if used > limit:
            break
        out.append(piece)
    return _at_word("".join(out)) + "…"


def _at_word(text: str) -> str:
    space = text.rfind(" ")
    return text[:space].rstrip() if space >= len(text) - 30 and space > 0 else text.rstrip()
