"""Parse fetched bodies and match their articles in worker processes that hold the rules.

feedparser dominates a poll's cost, so it runs in a process pool that uses every
core; matching runs there too, beside the parse, so the event loop's process
only fetches and stores. Each worker receives the compiled rules once, when it
starts (pickling them with every body would cost more than the parse): new
rules mean a new reader, which the service builds on reload.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from datetime import datetime
from functools import partial

from monitor.feeds.parse import parse_feed
from monitor.matching import RuleSet, match_article
from monitor.model import Article, Match, ParsedFeed

MatchedArticles = tuple[tuple[Article, tuple[Match, ...]], ...]

_worker_rules: RuleSet | None = None


def _install_rules(rules: RuleSet) -> None:
    global _worker_rules
    _worker_rules = rules


def match_articles(rules: RuleSet, articles: Sequence[Article]) -> MatchedArticles:
    """Match each article; the dry run (`monitor rules test`) calls this too, so both agree."""
    return tuple((article, match_article(rules, article)) for article in articles)


def _parse_and_match(
    body: bytes,
    url: str,
    headers: dict[str, str],
    fetched_at: datetime,
    feed_name: str,
    feed_tags: tuple[str, ...],
) -> tuple[ParsedFeed, MatchedArticles]:
    if _worker_rules is None:  # the pool was built without its initializer: a bug
        raise RuntimeError("reader worker started without rules")
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
    """Turns a fetched body into matched articles, off the event loop."""

    def __init__(self, rules: RuleSet, workers: int = 0) -> None:
        self.rules = rules
        count = workers or os.cpu_count() or 1
        self._executor: Executor
        if count == 1:
            self._executor = ThreadPoolExecutor(
                max_workers=1,
                thread_name_prefix="reader",
                initializer=_install_rules,
                initargs=(rules,),
            )
        else:
            # forkserver: the scheduler runs threads, and forking a threaded process is unsafe.
            self._executor = ProcessPoolExecutor(
                max_workers=count,
                mp_context=multiprocessing.get_context("forkserver"),
                initializer=_install_rules,
                initargs=(rules,),
            )

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
        """Parse and match; raises FeedParseError, or BrokenProcessPool if a worker died."""
        task = partial(_parse_and_match, body, url, headers, fetched_at, feed_name, feed_tags)
        return await asyncio.get_running_loop().run_in_executor(self._executor, task)

    def close(self, *, wait: bool = True) -> None:
        self._executor.shutdown(wait=wait, cancel_futures=True)
