"""The Alembic migrations build exactly the schema that monitor.store.schema describes."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect

from monitor.errors import StoreError
from monitor.store import Store
from monitor.store.engine import parse_url
from monitor.store.migrate import alembic_config, head_revision
from monitor.store.schema import metadata


def test_upgrade_builds_the_declared_schema(database_url: str) -> None:
    store = Store.open(database_url)
    try:
        assert store.revision() is None
        store.upgrade()
        assert store.revision() == head_revision()
    finally:
        store.close()
    assert schema_differences(database_url) == []
    assert tables(database_url) == {
        "alembic_version",
        "feeds",
        "articles",
        "matches",
        "deliveries",
        "silences",
        "digests",
        "holds",
    }


def schema_differences(url: str) -> list[object]:
    """What Alembic would change to make the database match monitor.store.schema."""
    engine = create_engine(parse_url(url))
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return list(compare_metadata(context, metadata))
    finally:
        engine.dispose()


def tables(url: str) -> set[str]:
    engine = create_engine(parse_url(url))
    try:
        with engine.connect() as connection:
            return set(inspect(connection).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_twice_is_a_no_op(database_url: str) -> None:
    store = Store.open(database_url)
    try:
        store.upgrade()
        store.upgrade()
        assert store.revision() == head_revision()
    finally:
        store.close()


def test_every_migration_downgrades_one_step_at_a_time_and_upgrades_again(
    database_url: str,
) -> None:
    steps = list(ScriptDirectory.from_config(alembic_config()).walk_revisions())  # newest first
    store = Store.open(database_url)
    try:
        store.upgrade()
        for step in steps:
            parent = step.down_revision or "base"
            assert isinstance(parent, str)  # one parent each: no branches
            store.downgrade(parent)
            assert store.revision() == step.down_revision
        assert tables(database_url) == {"alembic_version"}
        store.upgrade()
        assert store.revision() == head_revision()
    finally:
        store.close()
    assert schema_differences(database_url) == []


def test_downgrade_refuses_a_revision_above_the_current_one(database_url: str) -> None:
    store = Store.open(database_url)
    try:
        with pytest.raises(StoreError, match=f"database .*{head_revision()}"):
            store.downgrade(head_revision())  # from an empty database: that is an upgrade
        assert store.revision() is None
    finally:
        store.close()
