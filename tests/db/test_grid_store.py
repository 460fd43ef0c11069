"""The grid store (gisgrid.db.grids) against a real PostGIS.

The hierarchy used here, in CGCS2000 degrees near Chibi (each cell 0.01 degree)::

    C (city) ─┬─ C.01 (township, x 0-2) ─┬─ C.01.001 (village, x 0)
              │                          └─ C.01.002 (village, x 1)
              └─ C.02 (street,   x 2-3) ─── C.02.001 (community, x 2)
"""

from __future__ import annotations

import datetime as dt

import geopandas as gpd
import pytest
import shapely
import sqlalchemy as sa
from shapely import box

from gisgrid.crs import local_metric_crs
from gisgrid.db.grids import codes_by_level, known_codes, read_grids, write_grids
from gisgrid.errors import CRSError, ImportRefused, NotFound
from gisgrid.grids import PreparedGrids, prepare_grids
from gisgrid.levels import Level

pytestmark = pytest.mark.db

X0, Y0, D = 113.9, 29.7, 0.01


def cells(i0: int, i1: int, j0: int = 0, j1: int = 1):
    """The rectangle covering cells i0..i1-1 east and j0..j1-1 north of (X0, Y0)."""
    return box(X0 + i0 * D, Y0 + j0 * D, X0 + i1 * D, Y0 + j1 * D)


def layer(rows, crs=4490):
    """A layer from (code, parent_code, kind, geometry) rows."""
    code, parent, kind, geom = zip(*rows)
    return gpd.GeoDataFrame({"code": code, "parent_code": parent, "kind": kind,
                             "name": [f"网格 {c}" for c in code]}, geometry=list(geom), crs=crs)


@pytest.fixture
def store(conn):
    """Factory: ``store(level, rows, **prepare_options)`` prepares and writes, returns ids."""

    def write(level, rows, *, actor="tester", change="import", **options):
        parents = known_codes(conn, level - 1) if level > 1 else None
        prepared = prepare_grids(layer(rows), level, known_parent_codes=parents, **options)
        return write_grids(conn, prepared, actor=actor, change=change)

    return write


@pytest.fixture
def hierarchy(store):
    """The three-level hierarchy of the module docstring; returns ids by code."""
    ids = {}
    for level, rows in [
        (1, [("C", None, "city", cells(0, 3))]),
        (2, [("C.01", "C", "township", cells(0, 2)), ("C.02", "C", "street", cells(2, 3))]),
        (3, [("C.01.001", "C.01", "village", cells(0, 1)),
             ("C.01.002", "C.01", "village", cells(1, 2)),
             ("C.02.001", "C.02", "community", cells(2, 3))]),
    ]:
        ids.update(zip([r[0] for r in rows], store(level, rows)))
    return ids


def history(conn, grid_id):
    return conn.execute(sa.text(
        "SELECT version, valid_from, valid_to, change, actor, reason, ST_AsBinary(geom) AS wkb "
        "FROM grid_history WHERE grid_id = :id ORDER BY version"), {"id": grid_id}).all()


def test_written_grids_read_back_as_a_grid_frame(conn, hierarchy):
    frame = read_grids(conn)

    assert list(frame.columns) == ["id", "code", "name", "level", "kind", "parent_code", "org",
                                   "version", "path", "area_m2", "geom"]
    assert frame.geometry.name == "geom" and frame.crs.to_epsg() == 4490
    assert frame["code"].tolist() == ["C", "C.01", "C.01.001", "C.01.002", "C.02", "C.02.001"]
    assert frame["path"].tolist() == frame["code"].tolist()  # dotted codes: path == code
    assert frame.set_index("code")["parent_code"].to_dict() == {
        "C": None, "C.01": "C", "C.02": "C", "C.01.001": "C.01", "C.01.002": "C.01",
        "C.02.001": "C.02"}
    assert frame.set_index("code")["id"].to_dict() == hierarchy
    assert (frame["version"] == 1).all()
    assert (frame.geometry.geom_type == "MultiPolygon").all()


