"""Opening a database: URL normalisation, engine settings per backend, error wrapping.

The Store is the only caller. SQLite gets WAL, foreign keys, a busy timeout and
BEGIN IMMEDIATE for writes; PostgreSQL gets psycopg 3 and pool_pre_ping so a
server restart is survived by the next call. Driver errors are sorted here into
transient ones (worth a new transaction; the Store retries) and the rest.
"""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    InterfaceError,
    NoSuchModuleError,
    OperationalError,
)

from monitor.errors import StoreError

SETTING = "MONITOR_DATABASE_URL"
SQLITE_BUSY_TIMEOUT_MS = 30_000
PG_CONNECT_TIMEOUT_S = 10
WRITE_OPTION = "monitor_write"  # execution option: this transaction will write


def parse_url(url: str) -> URL:
    """The SQLAlchemy URL, with `postgresql://` (and `postgres://`) sent to psycopg 3."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            url = "postgresql+psycopg://" + url.removeprefix(prefix)
    try:
        return make_url(url)
    except ArgumentError as exc:
        raise StoreError(
            f"{SETTING}: cannot parse {url!r} as a database URL "
            "(expected sqlite:///path or postgresql://user:password@host/dbname)"
        ) from exc


def mask(url: URL) -> str:
    return url.render_as_string(hide_password=True)


def create_store_engine(url: URL) -> Engine:
    """An engine for `url` with the settings its backend needs; does not connect yet."""
    try:
        if url.get_backend_name() == "sqlite":
            return _sqlite_engine(url)
        if url.get_backend_name() == "postgresql":
            connect_args: dict[str, Any] = {}
            if "connect_timeout" not in url.query:
                connect_args["connect_timeout"] = PG_CONNECT_TIMEOUT_S
            return create_engine(url, pool_pre_ping=True, connect_args=connect_args)
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise StoreError(f"{SETTING}: cannot use {mask(url)}: {exc}") from exc
    raise StoreError(
        f"{SETTING}: unsupported database {url.get_backend_name()!r} in {mask(url)}; "
        "use sqlite:///path or postgresql://..."
    )


def _sqlite_engine(url: URL) -> Engine:
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module (it would not BEGIN before
        # SELECT); SQLAlchemy's "begin" event below emits BEGIN itself.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # WAL with synchronous=NORMAL never corrupts; a power cut may undo the last commits,
        # and the next poll re-reads those stories from their feeds.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        # A writer takes the write lock up front: a deferred transaction that read first
        # would fail with SQLITE_BUSY instead of waiting for busy_timeout.
        write = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


# Failures worth a new transaction. A conflict: serialization failure, deadlock, SQLite's
# SQLITE_BUSY/SQLITE_LOCKED (with extended codes: the low byte is the primary code). A lost
# connection: a connection exception (class 08), the server ending the session
# (pg_terminate_backend, a shutdown), or SQLAlchemy finding the connection dead.
_CONFLICT_SQLSTATES = {"40001", "40P01"}
_SQLITE_BUSY_CODES = {5, 6}
_TERMINATED_SQLSTATES = {"57P01", "57P02"}


def transient_reason(exc: DBAPIError) -> str | None:
    """Why `exc` is worth running the transaction again (the driver's first line), or None."""
    if _transient_kind(exc) is None:
        return None
    return _cause(exc).partition("\n")[0].strip() or type(exc.orig).__name__


def _transient_kind(exc: DBAPIError) -> Literal["conflict", "disconnect"] | None:
    """Which kind of transient failure `exc` is; None if a new transaction would fail again."""
    sqlstate = getattr(exc.orig, "sqlstate", None) or ""
    sqlite_code = getattr(exc.orig, "sqlite_errorcode", None)
    if exc.connection_invalidated or sqlstate.startswith("08") or sqlstate in _TERMINATED_SQLSTATES:
        return "disconnect"
    if sqlstate in _CONFLICT_SQLSTATES or (
        isinstance(sqlite_code, int) and sqlite_code & 0xFF in _SQLITE_BUSY_CODES
    ):
        return "conflict"
    return None


def wrap_error(url: URL, exc: DBAPIError, attempts: int = 1) -> StoreError:
    """One StoreError naming the masked URL and the driver's reason, saying what to check.

    `attempts`: how many times the transaction was tried before giving up.
    """
    # Drivers write several lines (psycopg adds a hint line); the CLI promises one.
    cause = " ".join(_cause(exc).split())
    kind = _transient_kind(exc)
    if kind == "conflict":  # the server answered: asking whether it runs would mislead
        return StoreError(
            f"database {mask(url)} kept failing: {cause} (gave up after {attempts} attempts)"
        )
    if url.get_backend_name() == "sqlite" and "unable to open database file" in cause:
        return StoreError(  # SQLite has no server: the file or its folder is the problem
            f"database {mask(url)} cannot be opened: {cause} (check that its folder exists "
            f"and is writable, or {SETTING})"
        )
    if kind == "disconnect" or isinstance(exc, OperationalError | InterfaceError):
        tried = f"gave up after {attempts} attempts; " if attempts > 1 else ""
        return StoreError(
            f"database {mask(url)} is unavailable: {cause} "
            f"({tried}is the server running? check {SETTING})"
        )
    return StoreError(f"database {mask(url)} refused the operation: {cause}")


def _cause(exc: DBAPIError) -> str:
    return str(exc.orig) if exc.orig is not None else str(exc)
