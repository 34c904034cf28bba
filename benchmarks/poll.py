"""Benchmark the real poll cycle against the floor: a bare fetch plus feedparser.

Serves N feeds x 50 items from nginx on 127.0.0.1 (fast enough not to be the
bottleneck), then, each phase in its own process so peak memory is its own:
  floor  aiohttp GET of every URL at the same concurrency + feedparser.parse of each body
  cold   the real poll_cycle (fetch, parse in the process pool, match, store) on an empty database
  warm   the same again: every feed answers 304
Usage: python benchmarks/poll.py [--feeds 1000] [--items 50] [--database-url URL]
Needs nginx (Debian: apt-get install nginx-light). Only loopback is contacted.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine import describe_machine  # noqa: E402

WORDS = (
    "council",
    "city",
    "state",
    "federal",
    "agency",
    "police",
    "department",
    "camera",
    "data",
    "privacy",
    "law",
    "bill",
    "vote",
    "court",
    "judge",
    "ruling",
    "lawsuit",
    "company",
    "software",
    "vendor",
    "contract",
    "public",
    "record",
    "report",
    "audit",
    "officials",
    "residents",
    "budget",
    "transit",
    "housing",
    "school",
    "health",
    "climate",
    "energy",
    "market",
    "shares",
    "technology",
    "system",
    "program",
    "policy",
    "review",
    "hearing",
    "committee",
    "senator",
    "governor",
    "mayor",
    "union",
)
HEADLINES = (
    "City council votes to ban facial recognition technology for police",
    "Amazon extends moratorium on police use of Rekognition",
    "Microsoft will not sell facial recognition to police until federal law exists",
    "IBM faces lawsuit over pension changes",
    "Apple's Face ID comes to more devices",
    "Police arrest suspect after downtown robbery",
    "Clearview AI fined by European regulator",
    "Transit agency approves new budget",
)


def make_feed(index: int, items: int, rng: random.Random) -> str:
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    entries = []
    for item in range(items):
        headline = (
            rng.choice(HEADLINES)
            if rng.random() < 0.1
            else " ".join(rng.choice(WORDS) for _ in range(9)).capitalize()
        )
        body = " ".join(rng.choice(WORDS) for _ in range(220))
        published = format_datetime(now - timedelta(minutes=item * 7 + index))
        entries.append(
            f"<item><title>{escape(headline)}</title>"
            f"<link>https://news.example/{index}/{item}?utm_source=rss</link>"
            f"<guid>urn:bench:{index}:{item}</guid><pubDate>{published}</pubDate>"
            f"<description>{escape('<p>' + body + '</p>')}</description></item>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>Bench feed {index}</title><link>https://news.example/{index}</link>"
        f"<description>synthetic</description>{''.join(entries)}</channel></rss>"
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_nginx(root: Path, port: int) -> subprocess.Popen[bytes]:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        sys.exit("nginx not found: install it (Debian: apt-get install nginx-light)")
    user = "user root root;" if os.geteuid() == 0 else ""
    conf = root / "nginx.conf"
    conf.write_text(
        f"""{user}
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {root}/tmp-body; proxy_temp_path {root}/tmp-proxy;
  fastcgi_temp_path {root}/tmp-fcgi; uwsgi_temp_path {root}/tmp-uwsgi;
  scgi_temp_path {root}/tmp-scgi;
  keepalive_requests 100000;
  server {{ listen 127.0.0.1:{port}; root {root}/www; default_type application/rss+xml; }}
}}
"""
    )
    process = subprocess.Popen([nginx, "-p", str(root), "-c", str(conf), "-g", "daemon off;"])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    sys.exit(f"nginx did not start; see {root}/error.log")


class MemorySampler:
    """Peak RSS of this process and of this process plus its children (the parse workers)."""

    def __init__(self, every: float = 0.02) -> None:
        import threading

        import psutil

        self._process = psutil.Process()
        self._every = every
        self._stop = threading.Event()
        self.peak_self = self.peak_total = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                own = self._process.memory_info().rss
                children = sum(
                    child.memory_info().rss for child in self._process.children(recursive=True)
                )
            except Exception:  # a child exited between listing and reading; sample again
                continue
            self.peak_self = max(self.peak_self, own)
            self.peak_total = max(self.peak_total, own + children)
            self._stop.wait(self._every)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def figures(self) -> dict[str, float]:
        return {
            "peak_rss_self_mb": self.peak_self / 2**20,
            "peak_rss_total_mb": self.peak_total / 2**20,
        }


def phase_floor(urls: list[str], concurrency: int) -> dict[str, float]:
    import asyncio

    import aiohttp
    import feedparser

    async def fetch_all() -> list[bytes]:
        limit = asyncio.Semaphore(concurrency)
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=concurrency)
        ) as session:

            async def one(url: str) -> bytes:
                async with limit, session.get(url) as response:
                    return await response.read()

            return await asyncio.gather(*(one(url) for url in urls))

    with MemorySampler() as memory:
        start = time.perf_counter()
        bodies = asyncio.run(fetch_all())
        fetched = time.perf_counter()
        articles = sum(len(feedparser.parse(io.BytesIO(body)).entries) for body in bodies)
        done = time.perf_counter()
    return {
        "seconds": done - start,
        "fetch_seconds": fetched - start,
        "articles": articles,
        **memory.figures(),
    }


def phase_cycle(urls: list[str], database_url: str, concurrency: int) -> dict[str, float]:
    import asyncio

    from monitor.feeds.fetch import Fetcher, FetchOptions
    from monitor.matching import load_rules
    from monitor.model import FeedSpec
    from monitor.pipeline import PollSettings, poll_cycle
    from monitor.reader import ArticleReader
    from monitor.store.store import Store

    store = Store.open(database_url)
    store.upgrade()
    store.sync_feeds([FeedSpec(url=url) for url in urls], datetime.now(UTC))
    rules = load_rules(ROOT / "rules").ruleset
    settings = PollSettings(
        fetch=FetchOptions(allow_private_addresses=True, concurrency=concurrency),
        poll_interval=60.0,
        jitter=lambda: 0.0,
        # Every benchmark feed is on the one local nginx and the floor has no per-host limit:
        # compared like for like, the cycle may use the whole concurrency on that host too.
        per_host=concurrency,
    )
    reader = ArticleReader(rules)
    results: dict[str, float] = {}
    try:
        with MemorySampler() as memory:
            for name in ("cold", "warm"):
                # Every feed is due again: the second cycle sends If-None-Match.
                clock_offset = timedelta(hours=1) if name == "warm" else timedelta(0)
                start = time.perf_counter()
                report = asyncio.run(
                    poll_cycle(
                        store,
                        Fetcher,
                        reader,
                        settings,
                        clock=lambda offset=clock_offset: datetime.now(UTC) + offset,
                    )
                )
                seconds = time.perf_counter() - start
                results[f"{name}_seconds"] = seconds
                results[f"{name}_feeds"] = len(report.feeds)
                results[f"{name}_failed"] = len(report.failed)
                results[f"{name}_articles"] = report.new_articles
                results[f"{name}_matches"] = report.new_matches
                results[f"{name}_not_modified"] = report.count("not-modified")
    finally:
        reader.close()
        store.close()
    results.update(memory.figures())
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--items", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--database-url", help="default: a SQLite file in a temporary folder")
    parser.add_argument("--phase", choices=["floor", "cycle"], help=argparse.SUPPRESS)
    parser.add_argument("--urls", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.phase:
        urls = Path(args.urls).read_text().split()
        if args.phase == "floor":
            result = phase_floor(urls, args.concurrency)
        else:
            result = phase_cycle(urls, args.database_url, args.concurrency)
        print(json.dumps(result))
        return

    with tempfile.TemporaryDirectory(prefix="monitor-bench-") as folder:
        root = Path(folder)
        os.chmod(root, 0o755)
        (root / "www").mkdir()
        rng = random.Random(20261126)
        for index in range(args.feeds):
            (root / "www" / f"feed{index}.xml").write_text(make_feed(index, args.items, rng))
        port = free_port()
        urls = [f"http://127.0.0.1:{port}/feed{index}.xml" for index in range(args.feeds)]
        (root / "urls.txt").write_text("\n".join(urls))
        database_url = args.database_url or f"sqlite:///{root / 'bench.db'}"
        nginx = start_nginx(root, port)
        try:

            def run(phase: str) -> dict[str, float]:
                output = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--phase",
                        phase,
                        "--urls",
                        str(root / "urls.txt"),
                        "--database-url",
                        database_url,
                        "--concurrency",
                        str(args.concurrency),
                    ],
                    check=True,
                    capture_output=True,
                    text=True,
                    timeout=1800,
                )
                return json.loads(output.stdout.strip().splitlines()[-1])

            floor = run("floor")
            cycle = run("cycle")
        finally:
            nginx.terminate()
            nginx.wait(timeout=10)

    feeds = args.feeds
    print(f"machine: {describe_machine()}")
    print(
        f"feeds: {feeds} x {args.items} items from nginx on 127.0.0.1, "
        f"concurrency {args.concurrency}, database {database_url.split(':')[0]}"
    )
    print(
        f"floor  (aiohttp GET + feedparser.parse, one process): {floor['seconds']:.2f} s, "
        f"{feeds / floor['seconds']:.1f} feeds/s, {floor['articles'] / floor['seconds']:.0f} "
        f"articles/s (fetch alone {floor['fetch_seconds']:.2f} s), "
        f"peak RSS {floor['peak_rss_self_mb']:.0f} MB"
    )
    print(
        f"cold cycle (fetch, parse in pool, match, store): {cycle['cold_seconds']:.2f} s, "
        f"{feeds / cycle['cold_seconds']:.1f} feeds/s, "
        f"{cycle['cold_articles'] / cycle['cold_seconds']:.0f} articles/s, "
        f"{cycle['cold_articles']:.0f} new articles, {cycle['cold_matches']:.0f} matches, "
        f"{cycle['cold_failed']:.0f} failed"
    )
    print(
        f"warm cycle (all 304): {cycle['warm_seconds']:.2f} s, "
        f"{feeds / cycle['warm_seconds']:.0f} feeds/s, "
        f"{cycle['warm_not_modified']:.0f} not modified, {cycle['warm_articles']:.0f} new"
    )
    print(
        f"cold / floor time ratio: {cycle['cold_seconds'] / floor['seconds']:.2f} (target <= 1.3)"
    )
    print(
        f"peak RSS: cycle process {cycle['peak_rss_self_mb']:.0f} MB, with its parse workers "
        f"{cycle['peak_rss_total_mb']:.0f} MB (target < 200 MB)"
    )


if __name__ == "__main__":
    main()
