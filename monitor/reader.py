"""Parse fetched bodies and match their articles in worker processes that hold the rules.

feedparser dominates a poll's cost, so it runs in a process pool that uses every
core; matching runs there too, beside the parse, so the event loop's process
only fetches and stores. Each worker receives the compiled rules once, when it
starts (pickling them with every body would cost more than the parse): new
rules mean a new reader, which the service builds on reload.

A feed is untrusted input to the parser as much as to the fetcher: feedparser has
regexes that backtrack for minutes on crafted text. So each parse runs under a
budget of CPU and wall time, and a worker that exceeds it, or dies, fails only
the feed it held: pebble's pool replaces that one worker, and the other feeds of
the cycle keep their place (a ``ProcessPoolExecutor`` breaks as a whole instead).

Workers die with the process that owns them (#11): each asks the kernel for SIGKILL when
its parent goes (Linux ``PR_SET_PDEATHSIG``), so a killed service leaves no parser running.
They are spawned, not forked from a forkserver: a forkserver's children are its own, and it
lives on as long as any of them holds its pipe, which a worker stuck in a parse does.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import math
import multiprocessing
import os
import resource
import signal
import sys
import time
from collections.abc import Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime

from pebble import ProcessExpired, ProcessPool

from monitor.errors import FeedParseError
from monitor.feeds.parse import parse_feed
from monitor.matching import RuleSet, match_article
from monitor.model import Article, ParsedFeed
from monitor.ports import MatchedArticles

log = logging.getLogger(__name__)

POOL_REBUILDS = 2  # new pools one feed may wait for before it is failed for this cycle

_worker_rules: RuleSet | None = None


@dataclass(frozen=True, slots=True)
class ParseBudget:
    """What one feed's parse may cost (MONITOR_PARSE_CPU_LIMIT, MONITOR_PARSE_TIMEOUT).

    CPU time catches a parser stuck in a backtracking regex; wall time also catches
    one that waits (swapping, a starved machine). The wall clock starts when a worker
    takes the feed, so feeds queued behind others are not charged for the wait.
    """

    cpu_seconds: float = 10.0
    wall_seconds: float = 20.0


def match_articles(rules: RuleSet, articles: Sequence[Article]) -> MatchedArticles:
    """Match each article; the dry run (`monitor rules test`) calls this too, so both agree."""
    return tuple((article, match_article(rules, article)) for article in articles)


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _die_with_parent(parent: int) -> None:
    """Have the kernel SIGKILL this process when its parent exits, even mid-parse.

    A watcher thread could not do it: a backtracking regex holds the GIL. The signal is
    tied to the thread that started the worker: pebble starts the first workers from the
    thread that first schedules a parse (the service's poll thread, which lasts as long as
    the service) and replacements from its own manager thread. Were that thread to end,
    its workers would die and be replaced, failing only the feeds they held. Elsewhere
    than Linux a busy worker lasts until its CPU budget ends it.
    """
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:  # the parent died before the request: nobody would signal
        os._exit(1)


def _start_worker(rules: RuleSet, parent: int) -> None:
    global _worker_rules
    _die_with_parent(parent)
    _worker_rules = rules
    # A worker stopped by its CPU limit gets SIGXCPU, whose default action dumps core.
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _limit_cpu(seconds: float) -> None:
    """Let this process use ``seconds`` more CPU; past that the kernel sends SIGXCPU."""
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = math.ceil(time.process_time() + seconds)
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def _parse_and_match(
    body: bytes,
    url: str,
    headers: dict[str, str],
    fetched_at: datetime,
    feed_name: str,
    feed_tags: tuple[str, ...],
    cpu_seconds: float,
) -> tuple[ParsedFeed, MatchedArticles]:
    if _worker_rules is None:  # the pool was built without its initializer: a bug
        raise RuntimeError("reader worker started without rules")
    _limit_cpu(cpu_seconds)
    parsed = parse_feed(
        body,
        url=url,
        headers=headers,
        fetched_at=fetched_at,
        feed_name=feed_name,
        feed_tags=feed_tags,
    )
    return parsed, match_articles(_worker_rules, parsed.articles)


class ArticleReader:
    """Turns a fetched body into matched articles in a worker process, off the event loop.

    The real `ports.FeedReader`.
    """

    def __init__(self, rules: RuleSet, workers: int = 0, budget: ParseBudget | None = None) -> None:
        self.rules = rules
        self.budget = budget or ParseBudget()
        self._workers = workers or os.cpu_count() or 1
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPool:
        return ProcessPool(
            max_workers=self._workers,
            initializer=_start_worker,
            initargs=(self.rules, os.getpid()),
            # spawn: the scheduler runs threads, and forking a threaded process is unsafe;
            # and a spawned worker is this process's child, so it can die with it.
            context=multiprocessing.get_context("spawn"),
        )

    def _working_pool(self) -> ProcessPool:
        """The pool, replaced first if it gave up.

        pebble gives up on the whole pool when a worker dies while no feed is being
        parsed (an idle worker killed by the OOM killer, say); the feeds that were
        waiting never started, so they go to the new pool in the same cycle.
        """
        if not self._pool.active:
            log.warning("the parse pool stopped working; starting a new one")
            self._pool.stop()  # type: ignore[no-untyped-call]  # untyped in pebble 5
            self._pool = self._new_pool()
        return self._pool

    async def read(
        self,
        body: bytes,
        *,
        url: str,
        headers: dict[str, str],
        fetched_at: datetime,
        feed_name: str = "",
        feed_tags: tuple[str, ...] = (),
    ) -> tuple[ParsedFeed, MatchedArticles]:
        """Parse and match; raises FeedParseError for this feed alone, whatever went wrong."""
        budget = self.budget
        args = (body, url, headers, fetched_at, feed_name, feed_tags, budget.cpu_seconds)
        for _ in range(POOL_REBUILDS + 1):
            pool = self._working_pool()
            try:
                future = pool.schedule(_parse_and_match, args=args, timeout=budget.wall_seconds)
            except RuntimeError:
                if pool.active:
                    raise
                continue  # it broke since we looked: this feed never started
            try:
                return await asyncio.wrap_future(future)
            except TimeoutError as exc:
                raise FeedParseError(
                    url,
                    f"parsing took longer than {budget.wall_seconds:g} s (MONITOR_PARSE_TIMEOUT); "
                    "the parser was stopped and the feed will be retried",
                ) from exc
            except ProcessExpired as exc:
                raise FeedParseError(url, _death_message(exc.exitcode, budget)) from exc
            except BrokenProcessPool:
                continue  # the pool gave up while this feed waited: it never started
        raise FeedParseError(
            url,
            f"the parser pool broke {POOL_REBUILDS + 1} times in a row; the feed will be retried",
        )

    def close(self) -> None:
        """Stop the workers; a parse in progress is abandoned (its feed is polled again)."""
        self._pool.stop()  # type: ignore[no-untyped-call]  # untyped in pebble 5
        self._pool.join()


def _death_message(exitcode: int | None, budget: ParseBudget) -> str:
    if exitcode == -signal.SIGXCPU:
        return (
            f"parsing used more than {budget.cpu_seconds:g} s of CPU (MONITOR_PARSE_CPU_LIMIT); "
            "the parser was stopped and the feed will be retried"
        )
    return (
        f"the parser process died ({_exit_reason(exitcode)}) while reading this feed; "
        "it will be retried"
    )


def _exit_reason(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit code {exitcode}"
