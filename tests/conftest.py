"""Shared fixtures: a real throwaway PostGIS cluster for the whole session.

``postgis_url``  session  SQLAlchemy URL of the ``gisgrid`` database, migrated to head
``engine``       session  an Engine on it
``conn``         function a Connection inside a transaction rolled back after the test;
                          ``conn.begin_nested()`` (SAVEPOINT) works inside it
``session``      function an ORM Session joined to ``conn`` (its commits become savepoints)
``settings``     function ``Settings(home=<tmp>, database_url=postgis_url)``
``make_database`` session factory: ``make_database(name)`` -> URL of a new, empty database
                          with PostGIS in the same cluster (not migrated)

The cluster is an :class:`~gisgrid.db.server.EmbeddedServer` in a temporary directory with
``fsync=off``; it is destroyed at the end of the session. ``GISGRID_TEST_DATABASE_URL`` points
the fixtures at an existing PostGIS database instead. When the server cannot start, every test
that needs it fails with the server's log (never skips).
"""

from __future__ import annotations

import os

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from gisgrid.config import Settings


@pytest.fixture(scope="session")
def postgis_server(tmp_path_factory):
    """The session's embedded cluster (``None`` when GISGRID_TEST_DATABASE_URL is set)."""
    if os.environ.get("GISGRID_TEST_DATABASE_URL"):
        yield None
        return
    from gisgrid.db.server import EmbeddedServer, reap_orphan_clusters

    reap_orphan_clusters()
    server = EmbeddedServer(tmp_path_factory.mktemp("postgis") / "home", fast=True)
    try:
        server.start()
        yield server
    finally:
        server.destroy()


@pytest.fixture(scope="session")
def postgis_url(postgis_server) -> str:
    """URL of the session's PostGIS database, with the migrations applied to head."""
    from gisgrid.db import migrate

    url = os.environ.get("GISGRID_TEST_DATABASE_URL") or postgis_server.url()
    migrate.upgrade(url)
    return url


@pytest.fixture(scope="session")
def engine(postgis_url):
    eng = sa.create_engine(postgis_url)
    yield eng
    eng.dispose()


@pytest.fixture
def conn(engine):
    """A connection in an outer transaction that is rolled back after the test."""
    with engine.connect() as connection:
        outer = connection.begin()
        try:
            yield connection
        finally:
            if outer.is_active:
                outer.rollback()


@pytest.fixture
def session(conn):
    """An ORM session joined to ``conn``'s transaction (``commit()`` releases a savepoint)."""
    with Session(bind=conn, join_transaction_mode="create_savepoint") as sess:
        yield sess


@pytest.fixture
def settings(postgis_url, tmp_path) -> Settings:
    return Settings(home=tmp_path / "gisgrid-home", database_url=postgis_url)


@pytest.fixture(scope="session")
def make_database(postgis_url):
    """Factory: ``make_database(name)`` creates an empty database with PostGIS; returns its URL.

    Each database is dropped at the end of the session.
    """
    admin = sa.create_engine(postgis_url, isolation_level="AUTOCOMMIT",
                             poolclass=sa.pool.NullPool)
    created: list[str] = []

    def make(name: str) -> str:
        dbname = f"test_{name}"
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)'))
            c.execute(sa.text(f'CREATE DATABASE "{dbname}" TEMPLATE template0'))
        created.append(dbname)
        url = sa.make_url(postgis_url).set(database=dbname)
        url_text = url.render_as_string(hide_password=False)
        new = sa.create_engine(url_text, poolclass=sa.pool.NullPool)
        with new.begin() as c:
            c.execute(sa.text("CREATE EXTENSION IF NOT EXISTS postgis"))
        new.dispose()
        return url_text

    yield make
    with admin.connect() as c:
        for dbname in created:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)'))
    admin.dispose()
