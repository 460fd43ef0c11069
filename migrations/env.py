"""Alembic environment for gisgrid (used by gisgrid.db.migrate and by the `alembic` command).

The database comes from, in order: an open connection in ``config.attributes["connection"]``,
``config.attributes["url"]``, the ``sqlalchemy.url`` option, or gisgrid's settings
(``GISGRID_DATABASE_URL``, else the embedded cluster, started on demand).
PostGIS's own tables and schemas are left out of autogenerate.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context
from geoalchemy2 import alembic_helpers

from gisgrid.db.migrate import include_object
from gisgrid.db.models import Base

config = context.config
target_metadata = Base.metadata

# An advisory lock key so that concurrent processes never migrate the same database at once.
MIGRATION_LOCK = 4490_2024


def _url() -> str:
    url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from gisgrid.db.engine import database_url

    return database_url()


def _configure(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_object=include_object,
        render_item=alembic_helpers.render_item,
        process_revision_directives=alembic_helpers.writer,
        compare_type=True,
        compare_server_default=True,
    )


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True,
                      include_object=include_object, render_item=alembic_helpers.render_item)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = sa.create_engine(_url(), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            _configure(connection)
            with context.begin_transaction():
                connection.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"),
                                   {"k": MIGRATION_LOCK})
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
