"""Story clustering on real headlines: pairwise precision and recall, and the shingles compared.

Reads tests/data/story-clusters.jsonl (the dev set's rows, whose `cluster` groups one story)
and clusters them with monitor.stories as the store does, oldest first. A pair of rows is a
true positive when both the labels and the clustering put them in one story. Figures are given
for all pairs, and for recall over pairs in one language (MinHash on text cannot join a story
told in two languages). Then the same online clustering with exact Jaccard similarity compares
word and character shingles at several thresholds: how the shipped ones were chosen. Last, the
speed of signature + lookup. The dev set's rows mostly carry no date, so the window is not
what is measured here: every row is taken as published at one time.

    .venv/bin/python benchmarks/clustering.py
"""

from __future__ import annotations

import itertools
import json
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._machine import describe_machine
from monitor import stories

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "story-clusters.jsonl"
WHEN = datetime(2026, 1, 1, tzinfo=UTC)
WINDOW = timedelta(days=3)


def load(path: Path = DATA) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as rows:
        return [json.loads(line) for line in rows if line.strip()]


def pairwise(rows: Sequence[dict[str, str]], found: Sequence[int]) -> dict[str, float]:
    """Pairwise precision, recall, and recall over same-language pairs."""
    tp = fp = fn = tp_same = fn_same = 0
    for i, j in itertools.combinations(range(len(rows)), 2):
        truth = rows[i]["cluster"] == rows[j]["cluster"]
        got = found[i] == found[j]
        same = rows[i]["lang"] == rows[j]["lang"]
        tp += truth and got
        fp += got and not truth
        fn += truth and not got
        if same:
            tp_same += truth and got
            fn_same += truth and not got
    return {
        "precision": tp / (tp + fp) if tp + fp else 1.0,
        "recall": tp / (tp + fn) if tp + fn else 1.0,
        "recall_same_language": tp_same / (tp_same + fn_same) if tp_same + fn_same else 1.0,
        "true_pairs": tp + fn,
        "false_pairs": fp,
    }


def shipped(rows: Sequence[dict[str, str]], threshold: float = stories.THRESHOLD) -> list[int]:
    candidates = [stories.StoryCandidate(r["title"], r["summary"], WHEN) for r in rows]
    return stories.cluster(candidates, WINDOW, threshold)


def exact(rows: Sequence[dict[str, str]], shingle: Callable[[str], set[str]], threshold: float):
    """Online clustering as the store does it, with exact Jaccard instead of MinHash."""
    sets = [shingle(stories.story_text(r["title"], r["summary"])) for r in rows]
    found: list[int] = []
    for i, current in enumerate(sets):
        best = max(
            ((len(current & sets[j]) / (len(current | sets[j]) or 1), -found[j]) for j in range(i)),
            default=(0.0, 0),
        )
        found.append(-best[1] if best[0] >= threshold else i)
    return found


def words(n: int) -> Callable[[str], set[str]]:
    def cut(text: str) -> set[str]:
        tokens = text.split()
        return {" ".join(tokens[i : i + n]) for i in range(max(1, len(tokens) - n + 1))}

    return cut


def chars(n: int) -> Callable[[str], set[str]]:
    return lambda text: {text[i : i + n] for i in range(max(1, len(text) - n + 1))}


def main() -> None:
    rows = load()
    print(f"machine: {describe_machine()}")
    print(
        f"data: {DATA.relative_to(DATA.parents[2])}: {len(rows)} rows, "
        f"{len({r['cluster'] for r in rows})} stories"
    )
    print(
        f"\nshipped: character {stories.SHINGLE_CHARS}-grams "
        f"(CJK: {stories.CJK_SHINGLE_CHARS}-grams) of headline + lead, MinHash "
        f"{stories.NUM_PERM} permutations, LSH, threshold {stories.THRESHOLD}"
    )
    for threshold in (0.18, 0.19, 0.2, stories.THRESHOLD, 0.25):
        figures = pairwise(rows, shipped(rows, threshold))
        mark = "  <- shipped" if threshold == stories.THRESHOLD else ""
        print(
            f"  threshold {threshold:.2f}: precision {figures['precision']:.3f} "
            f"recall {figures['recall']:.3f} "
            f"(same-language pairs {figures['recall_same_language']:.3f}) "
            f"false pairs {figures['false_pairs']} of {figures['true_pairs']} true{mark}"
        )
    print("\nexact Jaccard, headline + lead, online clustering (precision / recall):")
    schemes = {
        "word 1-grams": words(1),
        "word 2-grams": words(2),
        "char 3-grams": chars(3),
        "char 4-grams": chars(4),
        "char 5-grams": chars(5),
    }
    for name, shingle in schemes.items():
        cells = []
        for threshold in (0.15, 0.2, 0.25, 0.3):
            figures = pairwise(rows, exact(rows, shingle, threshold))
            cells.append(f"{threshold:.2f}: {figures['precision']:.2f}/{figures['recall']:.2f}")
        print(f"  {name:13} " + "  ".join(cells))
    repeat = 20
    started = time.perf_counter()
    for _ in range(repeat):
        shipped(rows)
    elapsed = time.perf_counter() - started
    print(
        f"\nspeed: {repeat * len(rows) / elapsed:,.0f} articles/s (signature + LSH lookup + insert)"
    )


if __name__ == "__main__":
    main()
