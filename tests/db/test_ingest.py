"""Bulk GPS ingest into a real PostGIS: chain assignment, outside points, all-or-nothing."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest
import sqlalchemy as sa
from tests.db.conftest import OUTSIDE, write_field_tree

from gisgrid.cli import main
from gisgrid.db import migrate
from gisgrid.db.points import count_points
from gisgrid.errors import InputError
from gisgrid.ingest import ingest_points

pytestmark = pytest.mark.db


def write_dated_tree(conn) -> dict[str, int]:
    """The field tree, its first versions dated back to 2000 (the files below are of 2024,
    and a point is assigned with the grids of its own time)."""
    ids = write_field_tree(conn)
    for table in ("grid", "grid_history"):
        conn.execute(sa.text(f"UPDATE {table} SET valid_from = '2000-01-01Z' "
                             "WHERE version = 1"))
    return ids


def add_people(conn, n: int = 2) -> list[int]:
    return [conn.execute(sa.text(
        "INSERT INTO person (name, kind) VALUES (:n, 'grid_worker') RETURNING id"),
        {"n": f"网格员 {i}"}).scalar_one() for i in range(n)]


def gps_frame(workers: list[int]) -> pd.DataFrame:
    """One fix in each base grid, one on the FV-1 / FV-2 edge, one outside every grid."""
    w1, w2 = workers
    return pd.DataFrame({
        "worker": [w1, w1, w2, w2, w1],
        "time": ["2024-05-01T08:00:00+08:00", "2024-05-01 08:00:01", "2024-05-01T00:00:02Z",
                 "2024-05-01T08:00:03.5", "2024-05-01 09:00:00"],
        "lon": [114.505, 114.515, 114.525, 114.51, OUTSIDE[0]],
        "lat": [30.51, 30.51, 30.51, 30.51, OUTSIDE[1]],
        "accuracy": [5.0, None, 3.5, 12.0, 8.0],
    })


def write_file(frame: pd.DataFrame, path, kind: str):
    if kind == "csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return path


def stored(conn) -> pd.DataFrame:
    rows = conn.execute(sa.text("""
        SELECT person_id, recorded_at, accuracy_m, ST_X(geom) AS x, ST_Y(geom) AS y,
               ST_SRID(geom) AS srid, base_grid_id, village_grid_id, township_grid_id,
               city_grid_id, outside_grids
        FROM gps_point ORDER BY recorded_at""")).mappings().all()
    return pd.DataFrame(rows)


@pytest.mark.parametrize(("kind", "chunk_size"), [("csv", 250_000), ("csv", 2),
                                                  ("parquet", 2)])
def test_points_get_their_chain_and_outside_points_are_kept(conn, tmp_path, kind, chunk_size):
    ids = write_dated_tree(conn)
    workers = add_people(conn)
    path = write_file(gps_frame(workers), tmp_path / f"gps.{kind}", kind)

    summary = ingest_points(conn, path, chunk_size=chunk_size)

    assert (summary.rows, summary.outside) == (5, 1)
    got = stored(conn)
    assert got["base_grid_id"].tolist()[:4] == [ids["FV-1"], ids["FV-2"], ids["FK-1"],
                                                min(ids["FV-1"], ids["FV-2"])]
    assert got["village_grid_id"].tolist()[:3] == [ids["FV"], ids["FV"], ids["FK"]]
    assert set(got["township_grid_id"][:4]) == {ids["FT"]}
    assert set(got["city_grid_id"][:4]) == {ids["FC"]}
    outside = got.iloc[4]
    assert bool(outside["outside_grids"]) and pd.isna(outside["base_grid_id"])
    assert pd.isna(outside["city_grid_id"])
    assert not got["outside_grids"][:4].any()
    assert got["recorded_at"].tolist()[:3] == [
        datetime(2024, 5, 1, 0, 0, s, tzinfo=timezone.utc) for s in range(3)]
    assert got["recorded_at"][3] == datetime(2024, 5, 1, 0, 0, 3, 500_000, tzinfo=timezone.utc)
    assert pd.isna(got["accuracy_m"][1]) and got["accuracy_m"][2] == pytest.approx(3.5)
    assert got["x"].tolist()[:2] == [114.505, 114.515] and set(got["srid"]) == {4490}
    assert got["person_id"].tolist()[:3] == [workers[0], workers[0], workers[1]]


def test_worker_may_be_a_phone_number(conn, tmp_path):
    write_dated_tree(conn)
    workers = add_people(conn)
    conn.execute(sa.text("UPDATE person SET phone = '138-0013-8000' WHERE id = :id"),
                 {"id": workers[1]})
    frame = gps_frame(workers)
    frame["worker"] = [workers[0], 13800138000, 13800138000, workers[0], workers[0]]
    ingest_points(conn, write_file(frame, tmp_path / "gps.csv", "csv"))
    got = stored(conn)
    assert got["person_id"].tolist() == [workers[0], workers[1], workers[1], workers[0],
                                         workers[0]]


def test_rebuilding_indexes_keeps_them(conn, tmp_path):
    def indexes():
        return sorted(conn.execute(sa.text(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'gps_point'")).scalars())

    before = indexes()
    ids = write_dated_tree(conn)
    path = write_file(gps_frame(add_people(conn)), tmp_path / "gps.csv", "csv")
    summary = ingest_points(conn, path, rebuild_indexes=True)
    assert summary.rows == 5 and indexes() == before and len(before) >= 3
    hits = conn.execute(sa.text("""SELECT count(*) FROM gps_point p JOIN grid g
        ON ST_Contains(g.geom, p.geom) WHERE g.id = :id"""), {"id": ids["FK-1"]}).scalar_one()
    assert hits == 1


def test_a_bad_file_stores_nothing_and_names_every_problem(conn, tmp_path):
    write_dated_tree(conn)
    workers = add_people(conn)
    frame = gps_frame(workers)
    frame.loc[1, "lat"] = 95.0
    frame.loc[2, "worker"] = 999_999
    frame.loc[4, "time"] = "yesterday"
    path = write_file(frame, tmp_path / "bad.csv", "csv")
    with pytest.raises(InputError) as info:
        with conn.begin_nested():
            ingest_points(conn, path, chunk_size=2)
    assert info.value.details == [
        "line 3: lat: 95.0 is outside -90..90",
        "line 4: worker: no person with id or phone 999999",
        "line 6: time: 'yesterday' is not an ISO 8601 date-time",
    ]
    assert count_points(conn) == 0


def test_missing_column_unreadable_or_absent_file_is_refused(conn, tmp_path):
    path = write_file(gps_frame([1, 2]).drop(columns=["lat"]), tmp_path / "nolat.parquet",
                      "parquet")
    with pytest.raises(InputError, match="lat"), conn.begin_nested():
        ingest_points(conn, path)
    (tmp_path / "junk.parquet").write_text("worker,time\n")
    with pytest.raises(InputError, match="not a readable Parquet file"):
        ingest_points(conn, tmp_path / "junk.parquet")
    with pytest.raises(InputError, match="no such file"):
        ingest_points(conn, tmp_path / "absent.csv")


def test_cli_commits_the_file_and_exits_2_on_bad_input(make_database, tmp_path, monkeypatch,
                                                       capsys):
    url = make_database("ingest_cli")
    migrate.upgrade(url)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as c:
        write_dated_tree(c)
        workers = add_people(c)
    monkeypatch.setenv("GISGRID_DATABASE_URL", url)
    monkeypatch.setenv("GISGRID_HOME", str(tmp_path / "home"))
    good = write_file(gps_frame(workers), tmp_path / "gps.csv", "csv")

    assert main(["ingest", "points", str(good), "--chunk-size", "2"]) == 0
    assert "stored 5 points from gps.csv (1 outside every grid)" in capsys.readouterr().out

    bad = gps_frame(workers).astype({"lon": object})
    bad.loc[0, "lon"] = "east"
    assert main(["ingest", "points", str(write_file(bad, tmp_path / "bad.csv", "csv"))]) == 2
    err = capsys.readouterr().err
    assert "line 2: lon: 'east' is not a number" in err
    with engine.connect() as c:
        assert count_points(c) == 5  # the bad file added nothing
    engine.dispose()


# ------------------------------------------------------------------ monthly partitions
def partition_facts(conn) -> dict[str, dict]:
    """Each partition of gps_point: its bounds, row count and index kinds."""
    rows = conn.execute(sa.text("""
        SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) AS bounds,
               (SELECT array_agg(am.amname || CASE WHEN x.indisprimary THEN '(pk)' ELSE '' END
                                 ORDER BY am.amname, x.indisprimary)
                FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
                JOIN pg_am am ON am.oid = i.relam WHERE x.indrelid = c.oid) AS indexes
        FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid
        WHERE h.inhparent = 'gps_point'::regclass ORDER BY c.relname""")).mappings().all()
    return {r["relname"]: {
        "bounds": r["bounds"], "indexes": r["indexes"],
        "rows": conn.execute(sa.text(f'SELECT count(*) FROM "{r["relname"]}"')).scalar_one()}
        for r in rows}


def month_frame(workers: list[int], times: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"worker": workers[0], "time": times, "lon": 114.505, "lat": 30.51,
                         "accuracy": 4.0})


ALL_INDEXES = ["btree", "btree", "btree(pk)", "gist"]  # base grid+time, patrol, key, geom


def test_a_load_spanning_two_months_creates_both_partitions(conn, tmp_path):
    write_dated_tree(conn)
    workers = add_people(conn)
    # China Standard Time months: 2024-05-31 23:59 (+08) is May, 2024-05-31T16:00Z is June.
    frame = month_frame(workers, ["2024-05-31 23:59:59", "2024-06-01 00:00:00",
                                  "2024-05-01T00:00:00+08:00", "2024-05-31T16:00:00Z",
                                  "2024-06-30 12:00:00"])
    summary = ingest_points(conn, write_file(frame, tmp_path / "gps.csv", "csv"), chunk_size=2)

    assert summary.rows == 5
    facts = partition_facts(conn)
    assert list(facts) == ["gps_point_y2024m05", "gps_point_y2024m06"]
    assert [f["rows"] for f in facts.values()] == [2, 3]
    assert "'2024-04-30 16:00:00+00') TO ('2024-05-31 16:00:00+00')" in \
        facts["gps_point_y2024m05"]["bounds"]
    assert all(f["indexes"] == ALL_INDEXES for f in facts.values())
    ids = conn.execute(sa.text("SELECT id FROM gps_point")).scalars().all()
    assert len(set(ids)) == 5
    # the identity sequence moved past the block the load took
    new_id = conn.execute(sa.text("""INSERT INTO gps_point (recorded_at, geom)
        VALUES ('2024-06-02Z', ST_SetSRID(ST_MakePoint(114.505, 30.51), 4490))
        RETURNING id""")).scalar_one()
    assert new_id > max(ids)


@pytest.mark.parametrize("rebuild", [False, True])
def test_a_second_load_into_a_month_adds_to_its_partition(conn, tmp_path, rebuild):
    write_dated_tree(conn)
    workers = add_people(conn)
    first = month_frame(workers, ["2024-05-02 08:00:00", "2024-05-03 08:00:00"])
    ingest_points(conn, write_file(first, tmp_path / "a.csv", "csv"))
    second = month_frame(workers, ["2024-05-04 08:00:00", "2024-07-01 08:00:00"])
    ingest_points(conn, write_file(second, tmp_path / "b.parquet", "parquet"),
                  rebuild_indexes=rebuild)

    facts = partition_facts(conn)
    assert {name: f["rows"] for name, f in facts.items()} == {
        "gps_point_y2024m05": 3, "gps_point_y2024m07": 1}
    assert all(f["indexes"] == ALL_INDEXES for f in facts.values())
    assert len(set(conn.execute(sa.text("SELECT id FROM gps_point")).scalars())) == 4
    hits = conn.execute(sa.text("""SELECT count(*) FROM gps_point
        WHERE geom && ST_MakeEnvelope(114.50, 30.50, 114.51, 30.52, 4490)
          AND recorded_at < '2024-06-01'""")).scalar_one()
    assert hits == 3


def test_a_bad_file_creates_no_partition(conn, tmp_path):
    write_dated_tree(conn)
    workers = add_people(conn)
    frame = month_frame(workers, ["2024-08-01 08:00:00"] * 3 + ["never"])
    with pytest.raises(InputError, match="1 bad value"):
        with conn.begin_nested():
            ingest_points(conn, write_file(frame, tmp_path / "bad.csv", "csv"), chunk_size=1)
    assert partition_facts(conn) == {}


def test_an_emptied_partition_is_loaded_afresh(conn, tmp_path):
    write_dated_tree(conn)
    workers = add_people(conn)
    first = month_frame(workers, ["2024-09-02 08:00:00", "2024-09-03 08:00:00"])
    ingest_points(conn, write_file(first, tmp_path / "a.csv", "csv"))
    conn.execute(sa.text("DELETE FROM gps_point"))
    again = month_frame(workers, ["2024-09-04 08:00:00"])
    ingest_points(conn, write_file(again, tmp_path / "b.csv", "csv"))  # truncated, FREEZE
    facts = partition_facts(conn)
    assert {n: (f["rows"], f["indexes"]) for n, f in facts.items()} == {
        "gps_point_y2024m09": (1, ALL_INDEXES)}


# ------------------------------------------------------------------ grid versions in time
def redraw_fv_border(conn, east_edge_of_fv1: float) -> None:
    """A new version of FV-1 and FV-2 with their shared border moved to ``east_edge_of_fv1``."""
    import geopandas as gpd
    import shapely

    from gisgrid.db.engine import storage_srid
    from gisgrid.db.grids import write_grids
    from gisgrid.grids import prepare_grids

    layer = gpd.GeoDataFrame(
        {"code": ["FV-1", "FV-2"], "name": ["FV-1 网格", "FV-2 网格"], "kind": ["base"] * 2,
         "parent_code": ["FV", "FV"]},
        geometry=[shapely.box(114.50, 30.50, east_edge_of_fv1, 30.52),
                  shapely.box(east_edge_of_fv1, 30.50, 114.52, 30.52)], crs=4490)
    write_grids(conn, prepare_grids(layer, 4, storage_crs=storage_srid(conn)),
                actor="tests", change="edit")


@pytest.mark.parametrize("chunk_size", [1, 100])
def test_each_point_gets_the_grid_version_valid_at_its_time(conn, tmp_path, chunk_size):
    ids = write_field_tree(conn)  # versions from now on (clock time)
    workers = add_people(conn)
    here = {"worker": workers[0], "lon": 114.5125, "lat": 30.51, "accuracy": 3.0}
    t1 = conn.execute(sa.text("SELECT clock_timestamp()")).scalar_one()
    ingest_points(conn, write_file(pd.DataFrame([{**here, "time": t1.isoformat()}]),
                                   tmp_path / "t1.csv", "csv"))
    redraw_fv_border(conn, 114.515)  # (114.5125, 30.51) moves from FV-2 into FV-1
    changed = conn.execute(sa.text("SELECT valid_to FROM grid_history WHERE grid_id = :id "
                                   "AND version = 1"), {"id": ids["FV-2"]}).scalar_one()
    assert changed is not None and changed > t1

    t0 = t1 + (changed - t1) / 2
    t2 = changed + timedelta(seconds=1)
    before = t1 - timedelta(days=1)  # no grid existed yet
    # a new month's table (COPY FREEZE) before and after reading a past state mid-load
    far = [before - timedelta(days=40), before - timedelta(days=41)]
    times = [far[0], t0, far[1], t2, before, changed, t2 + timedelta(hours=1)]
    frame = pd.DataFrame([{**here, "time": t.isoformat()} for t in times])
    summary = ingest_points(conn, write_file(frame, tmp_path / "mixed.csv", "csv"),
                            chunk_size=chunk_size)

    assert (summary.rows, summary.outside) == (7, 3)
    got = stored(conn).set_index("recorded_at")
    assert got.loc[t1, "base_grid_id"] == ids["FV-2"]  # stored before the change, kept
    assert got.loc[t0, "base_grid_id"] == ids["FV-2"]  # old version, ingested after it
    assert got.loc[changed, "base_grid_id"] == ids["FV-1"]  # valid_to is exclusive
    assert got.loc[t2, "base_grid_id"] == ids["FV-1"]
    assert got.loc[t2 + timedelta(hours=1), "base_grid_id"] == ids["FV-1"]
    assert set(got.loc[[t0, t2], "village_grid_id"]) == {ids["FV"]}
    assert set(got.loc[[t0, t2], "city_grid_id"]) == {ids["FC"]}
    assert bool(got.loc[before, "outside_grids"]) and pd.isna(got.loc[before, "base_grid_id"])
    assert got.loc[far, "outside_grids"].all()


def test_grids_without_history_hold_for_every_time(conn, tmp_path):
    ids = write_field_tree(conn)
    conn.execute(sa.text("DELETE FROM grid_history"))  # as if inserted outside the store
    frame = month_frame(add_people(conn), ["1999-05-02 08:00:00"])
    assert ingest_points(conn, write_file(frame, tmp_path / "old.csv", "csv")).outside == 0
    assert stored(conn)["base_grid_id"].tolist() == [ids["FV-1"]]
