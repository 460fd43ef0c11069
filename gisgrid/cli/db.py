"""``gisgrid db``: the database gisgrid works on.

By default that is the embedded PostGIS cluster under ``$GISGRID_HOME`` (started on demand by
every command that needs it); ``GISGRID_DATABASE_URL`` points gisgrid at an existing PostGIS
server instead, and then ``start``/``stop`` leave that server alone.

    gisgrid db start [--no-upgrade]    start the embedded server, create the database, migrate
    gisgrid db stop                    stop the embedded server
    gisgrid db status                  exit 0 when the database is reachable, 1 when not
    gisgrid db url [--loopback] [--libpq]
    gisgrid db upgrade [--revision REV]
"""

from __future__ import annotations

import click
import sqlalchemy as sa

from gisgrid.config import Settings
from gisgrid.db import migrate
from gisgrid.db.engine import database_url, storage_srid
from gisgrid.db.server import EmbeddedServer
from gisgrid.errors import DatabaseUnavailable


@click.group("db")
def db() -> None:
    """Start, stop and migrate the database (embedded PostGIS or GISGRID_DATABASE_URL)."""


def _external_note(settings: Settings) -> str:
    return ("the database is external (GISGRID_DATABASE_URL = "
            f"{hide_password(settings.database_url)})")


def hide_password(url: str) -> str:
    """``url`` with its password masked (for anything printed)."""
    return sa.make_url(url).render_as_string(hide_password=True)


@db.command()
@click.option("--no-upgrade", is_flag=True, help="Do not apply the migrations.")
def start(no_upgrade: bool) -> None:
    """Start the embedded PostGIS server (idempotent) and apply the migrations."""
    settings = Settings.from_env()
    if not settings.embedded:
        click.echo(f"{_external_note(settings)}: nothing to start")
        url = settings.database_url
    else:
        server = EmbeddedServer(settings.home)
        was_running = server.status().running
        status = server.start()
        verb = "already running" if was_running else "started"
        click.echo(f"embedded PostGIS {verb}: pid {status.pid}, port {status.port}, "
                   f"socket {status.socket_dir}, data {status.data_dir} (OS user {status.os_user})")
        url = server.url()
    if not no_upgrade:
        migrate.upgrade(url, srid=settings.srid)
        click.echo(f"schema at revision {migrate.current(url)}")


@db.command()
def stop() -> None:
    """Stop the embedded PostGIS server (a stopped one is left as it is)."""
    settings = Settings.from_env()
    if not settings.embedded:
        click.echo(f"{_external_note(settings)}: gisgrid does not stop it")
        return
    server = EmbeddedServer(settings.home)
    if not server.status().running:
        click.echo(f"embedded PostGIS in {settings.home} is not running")
        return
    server.stop()
    click.echo(f"embedded PostGIS in {settings.home} stopped")


@db.command()
def status() -> None:
    """Report the database; exit 0 when it is running and reachable, 1 when not."""
    settings = Settings.from_env()
    if settings.embedded:
        st = EmbeddedServer(settings.home).status()
        click.echo(f"embedded PostGIS: {'running' if st.running else 'not running'}")
        for label, value in (("pid", st.pid), ("port", st.port), ("socket dir", st.socket_dir),
                             ("data dir", st.data_dir), ("OS user", st.os_user),
                             ("log", st.log_file)):
            click.echo(f"  {label}: {value if value is not None else '-'}")
        if not st.running:
            raise SystemExit(1)
        url = EmbeddedServer(settings.home).url()
    else:
        click.echo(_external_note(settings))
        url = settings.database_url
    try:
        revision = migrate.current(url)
    except DatabaseUnavailable as exc:
        click.echo(f"  not reachable: {exc}")
        raise SystemExit(1)
    head = migrate.head()
    state = "up to date" if revision == head else f"head is {head}: run 'gisgrid db upgrade'"
    click.echo(f"  schema revision: {revision or 'none'} ({state})")
    if revision:
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as conn:
                click.echo(f"  storage SRID: {storage_srid(conn)}")
        finally:
            engine.dispose()


@db.command()
@click.option("--loopback", is_flag=True,
              help="The 127.0.0.1 TCP URL with password instead of the unix socket.")
@click.option("--libpq", is_flag=True, help="A libpq URL (for psql) instead of SQLAlchemy's.")
def url(loopback: bool, libpq: bool) -> None:
    """Print the database URL."""
    settings = Settings.from_env()
    if settings.embedded:
        text = EmbeddedServer(settings.home).url(loopback=loopback)
    else:
        text = settings.database_url
    if libpq:
        text = sa.make_url(text).set(drivername="postgresql").render_as_string(
            hide_password=False)
    click.echo(text)


@db.command()
@click.option("--revision", default="head", show_default=True, help="Target revision.")
def upgrade(revision: str) -> None:
    """Apply the migrations (starting the embedded server if needed)."""
    settings = Settings.from_env()
    target = database_url(settings)
    migrate.upgrade(target, revision, srid=settings.srid)
    click.echo(f"schema at revision {migrate.current(target)}")
