"""Benchmark the dry run as users run it: `monitor rules test --input FILE.jsonl --format json`.

    python benchmarks/dryrun.py [--articles 20000] [--rounds 3] [--baseline main]
                                [--pack NAME=DIR|NAME=git:REF ...]

Generates, with a fixed seed, JSON Lines articles of a 10-word title and a 90-word summary:
words drawn from the text of the feed fixtures in tests/data/feeds, with the pack's own
vocabulary (face recognition, police, bans, courts, ...) mixed in, so that about one article
in ten matches a rule and most mention one of its terms. Runs the real CLI in a subprocess
(`python -m monitor`, output to a file) over that input and over an empty one in the same run,
each the best of --rounds, and reports articles/s after start-up: articles / (time on the
input - time on the empty input), by the wall clock and by the child's CPU time (which a busy
shared host disturbs less).

Packs: the shipped pack (rules/), the same pack doubled (every list and rule copied under new
names, its terms given a suffix so they are new words that the text never holds, the way terms
of more languages grow a pack) and any --pack given. The baseline is the same run with the code
of git ref --baseline (default main), extracted to a temporary folder, on the packs it can load;
its ratio says how much of a change is the code and how much the host. Prints the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

from ruamel.yaml import YAML

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _machine import describe_machine  # benchmarks/ is on sys.path when run as a script

ROOT = Path(__file__).resolve().parent.parent
SEED = 10
TITLE_WORDS = 10
SUMMARY_WORDS = 90
# Phrases of the pack's subject, mixed into the generated text (English, as most feeds are).
TOPIC = [
    "facial recognition", "face recognition", "police", "ban", "bans", "court", "lawmakers",
    "surveillance", "privacy", "biometric", "moratorium", "council", "lawsuit", "camera",
    "Clearview AI", "wrongful arrest", "regulators", "data protection", "protest", "airport",
]  # fmt: skip
TOPIC_SHARE = 0.012  # share of the words that are topic phrases
WORD_RE = re.compile(r"\b[A-Za-z][a-z]{2,11}\b")
TAG_RE = re.compile(r"<[^>]+>")


def vocabulary() -> list[str]:
    """Words of the feed fixtures' text, in a fixed order."""
    words: list[str] = []
    for path in sorted((ROOT / "tests" / "data" / "feeds").iterdir()):
        if path.is_file():
            text = TAG_RE.sub(" ", path.read_text(encoding="utf-8", errors="ignore"))
            words += WORD_RE.findall(text)
    return words


def sentence(rng: random.Random, words: list[str], count: int) -> str:
    chosen = [rng.choice(TOPIC) if rng.random() < TOPIC_SHARE else rng.choice(words)]
    while len(chosen) < count:
        chosen.append(rng.choice(TOPIC) if rng.random() < TOPIC_SHARE else rng.choice(words))
    return " ".join(chosen)


def summary(rng: random.Random, words: list[str]) -> str:
    """90 words in sentences of 12 to 25 words, so `lead` has a first sentence to find."""
    sentences, left = [], SUMMARY_WORDS
    while left > 0:
        size = min(left, rng.randint(12, 25))
        text = sentence(rng, words, size)
        sentences.append(text[0].upper() + text[1:] + ".")
        left -= size
    return " ".join(sentences)


def write_articles(path: Path, count: int) -> None:
    rng = random.Random(SEED)
    words = vocabulary()
    with path.open("w", encoding="utf-8") as out:
        for number in range(count):
            title = sentence(rng, words, TITLE_WORDS)
            row = {
                "id": f"a{number}",
                "title": title[0].upper() + title[1:],
                "summary": summary(rng, words),
                "link": f"https://news.example/{number}",
            }
            out.write(json.dumps(row) + "\n")


def doubled_pack(source: Path, target: Path) -> Path:
    """The pack with every list and rule copied under new names, with new terms."""
    yaml = YAML(typ="rt")
    target.mkdir(parents=True, exist_ok=True)
    names: set[str] = set()
    documents = []
    for path in sorted(source.rglob("*.y*ml")):
        document = yaml.load(path.read_text(encoding="utf-8"))
        documents.append((path, document))
        names.update((document or {}).get("lists") or {})
    pattern = re.compile(r"\b(" + "|".join(sorted(names, key=len, reverse=True)) + r")\b")

    def rename(condition: str) -> str:
        parts = condition.split('"')  # quoted phrases are the odd parts: left as written
        return '"'.join(
            part if index % 2 else pattern.sub(r"\1_copy", part) for index, part in enumerate(parts)
        )

    for path, document in documents:
        if not document:
            continue
        copy = yaml.load(path.read_text(encoding="utf-8"))
        for name in list(copy.get("lists") or {}):
            copy["lists"][f"{name}_copy"] = [_new_term(term) for term in copy["lists"].pop(name)]
        for rule in copy.get("rules") or []:
            rule["id"] = f"{rule['id']}-copy"
            rule.pop("examples", None)
            for name, terms in (rule.get("terms") or {}).items():
                rule["terms"][name] = [_new_term(term) for term in terms]
            if isinstance(rule.get("condition"), str):
                rule["condition"] = rename(rule["condition"])
        relative = path.relative_to(source)
        for name, body in (
            (relative, document),
            (relative.with_stem(relative.stem + "-copy"), copy),
        ):
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            with (target / name).open("w", encoding="utf-8") as out:
                yaml.dump(body, out)
    return target


def _new_term(term: object) -> object:
    """A term that spells a new word: "zq" after the phrase, or after the regex."""
    if isinstance(term, str):
        return term[:-1] + "zq*" if term.endswith("*") else term + "zq"
    if isinstance(term, dict):
        term = dict(term)
        if "phrase" in term:
            term["phrase"] = _new_term(term["phrase"])
        if "regex" in term:
            term["regex"] = f"(?:{term['regex']})zq"
        return term
    return term


