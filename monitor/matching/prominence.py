"""The `lead` and `front` fields: what a reader takes in first, the story's subject.

`lead` is the first sentence of the summary. Sentence ends come from sentencex (Wikimedia's
rule-based segmenter: abbreviations such as "U.S." and "Dr.", decimals, quotes, the CJK
full stops), in the article's language when the feed gives one. `front` is the headline and
the lead as one text, on two lines; folding puts a break between them that counts as one
word and that no phrase spans (text.FrontField). Pure functions of the text.
"""

from __future__ import annotations

from sentencex import segment

MAX_LEAD_CHARS = 400  # a summary without a sentence end is cut here, at a word boundary
DEFAULT_LANGUAGE = "en"  # most feeds that give no language write English
FRONT_BREAK = "\n"  # between the headline and the lead in the original text of `front`
# A first "sentence" this short ending in '.' is an abbreviation at the start ("Dr. Lee
# said ..."), where the segmenter splits: it is joined to the sentence after it.
_ABBREVIATION_CHARS = 5


def lead_sentence(summary: str, language: str | None = None) -> str:
    """The first sentence of `summary`, stripped; the whole summary (bounded) without one.

    Always a prefix of ``summary.strip()``, so its offsets are the summary's, shifted by the
    leading whitespace (dryrun maps hits back that way).
    """
    text = summary.strip()
    if not text:
        return ""
    sentences = iter(segment(language or DEFAULT_LANGUAGE, text))
    end = len(next(sentences, text))
    while _is_abbreviation(text[:end].strip()):
        following = next(sentences, None)
        if following is None:
            break
        end += len(following)
    return _bounded(text[:end].rstrip())


def _is_abbreviation(sentence: str) -> bool:
    return len(sentence) <= _ABBREVIATION_CHARS and sentence.endswith(".") and " " not in sentence


def _bounded(text: str) -> str:
    if len(text) <= MAX_LEAD_CHARS:
        return text
    cut = text.rfind(" ", 0, MAX_LEAD_CHARS + 1)
    return text[: cut if cut > 0 else MAX_LEAD_CHARS].rstrip()


def front_text(title: str, lead: str) -> str:
    """The headline, then the lead on the next line; either alone when the other is empty."""
    if not lead:
        return title
    if not title:
        return lead
    return f"{title}{FRONT_BREAK}{lead}"


def source_span(
    title: str, summary: str, field: str, start: int, end: int
) -> tuple[str, int, int] | None:
    """Where a hit in `lead` or `front` is in the title or summary, as (field, start, end).

    Other fields are returned as they are; None for a hit that spans the headline and the
    lead (a regex across the line break).
    """
    if field == "front" and title:
        if end <= len(title):
            return ("title", start, end)
        if start <= len(title):
            return None
        field, start, end = "lead", start - len(title) - 1, end - len(title) - 1
    if field in ("lead", "front"):
        shift = len(summary) - len(summary.lstrip())
        return ("summary", start + shift, end + shift)
    return (field, start, end)
