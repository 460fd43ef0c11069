"""``gisgrid import grids`` and ``gisgrid export grids`` through the real command.

The commands run against a database of their own (``make_database``), emptied after each test,
because they commit. The city used, in CGCS2000 degrees near Chibi::

    421281 (city, 0.03 x 0.02 degree)
      ├── 421281.01  township: west half, an irregular shape with a hole (a lake)
      └── 421281.02  street:   east half, two pieces (a MultiPolygon)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import geopandas as gpd
import pytest
import shapely
import sqlalchemy as sa
from shapely import box

from gisgrid.db.engine import dispose_engines
from gisgrid.db.grids import read_grids
from gisgrid.grids import snap_grid_geometries
from gisgrid.io import read_layer, write_layer

pytestmark = pytest.mark.db

X0, Y0 = 113.9, 29.7
CITY = box(X0, Y0, X0 + 0.03, Y0 + 0.02)
WEST = shapely.Polygon(
    [(X0, Y0), (X0 + 0.0151234567, Y0), (X0 + 0.0149876543, Y0 + 0.02), (X0, Y0 + 0.02)],
    holes=[[(X0 + 0.004, Y0 + 0.004), (X0 + 0.006, Y0 + 0.004), (X0 + 0.005, Y0 + 0.0061)]])
EAST = shapely.MultiPolygon([
    box(X0 + 0.0151234567, Y0, X0 + 0.03, Y0 + 0.0100000001),
    box(X0 + 0.016, Y0 + 0.011, X0 + 0.03, Y0 + 0.02)])
BOW_TIE = shapely.Polygon([(X0, Y0), (X0 + 0.01, Y0 + 0.01), (X0 + 0.01, Y0), (X0, Y0 + 0.01)])


@pytest.fixture(scope="module")
def cli_url(make_database):
    url = make_database("import_export_cli")
    yield url
    dispose_engines()


@pytest.fixture(scope="module")
def cli_engine(cli_url):
    engine = sa.create_engine(cli_url, poolclass=sa.pool.NullPool)
    yield engine
    engine.dispose()


@pytest.fixture
def gisgrid(cli_url, cli_engine, gisgrid_on, capsys):
    """Run ``gisgrid ARGS...`` in-process against the test database; returns (status, out, err).

    The database is emptied after the test.
    """
    capsys.readouterr()
    yield gisgrid_on(cli_url)
    with cli_engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE grid, grid_history RESTART IDENTITY CASCADE"))


def stored(engine, **filters):
    with engine.connect() as conn:
        return read_grids(conn, **filters)


def history_rows(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM grid_history")).scalar_one()


def feature(props, geometry):
    geo = None if geometry is None else shapely.geometry.mapping(geometry)
    return {"type": "Feature", "properties": props, "geometry": geo}


def write_geojson(path, features, *, crs="EPSG:4490"):
    """A GeoJSON file written by hand, as other tools write them (legacy ``crs`` member)."""
    doc = {"type": "FeatureCollection", "features": features}
    if crs:
        doc["crs"] = {"type": "name", "properties": {"name": crs}}
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return path


def city_layer(crs=4490):
    layer = gpd.GeoDataFrame(
        {"code": ["421281"], "name": ["赤壁市"], "org": ["市安委会"]}, geometry=[CITY], crs=4490)
    return layer.to_crs(crs)


def township_layer(crs=4490):
    layer = gpd.GeoDataFrame(
        {"code": ["421281.01", "421281.02"], "name": ["赤马港街道", "陆水湖街道"],
         "kind": ["township", "street"], "parent_code": ["421281", "421281"],
         "org": ["赤马港安监站", None]},
        geometry=[WEST, EAST], crs=4490)
    return layer.to_crs(crs)


@pytest.fixture
def city(gisgrid, tmp_path):
    """The city and its two townships imported; returns the stored frame."""
    for level, layer in [(1, city_layer()), (2, township_layer())]:
        path = write_layer(layer, tmp_path / f"level{level}.gpkg")
        status, out, err = gisgrid("import", "grids", path, "--level", level)
        assert status == 0, err
    return path


# --- refusals ---------------------------------------------------------------------------------

def defective_villages(path):
    """Level-3 file with one good feature and a bad one of each kind; rows counted from 1."""
    good = box(X0 + 0.001, Y0 + 0.001, X0 + 0.002, Y0 + 0.002)
    return write_geojson(path, [
        feature({"code": "421281.01.001", "parent_code": "421281.01"}, good),          # 1 ok
        feature({"code": None, "parent_code": "421281.01"}, good),                     # 2
        feature({"code": "421281.01.003", "parent_code": "421281.01"}, good),          # 3
        feature({"code": "421281.01.003", "parent_code": "421281.01"}, good),          # 4
        feature({"code": "421281.09.005", "parent_code": "421281.09"}, good),          # 5
        feature({"code": "421281.01.006", "parent_code": "421281.01"},
                shapely.Point(X0 + 0.001, Y0 + 0.001)),                                # 6
        feature({"code": "421281.01.007", "parent_code": "421281.01"},
                shapely.Polygon()),                                                     # 7
        feature({"code": "421281.01.008", "parent_code": "421281.01"},
                box(12_680_000, 3_460_000, 12_681_000, 3_461_000)),                    # 8
        feature({"code": "421281.01.009", "parent_code": "421281.01"}, BOW_TIE),       # 9
    ])


EXPECTED_DEFECTS = [
    "row 2 (no code): missing code",
    "row 3 (code 421281.01.003): duplicate code (also in row 4)",
    "row 4 (code 421281.01.003): duplicate code (also in row 3)",
    "row 5 (code 421281.09.005): unknown parent '421281.09'",
    "row 6 (code 421281.01.006): not a polygon (got a Point)",
    "row 7 (code 421281.01.007): empty geometry",
    "row 8 (code 421281.01.008): coordinates out of range for EPSG:4490",
    "row 9 (code 421281.01.009): invalid geometry: Self-intersection",
]


def assert_every_defect_named(err):
    assert "import refused, nothing was written: 8 of 9 features are bad" in err
    lines = [line.strip()[2:] for line in err.splitlines() if line.strip().startswith("- ")]
    assert len(lines) == len(EXPECTED_DEFECTS), err
    for line, start in zip(lines, EXPECTED_DEFECTS):
        assert line.startswith(start), (line, start)
    assert "row 1 " not in err


def test_file_with_many_defects_writes_nothing_and_names_them_all(gisgrid, city, cli_engine,
                                                                  tmp_path):
    before = history_rows(cli_engine)
    path = defective_villages(tmp_path / "villages.geojson")

    status, out, err = gisgrid("import", "grids", path, "--level", 3)

    assert status == 2
    assert_every_defect_named(err)
    assert stored(cli_engine, level=3).empty  # not even the good feature
    assert history_rows(cli_engine) == before


def test_console_script_refuses_with_status_2(gisgrid, city, cli_url, cli_engine, tmp_path):
    path = defective_villages(tmp_path / "villages.geojson")
    env = {**os.environ, "GISGRID_DATABASE_URL": cli_url, "GISGRID_HOME": str(tmp_path / "h")}

    done = subprocess.run([sys.executable, "-m", "gisgrid", "import", "grids", str(path),
                           "--level", "3"], capture_output=True, text=True, env=env, timeout=120)

    assert done.returncode == 2, done.stderr
    assert_every_defect_named(done.stderr)
    assert stored(cli_engine, level=3).empty


def test_file_without_crs_is_refused(gisgrid, cli_engine, tmp_path):
    path = write_layer(city_layer(), tmp_path / "city.shp")
    path.with_suffix(".prj").unlink()

    status, out, err = gisgrid("import", "grids", path, "--level", 1)

    assert status == 2
    assert "layer: the layer has no coordinate reference system" in err
    assert stored(cli_engine).empty


def test_code_used_at_another_level_is_refused(gisgrid, city, cli_engine, tmp_path):
    path = write_geojson(tmp_path / "v.geojson", [
        feature({"code": "421281.01", "parent_code": "421281.01"}, CITY)])

    status, out, err = gisgrid("import", "grids", path, "--level", 3)

    assert status == 2
    assert ("row 1 (code 421281.01): duplicate code: already used by a current level-2 grid"
            in err)


def test_missing_file_and_bad_level_are_refused(gisgrid, tmp_path):
    status, out, err = gisgrid("import", "grids", tmp_path / "none.gpkg", "--level", 1)
    assert status == 2 and "no such file" in err

    status, out, err = gisgrid("import", "grids", tmp_path / "none.gpkg", "--level", 5)
    assert status == 2 and "--level" in err


def test_a_layer_without_features_is_refused(gisgrid, tmp_path):
    path = write_geojson(tmp_path / "empty.geojson", [])
    status, out, err = gisgrid("import", "grids", path, "--level", 1)
    assert status == 2 and "the layer has no features, nothing to import" in err


# --- repair -----------------------------------------------------------------------------------

def test_bow_tie_is_refused_without_repair_and_repaired_with_it(gisgrid, cli_engine, tmp_path):
    path = write_geojson(tmp_path / "bowtie.geojson", [
        feature({"code": "421281", "name": "赤壁市"}, BOW_TIE)])

    status, out, err = gisgrid("import", "grids", path, "--level", 1)
    assert status == 2
    assert "row 1 (code 421281): invalid geometry: Self-intersection" in err
    assert "--repair" in err
    assert stored(cli_engine).empty

    status, out, err = gisgrid("import", "grids", path, "--level", 1, "--repair")
    assert status == 0, err
    assert "repaired 1 invalid geometry:" in out
    assert "row 1 (code 421281): repaired Self-intersection[113.905 29.705]" in out
    geom = stored(cli_engine, code="421281").geometry.iloc[0]
    assert geom.is_valid and len(geom.geoms) == 2
    assert geom.area == pytest.approx(BOW_TIE.envelope.area / 2, rel=1e-6)


# --- reprojection -----------------------------------------------------------------------------

@pytest.mark.parametrize("epsg", [4547, 3857])
def test_projected_input_is_stored_in_4490_at_the_same_place(gisgrid, cli_engine, tmp_path,
                                                              epsg):
    path = write_layer(city_layer(crs=epsg), tmp_path / "city.gpkg")

    status, out, err = gisgrid("import", "grids", path, "--level", 1)

    assert status == 0, err
    frame = stored(cli_engine)
    assert frame.crs.to_epsg() == 4490
    expected = snap_grid_geometries([CITY], 4490)[0]
    assert shapely.hausdorff_distance(frame.geometry.iloc[0], expected) < 2e-7
    assert frame["area_m2"].iloc[0] == pytest.approx(
        gpd.GeoSeries([CITY], crs=4490).to_crs(4547).area.iloc[0], rel=1e-6)


# --- round trip -------------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", ["geojson", "gpkg", "shp", "parquet"])
def test_export_then_import_gives_back_the_same_grids(gisgrid, city, cli_engine, tmp_path,
                                                      suffix):
    before = stored(cli_engine)
    files = {}
    for level in (1, 2):
        files[level] = tmp_path / f"export{level}.{suffix}"
        status, out, err = gisgrid("export", "grids", "--level", level, "-o", files[level])
        assert status == 0, err
        assert f"exported {1 if level == 1 else 2} grids" in out
    with cli_engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE grid, grid_history RESTART IDENTITY CASCADE"))

    for level in (1, 2):
        status, out, err = gisgrid("import", "grids", files[level], "--level", level)
        assert status == 0, err

    after = stored(cli_engine)
    columns = ["code", "name", "level", "kind", "parent_code", "org", "path", "version"]
    assert after[columns].values.tolist() == before[columns].values.tolist()
    assert shapely.equals_exact(after.geometry.values, before.geometry.values,
                                tolerance=0).all()


def test_importing_an_export_again_makes_no_new_version(gisgrid, city, cli_engine, tmp_path):
    path = tmp_path / "townships.shp"
    assert gisgrid("export", "grids", "--level", 2, "-o", path)[0] == 0
    history_before = history_rows(cli_engine)

    status, out, err = gisgrid("import", "grids", path, "--level", 2)

    assert status == 0, err
    assert "imported 2 level-2 grids" in out and "(0 new, 2 already stored" in out
    assert (stored(cli_engine, level=2)["version"] == 1).all()
    assert history_rows(cli_engine) == history_before


def test_changed_file_makes_new_versions(gisgrid, city, cli_engine, tmp_path):
    moved = township_layer()
    moved.loc[1, "name"] = "陆水湖街道办事处"
    path = write_layer(moved, tmp_path / "townships.geojson")

    status, out, err = gisgrid("import", "grids", path, "--level", 2, "--reason", "renamed")

    assert status == 0, err
    frame = stored(cli_engine, level=2).set_index("code")
    assert frame["version"].to_dict() == {"421281.01": 1, "421281.02": 2}
    assert frame.loc["421281.02", "name"] == "陆水湖街道办事处"


def test_export_one_subtree(gisgrid, city, tmp_path):
    path = tmp_path / "west.geojson"

    status, out, err = gisgrid("export", "grids", "--code", "421281.01", "-o", path)

    assert status == 0, err
    assert read_layer(path)["code"].tolist() == ["421281.01"]
    status, out, err = gisgrid("export", "grids", "--code", "nope", "-o", path)
    assert status == 2 and "no grid with code 'nope'" in err
    status, out, err = gisgrid("export", "grids", "-o", tmp_path / "grids.kml")
    assert status == 2 and ".kml" in err


# --- progress ---------------------------------------------------------------------------------

def test_large_file_shows_progress_on_stderr(gisgrid, cli_engine, tmp_path):
    n = 1200
    layer = gpd.GeoDataFrame(
        {"code": [f"C{i}" for i in range(n)]},
        geometry=[box(X0 + i * 1e-4, Y0, X0 + (i + 1) * 1e-4, Y0 + 1e-4) for i in range(n)],
        crs=4490)
    path = write_layer(layer, tmp_path / "many.gpkg")

    status, out, err = gisgrid("import", "grids", path, "--level", 1)

    assert status == 0, err
    assert "preparing grids" in err and "writing grids" in err
    assert f"imported {n} level-1 grids" in out
    assert len(stored(cli_engine, level=1)) == n


def test_the_grid_history_records_gisgrid_actor(gisgrid, cli_engine, tmp_path, monkeypatch):
    monkeypatch.setenv("GISGRID_ACTOR", "规划员甲")
    path = write_geojson(tmp_path / "city.geojson", [
        feature({"code": "421281", "name": "赤壁市"}, CITY)])
    status, _, err = gisgrid("import", "grids", path, "--level", 1)
    assert status == 0, err
    with cli_engine.connect() as conn:
        actors = conn.execute(sa.text("SELECT DISTINCT actor FROM grid_history")).scalars().all()
    assert actors == ["规划员甲"]
