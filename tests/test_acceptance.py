"""Acceptance (issue #8): one `monitor poll --once` as a user runs it, over good and hostile feeds.

A real process with the shipped defaults (parse pool, budgets, timeouts, the shipped rule
pack) polls good feeds in the same feeds file as every hostile kind we know: a drip, an
endless body, a gzip bomb, a redirect loop, an HTML page, random bytes, 500, 404, 410, a
closed port, a server whose body overruns its Content-Length by 100 KB, and a feed that
makes feedparser backtrack. Then it runs again as cron would (nothing is due), and once
more with `--all`. What counts is what reached the local Slack server, what the database
holds, the exit code, and the wall time and peak memory of the process tree.
"""

from __future__ import annotations

import gzip
import json
import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

import psutil
import pytest

from monitor.store.store import Store
from tests.support.slack_server import SlackServer

REPO = Path(__file__).resolve().parents[1]
HEADLINES = REPO / "tests" / "data" / "headlines.jsonl"
RUN_SECONDS = 120  # bound on one run; the assertion below is far tighter
WALL_LIMIT = 60.0  # "well under a minute" (issue #8); the defaults give about 25 s here
PEAK_LIMIT = 700 * 1024 * 1024  # bytes, the whole process tree: main and its workers

# feedparser's author regex backtracks on this: about a second of CPU per item here.
SLOW_AUTHOR = "<author>a@" + "a." * 8000 + "!</author>"

# Each hostile path and the start of the error its feed must record.
HOSTILE = {
    "/drip": "timed out after 20 s (raise MONITOR_FEED_DEADLINE or check the server)",
    "/endless": "body exceeds 10485760 bytes (MONITOR_MAX_FEED_BYTES)",
    "/bomb": "body exceeds 10485760 bytes (MONITOR_MAX_FEED_BYTES)",
    "/loop-a": "redirect loop:",
    "/html": "not a feed: the server returned an HTML page",
    "/bytes": "not a feed: no RSS, Atom, RDF or JSON Feed document",
    "/500": "HTTP 500 Internal Server Error",
    "/404": "HTTP 404 Not Found",
    "/410": "HTTP 410 Gone",
    "/backtrack": "parsing ",  # over its budget: see PARSE_BUDGET below
}
# The CPU budget stops it on a machine with a core to spare; on a loaded one the wall clock
# may come first. Either way the message names the budget and its setting.
PARSE_BUDGET = (
    "parsing used more than 10 s of CPU (MONITOR_PARSE_CPU_LIMIT); ",
    "parsing took longer than 20 s (MONITOR_PARSE_TIMEOUT); ",
)


def flagged_headlines(count: int) -> list[dict[str, str]]:
    """Real headlines the desk flags (tests/data/headlines.jsonl), one per story."""
    rows = [json.loads(line) for line in HEADLINES.read_text().splitlines() if line.strip()]
    chosen: list[dict[str, str]] = []
    for row in rows:
        if row["label"] == "flag" and row.get("summary"):
            chosen.append(row)
        if len(chosen) == count:
            return chosen
    raise AssertionError(f"fewer than {count} flagged headlines in {HEADLINES}")


def rss(name: str, items: list[dict[str, str]], extra: str = "") -> str:
    when = format_datetime(datetime.now(UTC))
    body = "".join(
        f"<item><title>{item['title']}</title><description>{item.get('summary', '')}"
        f"</description><guid>{name}-{n}</guid><link>https://news.example/{name}/{n}</link>"
        f"<pubDate>{when}</pubDate>{extra}</item>"
        for n, item in enumerate(items)
    )
    return f'<rss version="2.0"><channel><title>{name}</title>{body}</channel></rss>'


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def slack():
    server = SlackServer({"fr-policy": "C0FRPOLICY"})
    server.start()
    yield server
    server.stop()


def run_poll(
    env: dict[str, str], cwd: Path, *options: str
) -> tuple[subprocess.CompletedProcess[str], float, int]:
    """Run `monitor poll --once`; its result, wall seconds and the tree's peak RSS in bytes."""
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "monitor", "poll", "--once", *options],
        env={**os.environ, **env},
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    peak = 0
    root = psutil.Process(process.pid)
    while process.poll() is None and time.monotonic() - started < RUN_SECONDS:
        try:
            tree = [root, *root.children(recursive=True)]
            peak = max(peak, sum(_rss(member) for member in tree))
        except psutil.NoSuchProcess:
            pass
        time.sleep(0.1)
    try:
        stdout, stderr = process.communicate(timeout=max(1.0, RUN_SECONDS - time.monotonic()))
    finally:
        process.kill()
    wall = time.monotonic() - started
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr), wall, peak


