"""Reading and writing layers in every supported format (gisgrid.io)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from shapely import box

from gisgrid.errors import InputError
from gisgrid.io import format_for, list_layers, read_layer, write_layer
from gisgrid.precision import snap

FORMATS = ["geojson", "json", "gpkg", "shp", "parquet"]


def make_layer(crs=4490, *, n=3, x0=113.9, y0=29.7, size=0.01):
    """``n`` unit squares in a row, east of (x0, y0), with Chinese names; one is a MultiPolygon."""
    geoms = [box(x0 + i * size, y0, x0 + (i + 1) * size, y0 + size) for i in range(n)]
    geoms[0] = shapely.MultiPolygon([geoms[0]])
    layer = gpd.GeoDataFrame(
        {"code": [f"42128100{i}" for i in range(n)],
         "name": [f"网格{i}" for i in range(n)],
         "level": [4] * n,
         "parent_code": ["421281001"] * n},
        geometry=gpd.GeoSeries(geoms, name="geom"), crs=4490)
    return layer.to_crs(crs)


def canonical(geoms):
    """Geometries snapped to the storage precision, as MultiPolygons in normal form.

    Formats differ in how they store a float (GeoJSON: 15 significant digits) and a polygon
    (Shapefile: no single/multi distinction, clockwise shells), so compare after snapping.
    """
    geoms = snap(np.asarray(geoms, dtype=object), 4490)
    single = shapely.get_type_id(geoms) == 3
    geoms[single] = shapely.multipolygons(geoms[single], indices=np.arange(single.sum()))
    return shapely.normalize(geoms)


@pytest.mark.parametrize("suffix", FORMATS)
def test_write_then_read_gives_back_the_same_layer(tmp_path, suffix):
    layer = make_layer()
    path = write_layer(layer, tmp_path / f"grids.{suffix}")

    back = read_layer(path)

    assert back.geometry.name == "geom"
    assert back.crs.equals(layer.crs)
    assert back["code"].tolist() == layer["code"].tolist()
    assert back["name"].tolist() == layer["name"].tolist()  # UTF-8 survives, Shapefile too
    assert shapely.equals_exact(canonical(back.geometry.values),
                                canonical(layer.geometry.values), tolerance=0).all()


@pytest.mark.parametrize("suffix", ["geojson", "gpkg", "shp", "parquet"])
def test_projected_crs_is_kept(tmp_path, suffix):
    layer = make_layer(crs=4547)

    back = read_layer(write_layer(layer, tmp_path / f"grids.{suffix}"))

    assert back.crs.to_epsg() == 4547
    np.testing.assert_allclose(back.total_bounds, layer.total_bounds, atol=1e-6)


@pytest.mark.parametrize("suffix", ["geojson", "shp", "parquet"])
def test_writing_again_replaces_the_file(tmp_path, suffix):
    path = tmp_path / f"grids.{suffix}"
    write_layer(make_layer(n=3), path)

    write_layer(make_layer(n=2), path)

    assert len(read_layer(path)) == 2


def test_shapefile_truncates_long_field_names(tmp_path):
    back = read_layer(write_layer(make_layer(), tmp_path / "grids.shp"))

    assert "parent_cod" in back.columns


def test_shapefile_without_prj_reads_with_no_crs(tmp_path):
    path = write_layer(make_layer(), tmp_path / "grids.shp")
    path.with_suffix(".prj").unlink()

    assert read_layer(path).crs is None


def test_geopackage_with_several_layers_needs_a_layer_name(tmp_path):
    path = tmp_path / "city.gpkg"
    write_layer(make_layer(n=2), path, layer="townships")
    write_layer(make_layer(n=3), path, layer="villages")

    with pytest.raises(InputError) as caught:
        read_layer(path)
    assert "--layer" in caught.value.message
    assert caught.value.details == ["layer 'townships'", "layer 'villages'"]
    assert len(read_layer(path, layer="villages")) == 3
    assert sorted(list_layers(path)) == ["townships", "villages"]


def test_unknown_layer_is_refused_with_the_layers_named(tmp_path):
    path = write_layer(make_layer(), tmp_path / "city.gpkg")

    with pytest.raises(InputError, match="no layer 'roads'") as caught:
        read_layer(path, layer="roads")
    assert caught.value.details == ["layer 'city'"]


def test_unknown_suffix_is_refused(tmp_path):
    with pytest.raises(InputError, match=r"\.csv"):
        write_layer(make_layer(), tmp_path / "grids.csv")
    with pytest.raises(InputError, match=r"\.kml"):
        read_layer(tmp_path / "grids.kml")


def test_missing_file_is_refused(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_layer(tmp_path / "nowhere.gpkg")


def test_unreadable_file_is_refused(tmp_path):
    path = tmp_path / "broken.geojson"
    path.write_text("{ this is not json")

    with pytest.raises(InputError, match="cannot read"):
        read_layer(path)


def test_layer_without_crs_is_not_written(tmp_path):
    layer = make_layer().set_crs(None, allow_override=True)

    with pytest.raises(InputError, match="no CRS"):
        write_layer(layer, tmp_path / "grids.gpkg")
    assert not (tmp_path / "grids.gpkg").exists()


def test_format_for_zipped_shapefile():
    assert format_for("grids.shp.zip") == "ESRI Shapefile"


@pytest.mark.parametrize("suffix", ["geojson", "parquet"])
def test_an_unwritable_path_is_an_input_error_naming_it(tmp_path, suffix):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    target = blocker / f"grids.{suffix}"
    with pytest.raises(InputError, match=f"cannot write '{target}'"):
        write_layer(make_layer(n=1), target)


def test_write_text_names_an_unwritable_path(tmp_path):
    from gisgrid.io import write_text

    assert write_text(tmp_path / "new" / "r.json", "{}").read_text(encoding="utf-8") == "{}"
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(InputError, match="cannot write"):
        write_text(blocker / "r.json", "{}")
