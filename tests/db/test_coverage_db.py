"""Coverage validation of the stored hierarchy: runs, findings, accepted exceptions, repair --apply.

The hierarchy (EPSG:4490 near Chibi): city C = one 0.03 x 0.03 degree square, township C.01 =
the same square, village C.01.001 = the same square, and ~40 base grids (Voronoi cells) each
digitised with noise and quantised, so they overlap and leave gaps.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
import sqlalchemy as sa

from gisgrid.db.findings import accept_finding, repair_stored, validate_stored
from gisgrid.db.grids import read_grids, write_grids
from gisgrid.grids import prepare_grids
from tests.unit.coverage_fixtures import jitter, quantise

pytestmark = pytest.mark.db

X0, Y0, S = 113.9, 29.7, 0.03
SQUARE = shapely.box(X0, Y0, X0 + S, Y0 + S)


def frame(codes, parents, geoms):
    return gpd.GeoDataFrame({"code": codes, "parent_code": parents,
                             "name": [f"网格 {c}" for c in codes]}, geometry=list(geoms), crs=4490)


def write_messy_hierarchy(conn) -> list[str]:
    """Write the messy hierarchy through the grid store; returns the base grid codes."""
    rng = np.random.default_rng(4)
    pts = shapely.multipoints(rng.uniform((X0, Y0), (X0 + S, Y0 + S), (40, 2)))
    cells = shapely.intersection(
        shapely.get_parts(shapely.voronoi_polygons(pts, extend_to=SQUARE)), SQUARE)
    cells = quantise(jitter(cells, 3e-5, 1), 2e-5)
    codes = [f"C.01.001.{i:03d}" for i in range(len(cells))]
    for level, layer in [(1, frame(["C"], [None], [SQUARE])),
                         (2, frame(["C.01"], ["C"], [SQUARE])),
                         (3, frame(["C.01.001"], ["C.01"], [SQUARE])),
                         (4, frame(codes, ["C.01.001"] * len(codes), cells))]:
        write_grids(conn, prepare_grids(layer, level, repair=True), actor="tester")
    return codes


@pytest.fixture
def stored(conn):
    """The messy hierarchy inside the test's rolled-back transaction; the base grid codes."""
    return write_messy_hierarchy(conn)


def test_validate_stores_run_and_findings(conn, stored):
    run_id, report = validate_stored(conn, actor="tester")
    assert not report.valid
    summary = report.summary()
    assert summary["overlaps"]["count"] > 0 and summary["gaps"]["count"] > 0
    rows = conn.execute(sa.text(
        "SELECT kind, count(*) FROM finding WHERE run_id = :r GROUP BY kind"), {"r": run_id}).all()
    assert dict(rows)["overlap"] == summary["overlaps"]["count"]
    stored_summary = conn.execute(sa.text(
        "SELECT summary FROM validation_run WHERE id = :r"), {"r": run_id}).scalar_one()
    assert stored_summary == summary
    srid = conn.execute(sa.text(
        "SELECT DISTINCT ST_SRID(geom) FROM finding WHERE run_id = :r AND geom IS NOT NULL"),
        {"r": run_id}).scalars().all()
    assert srid == [4490]


def test_accepted_finding_set_apart_until_a_grid_changes(conn, stored):
    _, report = validate_stored(conn)
    gap = report.by_kind("gap")[0]
    accept_finding(conn, gap.id, reason="river bed, no grid needed", reviewer="auditor")
    _, again = validate_stored(conn)
    (same,) = [f for f in again.findings if f.fingerprint == gap.fingerprint]
    assert same.accepted and again.summary()["accepted"] == 1
    assert again.summary()["gaps"]["count"] == report.summary()["gaps"]["count"] - 1
    # edit one grid the gap involves: the exception no longer applies
    code = gap.codes[0]
    grids = read_grids(conn, level=4)
    edited = grids[grids["code"] == code].copy()
    edited[edited.geometry.name] = edited.geometry.buffer(0.0)
    edited[edited.geometry.name] = edited.geometry.scale(0.999, 0.999)
    write_grids(conn, prepare_grids(edited[["code", "parent_code", "name", edited.geometry.name]],
                                    4), actor="tester", change="edit")
    _, after = validate_stored(conn)
    assert after.summary()["accepted"] == 0


def test_repair_apply_then_validate_is_clean(conn, stored):
    proposals = repair_stored(conn, apply=True, actor="tester")
    assert proposals[4].summary()["changed"] > 0
    history = conn.execute(sa.text(
        "SELECT count(*) FROM grid_history WHERE change = 'repair'")).scalar_one()
    assert history > 0
    _, report = validate_stored(conn)
    assert report.valid, report.to_text("en")


def test_repair_apply_versions_only_the_grids_it_changes(conn):
    """The demo city (two injected defects among 1,500 base grids) repaired in the store: the
    few grids around the defects get a new version, every other grid keeps its version, and the
    stored hierarchy validates clean."""
    from gisgrid.demo.city import build_demo_city
    from gisgrid.demo.run import load_city

    load_city(conn, build_demo_city())
    proposals = repair_stored(conn, apply=True, actor="test")
    changed = {c.code for p in proposals.values() for c in p.changed}
    assert 0 < len(changed) < 20
    repaired = set(conn.execute(sa.text(
        "SELECT code FROM grid_history WHERE change = 'repair'")).scalars())
    assert repaired == changed
    assert conn.execute(sa.text(
        "SELECT count(*) FROM grid WHERE version > 1")).scalar_one() == len(changed)
    _, report = validate_stored(conn, actor="test")
    assert report.summary()["valid"], report.summary()