def test_stored_geometry_is_exactly_the_prepared_one(conn, store):
    prepared = prepare_grids(layer([("C", None, "city", cells(0, 3))]), 1)
    write_grids(conn, prepared, actor="tester")

    stored = read_grids(conn, code="C").geometry.iloc[0]

    assert shapely.equals_exact(stored, prepared.frame.geometry.iloc[0], tolerance=0)


def test_area_is_measured_in_metres(conn, hierarchy):
    frame = read_grids(conn, level=3)

    expected = frame.to_crs(local_metric_crs(frame)).area
    assert frame["area_m2"].tolist() == pytest.approx(expected.tolist(), rel=1e-9)
    assert 0.9e6 < frame["area_m2"].iloc[0] < 1.1e6  # 0.01 degree near 29.7N is about 1 km2


def test_each_grid_gets_one_history_row(conn, hierarchy):
    rows = history(conn, hierarchy["C.01.002"])

    assert [(r.version, r.valid_to, r.change, r.actor) for r in rows] == [
        (1, None, "import", "tester")]


def test_writing_the_same_grids_again_changes_nothing(conn, store, hierarchy):
    ids = store(2, [("C.01", "C", "township", cells(0, 2)), ("C.02", "C", "street", cells(2, 3))])

    assert ids == [hierarchy["C.01"], hierarchy["C.02"]]
    assert (read_grids(conn, level=2)["version"] == 1).all()
    assert len(history(conn, hierarchy["C.01"])) == 1


def test_changed_grid_gets_a_new_version_and_history(conn, store, hierarchy):
    before = read_grids(conn, code="C.02.001")
    row_version = conn.execute(sa.text("SELECT row_version FROM grid WHERE id = :id"),
                               {"id": hierarchy["C.02.001"]}).scalar_one()

    ids = store(3, [("C.02.001", "C.02", "community", cells(2, 3, 0, 2))],
                actor="planner", change="edit")

    assert ids == [hierarchy["C.02.001"]]
    after = read_grids(conn, code="C.02.001")
    assert after["version"].tolist() == [2]
    assert after["area_m2"].iloc[0] == pytest.approx(2 * before["area_m2"].iloc[0], rel=1e-3)
    assert conn.execute(sa.text("SELECT row_version FROM grid WHERE id = :id"),
                        {"id": ids[0]}).scalar_one() == row_version + 1
    old, new = history(conn, ids[0])
    assert (old.version, new.version) == (1, 2)
    assert old.valid_to == new.valid_from and new.valid_to is None
    assert (new.change, new.actor) == ("edit", "planner")
    # the past is still readable
    then = read_grids(conn, code="C.02.001", at=old.valid_from)
    assert shapely.equals_exact(then.geometry.iloc[0], before.geometry.iloc[0], tolerance=0)
    assert then["version"].tolist() == [1]
    assert read_grids(conn, code="C.02.001", at=old.valid_from - dt.timedelta(seconds=1)).empty


def test_moving_a_grid_to_another_parent_moves_its_subtree(conn, store):
    store(1, [("M", None, "city", cells(0, 2))])
    store(2, [("M1", "M", "township", cells(0, 1)), ("M2", "M", "township", cells(1, 2))])
    store(3, [("V", "M1", "village", cells(0, 1))])
    store(4, [("B", "V", "base", cells(0, 1))])

    store(3, [("V", "M2", "village", cells(0, 1))])

    frame = read_grids(conn).set_index("code")
    assert frame.loc["V", "path"] == "M.M2.V" and frame.loc["V", "parent_code"] == "M2"
    assert frame.loc["B", "path"] == "M.M2.V.B"
    assert frame.loc["V", "version"] == 2 and frame.loc["B", "version"] == 1
    assert read_grids(conn, under="M2")["code"].tolist() == ["M2", "V", "B"]
    assert read_grids(conn, under="M1")["code"].tolist() == ["M1"]


