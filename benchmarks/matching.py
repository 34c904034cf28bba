"""Benchmark the rule engine: compile time, memory and articles/s at 10 to 10,000 rules.

    python benchmarks/matching.py [--quick] [--workload realistic|dense|both] [--feeds FOLDER]

Rules and articles are generated with a fixed seed; every article is about 1,500 characters
of title, summary and content, all three searched. Two workloads:

- realistic: each rule watches its own named entity (a company, agency or person from a world
  of 50,000 made-up names, the more newsworthy ones watched more often) with its own topic
  phrases and shared lists, through and/or/not, "N of", NEAR, BEFORE and title scoping.
  Articles are news-like prose that mentions a few entities and topics, so the matches per
  article grow with the number of rules watched, as they do for a real desk.
- dense: a stress case. Every rule and every article is written from one vocabulary of
  2,120 two-word phrases, so a 10,000-rule set matches 36 rules per article and every
  match is explained.

The engine and the bare scan are timed as the best of three passes over the articles. Beside
the engine it times, in the same run, a naive per-rule `re` loop (on a subset of
articles, scaled; it checks list presence only, no NEAR) and a bare multi-pattern scan
(ahocorasick-rs, the engine's own scanner) of the same folded terms with no boundaries,
conditions or explanations, and the same scan with pyahocorasick, the reference the issue's
targets were set against ("about 27,000 articles/s at 1,000 terms": 20,000 is 0.74 of it): its
rate shows how fast the shared host is during the run. Memory is what the compiled rules keep:
Python objects (tracemalloc) plus the automata's native heap (glibc's mallinfo2). Prints the
machine it ran on.

Then the seeded pack (rules/) over real articles: the feed fixtures in --feeds (default
/work/shared/data/feeds) parsed with the project's parser, as parsed and with summaries of
1,600 characters of their own text (what the pipeline matches for long feeds). Skipped when
the folder is missing.
"""

from __future__ import annotations

import argparse
import ctypes
import dataclasses
import itertools
import random
import re
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import ahocorasick as pyahocorasick
import ahocorasick_rs

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _machine import describe_machine  # benchmarks/ is on sys.path when run as a script

from monitor.feeds.parse import parse_feed
from monitor.matching import compile_rules, load_rules, match_article
from monitor.matching.compile import automaton_keys
from monitor.matching.rule import Rule
from monitor.matching.text import fold
from monitor.model import Article

ROOT = Path(__file__).resolve().parent.parent
ARTICLE_CHARS = 1500
PASSES = 3  # engine and bare scan: best of three passes over the articles
WORLD_ENTITIES = 50_000

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


SYLLABLES = [
    "al", "ba", "cor", "da", "el", "fen", "gar", "hal", "is", "jo", "ka", "lum", "mar", "nor",
    "ol", "pra", "quin", "ros", "sel", "tor", "ul", "vas", "wen", "xan", "yor", "zel", "bri",
    "cas", "dor", "est", "fal", "gri", "hen", "ith", "jun", "kel", "lor", "mev", "nat", "orn",
]  # fmt: skip
SUFFIXES = [
    "Group", "Bank", "Systems", "Labs", "Energy", "Motors", "Health", "Capital", "Airlines",
    "Foods", "Telecom", "Mining", "Pharma", "Agency", "Council", "Police", "University",
    "Insurance", "Logistics", "Media",
]  # fmt: skip
FIRST_NAMES = [
    "Anna", "Ben", "Chloe", "David", "Elena", "Farid", "Grace", "Hugo", "Ines", "Jonas",
    "Keiko", "Liam", "Maria", "Nadia", "Omar", "Priya", "Rafael", "Sofia", "Tomas", "Yusuf",
]  # fmt: skip
TEMPLATES = [
    "a and b",
    "a and (b or {s})",
    "(a or b) and not c",
    "a NEAR/5 b",
    "2 of (a, b, c)",
    '{s} and "{p}"',
    "title:a or (summary:b and {s})",
    "a BEFORE/8 {s}",
]
ENTITY_TEMPLATES = [
    "e",
    "e and t",
    "e and (t or {s})",
    "e and not n",
    "e NEAR/10 t",
    "2 of (e, t, {s})",
    "title:e or (e and t)",
    "e BEFORE/8 t",
]


