"""Alembic environment: runs migrations on the connection `monitor.store.migrate` hands over.

There is no alembic.ini and no URL here: the Store opens the database (with its
engine settings and error wrapping) and passes the connection in `config.attributes`.
"""

from __future__ import annotations

from alembic import context

from monitor.errors import StoreError
from monitor.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise StoreError(
        "migrations run through Store.upgrade() (or monitor.store.migrate.alembic_config with a "
        "connection); there is no alembic.ini"
    )
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER most things
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
