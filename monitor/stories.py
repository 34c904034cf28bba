"""Story clusters: near-duplicate articles (syndicated copies, edited headlines) are one story.

Pure: no I/O, no clock. An article is reduced to its headline and lead (the first
sentence of its summary), normalised, cut into character shingles (they work for
CJK, which has no spaces, and survive an edited word where word shingles do not),
and summarised as a MinHash. A `StoryIndex` finds, through datasketch's LSH, the
stored story most like a new one within a time window; the new article joins its
cluster when their estimated Jaccard similarity reaches the threshold, else it starts
its own. The index is only a cache: the store fills it from the database and keeps
the cluster ids there (docs/design.md says how, and how the threshold was chosen).
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from datasketch import LeanMinHash, MinHash, MinHashLSH

SHINGLE_CHARS = 4  # character n-grams; chosen on the dev set (benchmarks/clustering.py)
CJK_SHINGLE_CHARS = 2  # in Chinese, Japanese and Korean text
THRESHOLD = 0.22  # estimated Jaccard similarity of shingles at which two articles are one story
NUM_PERM = 128  # MinHash permutations: more make the similarity estimate closer, and cost time
# LSH tuned to miss few candidates (each one is then checked against the threshold).
_LSH_WEIGHTS = (0.2, 0.8)  # false positive, false negative
_SEED = 1  # fixed, so signatures computed by any worker, before or after a restart, compare

# A sentence ends at . ! ? followed by a space, or at a CJK full stop, question or exclamation mark.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|(?<=[\u3002\uff01\uff1f])")
_NOT_WORD = re.compile(r"[^\w\s]+")
# Capitalised only because they start a headline: never a name.
_NOT_NAMES = frozenset(
    [
        "a",
        "an",
        "the",
        "in",
        "on",
        "at",
        "for",
        "of",
        "to",
        "and",
        "or",
        "but",
        "as",
        "by",
        "with",
        "from",
        "after",
        "before",
        "how",
        "why",
        "what",
        "when",
        "who",
        "new",
        "this",
        "that",
        "these",
        "is",
        "are",
        "was",
        "it",
        "its",
        "his",
        "her",
        "their",
        "our",
        "your",
        "we",
        "you",
        "they",
        "not",
        "no",
        "der",
        "die",
        "das",
        "ein",
        "eine",
        "und",
        "le",
        "la",
        "les",
        "un",
        "une",
        "des",
        "du",
        "el",
        "los",
        "las",
        "una",
        "y",
        "il",
        "lo",
        "gli",
        "i",
        "o",
        "de",
        "het",
        "een",
        "en",
    ]
)
# Han, kana and Hangul: scripts written without spaces between words.
_CJK = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]+")


def lead(summary: str) -> str:
    """The first sentence of ``summary``: what a reader sees below the headline."""
    text = summary.strip()
    return _SENTENCE_END.split(text, maxsplit=1)[0] if text else ""


def story_text(title: str, summary: str) -> str:
    """Headline and lead, case-folded, punctuation removed, spaces collapsed."""
    text = unicodedata.normalize("NFKC", f"{title} {lead(summary)}").casefold()
    return " ".join(_NOT_WORD.sub(" ", text).split())


def shingles(text: str) -> set[str]:
    """Character n-grams of ``text``: SHINGLE_CHARS long, but CJK_SHINGLE_CHARS in runs of
    CJK characters, each of which carries about as much as a short word does."""
    found: set[str] = set()
    for run in _CJK.findall(text):
        found |= _ngrams(run, CJK_SHINGLE_CHARS)
    rest = " ".join(_CJK.sub(" ", text).split())
    return found | _ngrams(rest, SHINGLE_CHARS)


def _ngrams(text: str, size: int) -> set[str]:
    """A text shorter than one n-gram is one shingle; an empty one none."""
    if len(text) <= size:
        return {text} if text else set()
    return {text[i : i + size] for i in range(len(text) - size + 1)}


def names(title: str) -> frozenset[str]:
    """The names in a headline: its capitalised words (but function words) and numbers."""
    # Split as story_text splits, so a name is one of the other story's words when present.
    words = _NOT_WORD.sub(" ", unicodedata.normalize("NFKC", title)).split()
    found = (word for word in words if word[0].isupper() or word[0].isdigit())
    return frozenset(folded for word in found if (folded := word.casefold()) not in _NOT_NAMES)


def names_differ(one: Story, other: Story) -> bool:
    """Each headline names something the other story's headline and lead never mention:
    Portland's ban and Boston's are two stories however alike the rest of the words. A
    name added on one side only, or one the other story mentions below its headline, is
    an edit or another outlet's angle on the same story."""
    return bool(one.names - other.words) and bool(other.names - one.words)


