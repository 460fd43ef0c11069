"""SQLAlchemy engines for gisgrid: one cached engine per database URL.

``get_engine()`` resolves the database from :class:`~gisgrid.config.Settings`: the server named
by ``GISGRID_DATABASE_URL``, else the embedded cluster under ``GISGRID_HOME``, which is started
on demand. Migrations are applied once per URL and process.

The storage SRID is a property of the database, not of the code: the models declare 4490, but
a database first upgraded with ``GISGRID_SRID`` holds another. The storage layer reads the
effective value with :func:`storage_srid` (``setting`` table, key ``storage_srid``).
"""

from __future__ import annotations

import threading

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gisgrid.config import Settings
from gisgrid.crs import DEFAULT_SRID

_ENGINES: dict[str, Engine] = {}
_UPGRADED: set[str] = set()
_LOCK = threading.Lock()


def database_url(settings: Settings | None = None, *, start: bool = True) -> str:
    """The SQLAlchemy URL gisgrid uses; starts the embedded server when ``start`` is true."""
    settings = settings or Settings.from_env()
    if settings.database_url:
        return settings.database_url
    from gisgrid.db.server import EmbeddedServer

    server = EmbeddedServer(settings.home)
    if start:
        server.start()
    return server.url()


def get_engine(settings: Settings | None = None, *, upgrade: bool = True) -> Engine:
    """Return the (cached) engine for ``settings``, migrated to head unless ``upgrade=False``.

    The embedded server is started on the first call for its ``home`` only; later calls reuse
    the cached engine. Raises :class:`~gisgrid.errors.DatabaseUnavailable` when the server
    cannot be started, reached or migrated.
    """
    settings = settings or Settings.from_env()
    key = settings.database_url or f"embedded:{settings.home}"
    with _LOCK:
        engine = _ENGINES.get(key)
        if engine is None:
            engine = sa.create_engine(database_url(settings), pool_pre_ping=True)
            _ENGINES[key] = engine
        if upgrade and key not in _UPGRADED:
            from gisgrid.db import migrate

            migrate.upgrade(engine.url.render_as_string(hide_password=False),
                            srid=settings.srid)
            _UPGRADED.add(key)
        return engine


def begin(settings: Settings | None = None):
    """A transaction on the configured database (``with begin() as conn:``), for commands.

    ``settings`` defaults to :meth:`gisgrid.config.Settings.from_env`.
    """
    return get_engine(settings or Settings.from_env()).begin()


def dispose_engines() -> None:
    """Close every cached engine's connections and forget them (tests, forks, shutdown)."""
    with _LOCK:
        for engine in _ENGINES.values():
            engine.dispose()
        _ENGINES.clear()
        _UPGRADED.clear()


def storage_srid(conn: sa.Connection) -> int:
    """The SRID geometries are stored in, as recorded by the first migration."""
    value = conn.execute(
        sa.text("SELECT value FROM setting WHERE key = 'storage_srid'")).scalar_one_or_none()
    return int(value) if value is not None else DEFAULT_SRID
