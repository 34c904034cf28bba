"""Feed text to plain text: markup stripped, entities decoded, whitespace collapsed.

Feed text is untrusted. What leaves this module is inert plain text: no tags, no
control characters, no bidirectional overrides that could disguise it, one space
between words. It never decides what the text means; the matcher does that.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

# Elements whose content is code, never prose. Only these two: the parser reads them as
# raw text up to their end tag, so an unclosed one cannot hide the rest of a document.
_HIDDEN = frozenset({"script", "style"})

# Elements that separate words when rendered; inline ones (b, a, sup...) do not.
_BLOCK = frozenset(
    {
        "address", "article", "aside", "blockquote", "br", "caption", "dd", "details", "div",
        "dl", "dt", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5",
        "h6", "header", "hr", "li", "main", "nav", "ol", "p", "pre", "section",
        "summary", "table", "tbody", "td", "tfoot", "th", "thead", "title", "tr", "ul",
    }
)  # fmt: skip

# Control characters that mean a break become spaces; every other control character,
# lone surrogate, BOM and bidi embedding/override/isolate (which make text display
# differently from what it says, CVE-2021-42574) is removed.
_BREAKS = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f\x85"
_UNSAFE = [*range(0x00, 0x20), *range(0x7F, 0xA0), *range(0xD800, 0xE000)]
_UNSAFE += [*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0xFEFF]
_SCRUB: dict[int, str | None] = {code: None for code in _UNSAFE} | {ord(c): " " for c in _BREAKS}
# Any character _SCRUB changes: most text has none, and searching for one is several times
# faster than translating with a dict (`split()` already splits at every break).
_SCRUBBED_RE = re.compile("[" + "".join(re.escape(chr(code)) for code in sorted(_SCRUB)) + "]")
_ELLIPSIS = "…"
_ESCAPED_TWICE = re.compile(
    r"</(?:a|b|i|p|em|strong|span|div|li|ul|ol|h[1-6]|blockquote|td|tr|table)>|<br\s*/?>"
    r"|<!--|&#\d{2,7};|&#x[0-9a-f]{2,6};|&(?:amp|quot|apos|lt|gt|nbsp);",
    re.IGNORECASE,
)


class _TextCollector(HTMLParser):
    """Collects the character data a browser would show, skipping hidden elements."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.pieces: list[str] = []
        self.hidden_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN:
            self.hidden_depth += 1
        elif tag in _BLOCK:
            self.pieces.append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK:
            self.pieces.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            self.hidden_depth = max(0, self.hidden_depth - 1)
        elif tag in _BLOCK:
            self.pieces.append(" ")

    def handle_data(self, data: str) -> None:
        if not self.hidden_depth:
            self.pieces.append(data)


def clean_text(text: str) -> str:
    """Plain text made safe to store and show: unsafe characters removed, whitespace collapsed.

    Use it for text that is already plain (a ``type="text"`` title, a category): a
    literal ``<blink>`` stays, because there it is words, not markup.
    """
    if _SCRUBBED_RE.search(text) is not None:
        text = text.translate(_SCRUB)
    return " ".join(text.split())


def html_to_text(markup: str) -> str:
    """Plain text of an HTML fragment: tags stripped, entities decoded, whitespace collapsed.

    Script and style bodies are dropped; block elements separate words, inline ones
    do not (``1930ft<sup>2</sup>`` gives ``1930ft2``). Never raises on broken markup.
    """
    text = _strip(markup)
    # Escaped twice (by a generator that escapes already-escaped HTML), markup survives
    # one pass as literal end tags or character references: take it off once more. A
    # lone "<blink>" in the text has no end tag and stays.
    return _strip(text) if _ESCAPED_TWICE.search(text) else text


def _strip(markup: str) -> str:
    if "<" not in markup and "&" not in markup:
        return clean_text(markup)
    collector = _TextCollector()
    collector.feed(markup)
    collector.close()
    return clean_text("".join(collector.pieces))


def truncate(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, at a word boundary, marked with an ellipsis.

    Caps keep one pathological entry from bloating the database and the matcher.
    """
    if limit < 1:
        raise ValueError(f"truncate: limit must be at least 1, got {limit}")
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit * 0.8:  # do not throw away a long last word's worth of text
        cut = cut[:space]
    return cut.rstrip() + _ELLIPSIS


_LANGUAGE = re.compile(r"[A-Za-z]{2,8}")


def language_tag(value: str | None) -> str | None:
    """Lower-case primary subtag of a language tag ("en-US" -> "en"), None when unusable."""
    if not value:
        return None
    primary = re.split(r"[-_]", value.strip(), maxsplit=1)[0]
    return primary.lower() if _LANGUAGE.fullmatch(primary) else None