@dataclasses.dataclass(frozen=True)
class Entity:
    name: str  # "Korvanel Bank", "Anna Delmira"
    alias: str  # "Korvanel", "Delmira"


def world_entities(rng: random.Random) -> list[Entity]:
    """WORLD_ENTITIES distinct made-up organisations and people, in order of newsworthiness."""
    entities: list[Entity] = []
    seen: set[str] = set()
    while len(entities) < WORLD_ENTITIES:
        word = "".join(rng.choices(SYLLABLES, k=rng.choice((2, 3, 3, 4)))).capitalize()
        if word in seen:
            continue
        seen.add(word)
        if rng.random() < 0.3:
            entities.append(Entity(f"{rng.choice(FIRST_NAMES)} {word}", word))
        else:
            entities.append(Entity(f"{word} {rng.choice(SUFFIXES)}", word))
    return entities


def _zipf_weights(count: int) -> list[float]:
    return [1 / (rank + 10) for rank in range(count)]


def _rule_files(lines: list[str], chunk_starts: list[int]) -> list[str]:
    """Files of 500 rules each (a rule file is capped at 1 MiB); lists stay in the first."""
    bounds = [*chunk_starts, len(lines)]
    files = ["\n".join(lines[: bounds[1]]) + "\n"]
    files += ["rules:\n" + "\n".join(lines[a:b]) + "\n" for a, b in itertools.pairwise(bounds[1:])]
    return files


