"""The migrations: empty -> head -> base -> head, no drift from the models, constraints bite."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from gisgrid.db import migrate
from gisgrid.db.engine import storage_srid
from gisgrid.db.models import Base

pytestmark = pytest.mark.db

SQUARE = "SRID=4490;MULTIPOLYGON(((114.0 29.7,114.1 29.7,114.1 29.8,114.0 29.8,114.0 29.7)))"


def _tables(url: str) -> set[str]:
    eng = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with eng.connect() as c:
            return set(sa.inspect(c).get_table_names())
    finally:
        eng.dispose()



def _diff(url: str) -> list:
    eng = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with eng.connect() as c:
            ctx = MigrationContext.configure(c, opts={
                "include_object": migrate.include_object,
                "compare_type": True,
                "compare_server_default": True,
            })
            return compare_metadata(ctx, Base.metadata)
    finally:
        eng.dispose()


def test_upgrade_downgrade_upgrade_round_trip(make_database):
    url = make_database("roundtrip")
    assert migrate.current(url) is None
    migrate.upgrade(url)
    assert migrate.current(url) == migrate.head()
    assert set(Base.metadata.tables) <= _tables(url)

    migrate.downgrade(url, "base")
    assert migrate.current(url) is None
    assert _tables(url) & set(Base.metadata.tables) == set()
    assert "spatial_ref_sys" in _tables(url)  # PostGIS itself stays
    assert any(op[0] == "add_table" for op in _diff(url))  # the drift check can see drift

    migrate.upgrade(url)
    assert migrate.current(url) == migrate.head()


def test_autogenerate_reports_no_difference(postgis_url):
    assert _diff(postgis_url) == []


def test_storage_srid_recorded(conn):
    assert storage_srid(conn) == 4490


def test_storage_srid_chosen_at_first_upgrade(make_database):
    url = make_database("srid4547")
    migrate.upgrade(url, srid=4547)
    eng = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with eng.connect() as c:
        assert storage_srid(c) == 4547
        assert c.execute(sa.text("SELECT Find_SRID('public', 'grid', 'geom')")).scalar() == 4547
    eng.dispose()


def _grid(conn, **values):
    row = dict(code="421281", name="赤壁市", level=1, kind="city", parent_id=None,
               path="421281", geom=SQUARE) | values
    return conn.execute(sa.text(
        "INSERT INTO grid (code, name, level, kind, parent_id, path, geom) "
        "VALUES (:code, :name, :level, :kind, :parent_id, :path, ST_GeomFromEWKT(:geom)) "
        "RETURNING id"), row).scalar_one()


@pytest.mark.parametrize("values, constraint", [
    (dict(level=5, kind="base"), "ck_grid_(level_range|kind_matches_level)"),
    (dict(level=1, kind="village"), "ck_grid_kind_matches_level"),
    (dict(level=1, kind="hamlet"), "ck_grid_kind_(allowed|matches_level)"),
    (dict(level=2, kind="township"), "ck_grid_parent_iff_not_city"),
])
def test_grid_checks_refuse_bad_rows(conn, values, constraint):
    with pytest.raises(sa.exc.IntegrityError, match=constraint):
        with conn.begin_nested():
            _grid(conn, **values)


def test_grid_hierarchy_and_current_code_unique(conn):
    city = _grid(conn)
    _grid(conn, code="421281.03", level=2, kind="street", parent_id=city, path="421281.03")
    with pytest.raises(sa.exc.IntegrityError, match="uq_grid_code_current"):
        with conn.begin_nested():
            _grid(conn, code="421281.03", level=2, kind="township", parent_id=city,
                  path="421281.03")
    conn.execute(sa.text("UPDATE grid SET valid_to = now() WHERE code = '421281.03'"))
    _grid(conn, code="421281.03", level=2, kind="township", parent_id=city, path="421281.03")


def test_wrong_geometry_type_refused(conn):
    with pytest.raises(sa.exc.DataError):
        with conn.begin_nested():
            _grid(conn, geom="SRID=4490;POINT(114 29.7)")


def test_enumerations_checked(conn):
    with pytest.raises(sa.exc.IntegrityError, match="ck_hazard_state_allowed"):
        with conn.begin_nested():
            conn.execute(sa.text(
                "INSERT INTO hazard (client_uuid, geom, category, state, reported_at) VALUES "
                "(gen_random_uuid(), ST_GeomFromEWKT('SRID=4490;POINT(114 29.7)'), 'fire', "
                "'lost', now())"))
    with pytest.raises(sa.exc.IntegrityError, match="ck_patrol_coverage_share_range"):
        with conn.begin_nested():
            city = _grid(conn)
            conn.execute(sa.text("INSERT INTO patrol_coverage (grid_id, day, buffer_m, "
                                 "covered_share) VALUES (:g, current_date, 30, 1.5)"), {"g": city})


def test_every_geometry_has_gist_index(conn):
    rows = conn.execute(sa.text(
        "SELECT f_table_name, f_geometry_column FROM geometry_columns "
        "WHERE f_table_schema = 'public'")).all()
    assert len(rows) == 7
    for table, column in rows:
        indexed = conn.execute(sa.text(
            "SELECT count(*) FROM pg_indexes WHERE tablename = :t AND indexdef ILIKE "
            "'%USING gist (' || :c || ')%'"), {"t": table, "c": column}).scalar()
        assert indexed == 1, (table, column)


def test_grid_row_version_is_optimistic_lock(session):
    from sqlalchemy.orm.exc import StaleDataError

    from gisgrid.db.models import Grid

    grid = Grid(code="T1", name="测试市", level=1, kind="city", path="T1", geom=SQUARE)
    session.add(grid)
    session.flush()
    assert grid.row_version == 1
    grid.name = "测试市（改）"
    session.flush()
    assert grid.row_version == 2
    session.connection().execute(sa.text("UPDATE grid SET row_version = 7 WHERE id = :id"),
                                 {"id": grid.id})
    grid.name = "stale edit"
    with pytest.raises(StaleDataError):
        session.flush()


def test_no_drift_with_gps_partitions_and_the_check_sees_a_missing_index(make_database):
    url = make_database("partitions")
    migrate.upgrade(url)
    eng = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with eng.begin() as c:
        c.execute(sa.text("""CREATE TABLE gps_point_y2024m05 PARTITION OF gps_point
            FOR VALUES FROM ('2024-05-01 00:00+08') TO ('2024-06-01 00:00+08')"""))
    assert _diff(url) == []  # the month's table is data, not schema
    with eng.begin() as c:
        c.execute(sa.text("DROP INDEX ix_gps_point_base_grid_id_recorded_at"))
    assert any(op[0] == "add_index" for op in _diff(url))  # the parent's indexes are compared
    eng.dispose()
