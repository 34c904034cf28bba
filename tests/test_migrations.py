"""The Alembic migrations build exactly the schema that monitor.store.schema describes."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from monitor.store import Store
from monitor.store.engine import parse_url
from monitor.store.migrate import head_revision
from monitor.store.schema import metadata


def test_upgrade_builds_the_declared_schema(database_url: str) -> None:
    store = Store.open(database_url)
    try:
        assert store.revision() is None
        store.upgrade()
        assert store.revision() == head_revision() == "0002"
    finally:
        store.close()
    engine = create_engine(parse_url(database_url))
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, metadata) == []
            tables = set(inspect(connection).get_table_names())
    finally:
        engine.dispose()
    assert tables == {"alembic_version", "feeds", "articles", "matches", "deliveries"}


def test_upgrade_twice_is_a_no_op(database_url: str) -> None:
    store = Store.open(database_url)
    try:
        store.upgrade()
        store.upgrade()
        assert store.revision() == head_revision()
    finally:
        store.close()
