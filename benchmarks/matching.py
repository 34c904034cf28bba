"""Benchmark the rule engine: compile time, memory and articles/s at 10 to 10,000 rules.

    python benchmarks/matching.py [--quick] [--feeds FOLDER]

Rules and articles are generated with a fixed seed from a news-like vocabulary: phrases,
shared lists, and/or/not, "N of" and NEAR. Beside the engine it times a naive per-rule `re`
loop (on a subset of articles, scaled; it checks list presence only, no NEAR) and a bare
pyahocorasick scan of the same terms, in the same run. Prints the machine it ran on.

Then the seeded pack (rules/) over real articles: the feed fixtures in --feeds (default
/work/shared/data/feeds) parsed with the project's parser, as parsed and with summaries of
1,600 characters of their own text (what the pipeline matches for long feeds). Skipped when
the folder is missing.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import random
import re
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

import ahocorasick

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _machine import describe_machine  # benchmarks/ is on sys.path when run as a script

from monitor.feeds.parse import parse_feed
from monitor.matching import compile_rules, load_rules, match_article
from monitor.matching.text import fold
from monitor.model import Article

ROOT = Path(__file__).resolve().parent.parent

SEED = 20240501
ADJECTIVES = [
    "facial",
    "federal",
    "biometric",
    "antitrust",
    "digital",
    "autonomous",
    "online",
    "mobile",
    "financial",
    "private",
    "public",
    "remote",
    "predictive",
    "automated",
    "national",
    "municipal",
    "medical",
    "genetic",
    "criminal",
    "consumer",
    "algorithmic",
    "encrypted",
    "offshore",
    "nuclear",
    "renewable",
    "electric",
    "global",
    "local",
    "corporate",
    "judicial",
    "military",
    "civilian",
    "academic",
    "commercial",
    "regional",
    "industrial",
    "domestic",
    "foreign",
    "illegal",
    "secret",
]
NOUNS = [
    "recognition",
    "surveillance",
    "privacy",
    "data",
    "breach",
    "ransomware",
    "lawsuit",
    "merger",
    "drone",
    "vehicle",
    "payment",
    "platform",
    "camera",
    "database",
    "warrant",
    "sanction",
    "tariff",
    "subsidy",
    "pipeline",
    "reactor",
    "grid",
    "battery",
    "vaccine",
    "trial",
    "licence",
    "patent",
    "settlement",
    "fine",
    "moratorium",
    "ban",
    "audit",
    "contract",
    "election",
    "ballot",
    "protest",
    "strike",
    "union",
    "wage",
    "pension",
    "budget",
    "deficit",
    "bond",
    "bank",
    "market",
    "regulator",
    "court",
    "ruling",
    "appeal",
    "verdict",
    "tribunal",
    "inquiry",
    "hearing",
    "investigation",
]
ORGS = [
    "IBM",
    "Amazon",
    "Microsoft",
    "Clearview",
    "Google",
    "Meta",
    "Apple",
    "Palantir",
    "Axon",
    "Motorola",
    "Huawei",
    "Nestlé",
    "Siemens",
    "Airbus",
    "Boeing",
    "Tesla",
    "Uber",
    "Oracle",
    "Intel",
    "Nvidia",
    "Samsung",
    "Sony",
    "Reuters",
    "Europol",
    "Interpol",
    "FBI",
    "NHS",
    "Ofcom",
    "ICO",
    "CNIL",
]
COMMON = [
    "the",
    "of",
    "and",
    "to",
    "in",
    "a",
    "is",
    "that",
    "for",
    "on",
    "with",
    "as",
    "was",
    "by",
    "at",
    "from",
    "it",
    "be",
    "this",
    "are",
    "have",
    "has",
    "but",
    "not",
    "an",
    "they",
    "which",
    "or",
    "their",
    "were",
    "been",
    "said",
    "after",
    "more",
    "its",
    "new",
    "will",
    "about",
    "year",
    "people",
    "police",
    "government",
    "city",
    "state",
    "minister",
    "company",
    "officials",
    "report",
    "week",
    "last",
    "first",
    "two",
    "also",
    "would",
    "could",
    "other",
    "over",
    "into",
    "than",
    "when",
    "while",
    "under",
    "between",
    "against",
    "during",
    "before",
    "plan",
    "rules",
    "law",
    "use",
    "system",
    "agency",
    "group",
    "sources",
    "statement",
    "told",
    "according",
    "spokesperson",
    "announced",
    "decision",
    "council",
    "members",
    "public",
    "million",
    "percent",
    "since",
    "policy",
    "move",
    "critics",
    "residents",
    "privacy",
    "campaigners",
    "lawmakers",
    "judge",
    "court",
    "data",
    "technology",
    "cameras",
    "software",
]


def make_rules(count: int, rng: random.Random) -> list[str]:
    phrases = [f"{a} {n}" for a in ADJECTIVES for n in NOUNS]
    rng.shuffle(phrases)
    lines = ["lists:"]
    shared = [f"shared_{i}" for i in range(min(50, max(2, count // 4)))]
    for name in shared:
        lines.append(f"  {name}:")
        for term in rng.sample(ORGS, 4):
            lines.append(f"    - {term}")
    lines.append("rules:")
    chunk_starts = [len(lines)]
    templates = [
        "a and b",
        "a and (b or {s})",
        "(a or b) and not c",
        "a NEAR/5 b",
        "2 of (a, b, c)",
        '{s} and "{p}"',
        "title:a or (summary:b and {s})",
        "a BEFORE/8 {s}",
    ]
    for number in range(count):
        if number and number % 500 == 0:
            chunk_starts.append(len(lines))
        condition = rng.choice(templates).format(s=rng.choice(shared), p=rng.choice(phrases))
        lines += [
            f"  - id: rule-{number}",
            f"    title: Rule {number}",
            f"    condition: '{condition}'",
            "    fields: [title, summary, content]",
        ]
        names = [name for name in ("a", "b", "c") if re.search(rf"\b{name}\b", condition)]
        lines += ["    terms:"] if names else []
        for name in names:
            lines.append(f"      {name}:")
            for term in rng.sample(phrases, rng.randint(2, 6)):
                lines.append(f"        - {term}{'*' if rng.random() < 0.05 else ''}")
    # Files of 500 rules each: a rule file is capped at 1 MiB.
    bounds = [*chunk_starts, len(lines)]
    files = ["\n".join(lines[: bounds[1]]) + "\n"]
    files += ["rules:\n" + "\n".join(lines[a:b]) + "\n" for a, b in itertools.pairwise(bounds[1:])]
    return files


def make_articles(count: int, rng: random.Random) -> list[Article]:
    vocabulary = COMMON * 4 + NOUNS + ADJECTIVES
    articles = []
    for number in range(count):
        sentences = []
        length = 0
        while length < 1500:
            words = rng.choices(vocabulary, k=rng.randint(8, 22))
            if rng.random() < 0.3:
                words.insert(
                    rng.randrange(len(words)), f"{rng.choice(ADJECTIVES)}-{rng.choice(NOUNS)}"
                )
            sentence = " ".join(words).capitalize() + rng.choice([".", ".", ".", ",", "?"])
            if rng.random() < 0.1:
                sentence = "\u201c" + sentence + "\u201d"
            sentences.append(sentence)
            length += len(sentence) + 1
        content = " ".join(sentences)[:1500]
        title = " ".join(rng.choices(vocabulary, k=9)).capitalize()
        articles.append(
            Article(
                "https://feed.example/rss",
                f"a{number}",
                title,
                datetime(2024, 5, 1, tzinfo=UTC),
                link=f"https://news{number % 40}.example/story/{number}",
                summary=content[:300],
                content=content,
            )
        )
    return articles


def bench(rule_count: int, articles: list[Article], baseline_subset: int) -> None:
    rng = random.Random(SEED + rule_count)
    with tempfile.TemporaryDirectory() as folder:
        for number, text in enumerate(make_rules(rule_count, rng)):
            (Path(folder) / f"rules-{number:03}.yaml").write_text(text, encoding="utf-8")
        started = time.perf_counter()
        load = load_rules(Path(folder))
        load_seconds = time.perf_counter() - started
    assert load.ok, load.problems[:3]
    rules = load.ruleset.rules
    started = time.perf_counter()
    ruleset = compile_rules(rules)
    compile_seconds = time.perf_counter() - started
    tracemalloc.start()  # a second compile, traced: tracing slows it down several times
    traced = compile_rules(rules)
    memory, _ = tracemalloc.get_traced_memory()
    del traced
    tracemalloc.stop()

    total_bytes = sum(len(a.title) + len(a.summary) + len(a.content) for a in articles)
    matched = 0
    started = time.perf_counter()
    for article in articles:
        matched += len(match_article(ruleset, article))
    seconds = time.perf_counter() - started

    # Bare automaton over the same folded terms, no boundaries, no conditions.
    automaton = ahocorasick.Automaton()
    for term in ruleset.index.terms:
        automaton.add_word(fold(term.text.rstrip("*")), 1)
    automaton.make_automaton()
    started = time.perf_counter()
    for article in articles:
        for text in (article.title, article.summary, article.content):
            for _ in automaton.iter(fold(text)):
                pass
    bare_seconds = time.perf_counter() - started

    # Naive baseline: one regex per list per rule, checked rule by rule (presence only).
    compiled = [
        [
            re.compile(
                r"\b(?:" + "|".join(re.escape(t.text.rstrip("*")) for t in terms) + r")\b",
                re.IGNORECASE,
            )
            for terms in rule.lists.values()
        ]
        for rule in rules
    ]
    subset = articles[:baseline_subset]
    started = time.perf_counter()
    for article in subset:
        text = f"{article.title}\n{article.summary}\n{article.content}"
        for patterns in compiled:
            all(pattern.search(text) for pattern in patterns)
    baseline_seconds = (time.perf_counter() - started) * len(articles) / len(subset)

    rate = len(articles) / seconds
    print(
        f"{rule_count:>6} rules | load+validate {load_seconds:6.2f}s"
        f" | compile {compile_seconds:5.2f}s | {memory / 1e6:6.1f} MB"
        f" | {rate:8.0f} articles/s {total_bytes / seconds / 1e6:5.1f} MB/s"
        f" | {matched / len(articles):5.2f} matches/article"
        f" | bare automaton {len(articles) / bare_seconds:8.0f}/s"
        f" | re loop {len(articles) / baseline_seconds:8.0f}/s (est. from {len(subset)})"
    )


def feed_articles(folder: Path) -> list[Article]:
    """Every article the project's parser reads from the feed files in `folder`."""
    articles: list[Article] = []
    fetched = datetime(2024, 5, 1, tzinfo=UTC)
    for path in sorted(folder.iterdir()):
        if path.suffix == ".md" or not path.is_file():
            continue
        try:
            parsed = parse_feed(path.read_bytes(), url=f"file:{path.name}", headers={},
                                fetched_at=fetched)  # fmt: skip
        except Exception:  # not a feed (HTML, garbage fixtures): skip it
            continue
        articles.extend(parsed.articles)
    return articles


