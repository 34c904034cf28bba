"""What adaptive polling would choose for real feeds: intervals and polls per day.

    python benchmarks/adaptive.py [--feeds FOLDER]

Each feed file in FOLDER (default /work/shared/data/feeds) is parsed with the project's
parser; its items' dates and its ttl / sy:updatePeriod give the interval `monitor run` would
wait after polling it (shipped defaults: MONITOR_MIN_INTERVAL, MONITOR_MAX_INTERVAL,
MONITOR_POLL_INTERVAL; no response headers, no jitter). Beside it, in the same run, the
baseline: every feed at the fixed MONITOR_POLL_INTERVAL, as before adaptive polling. Prints
the machine, the spread of intervals and the polls a day of both.
"""

from __future__ import annotations

import argparse
import statistics
from datetime import UTC, datetime
from pathlib import Path

from _machine import describe_machine  # benchmarks/ is on sys.path when run as a script

from monitor.config import Settings
from monitor.errors import FeedParseError
from monitor.feeds.parse import parse_feed
from monitor.schedule import PollBounds, poll_interval, publish_gap

DAY = 86400.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--feeds", type=Path, default=Path("/work/shared/data/feeds"))
    args = parser.parse_args()
    settings = Settings()
    bounds = PollBounds(settings.min_interval, settings.max_interval)
    now = datetime.now(UTC)
    intervals: list[float] = []
    paced = hinted = failed = 0
    for path in sorted(args.feeds.iterdir()):
        if path.suffix.lower() not in (".rss", ".xml", ".atom", ".rdf", ".json"):
            continue
        try:
            parsed = parse_feed(path.read_bytes(), url=f"https://example.org/{path.name}",
                                headers={}, fetched_at=now)  # fmt: skip
        except FeedParseError:
            failed += 1
            continue
        gap = publish_gap(article.published for article in parsed.articles if article.dated)
        paced += gap is not None
        hinted += parsed.refresh_hint is not None
        intervals.append(
            poll_interval(bounds, settings.poll_interval, gap=gap, hints=(parsed.refresh_hint,))
        )
    print(f"machine: {describe_machine()}")
    print(
        f"{len(intervals)} feeds parsed ({failed} not feeds), {paced} with a publishing pace, "
        f"{hinted} with a ttl or sy:updatePeriod"
    )
    print(f"bounds {bounds.minimum:g}s to {bounds.maximum:g}s, default {settings.poll_interval:g}s")
    quartiles = statistics.quantiles(intervals, n=4)
    print(
        "adaptive interval: min {:.0f}s, quartiles {:.0f}s / {:.0f}s / {:.0f}s, max {:.0f}s; "
        "at the minimum {}, at the maximum {}, at the default {}".format(
            min(intervals), *quartiles, max(intervals),
            sum(i == bounds.minimum for i in intervals),
            sum(i == bounds.maximum for i in intervals),
            sum(i == settings.poll_interval for i in intervals),
        )
    )  # fmt: skip
    adaptive = sum(DAY / interval for interval in intervals)
    fixed = len(intervals) * DAY / settings.poll_interval
    print(
        f"polls a day: adaptive {adaptive:.0f}, fixed {settings.poll_interval:g}s {fixed:.0f} "
        f"(ratio {adaptive / fixed:.2f})"
    )


if __name__ == "__main__":
    main()
