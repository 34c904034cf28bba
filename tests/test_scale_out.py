"""Several workers on one database (issue #11): real `python -m monitor poll --once` processes.

Judged by what the local feed server received (requests per path) and what the database holds,
never by timing. The feeds answer after a short delay (a feed-server behaviour, not a setting):
local feeds answer in a millisecond, and without it the first process to finish importing could
poll the whole cycle before the others started.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.model import FeedSpec
from monitor.store.store import Store
from tests.support.feed_server import FeedServer

SUMMARY = re.compile(r"^polled (\d+) feeds ", re.MULTILINE)
WAIT_S = 180  # per process: far above a cycle's length, so only a hang meets it


def rss(n: int) -> str:
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>Feed {n}</title>'
        f"<item><title>Story {n}</title><link>https://news.example/story/{n}</link>"
        f"<guid>story-{n}</guid><pubDate>Mon, 01 Dec 2026 10:00:00 GMT</pubDate></item>"
        "</channel></rss>"
    )


def serve_feeds(feed_server: FeedServer, tmp_path: Path, count: int, delay: float) -> list[str]:
    """`count` feeds, each with one story of its own; returns their paths."""
    paths = [f"/feed/{n}.xml" for n in range(count)]
    for n, path in enumerate(paths):
        feed_server.add(path, rss(n), delay=delay)
    lines = "".join(f"  - url: {feed_server.url(path)}\n" for path in paths)
    (tmp_path / "feeds.yaml").write_text("feeds:\n" + lines)
    return paths


def environment(tmp_path: Path, database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MONITOR_", "SLACK_"))}
    return {
        **env,
        "MONITOR_DATABASE_URL": database_url,
        "MONITOR_FEEDS": str(tmp_path / "feeds.yaml"),
        "MONITOR_RULES": "",
        "MONITOR_ALLOW_PRIVATE_ADDRESSES": "true",
    }


def start(env: dict[str, str], cwd: Path, *args: str) -> subprocess.Popen[str]:
    """`python -m monitor ARGS`, its output captured."""
    command = [sys.executable, "-m", "monitor", *args]
    return subprocess.Popen(
        command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def run_workers(env: dict[str, str], cwd: Path, count: int) -> list[tuple[int, str, str]]:
    """Start `count` `poll --once` processes together; their exit codes, stdout and stderr."""
    processes = [start(env, cwd, "poll", "--once") for _ in range(count)]
    results = []
    try:
        for process in processes:
            out, err = process.communicate(timeout=WAIT_S)
            results.append((process.returncode, out, err))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)
    return results


def polled_per_worker(results: Sequence[tuple[int, str, str]]) -> list[int]:
    counts = []
    for _, out, _ in results:
        found = SUMMARY.findall(out)
        assert len(found) == 1, out
        counts.append(int(found[0]))
    return counts


def assert_one_cycle(feed_server: FeedServer, paths: Sequence[str], database_url: str) -> None:
    """Each feed fetched once, each story stored once, every feed's outcome written."""
    fetches = {path: len(feed_server.requests_for(path)) for path in paths}
    assert {path: n for path, n in fetches.items() if n != 1} == {}
    store = Store.open(database_url)
    try:
        articles = store.articles()
        feeds = store.feeds()
    finally:
        store.close()
    assert sorted(a.link or "" for a in articles) == sorted(
        f"https://news.example/story/{n}" for n in range(len(paths))
    )
    assert len(feeds) == len(paths)
    assert [f.url for f in feeds if f.last_success_at is None or f.leased_until] == []


@pytest.mark.postgres
def test_three_workers_split_a_cycle_each_feed_fetched_once(
    feed_server: FeedServer, postgres_url: str, tmp_path: Path
) -> None:
    paths = serve_feeds(feed_server, tmp_path, 300, delay=1.0)
    store = Store.open(postgres_url)  # a populated database: the workers' sync changes nothing
    try:
        store.upgrade()
        store.sync_feeds([FeedSpec(feed_server.url(p)) for p in paths], datetime.now(UTC))
    finally:
        store.close()

    results = run_workers(environment(tmp_path, postgres_url), tmp_path, 3)

    assert [code for code, _, _ in results] == [0, 0, 0], [err for _, _, err in results]
    assert [err for _, _, err in results if "deadlock" in err or "Traceback" in err] == []
    split = polled_per_worker(results)
    assert sum(split) == 300
    assert min(split) > 0, split  # every worker took part
    assert_one_cycle(feed_server, paths, postgres_url)


@pytest.mark.postgres
def test_three_workers_starting_together_on_a_fresh_database(
    feed_server: FeedServer, postgres_url: str, tmp_path: Path
) -> None:
    """Each migrates and syncs the feeds file at start; two used to die on uq_feeds_url."""
    paths = serve_feeds(feed_server, tmp_path, 300, delay=0.0)

    results = run_workers(environment(tmp_path, postgres_url), tmp_path, 3)

    assert [code for code, _, _ in results] == [0, 0, 0], [err for _, _, err in results]
    assert [err for _, _, err in results if "duplicate key" in err or "Traceback" in err] == []
    assert sum(polled_per_worker(results)) == 300
    assert_one_cycle(feed_server, paths, postgres_url)


def test_two_processes_on_one_sqlite_file_share_a_cycle(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """What README promises: a second process on one SQLite file waits its turn to write and
    polls only what the first did not claim."""
    paths = serve_feeds(feed_server, tmp_path, 60, delay=0.5)
    url = f"sqlite:///{tmp_path / 'monitor.db'}"

    results = run_workers(environment(tmp_path, url), tmp_path, 2)

    assert [code for code, _, _ in results] == [0, 0], [err for _, _, err in results]
    assert sum(polled_per_worker(results)) == 60
    assert_one_cycle(feed_server, paths, url)


def test_a_stopped_worker_gives_back_at_once_the_feeds_it_had_not_started(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """Issue #11: a stopped worker's claims waited the whole lease before anyone took them."""
    paths = serve_feeds(feed_server, tmp_path, 5, delay=2.0)
    url = f"sqlite:///{tmp_path / 'monitor.db'}"
    # One fetch at a time, so the stop finds claimed feeds that have not started.
    env = {**environment(tmp_path, url), "MONITOR_CONCURRENCY": "1"}
    process = start(env, tmp_path, "run")
    try:
        deadline = time.monotonic() + 60
        while not feed_server.requests and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=WAIT_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()

    assert process.returncode == 0, stderr
    assert len(feed_server.requests) == 1  # the feed in progress finished; no other started
    store = Store.open(url)
    try:
        feeds = store.feeds()
    finally:
        store.close()
    assert [f.leased_until for f in feeds] == [None] * len(paths)  # none waits for a lease
    assert sum(1 for f in feeds if f.last_success_at is not None) == 1
