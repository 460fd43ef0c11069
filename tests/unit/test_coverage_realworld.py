"""Real boundary data: the Chibi outline (invalid ring, quantised to 1/1024 degree) as parent,
and a child tessellation cut from a differently quantised copy of it.

Overlap, gap and outside-parent areas must agree with an independent geopandas.overlay
computation within 0.5 %.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely

from gisgrid.coverage import validate_level
from gisgrid.coverage.checks import polygonal_fix
from gisgrid.coverage.repair import propose_repair
from gisgrid.io import read_layer
from tests.unit.coverage_fixtures import grid_frame, jitter, quantise

CHIBI = Path("/work/shared/data/chibi.geojson")
MIN_AREA = 1.0
METRIC = 4547


@pytest.fixture(scope="module")
def chibi():
    """(children, parent): 150 Voronoi grids cut from a 1/1000-degree copy of the outline and
    each jittered by up to ~20 m; the parent is the raw, invalid 1/1024-degree outline."""
    parent = read_layer(CHIBI)
    parent = parent.assign(level=1, parent_code=None)[["code", "name", "level", "parent_code",
                                                       parent.geometry.name]]
    outline = parent.geometry.values[0]
    assert not outline.is_valid            # the real data is broken, on purpose
    copy = polygonal_fix(quantise([outline], 1 / 1000))[0]
    rng = np.random.default_rng(42)
    minx, miny, maxx, maxy = copy.bounds
    pts = rng.uniform((minx, miny), (maxx, maxy), (400, 2))
    pts = pts[shapely.contains_xy(copy, pts[:, 0], pts[:, 1])][:150]
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(pts)))
    cells = shapely.intersection(cells, copy)
    cells = jitter(cells, 2e-4, 7)
    codes = [f"421281{i:03d}" for i in range(len(cells))]
    children = grid_frame(cells, codes, ["421281"] * len(cells), level=2, crs=4326)
    return children, parent


def independent(children, parent):
    """Overlap, gap and outside areas (m2) and counts by geopandas.overlay in EPSG:4547."""
    kids = gpd.GeoDataFrame({"code": children["code"].values},
                            geometry=polygonal_fix(children.geometry.values), crs=children.crs)
    outline = gpd.GeoDataFrame(geometry=polygonal_fix(parent.geometry.values), crs=parent.crs)
    pairs = gpd.overlay(kids, kids, how="intersection", keep_geom_type=True)
    pairs = pairs[pairs["code_1"] < pairs["code_2"]]
    pairs = pairs.dissolve(by=["code_1", "code_2"]).to_crs(METRIC)
    pairs = pairs[pairs.area > MIN_AREA]

    def parts(frame):
        exploded = frame.to_crs(METRIC).geometry.explode(index_parts=False)
        return exploded[exploded.area > MIN_AREA]

    union = gpd.GeoDataFrame(geometry=[shapely.union_all(kids.geometry.values)], crs=kids.crs)
    gaps = parts(gpd.overlay(outline, union, how="difference"))
    outside = parts(gpd.overlay(union, outline, how="difference"))
    return {"overlaps": (len(pairs), pairs.area.sum()), "gaps": (len(gaps), gaps.area.sum()),
            "outside_parent": (len(outside), outside.area.sum())}


def test_areas_agree_with_independent_overlay(chibi):
    children, parent = chibi
    report = validate_level(children, parent, sliver_width=0, metric_crs=METRIC)
    summary = report.summary()
    (invalid,) = [f for f in report.by_kind("invalid_geometry") if f.codes == ("421281",)]
    assert invalid.level == 1 and "Self-intersection" in invalid.detail["reason"]
    reference = independent(children, parent)
    for key, (count, area) in reference.items():
        assert area > 1000, key              # each kind really occurs in this data
        assert summary[key]["area_m2"] == pytest.approx(area, rel=5e-3), key
        assert summary[key]["count"] == count, key


def test_repair_of_real_data_validates_clean(chibi):
    children, parent = chibi
    children = children.to_crs(4490)
    parent = parent.to_crs(4490)
    proposal = propose_repair(children, parent, max_gap_width=1000)
    report = validate_level(proposal.children, proposal.parents, sliver_width=0)
    assert report.valid, report.to_text("en")
