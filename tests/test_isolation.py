"""One bad feed fails only itself, with the shipped parse pool (issue #8, items 1 and 2).

Every test here puts hostile bodies in the same cycle as good feeds and asserts what
happened to the good ones. The reader is built with the default worker count (one
process per CPU), as `monitor run` builds it.
"""

from __future__ import annotations

import asyncio
import os
import signal
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

import psutil
import pytest

from monitor.feeds.fetch import Fetcher, FetchOptions
from monitor.matching import load_rules
from monitor.model import FeedSpec
from monitor.pipeline import PollSettings, poll_cycle
from monitor.reader import ArticleReader, ParseBudget
from monitor.store.store import Store
from tests.test_pipeline import RULES

# feedparser's author regex backtracks on this: about a second of CPU per item here.
SLOW_AUTHOR = "<author>a@" + "a." * 8000 + "!</author>"


def feed(name: str, items: int = 3, extra: str = "") -> str:
    when = format_datetime(datetime.now(UTC))
    body = "".join(
        f"<item><title>{name}: city bans facial recognition, part {n}</title>"
        f"<guid>{name}-{n}</guid><link>https://news.example/{name}/{n}</link>"
        f"<pubDate>{when}</pubDate>{extra}</item>"
        for n in range(items)
    )
    return f'<rss version="2.0"><channel><title>{name}</title>{body}</channel></rss>'


GOOD = [f"good-{n}" for n in range(6)]
NOT_FEEDS = {
    "/html": (
        "<!DOCTYPE html><html><head><title>Document Moved</title></head>"
        "<body>Object moved to <a href='/new'>here</a></body></html>",
        "text/html",
        "not a feed: the server returned an HTML page (text/html); check the feed URL",
    ),
    "/empty": ("", "application/rss+xml", "not a feed: empty document"),
    "/json": (
        '{"status": "ok", "items": []}',
        "application/json",
        "not a feed: JSON without a jsonfeed.org version",
    ),
    "/bytes": (
        bytes(range(256)).decode("latin-1") * 8,
        "application/octet-stream",
        "not a feed: no RSS, Atom, RDF or JSON Feed document",
    ),
}


@pytest.fixture
def rules(tmp_path: Path):
    (tmp_path / "fr.yaml").write_text(RULES)
    return load_rules(tmp_path / "fr.yaml").ruleset


@pytest.fixture
def store(database_url: str):
    store = Store.open(database_url)
    store.upgrade()
    yield store
    store.close()


def settings() -> PollSettings:
    return PollSettings(fetch=FetchOptions(allow_private_addresses=True), jitter=lambda: 0.0)


def serve_good_feeds(feed_server) -> list[str]:
    for name in GOOD:
        feed_server.add(f"/{name}", feed(name))
    return [feed_server.url(f"/{name}") for name in GOOD]


def serve_good_feeds_and_a_slow_one(feed_server, store) -> None:
    """The good feeds and one whose parse backtracks for about 40 s of CPU, all in the store."""
    urls = serve_good_feeds(feed_server)
    feed_server.add("/slow", feed("slow", items=40, extra=SLOW_AUTHOR))
    urls.append(feed_server.url("/slow"))
    store.sync_feeds([FeedSpec(url) for url in urls], datetime.now(UTC))


def outcomes(report) -> dict[str, tuple[str, str | None]]:
    return {f.url.rsplit("/", 1)[1]: (f.outcome, f.error) for f in report.feeds}