def bench_pack(folder: Path, rounds: int) -> None:
    """The seeded pack in rules/ over real articles, as the pipeline matches them."""
    if not folder.is_dir():
        print(f"seeded pack: skipped ({folder} not found)")
        return
    load = load_rules(ROOT / "rules")
    assert load.ok, load.problems[:3]
    parsed = feed_articles(folder)
    long = [
        dataclasses.replace(article, summary=(article.content or article.summary)[:1600])
        for article in parsed
        if len(article.content or article.summary) >= 1600
    ]
    for label, articles in (("as parsed", parsed), ("1,600-char summaries", long)):
        matched = 0
        started = time.perf_counter()
        for _ in range(rounds):
            for article in articles:
                matched += len(match_article(load.ruleset, article))
        seconds = time.perf_counter() - started
        size = sum(len(a.title) + len(a.summary) for a in articles) * rounds
        print(
            f"seeded pack ({len(load.ruleset.rules)} rules) | {len(articles)} real articles"
            f" {label}, ~{size // rounds // max(len(articles), 1)} chars of title+summary"
            f" | {len(articles) * rounds / seconds:8.0f} articles/s"
            f" {size / seconds / 1e6:5.1f} MB/s | {matched / rounds:.0f} matches in all"
        )


def text_import_ms() -> float:
    """Own import time of monitor.matching.text in a fresh interpreter (parse workers pay it)."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import monitor.matching.text"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    lines = [line for line in result.stderr.splitlines() if line.endswith("monitor.matching.text")]
    return max(int(line.split("|")[0].split(":")[1]) for line in lines) / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 articles, up to 1,000 rules")
    parser.add_argument("--feeds", type=Path, default=Path("/work/shared/data/feeds"))
    options = parser.parse_args()
    rng = random.Random(SEED)
    articles = make_articles(1000 if options.quick else 10_000, rng)
    print(f"machine: {describe_machine()}")
    print(f"import monitor.matching.text: {text_import_ms():.1f} ms (own time)")
    print(
        f"articles: {len(articles)}, ~{sum(len(a.content) for a in articles) // len(articles)}"
        " chars of content each; title, summary and content searched"
    )
    for count in (10, 100, 1000) if options.quick else (10, 100, 1000, 10_000):
        bench(count, articles, baseline_subset=50 if count >= 1000 else 200)
    bench_pack(options.feeds, rounds=2 if options.quick else 10)


if __name__ == "__main__":
    main()
