"""Apply the Alembic migrations shipped in the package (``gisgrid/migrations``).

The storage SRID (default 4490, CGCS2000) is fixed by the first upgrade of an empty database:
pass ``srid=`` here (``Settings.srid`` / ``GISGRID_SRID``), or ``-x srid=NNNN`` to the
``alembic`` command. The initial revision records it in the ``setting`` table
(key ``storage_srid``); read it back with :func:`gisgrid.db.engine.storage_srid`.
"""

from __future__ import annotations

import re
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from geoalchemy2 import alembic_helpers

from gisgrid.errors import DatabaseUnavailable


# Tables owned by PostGIS and its companion extensions (topology, tiger geocoder).
POSTGIS_TABLES = frozenset({
    "spatial_ref_sys", "topology", "layer", "geocode_settings", "geocode_settings_default",
    "direction_lookup", "secondary_unit_lookup", "state_lookup", "street_type_lookup",
    "place_lookup", "county_lookup", "countysub_lookup", "zip_lookup_all", "zip_lookup_base",
    "zip_lookup", "zip_state", "zip_state_loc", "loader_platform", "loader_variables",
    "loader_lookuptables", "pagc_gaz", "pagc_lex", "pagc_rules"})
POSTGIS_SCHEMAS = frozenset({"topology", "tiger", "tiger_data"})
#: Monthly partitions of ``gps_point``, created by the bulk ingest
#: (:func:`gisgrid.db.points.partition_name`): data, not schema.
GPS_PARTITION = re.compile(r"^gps_point_y\d{4}m\d{2}$")


def include_object(obj, name, obj_type, reflected, compare_to) -> bool:
    """Autogenerate filter: leave PostGIS's own tables and schemas, and the partitions of
    ``gps_point``, alone."""
    if obj_type == "table" and (name in POSTGIS_TABLES or obj.schema in POSTGIS_SCHEMAS):
        return False
    if obj_type == "table" and reflected and GPS_PARTITION.match(name or ""):
        return False
    return alembic_helpers.include_object(obj, name, obj_type, reflected, compare_to)


def migrations_dir() -> Path:
    """The Alembic script directory inside the installed package."""
    import gisgrid

    return Path(gisgrid.__file__).resolve().parent / "migrations"


def alembic_config(url: str | None = None, *, srid: int | None = None,
                   connection: sa.Connection | None = None) -> Config:
    """An Alembic :class:`~alembic.config.Config` for ``url`` (or an open ``connection``)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
        cfg.attributes["url"] = url
    if srid is not None:
        cfg.attributes["srid"] = int(srid)
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def upgrade(url: str, revision: str = "head", *, srid: int | None = None) -> None:
    """Upgrade the database at ``url`` to ``revision`` (storage ``srid`` used on first upgrade)."""
    _run(command.upgrade, url, revision, srid=srid)


def downgrade(url: str, revision: str) -> None:
    """Downgrade the database at ``url`` to ``revision`` (``"base"`` drops every gisgrid table)."""
    _run(command.downgrade, url, revision)


def current(url: str) -> str | None:
    """The revision the database at ``url`` is at (``None`` for an empty database)."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except sa.exc.OperationalError as exc:
        raise DatabaseUnavailable(f"cannot reach the database: {exc.orig}") from exc
    finally:
        engine.dispose()


def head() -> str:
    """The head revision of the shipped migrations (there is exactly one head)."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _run(fn, url: str, revision: str, *, srid: int | None = None) -> None:
    try:
        fn(alembic_config(url, srid=srid), revision)
    except sa.exc.OperationalError as exc:
        raise DatabaseUnavailable(f"cannot migrate the database: {exc.orig}") from exc
