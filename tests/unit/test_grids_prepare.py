"""Checking and preparing imported grids (gisgrid.grids.prepare_grids), without a database."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely import box

from gisgrid.errors import ImportRefused, InputError
from gisgrid.grids import prepare_grids, snap_grid_geometries
from gisgrid.precision import GEOGRAPHIC_GRID_SIZE

# A catalogue of test geometries, in CGCS2000 degrees near Chibi (113.9E, 29.7N).
X0, Y0, D = 113.9, 29.7, 0.01
SQUARE = box(X0, Y0, X0 + D, Y0 + D)
BOW_TIE = shapely.Polygon([(X0, Y0), (X0 + D, Y0 + D), (X0 + D, Y0), (X0, Y0 + D)])
POINT = shapely.Point(X0, Y0)
LINE = shapely.LineString([(X0, Y0), (X0 + D, Y0)])
EMPTY = shapely.Polygon()
FAR_AWAY = box(X0 * 1e5, Y0 * 1e5, X0 * 1e5 + 1, Y0 * 1e5 + 1)  # metres mistaken for degrees


def square(i: int, j: int = 0):
    """The ``i``-th square east and ``j``-th north of (X0, Y0), side D degrees."""
    return box(X0 + i * D, Y0 + j * D, X0 + (i + 1) * D, Y0 + (j + 1) * D)


def make_layer(rows, crs=4490, **columns):
    """A layer from ``rows`` of (code, parent_code, geometry); extra columns as keywords."""
    codes, parents, geoms = zip(*rows) if rows else ((), (), ())
    data = {"code": list(codes), "parent_code": list(parents), **columns}
    return gpd.GeoDataFrame(data, geometry=list(geoms), crs=crs)


def test_clean_layer_is_prepared_in_storage_form():
    layer = make_layer([("A1", "P", square(0)), ("A2", "P", square(1))],
                       name=["甲", None], kind=["street", "township"], org=["安监站", None])

    prepared = prepare_grids(layer, 2, known_parent_codes={"P"})

    frame = prepared.frame
    assert list(frame.columns) == ["code", "name", "level", "kind", "parent_code", "org", "geom"]
    assert frame.geometry.name == "geom"
    assert frame.crs.to_epsg() == 4490 and prepared.srid == 4490
    assert frame["code"].tolist() == ["A1", "A2"]
    assert frame["name"].tolist() == ["甲", "A2"]  # missing name falls back to the code
    assert frame["kind"].tolist() == ["street", "township"]
    assert frame["parent_code"].tolist() == ["P", "P"]
    assert frame["org"].tolist() == ["安监站", None]
    assert (frame["level"] == 2).all()
    assert (frame.geometry.geom_type == "MultiPolygon").all()
    assert frame.geometry.is_valid.all()
    assert prepared.repairs == ()
    assert len(prepared) == 2


def test_coordinates_are_snapped_to_the_storage_precision():
    wobbly = shapely.affinity.translate(square(0), 3.3e-9, -4.1e-9)

    geom = prepare_grids(make_layer([("A", None, wobbly)]), 1).frame.geometry.iloc[0]

    coords = shapely.get_coordinates(geom)
    np.testing.assert_allclose(coords / GEOGRAPHIC_GRID_SIZE,
                               np.round(coords / GEOGRAPHIC_GRID_SIZE), atol=1e-6)
    assert shapely.equals_exact(geom, snap_grid_geometries([square(0)], 4490)[0], tolerance=0)


def test_preparing_twice_changes_nothing():
    layer = make_layer([("A", None, square(0)), ("B", None, shapely.MultiPolygon([square(2)]))])
    once = prepare_grids(layer, 1).frame

    twice = prepare_grids(once, 1).frame

    assert shapely.equals_exact(once.geometry.values, twice.geometry.values, tolerance=0).all()


@pytest.mark.parametrize("epsg", [3857, 4547, 4326])
def test_other_crs_is_reprojected_to_the_same_place(epsg):
    layer = make_layer([("A", None, square(0)), ("B", None, square(5, 3))])

    prepared = prepare_grids(layer.to_crs(epsg), 1).frame

    assert prepared.crs.to_epsg() == 4490
    expected = snap_grid_geometries(layer.geometry.values, 4490)
    # Back in degrees, at the same place to well under a millimetre's worth of degree.
    distances = shapely.hausdorff_distance(prepared.geometry.values, expected)
    assert (distances < 1e-8).all()


def test_other_storage_crs():
    prepared = prepare_grids(make_layer([("A", None, square(0))]), 1, storage_crs=4547)

    assert prepared.srid == 4547
    coords = shapely.get_coordinates(prepared.frame.geometry.values)
    assert (coords[:, 0] > 300_000).all()  # Gauss-Kruger metres, not degrees
    np.testing.assert_allclose(coords * 100, np.round(coords * 100), atol=1e-6)


def test_every_bad_feature_is_named_at_once():
    layer = make_layer([
        ("A1", "P", square(0)),          # row 1: fine
        (None, "P", square(1)),          # row 2: missing code
        ("A3", "P", square(2)),          # row 3: duplicate of row 4
        ("A3", "P", square(3)),          # row 4: duplicate of row 3
        ("A5", "Q", square(4)),          # row 5: unknown parent
        ("A6", "P", POINT),              # row 6: not a polygon
        ("A7", "P", EMPTY),              # row 7: empty
        ("A8", "P", FAR_AWAY),           # row 8: coordinates out of range
        ("A9", None, square(5)),         # row 9: missing parent
        ("A10", "P", None),              # row 10: no geometry
        ("A11", "P", BOW_TIE),           # row 11: self-intersection
        ("A12", "P", LINE),              # row 12: not a polygon
    ])

    with pytest.raises(ImportRefused) as caught:
        prepare_grids(layer, 2, known_parent_codes={"P"})

    error = caught.value
    assert error.exit_code == 2
    assert "nothing was written" in error.message
    assert "11 of 12 features" in error.message
    details = "\n".join(error.details)
    assert "row 1 " not in details
    expected = [
        "row 2 (no code): missing code",
        "row 3 (code A3): duplicate code (also in row 4)",
        "row 4 (code A3): duplicate code (also in row 3)",
        "row 5 (code A5): unknown parent 'Q'",
        "row 6 (code A6): not a polygon (got a Point)",
        "row 7 (code A7): empty geometry",
        "row 8 (code A8): coordinates out of range for EPSG:4490",
        "row 9 (code A9): missing parent code",
        "row 10 (code A10): no geometry",
        "row 11 (code A11): invalid geometry: Self-intersection",
        "row 12 (code A12): not a polygon (got a LineString)",
    ]
    assert len(error.details) == len(expected)
    for line, start in zip(error.details, expected):
        assert line.startswith(start), (line, start)


def test_code_used_at_another_level_is_a_duplicate():
    layer = make_layer([("421281", None, square(0)), ("X", None, square(1))])

    with pytest.raises(ImportRefused) as caught:
        prepare_grids(layer, 1, codes_at_other_levels={"421281": 3})

    assert caught.value.details == [
        "row 1 (code 421281): duplicate code: already used by a current level-3 grid"]


def test_layer_without_crs_is_refused_with_the_other_problems():
    layer = make_layer([(None, None, square(0)), ("B", None, square(1))], crs=None)

    with pytest.raises(ImportRefused) as caught:
        prepare_grids(layer, 1)

    assert caught.value.details[0].startswith("layer: the layer has no coordinate reference")
    assert caught.value.details[1] == "row 1 (no code): missing code"
    assert len(caught.value.details) == 2


def test_missing_code_field_names_the_fields():
    layer = make_layer([("A", None, square(0))]).rename(columns={"code": "CODE_X"})

    with pytest.raises(ImportRefused) as caught:
        prepare_grids(layer, 1)

    assert "no field 'code'" in caught.value.details[0]
    assert "CODE_X" in caught.value.details[0]
    # said once for the layer, not again as a "missing code" on every row
    assert caught.value.details == [caught.value.details[0]]
    assert str(caught.value).startswith(
        "import refused, nothing was written: the layer has 1 problem(s)\n")


def test_bow_tie_is_refused_without_repair():
    layer = make_layer([("A", None, square(0)), ("B", None, BOW_TIE)])

    with pytest.raises(ImportRefused) as caught:
        prepare_grids(layer, 1)

    assert caught.value.details == [
        "row 2 (code B): invalid geometry: Self-intersection[113.905 29.705] "
        "(repair it, or import with --repair to repair it automatically)"]


def test_bow_tie_is_repaired_and_listed_with_repair():
    layer = make_layer([("A", None, square(3)), ("B", None, BOW_TIE)])

    prepared = prepare_grids(layer, 1, repair=True)

    assert prepared.repairs == (
        "row 2 (code B): repaired Self-intersection[113.905 29.705] (kept 2 polygon parts)",)
    geom = prepared.frame.geometry.iloc[1]
    assert geom.is_valid and geom.geom_type == "MultiPolygon" and len(geom.geoms) == 2
    # the two triangles of the bow-tie: half the square
    assert geom.area == pytest.approx(SQUARE.area / 2, rel=1e-6)


def test_unrepairable_geometry_is_refused_even_with_repair():
    spike = shapely.Polygon([(X0, Y0), (X0 + D, Y0), (X0 + 2 * D, Y0)])  # zero area

    with pytest.raises(ImportRefused, match="1 of 1") as caught:
        prepare_grids(make_layer([("S", None, spike)]), 1, repair=True)

    assert "repairing it leaves no polygon" in caught.value.details[0]


def test_geometry_collapsing_at_storage_precision_is_refused():
    tiny = box(X0, Y0, X0 + 1e-9, Y0 + 1e-9)

    with pytest.raises(ImportRefused) as caught:
        prepare_grids(make_layer([("T", None, tiny)]), 1)

    assert caught.value.details == [
        "row 1 (code T): collapses to nothing when snapped to the storage precision (1e-07)"]


def test_shapefile_truncated_and_differently_cased_fields_are_found():
    layer = make_layer([(421281001.0, 421281.0, square(0))]).rename(
        columns={"code": "CODE", "parent_code": "parent_cod"})

    frame = prepare_grids(layer, 2, known_parent_codes={"421281"}).frame

    # numeric codes read from a Shapefile come back as text without ".0"
    assert frame["code"].tolist() == ["421281001"]
    assert frame["parent_code"].tolist() == ["421281"]


def test_level_one_has_no_parent():
    layer = make_layer([("421281", "ignored", square(0))])

    frame = prepare_grids(layer, 1, known_parent_codes=set()).frame

    assert frame["parent_code"].tolist() == [None]
    assert frame["kind"].tolist() == ["city"]


def test_kind_option_and_field_are_checked():
    layer = make_layer([("A", "P", square(0)), ("B", "P", square(1))], kind=["street", "base"])

    with pytest.raises(InputError, match="not a kind of level 2"):
        prepare_grids(layer, 2, kind="village")
    with pytest.raises(ImportRefused) as caught:
        prepare_grids(layer, 2)
    assert caught.value.details == [
        "row 2 (code B): kind 'base' is not a kind of level 2 grids (expected township, street)"]
    assert prepare_grids(layer, 2, kind="street").frame["kind"].tolist() == ["street"] * 2


def test_named_fields_are_read():
    layer = make_layer([("ignored", None, square(0))], 编码=["C1"], 名称=["赤壁"], 单位=["市安监局"])

    frame = prepare_grids(layer, 1, code_field="编码", name_field="名称", org_field="单位").frame

    assert frame[["code", "name", "org"]].values.tolist() == [["C1", "赤壁", "市安监局"]]


def test_named_field_that_is_missing_is_refused():
    with pytest.raises(ImportRefused, match="no field 'NAME_ZH'"):
        prepare_grids(make_layer([("A", None, square(0))]), 1, name_field="NAME_ZH")


def test_unknown_level_is_an_input_error():
    with pytest.raises(InputError, match="unknown grid level"):
        prepare_grids(make_layer([("A", None, square(0))]), 7)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 50), st.integers(0, 50),
                          st.floats(-4e-8, 4e-8), st.floats(-4e-8, 4e-8)),
                min_size=1, max_size=8, unique_by=lambda t: (t[0], t[1])))
def test_prepared_geometries_are_stable_and_close(cells):
    """Whatever the jitter, prepared squares are valid, within the grid size, and stable."""
    geoms = [shapely.affinity.translate(square(i, j), dx, dy) for i, j, dx, dy in cells]
    layer = make_layer([(f"C{k}", None, g) for k, g in enumerate(geoms)])

    frame = prepare_grids(layer, 1).frame

    assert frame.geometry.is_valid.all()
    assert (shapely.hausdorff_distance(frame.geometry.values, geoms) <= 1e-7).all()
    again = prepare_grids(frame, 1).frame
    assert shapely.equals_exact(frame.geometry.values, again.geometry.values, tolerance=0).all()


def test_dotted_codes_must_extend_the_parent_code():
    layer = make_layer([("421281.01.001", "421281.01", square(0)),   # fine: path = code
                        ("X.1", "421281.01", square(1)),             # dotted, not the parent's
                        ("001", "421281.01", square(2))])            # same path as row 1

    with pytest.raises(ImportRefused) as caught:
        prepare_grids(layer, 3)

    assert caught.value.details[0] == (
        "row 1 (code 421281.01.001): same place in the grid tree as row 3")
    assert caught.value.details[1].startswith("row 2 (code X.1): code contains '.'")
    assert caught.value.details[2] == "row 3 (code 001): same place in the grid tree as row 1"


def test_neighbours_still_share_their_vertices_after_snapping():
    """Voronoi cells with shared off-grid vertices stay a valid coverage once prepared."""
    rng = np.random.default_rng(7)
    extent = box(X0, Y0, X0 + 0.05, Y0 + 0.05)
    seeds = shapely.multipoints(rng.uniform([X0, Y0], [X0 + 0.05, Y0 + 0.05], size=(300, 2)))
    cells = shapely.intersection(
        shapely.get_parts(shapely.voronoi_polygons(seeds, extend_to=extent)), extent)
    assert shapely.coverage_is_valid(cells)
    layer = make_layer([(f"V{i}", None, g) for i, g in enumerate(cells)], crs=4326)

    frame = prepare_grids(layer, 1).frame

    assert shapely.coverage_is_valid(frame.geometry.values)
    assert frame.geometry.is_valid.all()


def test_snapping_a_collapsing_sliver_falls_back_to_the_valid_snap():
    sliver = shapely.Polygon([(X0, Y0), (X0 + D, Y0), (X0 + D, Y0 + 3e-8), (X0, Y0 + 2e-8)])
    bowtie_after_rounding = shapely.Polygon(
        [(X0, Y0), (X0 + D, Y0 + 0.6e-7), (X0 + D, Y0 + 2e-7), (X0 + D / 2, Y0 + 0.4e-7),
         (X0, Y0 + 2e-7)])

    snapped = snap_grid_geometries([sliver, bowtie_after_rounding, None], 4490)

    assert snapped[0].is_empty
    assert snapped[1].is_valid and snapped[1].geom_type == "MultiPolygon"
    assert snapped[2] is None
