"""Benchmark what holding alerts back costs the poll's write: record_polls with and without
a delivery policy (#9).

    python benchmarks/holds.py [--feeds 50] [--articles 40] [--rounds 3]

Each case writes the same outcomes into a fresh SQLite file: ``--feeds`` outcomes of
``--articles`` new matching articles each (one transaction per 200 outcomes, as the cycle's
writer does), then as many outcomes of a 304 (no articles). Cases: no policy (every match
alerts: the baseline, in the same run), the shipped default policy (30 alerts an hour a
channel: most matches are held), that policy with ten silences, a rule limit and quiet hours
elsewhere, and a digest rule holding every match. Best of ``--rounds``; prints the machine.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _machine import describe_machine  # benchmarks/ is on sys.path when run as a script

from monitor.gate import DeliveryPolicy
from monitor.model import Article, FeedSpec, Match, TermHit
from monitor.silence import QuietHours
from monitor.store.store import PollOutcome, Store


def outcomes(
    feeds: int, articles: int, now: datetime
) -> tuple[list[PollOutcome], list[PollOutcome]]:
    hit = TermHit("ban", "title", "ban", 0, 3)
    changed, unchanged = [], []
    for f in range(feeds):
        url = f"https://feed{f}.example/rss"
        items = tuple(
            (
                Article(
                    url,
                    f"urn:{f}:{n}",
                    f"City {f} votes to ban face scans, story {n}",
                    now - timedelta(minutes=n),
                    f"https://news{f}.example/{n}",
                ),
                (Match("ban", "Bans", "high", f"#desk{f % 5}", (hit,)),),
            )
            for n in range(articles)
        )
        changed.append(PollOutcome(url, now, now + timedelta(minutes=5), 200, articles=items))
        unchanged.append(PollOutcome(url, now, now + timedelta(minutes=5), 304))
    return changed, unchanged


def run(
    policy: DeliveryPolicy | None, feeds: int, articles: int, silences: int
) -> tuple[float, float, int]:
    """Seconds to record the changed outcomes, the 304s, and the alerts queued."""
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as folder:
        store = Store.open(f"sqlite:///{folder}/bench.db")
        try:
            store.upgrade()
            store.sync_feeds([FeedSpec(f"https://feed{f}.example/rss") for f in range(feeds)], now)
            for n in range(silences):
                store.add_silence(
                    reason="bench", now=now, until=now + timedelta(hours=1), domain=f"other{n}.org"
                )
            store.use_policy(policy)
            changed, unchanged = outcomes(feeds, articles, now)
            started = time.perf_counter()
            for start in range(0, len(changed), 200):
                store.record_polls(changed[start : start + 200])
            write = time.perf_counter() - started
            started = time.perf_counter()
            for start in range(0, len(unchanged), 200):
                store.record_polls(unchanged[start : start + 200])
            idle = time.perf_counter() - started
            return write, idle, store.delivery_counts().get("pending", 0)
        finally:
            store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=50)
    parser.add_argument("--articles", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    quiet_elsewhere = QuietHours("#nobody", clock_time(0), clock_time(23, 59))
    cases: list[tuple[str, DeliveryPolicy | None, int]] = [
        ("no policy (baseline)", None, 0),
        ("default policy", DeliveryPolicy(), 0),
        (
            "default + 10 silences, rule limit, quiet hours elsewhere",
            DeliveryPolicy(rule_max_per_hour={"ban": 20}, quiet_hours=(quiet_elsewhere,)),
            10,
        ),
        ("digest rule", DeliveryPolicy(digest_rules=frozenset({"ban"})), 0),
    ]
    print(describe_machine())
    total = args.feeds * args.articles
    print(f"{args.feeds} feeds x {args.articles} new matching articles = {total} matches;", end=" ")
    print(f"best of {args.rounds}")
    baseline: tuple[float, float] | None = None
    for name, policy, silences in cases:
        results = [run(policy, args.feeds, args.articles, silences) for _ in range(args.rounds)]
        write = min(r[0] for r in results)
        idle = min(r[1] for r in results)
        alerts = results[0][2]
        if baseline is None:
            baseline = (write, idle)
        print(
            f"{name:<58} write {write:6.3f} s ({total / write:7.0f} matches/s, "
            f"x{write / baseline[0]:.2f}); {args.feeds} 304s {idle * 1000:6.1f} ms "
            f"(x{idle / baseline[1]:.2f}); {alerts} alerts queued, {total - alerts} held"
        )


if __name__ == "__main__":
    main()