def test_read_under_a_grid_gives_its_subtree(conn, hierarchy):
    assert read_grids(conn, under="C.01")["code"].tolist() == ["C.01", "C.01.001", "C.01.002"]
    assert read_grids(conn, under="C.01", level=3)["code"].tolist() == ["C.01.001", "C.01.002"]
    assert len(read_grids(conn, under="C")) == 6
    with pytest.raises(NotFound, match="no grid with code 'C.09'"):
        read_grids(conn, under="C.09")


def test_path_prefix_is_not_a_wildcard(conn, store):
    store(1, [("A_1", None, "city", cells(0, 1)), ("AB1", None, "city", cells(1, 2))])
    store(2, [("t", "AB1", "township", cells(1, 2))])

    assert read_grids(conn, under="A_1")["code"].tolist() == ["A_1"]


def test_unknown_parent_is_refused_by_the_store(conn, store, hierarchy):
    prepared = prepare_grids(layer([("C.03", "C", "street", cells(3, 4)),
                                    ("X.01", "X", "township", cells(4, 5))]), 2)

    with pytest.raises(ImportRefused) as caught:
        write_grids(conn, prepared, actor="tester")

    assert caught.value.details == [
        "row 2 (code X.01): unknown parent 'X': no current level-1 grid has this code"]
    assert known_codes(conn, 2) == {"C.01", "C.02"}


def test_code_current_at_another_level_is_refused_by_the_store(conn, hierarchy):
    prepared = prepare_grids(layer([("C.02.002", "C.02", "base", cells(2, 3)),
                                    ("C.01.001", "C.01", "base", cells(0, 1))]), 4)

    with pytest.raises(ImportRefused) as caught:
        write_grids(conn, prepared, actor="tester")

    assert caught.value.details == [
        "row 1 (code C.02.002): unknown parent 'C.02': no current level-3 grid has this code",
        "row 2 (code C.01.001): unknown parent 'C.01': no current level-3 grid has this code",
        "row 2 (code C.01.001): duplicate code: already used by a current level-3 grid"]


def test_codes_by_level(conn, hierarchy):
    assert codes_by_level(conn, except_level=3) == {"C": 1, "C.01": 2, "C.02": 2}
    assert len(codes_by_level(conn)) == 6
    assert known_codes(conn, 3) == {"C.01.001", "C.01.002", "C.02.001"}


def test_grids_in_another_crs_are_refused(conn):
    prepared = prepare_grids(layer([("C", None, "city", cells(0, 1))]), 1, storage_crs=4547)

    with pytest.raises(CRSError, match="EPSG:4490"):
        write_grids(conn, prepared, actor="tester")


def test_empty_database_reads_an_empty_frame(conn):
    frame = read_grids(conn, level=4, code="nothing")

    assert frame.empty and frame.crs.to_epsg() == 4490 and frame.geometry.name == "geom"


def test_many_grids_round_trip(conn):
    n = 3000
    rows = [(f"G{i}", None, "city", box(X0 + i * 1e-4, Y0, X0 + (i + 1) * 1e-4, Y0 + 1e-4))
            for i in range(n)]
    prepared = prepare_grids(layer(rows), 1)

    ids = write_grids(conn, prepared, actor="tester")

    frame = read_grids(conn, level=1).set_index("code").loc[prepared.frame["code"]]
    assert frame["id"].tolist() == ids
    assert shapely.equals_exact(frame.geometry.values, prepared.frame.geometry.values,
                                tolerance=0).all()


def test_a_frame_read_back_can_be_written_as_an_edit(conn, hierarchy):
    """Editing reads grids, changes them, and writes them back through the same store."""
    frame = read_grids(conn, level=3).set_index("code", drop=False)
    frame.loc["C.01.001", "name"] = "改名"
    prepared = PreparedGrids(frame=frame, level=Level.VILLAGE)

    ids = write_grids(conn, prepared, actor="editor", change="edit", reason="rename")

    assert ids == [hierarchy[c] for c in frame["code"]]
    after = read_grids(conn, level=3).set_index("code")
    assert after["version"].to_dict() == {"C.01.001": 2, "C.01.002": 1, "C.02.001": 1}
    assert history(conn, hierarchy["C.01.001"])[-1].reason == "rename"
