"""Text normalisation shared by terms and article fields, with a map back to the original text.

Both sides go through the same fold, character by character: casefold, compatibility
decomposition (NFKD), combining marks dropped (accents folded), and every run of
non-alphanumeric characters (punctuation, hyphens, dashes, underscores, apostrophes,
whitespace) collapsed to one space. Words are then runs of letters and digits separated by
single spaces, so a word boundary is a space or an end of the text; this is Unicode-aware
("Nestlé" ends a word, "ice" in "police" does not).

Speed: almost every character of real news folds to exactly one character ("É" -> "e", a
curly quote -> " "). For such text the fold is a C-speed `bytes.translate` with a 256-byte
table (after replacing the few distinct non-ASCII characters) and the offset map is the
identity apart from collapsed space runs, so it is computed only when a hit has to be located
in the original text. Text holding
a character whose fold changes the length ("ß" -> "ss", "ﬁ", a lone combining mark)
takes the exact per-character path, `fold_with_offsets`. Per-character folds are computed on
demand and cached: nothing scans Unicode at import time (parse workers import this module).
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate, repeat
from operator import add

# ASCII letters and digits fold to lower case, every other ASCII character to a space: a
# 256-byte table for bytes.translate, several times faster than str.translate with a dict.
_ASCII_FOLD = bytes(
    ord(chr(code).lower()) if chr(code).isalnum() else 32 for code in range(128)
) + bytes(128 * [32])
_ASCII_BYTES = bytes(range(128))
# ASCII characters that are neither letters, digits nor the space, once the text is lower case.
_ASCII_SEPARATOR_RE = re.compile(r"[\x00-\x1f\x21-\x2f\x3a-\x40\x5b-\x60\x7b-\x7f]")
_SPACE_RUN_RE = re.compile("  [ ]*")  # a run of 2+ spaces; faster than "  +" in CPython
_SPACE_RUN_SPLIT_RE = re.compile("(  [ ]*)")  # the same, kept by split()
_SEPARATORS_RE = re.compile(r"[\W_]+")


# Scripts written without spaces between words (Han, kana, Thai, Lao, Khmer, Myanmar) and
# Korean, whose particles and endings attach to the word: a term's end in one of them needs
# no word boundary there (compile.automaton_keys), so it is found inside the text.
_UNSPACED_RE = re.compile(
    "[\u0e00-\u0eff\u1000-\u109f\u1100-\u11ff\u1780-\u17ff\u3005-\u3007"
    "\u3040-\u30ff\u3130-\u318f\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
    "\uac00-\ud7a3\uf900-\ufaff\U00020000-\U0003134f]"
)
_HANGUL_SYLLABLES = ("\uac00", "\ud7a3")


def is_unspaced(char: str) -> bool:
    """Whether `char` (a folded character) belongs to a script without word boundaries."""
    return _UNSPACED_RE.match(char) is not None


def _is_mark(char: str) -> bool:
    return bool(unicodedata.combining(char)) or unicodedata.category(char) == "Mn"


@lru_cache(maxsize=65536)
def _fold_char(char: str) -> str:
    """The fold of one character: casefolded, decomposed, without combining marks.

    A Hangul syllable stays whole: decomposed into jamo, a term ending in a vowel ("감시")
    would be found inside a syllable that adds a final consonant ("감식").
    """
    if _HANGUL_SYLLABLES[0] <= char <= _HANGUL_SYLLABLES[1]:
        return char
    decomposed = unicodedata.normalize("NFKD", char.casefold())
    return "".join(piece for piece in decomposed if not _is_mark(piece))


@lru_cache(maxsize=65536)
def _fold_keep_case_char(char: str) -> str:
    if _HANGUL_SYLLABLES[0] <= char <= _HANGUL_SYLLABLES[1]:
        return char
    decomposed = unicodedata.normalize("NFKD", char)
    return "".join(piece for piece in decomposed if not _is_mark(piece))


@lru_cache(maxsize=65536)
def _single_fold(char: str) -> str | None:
    """The one character a non-ASCII `char` folds to (a space for punctuation), or None.

    None means the fold changes the length of the text (an expansion such as "ß" -> "ss", or
    a mark that disappears) or gives a character that would fold or lower-case again (so
    replacing characters one after the other could differ from folding all at once): such text
    takes the per-character path.
    """
    pieces = _fold_char(char)
    if not pieces:
        return None
    if not any(piece.isalnum() for piece in pieces):
        return " "
    if len(pieces) == 1 and pieces.lower() == pieces and _fold_char(pieces) == pieces:
        return pieces
    return None


def _non_ascii(text: str) -> set[str]:
    """The distinct non-ASCII characters of `text`.

    UTF-8 never uses ASCII bytes inside a multi-byte character, so deleting the ASCII bytes
    leaves exactly the non-ASCII characters: C speed, unlike a regex scan.
    """
    utf8 = text.encode("utf-8", "surrogatepass")
    return set(utf8.translate(None, _ASCII_BYTES).decode("utf-8", "surrogatepass"))


def _fold_same_length(text: str) -> str | None:
    """Fold every character to exactly one character (spaces not collapsed), or None.

    The result has the length of `text` and position i comes from text[i].
    """
    if not text.isascii():
        for char in _non_ascii(text):
            single = _single_fold(char)
            if single is None:
                return None
            if single != char:
                text = text.replace(char, single)
        if not text.isascii():
            # Only folded letters and digits are left beyond ASCII; lower() keeps them as they are.
            return _ASCII_SEPARATOR_RE.sub(" ", text.lower())
    return text.encode("ascii").translate(_ASCII_FOLD).decode("ascii")


def _collapse(same_length: str) -> str:
    """`same_length` with every run of spaces made one space (the search alone is cheap)."""
    return _SPACE_RUN_RE.sub(" ", same_length) if "  " in same_length else same_length


def fold(text: str) -> str:
    """Normalise ``text`` for matching; equal to the per-character fold in `fold_with_offsets`."""
    same_length = _fold_same_length(text)
    if same_length is None:
        return fold_with_offsets(text).folded
    return _collapse(same_length)


def fold_keep_case(text: str) -> str:
    """Like `fold` without casefolding, for case-sensitive terms."""
    return _SEPARATORS_RE.sub(" ", "".join(_fold_keep_case_char(char) for char in text))


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
    """Fold ``text`` character by character, remembering where each folded character came from.

    The reference fold: `fold` and `FoldedField` must agree with it on every text.
    """
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


class FoldedField:
    """One article field folded for matching, with a lazily built map back to the original.

    `folded` equals ``fold(original)``; `padded` is it with a space on each side, in UTF-8, so
    the automaton can demand word boundaries with spaces in its keys. The offset map is built on
    the first call that needs it, which only happens for fields whose hits are explained.
    """

    __slots__ = (
        "_offsets",
        "_origins",
        "_parts",
        "_starts",
        "folded",
        "original",
        "padded",
    )

    def __init__(self, original: str) -> None:
        self.original = original
        self._offsets: tuple[int, ...] | None = None
        # Pieces of the same-length fold between runs of 2+ spaces, and the runs, alternating:
        # None when nothing was collapsed (folded positions are then original positions).
        self._parts: list[str] | None = None
        self._starts: list[int] = []  # folded start of each piece, once offsets are asked for
        self._origins: list[int] = []  # original start of each piece
        same_length = _fold_same_length(original)
        if same_length is None:
            reference = fold_with_offsets(original)
            self.folded = reference.folded
            self._offsets = reference.offsets
        elif "  " in same_length:
            # Splitting on the runs and joining the pieces with one space costs what a
            # substitution does, and keeps what the offset map needs.
            self._parts = _SPACE_RUN_SPLIT_RE.split(same_length)
            self.folded = " ".join(self._parts[::2])
        else:
            self.folded = same_length
        # UTF-8 for the automaton: over bytes its results need no offset conversion
        self.padded = f" {self.folded} ".encode()

    def char_hits(self, found: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
        """Automaton hits (key, start, end) in `padded` bytes, with character offsets.

        The identity for ASCII text. Otherwise each hit's ends are at character boundaries
        (keys start with a space and hold whole characters), so the characters before an
        offset are those of the bytes before it, decoded: counted once per distinct offset.
        """
        if len(self.padded) == len(self.folded) + 2:
            return found
        chars: dict[int, int] = {}
        counted = previous = 0
        for offset in sorted({offset for _, start, end in found for offset in (start, end)}):
            counted += len(self.padded[previous:offset].decode())
            chars[offset] = counted
            previous = offset
        return [(key, chars[start], chars[end]) for key, start, end in found]

    def _piece_starts(self) -> list[int]:
        """Folded start of each piece (and `_origins`), with C-level iterators."""
        if not self._starts:
            assert self._parts is not None
            pieces = map(len, self._parts[::2])
            self._starts = list(accumulate(map(add, pieces, repeat(1)), initial=0))
            self._origins = list(accumulate(map(len, self._parts), initial=0))[::2]
        return self._starts

    def offset(self, position: int) -> int:
        """Index in `original` of the character that gave folded[position]."""
        if self._offsets is not None:
            return self._offsets[position]
        if self._parts is None:
            return position
        starts = self._starts or self._piece_starts()
        piece = bisect_right(starts, position) - 1
        return self._origins[piece] + position - starts[piece]

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Map a folded [start, end) range back to the original text, as [start, end)."""
        return self.offset(start), self.offset(end - 1) + 1

    def first_at_or_after(self, original_index: int) -> int:
        """The first folded position whose original index is >= `original_index`."""
        if self._offsets is not None:
            return bisect_left(self._offsets, original_index)
        low, high = 0, len(self.folded)
        while low < high:
            middle = (low + high) // 2
            if self.offset(middle) < original_index:
                low = middle + 1
            else:
                high = middle
        return low

    def word_index(self, position: int) -> int:
        """Index of the word that contains folded ``position`` (words are space-separated)."""
        return self.folded.count(" ", 0, position)


