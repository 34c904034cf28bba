"""Split the shared dev set into a tuning part and a held-out part, by story cluster.

Clusters (never rows) are shuffled with a fixed seed inside strata of (majority label, English
or not), and the first 60% of each stratum, rounded, goes to tuning. Rows are copied verbatim.
Run from the repository root:
    python tests/data/split_dev.py /work/shared/data/labelled/headlines-dev.jsonl
"""

from __future__ import annotations

import json
import random
import sys
from collections import Counter, defaultdict
from pathlib import Path

SEED = 20261203
TUNE_SHARE = 0.6
HERE = Path(__file__).resolve().parent


def stratum(labels: list[str], langs: list[str]) -> tuple[str, bool]:
    majority = Counter(labels).most_common(1)[0][0]
    return majority, all(lang == "en" for lang in langs)


def main(source: Path) -> None:
    lines = source.read_text(encoding="utf-8").splitlines()
    clusters: dict[str, list[str]] = defaultdict(list)
    for line in lines:
        clusters[json.loads(line)["cluster"]].append(line)
    strata: dict[tuple[str, bool], list[str]] = defaultdict(list)
    for name in sorted(clusters):
        rows = [json.loads(line) for line in clusters[name]]
        strata[stratum([r["label"] for r in rows], [r["lang"] for r in rows])].append(name)
    rng = random.Random(SEED)
    tune: set[str] = set()
    for key in sorted(strata):
        names = strata[key]
        rng.shuffle(names)
        tune.update(names[: round(len(names) * TUNE_SHARE)])
    parts: dict[str, list[str]] = {"dev-tune.jsonl": [], "dev-holdout.jsonl": []}
    for line in lines:
        target = "dev-tune.jsonl" if json.loads(line)["cluster"] in tune else "dev-holdout.jsonl"
        parts[target].append(line)
    for name, part in parts.items():
        (HERE / name).write_text("".join(f"{line}\n" for line in part), encoding="utf-8")
        labels = Counter(json.loads(line)["label"] for line in part)
        langs = len({json.loads(line)["lang"] for line in part})
        print(f"{name}: {len(part)} rows, {dict(labels)}, {langs} languages")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
