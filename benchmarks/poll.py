"""Benchmark the real poll cycle against the floors measured in the same run (#11).

Serves N feeds from nginx on 127.0.0.1, each a real feed file of tests/data/feeds with
addresses of its own, then runs each phase in its own process so its peak memory is its own:
  floor       aiohttp GET of every URL at the same concurrency + feedparser.parse of each body
  conditional aiohttp GET of every URL with its ETag/Last-Modified: all 304, the warm floor
  cold, warm  the real poll_cycle (fetch, parse in the pool, match, store), then again (all 304)
  workers     `monitor poll --once` cold cycles on PostgreSQL by 1 and by 3 processes at once
Usage: python benchmarks/poll.py [--feeds 1000] [--concurrency 50] [--workers 1,3] [--no-workers]
Needs nginx (Debian: apt-get install nginx-light), and pg_ctl for the workers phase; a part
whose tool is missing is skipped with a message. Only loopback is contacted. Every child
process has a time limit (--time-limit), so the run is bounded.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine import describe_machine  # noqa: E402

FEED_FILES = ROOT / "tests" / "data" / "feeds"
# The text of a link, guid or id element, and an Atom link's href: made unique per feed.
_ADDRESS = re.compile(rb"(<(?:link|guid|id)(?:\s[^>]*)?>\s*(?:<!\[CDATA\[)?)(https?://[^<\]\s]+)")
_HREF = re.compile(rb'(<link\b[^>]*\bhref=")(https?://[^"]+)')


def real_templates() -> list[bytes]:
    """The XML feed files of tests/data/feeds that feedparser reads entries from."""
    import feedparser

    templates = []
    for path in sorted(FEED_FILES.iterdir()):
        if path.name == "SOURCES.md" or path.suffix == ".json":
            continue
        body = path.read_bytes()
        if body.lstrip()[:1] == b"<" and feedparser.parse(io.BytesIO(body)).entries:
            templates.append(body)
    return templates


def make_feed(index: int, templates: list[bytes]) -> bytes:
    """Feed `index`: a real feed file whose item addresses are its own, so none is a duplicate."""

    def unique(match: re.Match[bytes]) -> bytes:
        address = match.group(2)
        joiner = b"&amp;" if b"?" in address else b"?"
        return match.group(1) + address + joiner + b"bench=%d" % index

    body = templates[index % len(templates)]
    return _HREF.sub(unique, _ADDRESS.sub(unique, body))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def find_nginx() -> str:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        sys.exit("skipped: nginx not found; install it (Debian: apt-get install nginx-light)")
    return nginx


def start_nginx(root: Path, port: int) -> subprocess.Popen[bytes]:
    nginx = find_nginx()
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


def cpu_seconds() -> float:
    """CPU time of this process and of its living children (the parse workers) so far."""
    import psutil

    me = psutil.Process()
    total = sum(me.cpu_times()[:2])
    for child in me.children(recursive=True):
        try:
            total += sum(child.cpu_times()[:2])
        except psutil.NoSuchProcess:
            continue
    return total


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
    """Fetch + feedparser, then the conditional-GET pass of the same URLs."""
    import asyncio

    import aiohttp
    import feedparser

    async def fetch_all(validators: list[dict[str, str]] | None) -> list[tuple[int, bytes, dict]]:
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=concurrency)
        ) as session:
            limit = asyncio.Semaphore(concurrency)

            async def one(index: int, url: str) -> tuple[int, bytes, dict]:
                headers = validators[index] if validators else {}
                async with limit, session.get(url, headers=headers) as response:
                    return response.status, await response.read(), dict(response.headers)

            return await asyncio.gather(*(one(i, url) for i, url in enumerate(urls)))

    with MemorySampler() as memory:
        cpu, start = cpu_seconds(), time.perf_counter()
        answers = asyncio.run(fetch_all(None))
        fetched = time.perf_counter()
        articles = sum(len(feedparser.parse(io.BytesIO(body)).entries) for _, body, _ in answers)
        done, cpu_done = time.perf_counter(), cpu_seconds()
    validators = [
        {
            name: headers[key]
            for name, key in (("If-None-Match", "ETag"), ("If-Modified-Since", "Last-Modified"))
            if key in headers
        }
        for _, _, headers in answers
    ]
    del answers
    conditional_cpu, conditional_start = cpu_seconds(), time.perf_counter()
    statuses = [status for status, _, _ in asyncio.run(fetch_all(validators))]
    conditional_done = time.perf_counter()
    return {
        "seconds": done - start,
        "fetch_seconds": fetched - start,
        "cpu": cpu_done - cpu,
        "articles": articles,
        "conditional_seconds": conditional_done - conditional_start,
        "conditional_cpu": cpu_seconds() - conditional_cpu,
        "conditional_304": statuses.count(304),
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
            # Hours past MONITOR_MAX_INTERVAL (4 h): every feed is due again, and the later
            # cycles send If-None-Match.
            for name, offset in (("cold", 0), ("warm", 5), ("warm2", 10)):

                def clock(hours: int = offset) -> datetime:
                    return datetime.now(UTC) + timedelta(hours=hours)

                cpu, start = cpu_seconds(), time.perf_counter()
                report = asyncio.run(poll_cycle(store, Fetcher, reader, settings, clock=clock))
                results[f"{name}_seconds"] = time.perf_counter() - start
                results[f"{name}_cpu"] = cpu_seconds() - cpu
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


def phase_workers(
    root: Path, urls: list[str], counts: list[int], concurrency: int, time_limit: float
) -> dict[str, float]:
    """Cold `poll --once` cycles on a fresh PostgreSQL database by 1, then by 3 processes."""
    sys.path.insert(0, str(ROOT))
    from tests.support.pg import PostgresServer

    folder = Path(tempfile.mkdtemp(prefix="monitor-bench-pg-"))
    server = PostgresServer(folder)
    server.init()
    server.start()
    (root / "feeds.yaml").write_text("feeds:\n" + "".join(f"  - url: {u}\n" for u in urls))
    results: dict[str, float] = {}
    try:
        import psycopg

        for count in counts:
            name = f"bench_{count}"
            with psycopg.connect(server.url.replace("+psycopg", ""), autocommit=True) as admin:
                admin.execute(f"CREATE DATABASE {name}")
            url = server.url.rsplit("/", 1)[0] + f"/{name}"
            env = {k: v for k, v in os.environ.items() if not k.startswith(("MONITOR_", "SLACK_"))}
            env.update(
                MONITOR_DATABASE_URL=url,
                MONITOR_FEEDS=str(root / "feeds.yaml"),
                MONITOR_RULES=str(ROOT / "rules"),
                MONITOR_ALLOW_PRIVATE_ADDRESSES="true",
                MONITOR_CONCURRENCY=str(concurrency),
                MONITOR_PER_HOST=str(concurrency),  # every feed is on the one local nginx
            )
            command = [sys.executable, "-m", "monitor", "db", "upgrade"]
            subprocess.run(command, env=env, check=True, capture_output=True, timeout=120)
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            command = [sys.executable, "-m", "monitor", "poll", "--once"]
            processes = [
                subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                for _ in range(count)
            ]
            polled = 0
            for process in processes:
                out, err = process.communicate(timeout=time_limit)
                if process.returncode != 0:
                    raise RuntimeError(f"poll --once exited {process.returncode}: {err[-500:]!r}")
                found = re.search(rb"polled (\d+) feeds", out + err)
                polled += int(found.group(1)) if found else 0
            results[f"w{count}_seconds"] = time.perf_counter() - start
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            results[f"w{count}_cpu"] = cpu
            results[f"w{count}_polled"] = polled
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--database-url", help="default: a SQLite file in a temporary folder")
    parser.add_argument("--workers", default="1,3", help="worker counts on PostgreSQL")
    parser.add_argument("--no-workers", action="store_true", help="skip the PostgreSQL phase")
    parser.add_argument("--time-limit", type=float, default=1200.0, help="seconds per phase")
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

    find_nginx()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="monitor-bench-") as folder:
        root = Path(folder)
        os.chmod(root, 0o755)
        (root / "www").mkdir()
        templates = real_templates()
        for index in range(args.feeds):
            (root / "www" / f"feed{index}.xml").write_bytes(make_feed(index, templates))
        port = free_port()
        urls = [f"http://127.0.0.1:{port}/feed{index}.xml" for index in range(args.feeds)]
        (root / "urls.txt").write_text("\n".join(urls))
        database_url = args.database_url or f"sqlite:///{root / 'bench.db'}"
        nginx = start_nginx(root, port)
        workers: dict[str, float] | None = None
        try:

            def run(phase: str) -> dict[str, float]:
                output = subprocess.run(
                    [
                        sys.executable, __file__, "--phase", phase, "--urls",
                        str(root / "urls.txt"), "--database-url", database_url,
                        "--concurrency", str(args.concurrency),
                    ],
                    check=True, capture_output=True, text=True, timeout=args.time_limit,
                )  # fmt: skip
                return json.loads(output.stdout.strip().splitlines()[-1])

            floor = run("floor")
            cycle = run("cycle")
            if args.no_workers:
                print("workers phase: skipped (--no-workers)")
            elif shutil.which("pg_ctl") is None:
                print("workers phase: skipped, no pg_ctl on PATH (install PostgreSQL)")
            else:
                counts = [int(n) for n in args.workers.split(",")]
                workers = phase_workers(root, urls, counts, args.concurrency, args.time_limit)
        finally:
            nginx.terminate()
            nginx.wait(timeout=10)
    report(args, templates, database_url, floor, cycle, workers, load_before)


def report(
    args: argparse.Namespace,
    templates: list[bytes],
    database_url: str,
    floor: dict[str, float],
    cycle: dict[str, float],
    workers: dict[str, float] | None,
    load_before: tuple[float, float, float],
) -> None:
    feeds = args.feeds
    per_k = 1000 / feeds
    print(f"machine: {describe_machine()}")
    print(
        f"load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f} "
        "(the machine is shared: compare the ratios, measured in the same run)"
    )
    print(
        f"feeds: {feeds} from nginx on 127.0.0.1, copies of {len(templates)} real feed files "
        f"(tests/data/feeds), concurrency {args.concurrency} (per host too), "
        f"database {database_url.split(':')[0]}"
    )
    print(
        f"floor (aiohttp GET + feedparser.parse, one process): {floor['seconds']:.2f} s, "
        f"{feeds / floor['seconds']:.0f} feeds/s, {floor['cpu'] * per_k:.2f} CPU s/1000 feeds, "
        f"{floor['articles']:.0f} entries (fetch alone {floor['fetch_seconds']:.2f} s), "
        f"peak RSS {floor['peak_rss_self_mb']:.0f} MB"
    )
    print(
        f"conditional floor (aiohttp GET with validators): {floor['conditional_seconds']:.2f} s, "
        f"{feeds / floor['conditional_seconds']:.0f} feeds/s, "
        f"{floor['conditional_cpu'] * per_k:.2f} CPU s/1000 feeds, "
        f"{floor['conditional_304']:.0f} answered 304"
    )
    print(
        f"cold cycle (fetch, parse in pool, match, store): {cycle['cold_seconds']:.2f} s, "
        f"{feeds / cycle['cold_seconds']:.0f} feeds/s, "
        f"{cycle['cold_cpu'] * per_k:.2f} CPU s/1000 feeds, "
        f"{cycle['cold_articles']:.0f} new articles, {cycle['cold_matches']:.0f} matches, "
        f"{cycle['cold_failed']:.0f} failed"
    )
    for name in ("warm", "warm2"):
        polled = cycle[f"{name}_feeds"]
        print(
            f"{name} cycle (all 304): {cycle[f'{name}_seconds']:.2f} s, "
            f"{polled / cycle[f'{name}_seconds']:.0f} feeds/s, "
            f"{cycle[f'{name}_cpu'] * 1000 / polled:.2f} CPU s/1000 feeds, "
            f"{cycle[f'{name}_not_modified']:.0f} not modified, {cycle[f'{name}_articles']:.0f} new"
        )
    # The same URLs as the conditional floor: a cycle that polled fewer would flatter itself.
    assert cycle["warm_feeds"] == cycle["warm2_feeds"] == feeds, "a warm cycle skipped feeds"
    warm = min(cycle["warm_seconds"], cycle["warm2_seconds"])
    print(
        f"ratios: cold / floor {cycle['cold_seconds'] / floor['seconds']:.2f} "
        f"(moonshot target <= 0.2), best warm / conditional floor "
        f"{warm / floor['conditional_seconds']:.2f} (target <= 1.43)"
    )
    print(
        f"peak RSS: cycle process {cycle['peak_rss_self_mb']:.0f} MB, with its parse workers "
        f"{cycle['peak_rss_total_mb']:.0f} MB (target < 300 MB)"
    )
    if workers:
        for count in (int(n) for n in args.workers.split(",")):
            seconds, cpu = workers[f"w{count}_seconds"], workers[f"w{count}_cpu"]
            print(
                f"PostgreSQL, {count} x `poll --once` at once (cold): {seconds:.2f} s wall, "
                f"{cpu:.1f} CPU s = {cpu * 1000 / feeds:.2f} CPU s/1000 feeds "
                f"(start-up included), {workers[f'w{count}_polled']:.0f} feeds polled"
            )


if __name__ == "__main__":
    main()