def _rss(process: psutil.Process) -> int:
    try:
        return int(process.memory_info().rss)
    except psutil.NoSuchProcess:
        return 0


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the shipped default
def test_one_poll_over_good_and_hostile_feeds_delivers_every_good_alert_once(
    tmp_path, database_url, feed_server, raw_server, slack
):
    headlines = flagged_headlines(6)
    good = {"/good-a": headlines[:2], "/good-b": headlines[2:4], "/good-c": headlines[4:]}
    for path, items in good.items():
        feed_server.add(path, rss(path[1:], items), etag=f'"{path}"')
    feed_server.trickle("/drip", b"<", every=0.2)
    feed_server.endless("/endless")
    bomb = gzip.compress(b"<rss>" + b" " * (64 * 1024 * 1024), compresslevel=9)
    feed_server.add("/bomb", bomb, headers={"Content-Encoding": "gzip"})
    feed_server.redirect("/loop-a", feed_server.url("/loop-b"))
    feed_server.redirect("/loop-b", feed_server.url("/loop-a"))
    feed_server.add(
        "/html",
        "<!DOCTYPE html><html><head><title>Document Moved</title></head><body>Moved</body></html>",
        content_type="text/html; charset=utf-8",
    )
    feed_server.add("/bytes", os.urandom(4096), content_type="application/octet-stream")
    for status in (500, 404, 410):
        feed_server.add(f"/{status}", "no", status=status, content_type="text/plain")
    slow_items = [{"title": f"Item {n}"} for n in range(40)]
    feed_server.add("/backtrack", rss("backtrack", slow_items, extra=SLOW_AUTHOR))
    closed = f"http://127.0.0.1:{closed_port()}/feed.xml"
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nContent-Length: 1000\r\n\r\n"
    raw_server.reply("/overrun", head + b"A" * 1000 + b"Z" * 100_000)
    overrun = raw_server.url("/overrun")

    urls = [feed_server.url(path) for path in [*good, *HOSTILE]] + [closed, overrun]
    (tmp_path / "feeds.yaml").write_text("feeds:\n" + "".join(f"  - url: {url}\n" for url in urls))
    env = {
        "MONITOR_DATABASE_URL": database_url,
        "MONITOR_FEEDS": str(tmp_path / "feeds.yaml"),
        "MONITOR_RULES": str(REPO / "rules"),  # the shipped pack
        # Not a default: every server here is on loopback, which the address guard refuses.
        "MONITOR_ALLOW_PRIVATE_ADDRESSES": "true",
        "SLACK_BOT_TOKEN": slack.token,
        "SLACK_API_URL": slack.api_url,
    }

    first, wall, peak = run_poll(env, tmp_path)
    print(f"first run: {wall:.1f} s, peak RSS of the tree {peak / 2**20:.0f} MiB")
    assert first.returncode == 0, first.stderr
    assert wall < WALL_LIMIT, first.stderr
    assert peak < PEAK_LIMIT

    posted = [message.text or "" for message in slack.messages]
    for item in headlines:
        assert sum(item["title"] in text for text in posted) == 1, (item["title"], posted)
    assert len(posted) == len(headlines)

    store = Store.open(database_url)
    try:
        states = {state.url: state for state in store.feeds()}
    finally:
        store.close()
    for path in good:
        state = states[feed_server.url(path)]
        assert (state.error_count, state.last_error) == (0, None)
    for path, reason in HOSTILE.items():
        state = states[feed_server.url(path)]
        assert state.error_count == 1
        assert state.last_error is not None and state.last_error.startswith(reason), (
            path,
            state.last_error,
        )
        assert len(state.last_error) <= 500
    assert (states[feed_server.url("/backtrack")].last_error or "").startswith(PARSE_BUDGET)
    assert (states[closed].last_error or "").startswith("connection refused by 127.0.0.1:")
    assert states[overrun].last_error == (
        "127.0.0.1 sent an invalid HTTP response (Bad status line); tell the feed's operator"
    )
    # Each failure is said once, in one bounded line: no server bytes in what the user reads.
    for url in [*(feed_server.url(path) for path in HOSTILE), closed, overrun]:
        assert sum(f"feed {url} failed" in line for line in first.stderr.splitlines()) == 1
    assert max(len(line) for line in first.stderr.splitlines()) < 1000
    assert first.stdout.splitlines() == [
        "polled 15 feeds (3 updated, 0 unchanged, 12 failed): 6 new articles, 20 matches; "
        "alerts: 6 sent, 0 to retry, 0 failed"
    ]

    second, _, _ = run_poll(env, tmp_path)  # as cron would run it: nothing is due yet
    assert second.returncode == 0, second.stderr
    assert second.stdout.splitlines() == [
        "polled 0 feeds (0 updated, 0 unchanged, 0 failed): 0 new articles, 0 matches; "
        "alerts: 0 sent, 0 to retry, 0 failed"
    ]

    third, wall, _ = run_poll(env, tmp_path, "--all")  # every feed again, due or not
    print(f"third run (--all): {wall:.1f} s")
    assert third.returncode == 0, third.stderr
    assert len(slack.messages) == len(headlines)  # nothing twice
    assert third.stdout.splitlines() == [
        "polled 15 feeds (0 updated, 3 unchanged, 12 failed): 0 new articles, 0 matches; "
        "alerts: 0 sent, 0 to retry, 0 failed"
    ]
    for path in good:
        assert [r.headers.get("If-None-Match") for r in feed_server.requests_for(path)] == [
            None,
            f'"{path}"',
        ]