def signature(title: str, summary: str) -> LeanMinHash:
    """The MinHash of an article's headline and lead."""
    minhash = MinHash(num_perm=NUM_PERM, seed=_SEED)
    minhash.update_batch(
        [shingle.encode("utf-8") for shingle in shingles(story_text(title, summary))]
    )
    return LeanMinHash(minhash)


def story_of(key: int, title: str, summary: str, published: datetime, cluster: int = 0) -> Story:
    """The indexed form of an article: its signature, headline names and words."""
    return Story(
        key,
        cluster,
        published,
        signature(title, summary),
        names(title),
        frozenset(story_text(title, summary).split()),
    )


@dataclass(frozen=True, slots=True)
class Story:
    """One indexed article: its key (the article's row id), its cluster and its signature."""

    key: int
    cluster: int
    published: datetime
    signature: LeanMinHash
    names: frozenset[str] = frozenset()  # `names` of its headline
    words: frozenset[str] = frozenset()  # the words of its `story_text`


class StoryIndex:
    """The stories of the last `window`, searchable by similarity (datasketch MinHash LSH)."""

    def __init__(self, window: timedelta, threshold: float = THRESHOLD) -> None:
        self.window = window
        self.threshold = threshold
        self._lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM, weights=_LSH_WEIGHTS)
        self._stories: dict[int, Story] = {}
        self.last_key = 0  # the highest key ever added: the store reads newer rows only

    def __len__(self) -> int:
        return len(self._stories)

    def add(self, story: Story) -> None:
        """Index ``story``; adding a key twice keeps the first (a re-read row is no news)."""
        self.last_key = max(self.last_key, story.key)
        if story.key in self._stories:
            return
        self._stories[story.key] = story
        self._lsh.insert(story.key, story.signature)

    def find(
        self,
        signature: LeanMinHash,
        published: datetime,
        staged: Sequence[Story] = (),
        new: Story | None = None,
    ) -> int | None:
        """The cluster of the most similar story within the window whose names do not
        differ from those of ``new`` (the story being placed), or None: a new story.

        ``staged`` are stories not indexed yet (written in the same transaction); they are
        compared one by one, as they are few.
        """
        candidates = [self._stories[key] for key in self._lsh.query(signature)]
        best: tuple[float, int] | None = None  # (similarity, -cluster): ties go to the oldest
        for story in (*candidates, *staged):
            if abs(story.published - published) > self.window:
                continue
            if new is not None and names_differ(new, story):
                continue
            similarity = float(signature.jaccard(story.signature))
            if similarity >= self.threshold and (
                best is None or (similarity, -story.cluster) > best
            ):
                best = (similarity, -story.cluster)
        return None if best is None else -best[1]

    def forget_before(self, cutoff: datetime) -> int:
        """Drop stories published before ``cutoff``: nothing new can join them. Returns how many."""
        old = [key for key, story in self._stories.items() if story.published < cutoff]
        for key in old:
            del self._stories[key]
            self._lsh.remove(key)
        return len(old)


def pairwise(truth: Sequence[str], found: Sequence[int]) -> tuple[float, float]:
    """Pairwise precision and recall of a clustering ``found`` against labelled stories."""
    together = sum(
        1 for i, j in itertools.combinations(range(len(found)), 2) if found[i] == found[j]
    )
    right = sum(
        1
        for i, j in itertools.combinations(range(len(found)), 2)
        if found[i] == found[j] and truth[i] == truth[j]
    )
    true_pairs = sum(
        1 for i, j in itertools.combinations(range(len(truth)), 2) if truth[i] == truth[j]
    )
    return (right / together if together else 1.0, right / true_pairs if true_pairs else 1.0)


@dataclass(frozen=True, slots=True)
class StoryCandidate:
    """An article to cluster: what `cluster` needs of it."""

    title: str
    summary: str
    published: datetime


def cluster(
    articles: Iterable[StoryCandidate], window: timedelta, threshold: float = THRESHOLD
) -> list[int]:
    """Cluster ``articles`` in the order given: each one's cluster is the position of the
    first article of its story (an article that starts a story gets its own position)."""
    index = StoryIndex(window, threshold)
    found: list[int] = []
    for key, article in enumerate(articles):
        new = story_of(key + 1, article.title, article.summary, article.published)
        joined = index.find(new.signature, article.published, new=new)
        story = replace(new, cluster=key if joined is None else joined)
        index.add(story)
        found.append(story.cluster)
    return found
