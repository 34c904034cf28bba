"""A warm cycle writes as little as it can (issue #11).

Seen: with every feed answering 304, 28% of a cycle was a lookup and an UPDATE per feed.
An unchanged feed needs only its feed row written (schedule, validators, end of its claim),
and those of one batch go as one executemany. Judged by the statements the database received
and by what it holds afterwards, with a hostile feed and a changed one in the same cycle.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from sqlalchemy import event
from sqlalchemy.engine import Engine

from monitor.feeds.fetch import Fetcher
from monitor.model import FeedSpec
from monitor.pipeline import MAX_BATCH, poll_cycle
from tests.test_pipeline import feed, reader, rules, settings, store  # noqa: F401  (fixtures)

FEEDS = 2 * MAX_BATCH + 50  # more than two write batches


@contextmanager
def feed_writes() -> Iterator[list[list[str]]]:
    """The SQL of each UPDATE of the feeds table run meanwhile, by transaction (an
    executemany counts once)."""
    transactions: list[list[str]] = [[]]

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        if statement.lstrip().upper().startswith("UPDATE FEEDS "):
            transactions[-1].append(statement)

    def commit(conn) -> None:
        transactions.append([])

    event.listen(Engine, "before_cursor_execute", record)
    event.listen(Engine, "commit", commit)
    try:
        yield transactions
    finally:
        event.remove(Engine, "before_cursor_execute", record)
        event.remove(Engine, "commit", commit)


async def test_unchanged_feeds_are_one_update_per_batch(feed_server, store, reader):  # noqa: F811
    for n in range(FEEDS):
        feed_server.add(f"/f{n}.xml", feed(f"Story {n}"), etag=f'"v{n}"')
    feed_server.add("/changing.xml", feed("First story"), etag='"one"')
    feed_server.add("/html.xml", "<html><body>moved</body></html>", content_type="text/html")
    urls = [feed_server.url(f"/f{n}.xml") for n in range(FEEDS)]
    urls += [feed_server.url("/changing.xml"), feed_server.url("/html.xml")]
    store.sync_feeds([FeedSpec(url) for url in urls], datetime.now(UTC))
    await poll_cycle(store, Fetcher, reader, settings())
    feed_server.add("/changing.xml", feed("First story", "Second story"), etag='"two"')

    later = datetime.now(UTC) + timedelta(hours=1)
    with feed_writes() as writes:
        report = await poll_cycle(store, Fetcher, reader, settings(), clock=lambda: later)

    outcomes = {f.url: f.outcome for f in report.feeds}
    assert [outcomes[url] for url in urls[:FEEDS]] == ["not-modified"] * FEEDS
    assert outcomes[urls[-2]] == "updated"
    assert outcomes[urls[-1]] == "failed"
    # Claims and renewals update the feeds table too: count the writes of outcomes, which
    # set last_polled_at. The batched form (an executemany, or a plain execute for a batch
    # of one) keeps a stored validator when the 304 repeats none. The writer commits what
    # waits, so a transaction holds the outcomes that arrived while the last one committed.
    outcome_writes = [[sql for sql in t if "last_polled_at=" in sql] for t in writes]
    plain = [[sql for sql in t if "etag=coalesce(" in sql] for t in outcome_writes]
    single = [sql for t in outcome_writes for sql in t if "etag=coalesce(" not in sql]
    assert max(len(statements) for statements in plain) == 1  # one per transaction
    assert len(single) == 2  # the changed feed and the failed one: 450 more before #11
    held = {f.url: f for f in store.feeds()}
    assert {held[url].next_poll_at for url in urls[:FEEDS]} == {later + timedelta(seconds=60)}
    assert {held[url].etag for url in urls[:FEEDS]} == {f'"v{n}"' for n in range(FEEDS)}
    assert [url for url in urls if held[url].leased_until is not None] == []
    assert held[urls[-1]].error_count == 2 and held[urls[0]].error_count == 0
    assert len(store.articles(feed_url=urls[-2])) == 2
