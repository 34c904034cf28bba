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



def _mark_class() -> str:
    """A regex class of every combining mark, as ranges (a class of single chars is slow)."""
    codes = [
        code
        for code in range(sys.maxunicode + 1)
        if unicodedata.combining(chr(code)) or unicodedata.category(chr(code)) == "Mn"
    ]
    ranges: list[list[int]] = []
    for code in codes:
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1][1] = code
        else:
            ranges.append([code, code])
    return "".join(f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges)


_MARK_RE = re.compile(f"[{_mark_class()}]+")
# Most accents are in U+0300-U+036F; the full class is slow, so only text with characters
# beyond Latin (other than General Punctuation) pays for it.
_LATIN_MARK_RE = re.compile("[\u0300-\u036f]+")
_BEYOND_LATIN_RE = re.compile("[^\x00-\u02ff\u2000-\u206f]")
_SEPARATORS_RE = re.compile(r"[\W_]+")


def fold(text: str) -> str:
    """Normalise ``text`` for matching; equal to the per-character fold in `FoldedText`."""
    if text.isascii():
        return _SEPARATORS_RE.sub(" ", text.lower())
    return _SEPARATORS_RE.sub(" ", _drop_marks(unicodedata.normalize("NFKD", text.casefold())))


def fold_keep_case(text: str) -> str:
    """Like `fold` without casefolding, for case-sensitive terms."""
    return _SEPARATORS_RE.sub(" ", _drop_marks(unicodedata.normalize("NFKD", text)))


def _drop_marks(text: str) -> str:
    text = _LATIN_MARK_RE.sub("", text)
    return _MARK_RE.sub("", text) if _BEYOND_LATIN_RE.search(text) else text


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