def _shared_lists(count: int, rng: random.Random, lines: list[str]) -> list[str]:
    shared = [f"shared_{i}" for i in range(min(50, max(2, count // 4)))]
    for name in shared:
        lines.append(f"  {name}:")
        for term in rng.sample(ORGS, 4):
            lines.append(f"    - {term}")
    return shared


def _phrases() -> list[str]:
    return [f"{a} {n}" for a in ADJECTIVES for n in NOUNS]


def make_dense_rules(count: int, rng: random.Random) -> list[str]:
    phrases = _phrases()
    rng.shuffle(phrases)
    lines = ["lists:"]
    shared = _shared_lists(count, rng, lines)
    lines.append("rules:")
    chunk_starts = [len(lines)]
    for number in range(count):
        if number and number % 500 == 0:
            chunk_starts.append(len(lines))
        condition = rng.choice(TEMPLATES).format(s=rng.choice(shared), p=rng.choice(phrases))
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
    return _rule_files(lines, chunk_starts)


def make_realistic_rules(count: int, rng: random.Random, world: list[Entity]) -> list[str]:
    phrases = _phrases()
    # Desks watch the newsworthy more often: entities drawn by the articles' own popularity.
    weights = _zipf_weights(len(world))
    watched: dict[int, None] = {}
    while len(watched) < count:
        watched.update(dict.fromkeys(rng.choices(range(len(world)), weights, k=count)))
    lines = ["lists:"]
    shared = _shared_lists(count, rng, lines)
    lines.append("rules:")
    chunk_starts = [len(lines)]
    for number, entity_index in enumerate(itertools.islice(watched, count)):
        if number and number % 500 == 0:
            chunk_starts.append(len(lines))
        entity = world[entity_index]
        condition = rng.choice(ENTITY_TEMPLATES).format(s=rng.choice(shared))
        lines += [
            f"  - id: rule-{number}",
            f"    title: {entity.name}",
            f"    condition: '{condition}'",
            "    fields: [title, summary, content]",
            "    terms:",
            "      e:",
            f"        - {entity.name}",
            f"        - {entity.alias}",
        ]
        for name in ("t", "n"):
            if re.search(rf"\b{name}\b", condition):
                lines.append(f"      {name}:")
                for term in rng.sample(phrases, rng.randint(2, 6)):
                    lines.append(f"        - {term}{'*' if rng.random() < 0.05 else ''}")
    return _rule_files(lines, chunk_starts)


def _prose(rng: random.Random, length: int, mentions: list[str]) -> str:
    """Sentences of about `length` characters from common words and the vocabulary's single
    words, with two-word phrases here and there and `mentions` placed in them."""
    vocabulary = COMMON * 4 + NOUNS + ADJECTIVES
    sentences: list[str] = []
    size = 0
    pending = list(mentions)
    while size < length:
        words = rng.choices(vocabulary, k=rng.randint(8, 22))
        if rng.random() < 0.3:
            words.insert(rng.randrange(len(words)), f"{rng.choice(ADJECTIVES)}-{rng.choice(NOUNS)}")
        if pending and rng.random() < 0.6:
            words.insert(rng.randrange(len(words)), pending.pop())
        sentence = " ".join(words)
        sentence = sentence[0].upper() + sentence[1:] + rng.choice([".", ".", ".", ",", "?"])
        if rng.random() < 0.1:
            sentence = "\u201c" + sentence + "\u201d"
        sentences.append(sentence)
        size += len(sentence) + 1
    return " ".join(sentences)[:length].rstrip()


def make_articles(
    count: int, rng: random.Random, world: list[Entity] | None = None
) -> list[Article]:
    """Articles of about ARTICLE_CHARS characters: title, a summary and content of their own.

    With `world`, each mentions a few entities (by full name or alias, the newsworthy more
    often); without, it is prose from the vocabulary alone (the dense workload).
    """
    weights = _zipf_weights(len(world)) if world else []
    articles = []
    for number in range(count):
        mentions: list[str] = []
        if world:
            for entity in rng.choices(world, weights, k=rng.randint(2, 8)):
                mentions.append(entity.name if rng.random() < 0.6 else entity.alias)
        title = _prose(rng, 70, mentions[:1])
        summary = _prose(rng, 230, mentions[1:3])
        content = _prose(rng, ARTICLE_CHARS - len(title) - len(summary), mentions[3:])
        articles.append(
            Article(
                "https://feed.example/rss",
                f"a{number}",
                title,
                datetime(2024, 5, 1, tzinfo=UTC),
                link=f"https://news{number % 40}.example/story/{number}",
                summary=summary,
                content=content,
            )
        )
    return articles


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost",
    )]  # fmt: skip


def native_heap_bytes() -> int | None:
    """Bytes in use on glibc's heap (where Rust and C extensions allocate); None elsewhere."""
    try:
        mallinfo2 = ctypes.CDLL("libc.so.6").mallinfo2
    except (OSError, AttributeError):
        return None
    mallinfo2.restype = _MallInfo2
    info = mallinfo2()
    return int(info.uordblks + info.hblkhd)


def compiled_memory(rules: tuple[Rule, ...]) -> tuple[float, float]:
    """MB that compiled rules keep: Python objects (tracemalloc), and the native heap of their
    automata (rebuilt alone from the same keys: Python's own large blocks are on glibc's heap
    too, and tracemalloc already counts them). NaN where glibc is not there to ask."""
    tracemalloc.start()
    ruleset = compile_rules(rules)
    python_bytes, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    shared = {id(phrases): phrases for _, phrases in ruleset.index.phrases}
    native = 0
    for phrases in shared.values():
        terms = {term for key in phrases.keys for term in key.terms}
        spellings = sorted(
            {key for term in terms for key in automaton_keys(ruleset.index.terms[term])}
        )
        before = native_heap_bytes()
        automaton = ahocorasick_rs.AhoCorasick(spellings)
        after = native_heap_bytes()
        if before is None or after is None:
            return python_bytes / 1e6, float("nan")
        native += after - before
        del automaton
    return python_bytes / 1e6, native / 1e6


def best_of(passes: int, work: Callable[[], int]) -> tuple[float, int]:
    """The fastest of `passes` runs, and what the work returned (as timeit does: this host's
    neighbours slow some runs down, never speed one up)."""
    best = float("inf")
    result = 0
    for _ in range(passes):
        started = time.perf_counter()
        result = work()
        best = min(best, time.perf_counter() - started)
    return best, result


def bench(
    workload: str, rule_files: list[str], articles: list[Article], baseline_subset: int
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        for number, text in enumerate(rule_files):
            (Path(folder) / f"rules-{number:03}.yaml").write_text(text, encoding="utf-8")
        started = time.perf_counter()
        load = load_rules(Path(folder))
        load_seconds = time.perf_counter() - started
    assert load.ok, load.problems[:3]
    rules = load.ruleset.rules
    started = time.perf_counter()
    ruleset = compile_rules(rules)
    compile_seconds = time.perf_counter() - started
    python_mb, native_mb = compiled_memory(rules)

    total_chars = sum(len(a.title) + len(a.summary) + len(a.content) for a in articles)

    def engine() -> int:
        return sum(len(match_article(ruleset, article)) for article in articles)

    seconds, matched = best_of(PASSES, engine)
    # Every template has a positive term: every match must come with its explanation.
    assert all(match.hits for a in articles[:200] for match in match_article(ruleset, a))

    # Bare scans over the same folded terms: no boundaries, no conditions, no explanations.
    folded_terms = list({fold(term.text.rstrip("*")) for term in ruleset.index.terms})
    scanner = ahocorasick_rs.AhoCorasick(folded_terms)

    def bare() -> int:
        return sum(
            len(scanner.find_matches_as_indexes(fold(text), overlapping=True))
            for article in articles
            for text in (article.title, article.summary, article.content)
        )

    bare_seconds, _ = best_of(PASSES, bare)

    # The reference scan (pyahocorasick, about 27,000 articles/s at 1,000 terms on this
    # machine): its rate in the same run tells how fast the host is right now.
    reference = pyahocorasick.Automaton()
    for term in folded_terms:
        reference.add_word(term, None)
    reference.make_automaton()

    def reference_scan() -> int:
        return sum(
            len(list(reference.iter(fold(text))))
            for article in articles
            for text in (article.title, article.summary, article.content)
        )

    reference_seconds, _ = best_of(PASSES, reference_scan)

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
        f"{workload:>9} {len(rules):>6} rules | load+validate {load_seconds:6.2f}s"
        f" | compile {compile_seconds:5.2f}s | {python_mb:5.1f} MB + {native_mb:4.1f} MB native"
        f" | {rate:7.0f} articles/s {total_chars / seconds / 1e6:5.1f} MB/s"
        f" | {matched / len(articles):5.2f} matches/article"
        f" | bare scan {len(articles) / bare_seconds:7.0f}/s ({seconds / bare_seconds:4.1f}x)"
        f" | pyahocorasick {len(articles) / reference_seconds:6.0f}/s"
        f" ({reference_seconds / seconds:4.2f}x of it)"
        f" | re loop {len(articles) / baseline_seconds:6.0f}/s"
        f" (est. from {len(subset)}) | {rate * baseline_seconds / len(articles):5.0f}x re"
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
    parser.add_argument("--workload", choices=("realistic", "dense", "both"), default="both")
    parser.add_argument("--feeds", type=Path, default=Path("/work/shared/data/feeds"))
    options = parser.parse_args()
    article_count = 1000 if options.quick else 10_000
    counts = (10, 100, 1000) if options.quick else (10, 100, 1000, 10_000)
    print(f"machine: {describe_machine()}")
    print(f"import monitor.matching.text: {text_import_ms():.1f} ms (own time)")
    print("bare scan: (Nx) is how many times longer the engine took than the bare scan")
    world = world_entities(random.Random(SEED))
    workloads = ("realistic", "dense") if options.workload == "both" else (options.workload,)
    for workload in workloads:
        rng = random.Random(SEED)
        articles = make_articles(article_count, rng, world if workload == "realistic" else None)
        chars = sum(len(a.title) + len(a.summary) + len(a.content) for a in articles)
        print(
            f"{workload}: {len(articles)} articles, ~{chars // len(articles)} characters each"
            " (title, summary and content, all searched); one core"
        )
        for count in counts:
            rule_rng = random.Random(SEED + count)
            if workload == "realistic":
                files = make_realistic_rules(count, rule_rng, world)
            else:
                files = make_dense_rules(count, rule_rng)
            bench(workload, files, articles, baseline_subset=50 if count >= 1000 else 200)
    bench_pack(options.feeds, rounds=2 if options.quick else 10)


if __name__ == "__main__":
    main()
