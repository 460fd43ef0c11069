"""The metric CRS rule of :mod:`gisgrid.crs`: areas measured in the chosen CRS agree with the
geodesic area on the GRS80 ellipsoid (CGCS2000's) for city-sized and province-sized data."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pyproj
import pytest
import shapely

from gisgrid.crs import (MAX_AREA_SCALE_ERROR, area_scale_error, local_metric_crs,
                         local_metric_crs_for_bounds)
from gisgrid.errors import CRSError

ROOT = Path(__file__).resolve().parents[2]
CHIBI = ROOT / "gisgrid" / "data" / "chibi.geojson"
HUBEI = ROOT / "tests" / "data" / "realworld" / "hubei_outline_china_map.geojson"
GEOD = pyproj.Geod(ellps="GRS80")
TOLERANCE = 5e-4   # 0.05 %


def read_outline(path: Path, *, shift_lon: float = 0.0) -> gpd.GeoDataFrame:
    """A real outline (lon/lat), made valid, optionally moved east by ``shift_lon`` degrees."""
    frame = gpd.read_file(path)
    geoms = shapely.make_valid(frame.geometry.values, method="structure")
    if shift_lon:
        geoms = shapely.transform(geoms, lambda xy: xy + [shift_lon, 0.0])
    return gpd.GeoDataFrame(geometry=geoms, crs=4490)


def geodesic_area(frame: gpd.GeoDataFrame) -> float:
    return sum(abs(GEOD.geometry_area_perimeter(g)[0]) for g in frame.geometry)


def projected_area(frame: gpd.GeoDataFrame, crs) -> float:
    return float(frame.to_crs(crs).area.sum())


@pytest.mark.parametrize(("name", "path", "shift_lon"), [
    ("Chibi, near its zone's meridian", CHIBI, 0.0),
    ("Chibi moved 1.3 degrees east, near its zone's edge", CHIBI, 1.3),
    ("Hubei province, 7.8 degrees wide", HUBEI, 0.0),
])
def test_area_in_chosen_crs_agrees_with_geodesic_area(name, path, shift_lon):
    outline = read_outline(path, shift_lon=shift_lon)
    crs = local_metric_crs(outline)
    assert projected_area(outline, crs) == pytest.approx(geodesic_area(outline), rel=TOLERANCE)


def test_city_near_a_meridian_is_measured_in_its_gauss_kruger_zone():
    assert local_metric_crs(read_outline(CHIBI)).to_epsg() == 4547


def test_province_is_measured_in_albers_on_cgcs2000():
    hubei = read_outline(HUBEI)
    crs = local_metric_crs(hubei)
    assert crs.to_epsg() is None
    assert crs.coordinate_operation.method_name == "Albers Equal Area"
    assert crs.geodetic_crs.equals(pyproj.CRS.from_epsg(4490))
    # the Gauss-Kruger zone it replaces distorts Hubei's area beyond the tolerance
    gk = pyproj.CRS.from_epsg(4546)
    gk_error = abs(projected_area(hubei, gk) / geodesic_area(hubei) - 1)
    assert gk_error > 2 * TOLERANCE
    assert area_scale_error(gk, hubei.total_bounds) > MAX_AREA_SCALE_ERROR


def test_same_choice_from_any_input_crs_of_the_same_data():
    chibi = read_outline(CHIBI)
    assert local_metric_crs(chibi.to_crs(3857)).to_epsg() == 4547
    hubei = read_outline(HUBEI)
    assert local_metric_crs(hubei.to_crs(3857)).equals(local_metric_crs(hubei))


def test_own_projected_crs_is_kept_only_when_it_measures_areas_well():
    chibi = read_outline(CHIBI)
    assert local_metric_crs(chibi.to_crs(4547)).to_epsg() == 4547
    # Web Mercator inflates areas by a third at 30N: never measured in
    assert local_metric_crs(chibi.to_crs(3857)).to_epsg() != 3857
    # Chibi in the next zone west (CM 111E, 3 degrees away) is measured in its own zone
    assert local_metric_crs(chibi.to_crs(4546)).to_epsg() == 4547


def test_outside_china_is_measured_in_albers_on_wgs84():
    paris = gpd.GeoDataFrame(geometry=[shapely.box(2.2, 48.8, 2.5, 48.9)], crs=4326)
    crs = local_metric_crs(paris)
    assert crs.geodetic_crs.equals(pyproj.CRS.from_epsg(4326))
    assert projected_area(paris, crs) == pytest.approx(geodesic_area(paris), rel=1e-5)


def test_empty_layer_cannot_choose_a_crs():
    with pytest.raises(CRSError, match="empty"):
        local_metric_crs(gpd.GeoDataFrame(geometry=[], crs=4490))
    with pytest.raises(CRSError, match="empty"):
        local_metric_crs_for_bounds(float("nan"), 0, 1, 1)
