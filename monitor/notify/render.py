"""Render one alert (an article and the rules it matched) as a Slack Block Kit message.

Pure: no I/O, no clock. Feed text is untrusted: it is stripped of control and
bidi characters and escaped for mrkdwn (exactly ``&``, ``<``, ``>``, as Slack
documents) so that a headline such as ``<!channel>`` shows as text and pings
nobody (elastalert #1497). Operator text (rule titles, terms) is escaped too.
Every Slack limit is respected by construction (``monitor.notify.fit``), so a message is
never refused for its size (alertmanager #2769). Each message also carries a plain-text
form for the console. Many alerts for one channel render as one grouped message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC
from typing import Any
from urllib.parse import quote, urlsplit

from monitor.model import SEVERITIES, Article, Match, TermHit
from monitor.notify.fit import (
    MAX_BLOCKS,
    MAX_HEADER,
    MAX_SECTION,
    MAX_TOTAL,
    clip_mrkdwn,
    clip_plain,
    total_width,
    width,
)

MAX_FALLBACK = 3000
MAX_SNIPPET = 300
MAX_LINK = 2000  # longer links are dropped rather than risk a refused message
MAX_GROUP = 100  # alerts in one grouped message: a longer list is split

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
# Lone surrogates too: half an emoji shows as a broken character.
_INVISIBLE = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI}\ud800-\udfff]")
_SPACES = re.compile(r"[\s\u2028\u2029]+")
# Characters percent-encoded in links: the three that end `<url|label>`, and
# anything that is not a printable ASCII URL character.
_URL_SAFE = "!#$%&'()*+,/:;=?@[]~-._"


@dataclass(frozen=True, slots=True)
class SlackMessage:
    """A message ready for chat.postMessage or a webhook: fallback text and blocks."""

    text: str  # notification/fallback text (escaped)
    blocks: tuple[Mapping[str, Any], ...]
    plain: str = ""  # the same alert as readable plain text, for a terminal


class Mrkdwn(str):
    """Mrkdwn this module built from escaped parts: a template prints it as it is."""

    __slots__ = ()


def escape_mrkdwn(text: str) -> str:
    """Make text literal in mrkdwn: remove control/bidi characters, escape ``& < >``."""
    cleaned = _INVISIBLE.sub("", text)
    return cleaned.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render_alert(article: Article, matches: Sequence[Match]) -> SlackMessage:
    """Build the alert for ``article``: headline, link, source, time, why each rule matched."""
    ordered = sorted(matches, key=_severity_rank)
    text = _fallback(article, ordered)
    blocks: list[dict[str, Any]] = [_header(article), _headline(article)]
    snippet = _snippet(article)
    room = MAX_BLOCKS - len(blocks) - (1 if snippet else 0)
    # What the rules may use of MAX_TOTAL, leaving room for the "more rules" line.
    budget = MAX_TOTAL - total_width(text, [*blocks, *([snippet] if snippet else [])])
    budget -= MAX_SECTION
    for index, match in enumerate(ordered):
        block = _rule(match)
        size = total_width("", [block])
        if (index == room - 1 and index < len(ordered) - 1) or size > budget:
            blocks.append(_more_rules(ordered[index:]))
            break
        blocks.append(block)
        budget -= size
    if snippet:
        blocks.append(snippet)
    return SlackMessage(text=text, blocks=tuple(blocks), plain=_plain_alert(article, ordered))


def template_values(article: Article, matches: Sequence[Match]) -> dict[str, Any]:
    """What an alert template may print: raw feed values (the engine escapes them) and
    ``Mrkdwn`` fragments already built and escaped here (a linked headline, a date, why).
    """
    ordered = sorted(matches, key=_severity_rank)
    link = safe_link(article.link)
    title = _one_line(article.title) or "(no title)"
    escaped = _escaped(title, 500)
    return {
        "title": title,
        "link": link,
        "headline": Mrkdwn(f"<{link}|{escaped}>" if link else escaped),
        "source": _source(article),
        "authors": [_one_line(author) for author in article.authors],
        "when": Mrkdwn(_when(article)),
        "published": f"{article.published.astimezone(UTC):%Y-%m-%d %H:%M} UTC",
        "summary": clip_plain(_one_line(article.summary or article.content), MAX_SECTION),
        "categories": [_one_line(category) for category in article.categories],
        "language": article.language,
        "feed_tags": list(article.feed_tags),
        "severity": _one_line(ordered[0].severity) if ordered else None,
        "emoji": Mrkdwn(_emoji(ordered[0].severity) if ordered else ""),
        "rules": [
            {
                "id": match.rule_id,
                "title": _one_line(match.rule_title),
                "severity": _one_line(match.severity),
                "emoji": Mrkdwn(_emoji(match.severity)),
                "terms": list(match.matched_terms),
                "why": Mrkdwn(_evidence(match.hits, MAX_SECTION // 2)),
            }
            for match in ordered
        ],
    }


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
        plain="media-monitor notice\n" + (_INVISIBLE.sub("", summary).strip() or "(empty notice)"),
    )


def render_group(alerts: Sequence[tuple[Article, Sequence[Match]]]) -> tuple[SlackMessage, int]:
    """As many of ``alerts`` as fit in one message, one linked line each, and how many that is.

    For a burst to one channel: one message instead of a flood. Lines keep the given order;
    the caller sends the rest in further grouped messages.
    """
    if not alerts:
        raise ValueError("a grouped message needs at least one alert")
    sections: list[str] = []
    plain: list[str] = []
    titles: list[str] = []
    # The header and the fallback text are short and bounded: reserve them up front.
    budget = MAX_TOTAL - MAX_HEADER - MAX_FALLBACK
    for article, matches in alerts[:MAX_GROUP]:
        ordered = sorted(matches, key=_severity_rank)
        line = _group_line(article, ordered)
        if sections and width(sections[-1]) + 1 + width(line) <= MAX_SECTION:
            sections[-1] += "\n" + line
        elif len(sections) < MAX_BLOCKS - 1:
            sections.append(line)
        else:
            break
        budget -= width(line) + 1
        if budget < 0:
            sections[-1] = sections[-1].rpartition("\n")[0]
            if not sections[-1]:
                sections.pop()
            break
        titles.append(_one_line(article.title) or "(no title)")
        plain.append(_plain_group_line(article, ordered))
    count = len(titles)
    heading = f"{count} new alerts" if count > 1 else "1 new alert"
    header = {"type": "plain_text", "text": heading, "emoji": False}
    summary = _escaped(f"{heading}: " + "; ".join(titles), MAX_FALLBACK)
    message = SlackMessage(
        text=summary,
        blocks=({"type": "header", "text": header}, *(_section(text) for text in sections)),
        plain="\n".join([heading, *plain]),
    )
    return message, count


def _group_line(article: Article, ordered: Sequence[Match]) -> str:
    title = _escaped(_one_line(article.title), 300) or "(no title)"
    link = safe_link(article.link)
    headline = f"<{link}|{title}>" if link else title
    rules = ", ".join(_one_line(match.rule_title) for match in ordered)
    emoji = _emoji(ordered[0].severity) if ordered else "•"
    source = _escaped(_source(article), 80)
    return f"{emoji} {headline} · *{source}* · {_escaped(rules, 200)}".rstrip(" ·")


def _plain_group_line(article: Article, ordered: Sequence[Match]) -> str:
    rules = ", ".join(_one_line(match.rule_title) for match in ordered)
    line = f"- {_one_line(article.title) or '(no title)'} — {_source(article)}"
    line += f" — {rules}" if rules else ""
    link = safe_link(article.link)
    return line + (f"\n  {link}" if link else "")


def _plain_alert(article: Article, ordered: Sequence[Match]) -> str:
    """The alert for a terminal: the headline once, the link, the source, why it matched."""
    lines = [_one_line(article.title) or "(no title)"]
    link = safe_link(article.link)
    if link:
        lines.append(link)
    details = [_source(article)]
    if article.authors:
        details.append("by " + _one_line(", ".join(article.authors)))
    stamp = f"{article.published.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
    details.append(stamp if article.dated else f"seen {stamp} (the feed gave no date)")
    lines.append(" · ".join(details))
    for match in ordered:
        severity = (_one_line(match.severity) or "unknown").upper()
        rule = f"{severity} · {_one_line(match.rule_title) or '(untitled rule)'} ({match.rule_id})"
        why = _plain_evidence(match.hits)
        lines.append(rule + (f": matched {why}" if why else ""))
    snippet = clip_plain(_one_line(article.summary or article.content), MAX_SNIPPET)
    if snippet:
        lines.append(snippet)
    return "\n".join(lines)


def _plain_evidence(hits: Sequence[TermHit]) -> str:
    groups: dict[tuple[str, str | None], list[TermHit]] = {}
    for hit in hits:
        groups.setdefault((hit.term, hit.list_name), []).append(hit)
    parts = []
    for (term, list_name), group in groups.items():
        part = f'"{_one_line(term)}"' + (f" (list {_one_line(list_name)})" if list_name else "")
        seen = [hit.text for hit in group if _one_line(hit.text).casefold() != term.casefold()]
        shown = list(dict.fromkeys(_one_line(value) for value in seen))[:3]
        if shown:
            part += " as " + ", ".join(f'"{value}"' for value in shown)
        fields = dict.fromkeys(_one_line(hit.field) for hit in group)
        parts.append(part + " in " + ", ".join(fields))
    return clip_plain("; ".join(parts), MAX_SECTION)


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
    title = clip_plain(_one_line(article.title), MAX_HEADER) or "(no title)"
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
    evidence = _evidence(match.hits, MAX_SECTION - width(head) - 1)
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
        if used + width(part) + 2 + len(more) > budget:
            parts.append(more.strip())
            break
        parts.append(part)
        used += width(part) + 2
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
        if used + width(name) + 2 > MAX_SECTION - 1:
            names.append("…")
            break
        names.append(name)
        used += width(name) + 2
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


def _escaped(text: str, limit: int) -> str:
    """Escaped mrkdwn cut to ``limit`` without splitting an ``&amp;``-style entity."""
    return clip_mrkdwn(escape_mrkdwn(text), limit)
