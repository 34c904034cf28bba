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
    """The first sentence of `summary`, stripped; the whole summary (bounded) without one."""
    text = summary.strip()
    if not text:
        return ""
    sentences = iter(segment(language or DEFAULT_LANGUAGE, text))
    lead = next(sentences, text).strip()
    while _is_abbreviation(lead):
        following = next(sentences, None)
        if following is None:
            break
        lead = f"{lead} {following.strip()}"
    return _bounded(lead)


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
