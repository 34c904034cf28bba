"""The database side of the `monitor` command (#8): revisions, downgrades, killed transactions."""

from __future__ import annotations

import logging
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from monitor.cli import main
from monitor.errors import StoreError
from monitor.store import Store
from monitor.store.migrate import head_revision
from tests.support.feed_server import FeedServer
from tests.support.pg import PostgresHandle
from tests.test_cli import GOOD_RULES, invoke, news_env
from tests.test_store_retry import STORE_LOGGER, WAIT_SECONDS, libpq, waiting_backend


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "fr.yaml").write_text(GOOD_RULES)
    return folder


@pytest.fixture
def env(tmp_path: Path, rules_dir: Path, feed_server: FeedServer) -> dict[str, str]:
    return news_env(tmp_path, rules_dir, feed_server, f"sqlite:///{tmp_path / 'm.db'}")


POLLED = (
    "polled 1 feeds (1 updated, 0 unchanged, 0 failed): 2 new articles, 1 matches; "
    "alerts: 1 sent, 0 to retry, 0 failed"
)


@pytest.mark.postgres
def test_poll_once_completes_its_cycle_when_a_transaction_is_killed_mid_way(
    env: dict[str, str],
    postgres_url: str,
    postgres_server: PostgresHandle,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger=STORE_LOGGER)
    env["MONITOR_DATABASE_URL"] = postgres_url
    assert invoke("db", "upgrade", env=env).exit_code == 0
    with (
        psycopg.connect(libpq(postgres_server.url), autocommit=True) as admin,
        psycopg.connect(libpq(postgres_url)) as blocker,
        ThreadPoolExecutor(max_workers=1) as thread,
    ):
        # SHARE mode lets the cycle read articles but makes its insert of them wait, in the
        # middle of the transaction that records the poll; that transaction is then killed.
        blocker.execute("LOCK TABLE articles IN SHARE MODE")

        def kill_the_waiting_transaction() -> None:
            try:
                pid = waiting_backend(admin, postgres_url)
                admin.execute("SELECT pg_terminate_backend(%s)", [pid])
            finally:
                blocker.rollback()

        killing = thread.submit(kill_the_waiting_transaction)
        result = invoke("poll", "--once", env=env)
        killing.result(timeout=WAIT_SECONDS)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == POLLED
    [retry] = [r.getMessage() for r in caplog.records if r.name == STORE_LOGGER]
    assert "terminating connection due to administrator command" in retry
    store = Store.open(postgres_url)
    try:
        assert sorted(a.title for a in store.articles()) == [
            "Portland bans facial recognition",
            "Weather",
        ]
        assert store.delivery_counts() == {"sent": 1}
        assert [(f.error_count, f.last_status) for f in store.feeds()] == [(0, 200)]
    finally:
        store.close()


def set_revision(env: dict[str, str], revision: str) -> str:
    """Stamp the SQLite database of `env` as a newer media-monitor would; return its URL."""
    url = env["MONITOR_DATABASE_URL"]
    assert invoke("db", "upgrade", env=env).exit_code == 0
    with sqlite3.connect(url.removeprefix("sqlite:///")) as connection:
        connection.execute("UPDATE alembic_version SET version_num = ?", [revision])
    connection.close()
    return url


@pytest.mark.parametrize(
    "command",
    [
        ["run"],
        ["poll", "--once"],
        ["feeds", "list"],
        ["matches", "list"],
        ["rules", "test"],
        ["rules", "apply"],
        ["db", "upgrade"],
        ["db", "current"],
        ["db", "downgrade", "base", "--yes"],
    ],
    ids=" ".join,
)
def test_a_database_from_a_newer_version_stops_every_command(
    env: dict[str, str], command: list[str]
) -> None:
    url = set_revision(env, "abc123")
    result = invoke(*command, env=env)
    assert result.exit_code == 1
    assert result.stdout == ""
    head = head_revision()
    assert result.stderr == (
        f"error: database {url} is at revision 'abc123', which this media-monitor does not "
        f"know (its newest is '{head}'): run the newer media-monitor, "
        f"or `monitor db downgrade {head}` with it\n"
    )


def test_debug_shows_the_traceback_of_an_unknown_revision(env: dict[str, str]) -> None:
    set_revision(env, "abc123")
    with pytest.raises(StoreError, match="is at revision 'abc123'"):
        invoke("--debug", "feeds", "list", env=env)


def test_db_current_on_an_empty_then_a_migrated_database(env: dict[str, str]) -> None:
    url, head = env["MONITOR_DATABASE_URL"], head_revision()
    empty = invoke("db", "current", env=env)
    assert (empty.exit_code, empty.stdout) == (
        0,
        f"{url}: no schema yet; this media-monitor's newest is {head} "
        "(`monitor db upgrade` creates it)\n",
    )
    assert invoke("db", "upgrade", env=env).stdout == f"{url}: schema at revision {head}\n"
    current = invoke("db", "current", env=env)
    assert (current.exit_code, current.stdout) == (
        0,
        f"{url}: schema at revision {head}; this media-monitor's newest is {head}\n",
    )


def test_db_downgrade_asks_first_and_stops_on_no(env: dict[str, str]) -> None:
    url, head = env["MONITOR_DATABASE_URL"], head_revision()
    invoke("db", "upgrade", env=env)
    result = CliRunner().invoke(main, ["db", "downgrade", "base"], input="n\n", env=env)
    assert result.exit_code == 1
    assert result.output == (
        f"Downgrade {url} from revision {head} to base? Undoing a migration can drop tables "
        "and their data [y/N]: n\nAborted!\n"
    )
    assert invoke("db", "current", env=env).stdout.startswith(f"{url}: schema at revision {head};")


def test_db_downgrade_to_base_then_upgrade_again(env: dict[str, str]) -> None:
    url, head = env["MONITOR_DATABASE_URL"], head_revision()
    invoke("poll", "--once", env=env)
    result = CliRunner().invoke(main, ["db", "downgrade", "base"], input="y\n", env=env)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == f"{url}: schema at revision base"
    with sqlite3.connect(url.removeprefix("sqlite:///")) as connection:
        tables = {
            row[0]
            for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
    connection.close()
    assert tables == {"alembic_version"}
    assert invoke("db", "upgrade", env=env).stdout == f"{url}: schema at revision {head}\n"
    assert invoke("feeds", "list", env=env).stdout == (
        "no feeds yet: `monitor feeds add URL`, then `monitor poll --once`\n"
    )


def test_db_downgrade_to_a_revision_it_does_not_know(env: dict[str, str]) -> None:
    url, head = env["MONITOR_DATABASE_URL"], head_revision()
    invoke("db", "upgrade", env=env)
    result = invoke("db", "downgrade", "zzz", "--yes", env=env)
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: revision 'zzz' is not one of this media-monitor's migrations (its newest is "
        f"'{head}'; `monitor db current` shows the database's)\n"
    )
    assert invoke("db", "current", env=env).stdout.startswith(f"{url}: schema at revision {head};")