async def test_non_feeds_fail_only_themselves_with_their_own_reason(feed_server, store, rules):
    urls = serve_good_feeds(feed_server)
    for path, (body, content_type, _) in NOT_FEEDS.items():
        feed_server.add(path, body, content_type=content_type)
        urls.append(feed_server.url(path))
    store.sync_feeds([FeedSpec(url) for url in urls], datetime.now(UTC))
    reader = ArticleReader(rules)  # the default: one process per CPU
    try:
        report = await poll_cycle(store, Fetcher, reader, settings())
    finally:
        reader.close()
    seen = outcomes(report)
    assert {name: seen[name] for name in GOOD} == {name: ("updated", None) for name in GOOD}
    for path, (_, _, reason) in NOT_FEEDS.items():
        outcome, error = seen[path[1:]]
        assert outcome == "failed"
        assert error is not None and error.startswith(reason), error
    assert report.new_alerts == 3 * len(GOOD)
    assert {state.url: state.error_count for state in store.feeds()} == {
        url: (0 if url.rsplit("/", 1)[1] in GOOD else 1) for url in urls
    }


async def test_a_parse_over_its_cpu_budget_is_stopped_and_fails_only_its_feed(
    feed_server, store, rules
):
    serve_good_feeds_and_a_slow_one(feed_server, store)
    # A budget of 1 s instead of the default keeps this test short; the acceptance test
    # (tests/test_acceptance.py) runs the same feed against the default budget.
    reader = ArticleReader(rules, budget=ParseBudget(cpu_seconds=1, wall_seconds=60))
    try:
        report = await poll_cycle(store, Fetcher, reader, settings())
        seen = outcomes(report)
        assert seen["slow"] == (
            "failed",
            "parsing used more than 1 s of CPU (MONITOR_PARSE_CPU_LIMIT); the parser was "
            "stopped and the feed will be retried",
        )
        assert {name: seen[name] for name in GOOD} == {name: ("updated", None) for name in GOOD}
        # The pool replaced the stopped worker: it still parses.
        parsed, _ = await reader.read(
            feed("after").encode(), url="http://x/", headers={}, fetched_at=datetime.now(UTC)
        )
        assert len(parsed.articles) == 3
    finally:
        reader.close()


async def test_a_parse_over_its_wall_time_is_stopped_and_fails_only_its_feed(
    feed_server, store, rules
):
    serve_good_feeds_and_a_slow_one(feed_server, store)
    # Wall time below the CPU budget, so the wall clock is what stops this parse.
    reader = ArticleReader(rules, budget=ParseBudget(cpu_seconds=60, wall_seconds=1))
    try:
        report = await poll_cycle(store, Fetcher, reader, settings())
    finally:
        reader.close()
    seen = outcomes(report)
    assert seen["slow"] == (
        "failed",
        "parsing took longer than 1 s (MONITOR_PARSE_TIMEOUT); the parser was stopped and "
        "the feed will be retried",
    )
    assert {name: seen[name] for name in GOOD} == {name: ("updated", None) for name in GOOD}


async def test_a_worker_that_dies_fails_only_the_feed_it_held(feed_server, store, rules):
    serve_good_feeds_and_a_slow_one(feed_server, store)
    reader = ArticleReader(rules, budget=ParseBudget(cpu_seconds=60, wall_seconds=60))
    try:
        cycle = asyncio.create_task(poll_cycle(store, Fetcher, reader, settings()))
        victim = await _busy_worker(timeout=30.0)
        os.kill(victim, signal.SIGKILL)  # as the kernel's OOM killer would
        report = await cycle
    finally:
        reader.close()
    seen = outcomes(report)
    assert seen["slow"] == (
        "failed",
        "the parser process died (killed by SIGKILL) while reading this feed; it will be retried",
    )
    assert {name: seen[name] for name in GOOD} == {name: ("updated", None) for name in GOOD}


async def _busy_worker(timeout: float) -> int:
    """The pid of a parse worker that has used a second of CPU: the one on the slow feed."""
    me = psutil.Process()
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        for child in me.children(recursive=True):
            try:
                if sum(child.cpu_times()[:2]) > 1.0:
                    return child.pid
            except psutil.NoSuchProcess:
                continue
        await asyncio.sleep(0.1)
    raise AssertionError(f"no parse worker got busy within {timeout} s")
