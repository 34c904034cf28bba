"""Transient database failures re-run the whole transaction; the rest fail at once (#8).

The failures are real: a second connection holds a lock so the Store's transaction waits,
then the server kills it (pg_terminate_backend), picks it as a deadlock victim, or SQLite
reports "database is locked".
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from monitor.errors import StoreError
from monitor.store import PollOutcome, PollSaved, Store
from monitor.store import engine as store_engine
from monitor.store.store import RETRY_ATTEMPTS
from tests.support.pg import PostgresHandle
from tests.test_store import FEED_A, FEED_B, NOW, article, match, poll

WAIT_SECONDS = 30  # bound on waiting for the Store's transaction to block, or to finish
STORE_LOGGER = "monitor.store.store"


def open_synced(url: str) -> Store:
    store = Store.open(url)
    store.upgrade()
    store.sync_feeds([FEED_A, FEED_B], NOW)
    return store


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    store = open_synced(database_url)
    yield store
    store.close()


@pytest.fixture
def pg_store(postgres_url: str) -> Iterator[Store]:
    store = open_synced(postgres_url)
    yield store
    store.close()


def libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def waiting_backend(admin: psycopg.Connection, url: str) -> int:
    """The pid of the backend of `url`'s database that waits for a lock (bounded wait)."""
    database = make_url(url).database
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        row = admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'",
            [database],
        ).fetchone()
        if row is not None:
            return int(row[0])
        time.sleep(0.02)
    raise AssertionError(f"no backend of {database} waited for a lock within {WAIT_SECONDS}s")


def retries(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == STORE_LOGGER and record.levelno == logging.WARNING
    ]


def two_polls() -> list[PollOutcome]:
    return [
        poll(FEED_A, (article("a1"), [match("r1")])),
        poll(FEED_B, (article("b1", FEED_B), [match("r1")])),
    ]


def assert_both_polls_stored_once(store: Store) -> None:
    assert sorted(a.entry_id for a in store.articles()) == ["a1", "b1"]
    assert store.delivery_counts() == {"pending": 2}
    assert [f.last_status for f in store.feeds()] == [200, 200]


@pytest.mark.postgres
def test_a_transaction_terminated_mid_way_is_run_again_as_a_whole(
    pg_store: Store,
    postgres_url: str,
    postgres_server: PostgresHandle,
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = pg_store
    caplog.set_level(logging.WARNING, logger=STORE_LOGGER)
    with (
        psycopg.connect(libpq(postgres_server.url), autocommit=True) as admin,
        psycopg.connect(libpq(postgres_url)) as blocker,
        ThreadPoolExecutor(max_workers=1) as thread,
    ):
        # Feed B's row is locked: the Store's transaction writes feed A, then waits on B.
        blocker.execute("SELECT id FROM feeds WHERE url = %s FOR UPDATE", [FEED_B.url])
        writing = thread.submit(store.record_polls, two_polls())
        admin.execute("SELECT pg_terminate_backend(%s)", [waiting_backend(admin, postgres_url)])
        blocker.rollback()
        saved = writing.result(timeout=WAIT_SECONDS)
    assert saved == [PollSaved(1, 1, 1), PollSaved(1, 1, 1)]
    assert_both_polls_stored_once(store)
    [warning] = retries(caplog)
    assert "terminating connection due to administrator command" in warning
    assert f"attempt 1 of {RETRY_ATTEMPTS}" in warning


@pytest.mark.postgres
def test_a_deadlock_victim_is_run_again_as_a_whole(
    pg_store: Store, postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = pg_store
    caplog.set_level(logging.WARNING, logger=STORE_LOGGER)
    with (
        psycopg.connect(libpq(postgres_url)) as blocker,
        ThreadPoolExecutor(max_workers=1) as thread,
    ):
        # The victim is the session whose deadlock_timeout runs out first: a long one here
        # (tests connect as superuser, who may set it) makes it the Store's, every time.
        blocker.execute("SET deadlock_timeout = '60s'")
        blocker.execute("SET lock_timeout = '60s'")  # bounds the blocker's own wait
        blocker.execute("SELECT id FROM feeds WHERE url = %s FOR UPDATE", [FEED_B.url])
        writing = thread.submit(store.record_polls, two_polls())
        with psycopg.connect(libpq(postgres_url), autocommit=True) as watcher:
            waiting_backend(watcher, postgres_url)  # the Store holds feed A and waits for B
        blocker.execute("SELECT id FROM feeds WHERE url = %s FOR UPDATE", [FEED_A.url])
        blocker.commit()
        saved = writing.result(timeout=WAIT_SECONDS)
    assert saved == [PollSaved(1, 1, 1), PollSaved(1, 1, 1)]
    assert_both_polls_stored_once(store)
    [warning] = retries(caplog)
    assert "deadlock detected" in warning


def test_an_error_that_is_not_transient_is_not_retried(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=STORE_LOGGER)
    untitled = article("1", title=None)  # titles are NOT NULL: the database refuses the row
    with pytest.raises(StoreError, match=r"refused the operation: .*title"):
        store.record_poll(poll(FEED_A, (untitled, [])))
    assert retries(caplog) == []
    assert store.articles() == []


@pytest.fixture
def sqlite_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Store, Path]]:
    # The shipped busy timeout (30 s) would make each locked attempt wait that long; a
    # short one lets "database is locked" come back while the test holds the lock.
    monkeypatch.setattr(store_engine, "SQLITE_BUSY_TIMEOUT_MS", 50)
    path = tmp_path / "monitor.db"
    store = Store.open(f"sqlite:///{path}")
    store.upgrade()
    store.sync_feeds([FEED_A, FEED_B], NOW)
    yield store, path
    store.close()


