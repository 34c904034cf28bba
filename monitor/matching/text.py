"""Text normalisation shared by terms and article fields, with a map back to the original text.

Both sides go through the same fold: casefold, compatibility decomposition (NFKD), combining
marks dropped (accents folded), and every run of non-alphanumeric characters (punctuation,
hyphens, dashes, underscores, apostrophes, whitespace) collapsed to one space. Words are then
runs of letters and digits separated by single spaces, so a word boundary is a space or an
end of the text; this is Unicode-aware ("Nestlé" ends a word, "ice" in "police" does not).

The whole-string path runs in C (str and re operations); the per-character path builds the
offset map and is only taken for fields that had a hit.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

_MARKS = "".join(
    re.escape(chr(code))
    for code in range(sys.maxunicode + 1)
    if unicodedata.combining(chr(code)) or unicodedata.category(chr(code)) == "Mn"
)
_MARK_RE = re.compile(f"[{_MARKS}]+")
_SEPARATORS_RE = re.compile(r"[\W_]+")


def fold(text: str) -> str:
    """Normalise ``text`` for matching; equal to the per-character fold in `FoldedText`."""
    if text.isascii():
        return _SEPARATORS_RE.sub(" ", text.lower())
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return _SEPARATORS_RE.sub(" ", _MARK_RE.sub("", decomposed))


def fold_keep_case(text: str) -> str:
    """Like `fold` without casefolding, for case-sensitive terms."""
    decomposed = unicodedata.normalize("NFKD", text)
    return _SEPARATORS_RE.sub(" ", _MARK_RE.sub("", decomposed))


@lru_cache(maxsize=65536)
def _fold_char(char: str) -> str:
    return _MARK_RE.sub("", unicodedata.normalize("NFKD", char.casefold()))


@dataclass(frozen=True, slots=True)
class FoldedText:
    """A field's original text, its folded form and the offset of each folded character."""

    original: str
    folded: str
    offsets: tuple[int, ...]  # offsets[i]: index in `original` of the char that gave folded[i]

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Map a folded [start, end) range back to the original text, as [start, end)."""
        return self.offsets[start], self.offsets[end - 1] + 1

    def word_index(self, position: int) -> int:
        """Index of the word that contains folded ``position`` (words are space-separated)."""
        return self.folded.count(" ", 0, position)


def fold_with_offsets(text: str) -> FoldedText:
    """Fold ``text`` character by character, remembering where each folded character came from."""
    chars: list[str] = []
    offsets: list[int] = []
    last_space = False
    for index, char in enumerate(text):
        pieces = char.lower() if char.isascii() else _fold_char(char)
        for piece in pieces:
            if piece.isalnum():
                chars.append(piece)
                offsets.append(index)
                last_space = False
            elif not last_space:
                chars.append(" ")
                offsets.append(index)
                last_space = True
    return FoldedText(text, "".join(chars), tuple(offsets))