def git_folder(ref: str, path: str, target: Path) -> Path | None:
    """`path` of git `ref`, extracted under `target`; None when the ref does not exist."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", ref, path],
        capture_output=True,
        check=False,
    )
    if archive.returncode != 0:
        return None
    with tarfile.open(fileobj=BytesIO(archive.stdout)) as tar:
        tar.extractall(target, filter="data")
    return target / path


def run_cli(code: Path, rules: Path, source: Path, output: Path) -> tuple[float, float] | None:
    """(wall seconds, CPU seconds) of one `rules test` run; None when it fails (a pack this
    code cannot load). CPU time is the child's own (user + system): on a shared host it
    varies less than the wall clock, which waits for the other processes."""
    env = {**os.environ, "PYTHONPATH": str(code), "MONITOR_FEEDS": "", "MONITOR_RULES": ""}
    command = [sys.executable, "-m", "monitor", "rules", "test", "--input", str(source)]
    command += ["--rules", str(rules), "--format", "json"]
    started = time.perf_counter()
    with output.open("wb") as out, tempfile.TemporaryFile() as errors:
        # In `code`: `python -m` puts the working folder first on sys.path.
        child = subprocess.Popen(command, stdout=out, stderr=errors, env=env, cwd=code)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - started
        errors.seek(0)
        failed = child.returncode != 0 or b"error" in errors.read()
    return None if failed else (seconds, usage.ru_utime + usage.ru_stime)


def measure(
    code: Path, rules: Path, full: Path, empty: Path, out: Path, rounds: int
) -> tuple[tuple[float, float], tuple[float, float], int] | None:
    """Best (wall, CPU) seconds of start-up and of the run on the input, and lines written."""
    startups, totals = [], []
    for _ in range(rounds):
        startup = run_cli(code, rules, empty, out)
        total = run_cli(code, rules, full, out)
        if startup is None or total is None:
            return None
        startups.append(startup)
        totals.append(total)
    lines = sum(1 for _ in out.open(encoding="utf-8"))
    best = (min(wall for wall, _ in startups), min(cpu for _, cpu in startups))
    return best, (min(wall for wall, _ in totals), min(cpu for _, cpu in totals)), lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", default="main", help="git ref of the baseline code")
    parser.add_argument("--pack", action="append", default=[], metavar="NAME=DIR|NAME=git:REF")
    options = parser.parse_args()
    print(f"machine: {describe_machine()}")
    with tempfile.TemporaryDirectory(prefix="dryrun-bench-") as folder:
        work = Path(folder)
        full, empty, out = work / "articles.jsonl", work / "empty.jsonl", work / "out.jsonl"
        write_articles(full, options.articles)
        empty.write_text("", encoding="utf-8")
        packs = {"shipped": ROOT / "rules"}
        packs["shipped doubled"] = doubled_pack(ROOT / "rules", work / "doubled")
        for given in options.pack:
            name, _, where = given.partition("=")
            if where.startswith("git:"):
                found = git_folder(where[4:], "rules", work / f"pack-{name}")
                if found is None:
                    print(f"pack {name}: no git ref {where[4:]}, skipped")
                    continue
                packs[name] = found
                packs[f"{name} doubled"] = doubled_pack(found, work / f"pack-{name}-doubled")
            else:
                packs[name] = Path(where)
        baseline = git_folder(options.baseline, "monitor", work / "baseline")
        print(
            f"input: {options.articles} articles of {TITLE_WORDS}-word titles and "
            f"{SUMMARY_WORDS}-word summaries, {full.stat().st_size / 1e6:.1f} MB; "
            f"best of {options.rounds}; code: this tree and {options.baseline}"
        )
        header = f"{'pack':<24} {'code':<10} {'start-up':>9} {'run':>8} {'matched':>8}"
        print(f"{header} {'articles/s':>11} {'CPU: start-up':>14} {'run':>7} {'articles/s':>11}")
        rates: dict[tuple[str, str], tuple[float, float]] = {}
        for name, rules in packs.items():
            codes = [("this", ROOT)]
            if baseline is not None:
                codes.append((options.baseline, baseline.parent))
            for label, code in codes:
                result = measure(code, rules, full, empty, out, options.rounds)
                if result is None:
                    print(f"{name:<24} {label:<10} {'cannot load this pack':>40}")
                    continue
                (startup, startup_cpu), (total, total_cpu), lines = result
                assert lines == options.articles, (name, label, lines)
                matched = sum(1 for line in out.open(encoding="utf-8") if '"matches": [{' in line)
                rate = options.articles / (total - startup)
                cpu_rate = options.articles / (total_cpu - startup_cpu)
                rates[name, label] = (rate, cpu_rate)
                print(
                    f"{name:<24} {label:<10} {startup:>8.2f}s {total:>7.2f}s {matched:>8} "
                    f"{rate:>11,.0f} {startup_cpu:>13.2f}s {total_cpu:>6.2f}s {cpu_rate:>11,.0f}"
                )
        for name in packs:
            baseline_ref = options.baseline
            if (name, "this") in rates and (name, baseline_ref) in rates:
                (wall, cpu), (base_wall, base_cpu) = (
                    rates[name, "this"],
                    rates[name, options.baseline],
                )
                print(
                    f"{name}: this tree runs at {wall / base_wall:.2f} x the speed of "
                    f"{options.baseline} (wall clock), {cpu / base_cpu:.2f} x (CPU time)"
                )


if __name__ == "__main__":
    main()
