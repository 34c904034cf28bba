"""Slack's message limits, and cutting text to fit them without breaking what it shows.

Pure. Text is cut between grapheme clusters (the ``regex`` module's ``\\X``), so an emoji
sequence, a flag or a letter with its accents stays whole or is left out; in mrkdwn an
escape (``&amp;``) and a link or date token (``<...>``) are never split either. Widths
are UTF-16 code units, the stricter of the ways Slack may count an emoji.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import regex

MAX_BLOCKS = 50
MAX_HEADER = 150
MAX_SECTION = 3000  # a section's or a context element's text
MAX_TOTAL = 40_000  # all the texts of one message, its fallback text included
ELLIPSIS = "…"
WORD_SLACK = 30  # a cut moves back to a space at most this far

_GRAPHEME = regex.compile(r"\X")
_MRKDWN_ATOM = regex.compile(r"&(?:amp|lt|gt);|<[^<>]*>|\X")


def width(text: str) -> int:
    """Length as Slack may count it: UTF-16 code units."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def clip_plain(text: str, limit: int) -> str:
    """Plain text cut to ``limit`` (ellipsis included) between grapheme clusters, at a word."""
    return _cut(_GRAPHEME, text, limit)


def clip_mrkdwn(text: str, limit: int) -> str:
    """Mrkdwn cut to ``limit`` without splitting an escape, a ``<...>`` token or a grapheme."""
    return _cut(_MRKDWN_ATOM, text, limit)


def block_width(block: Mapping[str, Any]) -> int:
    """The text a block carries toward MAX_TOTAL."""
    texts = [block["text"]] if isinstance(block.get("text"), Mapping) else []
    texts += [element for element in block.get("elements", ()) if isinstance(element, Mapping)]
    return sum(width(str(text.get("text", ""))) for text in texts)


def total_width(text: str, blocks: Iterable[Mapping[str, Any]]) -> int:
    """A message's size toward MAX_TOTAL: its fallback text and every block's text."""
    return width(text) + sum(block_width(block) for block in blocks)


def _cut(atoms: regex.Pattern[str], text: str, limit: int) -> str:
    if width(text) <= limit:
        return text
    budget = limit - len(ELLIPSIS)
    used = end = space = 0
    for atom in atoms.finditer(text):
        size = width(atom.group())
        if used + size > budget:
            break
        used += size
        end = atom.end()
        if atom.group().isspace():
            space = atom.start()
    if space and end - space <= WORD_SLACK:
        end = space
    return text[:end].rstrip() + ELLIPSIS