class FrontField(FoldedField):
    """The `front` field folded from the folded title and lead, not folded again.

    Its original text is the title, a line break, the lead (prominence.front_text). The
    folded text puts a break mark between them, " \\n ": the mark is not a letter or digit, so
    no phrase key spans it (a phrase never joins the headline's last word to the lead's
    first), and it counts as one word in NEAR distances.
    """

    __slots__ = ("_break", "_lead", "_lead_base", "_lead_shift", "_title", "_title_end")

    def __init__(self, title: FoldedField, lead: FoldedField) -> None:
        head = title.folded.removesuffix(" ")
        skip = 1 if lead.folded.startswith(" ") else 0
        self.original = f"{title.original}\n{lead.original}"
        self.folded = f"{head} \n {lead.folded[skip:]}"
        self.padded = f" {self.folded} ".encode()
        self._offsets = None
        self._parts = None
        self._starts = []
        self._origins = []
        self._title = title
        self._lead = lead
        self._title_end = len(head)
        self._break = len(title.original)  # the line break in `original`
        self._lead_shift = len(head) + 3 - skip  # folded front position - lead position
        self._lead_base = len(title.original) + 1

    def offset(self, position: int) -> int:
        if position < self._title_end:
            return self._title.offset(position)
        if position < self._title_end + 3:
            return self._break
        return self._lead.offset(position - self._lead_shift) + self._lead_base