def test_sqlite_database_is_locked_is_retried_until_the_lock_goes(
    sqlite_store: tuple[Store, Path], caplog: pytest.LogCaptureFixture
) -> None:
    store, path = sqlite_store
    caplog.set_level(logging.WARNING, logger=STORE_LOGGER)
    first_retry = threading.Event()

    class ReleaseOnRetry(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno == logging.WARNING:
                first_retry.set()

    handler = ReleaseOnRetry()
    logging.getLogger(STORE_LOGGER).addHandler(handler)
    blocker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        blocker.execute("BEGIN IMMEDIATE")  # the write lock, held until the Store retries
        with ThreadPoolExecutor(max_workers=1) as thread:
            writing = thread.submit(store.record_polls, two_polls())
            assert first_retry.wait(WAIT_SECONDS)
            blocker.execute("ROLLBACK")
            saved = writing.result(timeout=WAIT_SECONDS)
    finally:
        logging.getLogger(STORE_LOGGER).removeHandler(handler)
        blocker.close()
    assert saved == [PollSaved(1, 1, 1), PollSaved(1, 1, 1)]
    assert_both_polls_stored_once(store)
    assert retries(caplog)[0].startswith(
        f"database sqlite:///{path}: transaction failed (database is locked), "
        f"attempt 1 of {RETRY_ATTEMPTS}; running it again in "
    )


def test_a_lock_that_stays_gives_one_error_naming_the_database_and_reason(
    sqlite_store: tuple[Store, Path], caplog: pytest.LogCaptureFixture
) -> None:
    store, path = sqlite_store
    caplog.set_level(logging.WARNING, logger=STORE_LOGGER)
    blocker = sqlite3.connect(path, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreError) as caught:
            store.record_polls(two_polls())
    finally:
        blocker.close()
    assert str(caught.value) == (
        f"database sqlite:///{path} kept failing: database is locked "
        f"(gave up after {RETRY_ATTEMPTS} attempts)"
    )
    assert len(retries(caplog)) == RETRY_ATTEMPTS - 1
    assert store.articles() == []
    assert store.record_polls(two_polls()) == [PollSaved(1, 1, 1), PollSaved(1, 1, 1)]
