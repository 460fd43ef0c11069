"""Real administrative boundaries: the coverage validator against an independent overlay.

Data (``tests/data/realworld/README.md``): Hubei's 17 prefecture-level units from the ECharts
province map checked against the outline of Hubei from the ECharts CHINA map, and Xianning's 6
counties from the ECharts city map checked against the outline of Xianning from the province
map. Quantised to 1/1024 degree, many invalid rings, parents digitised separately: nothing was
repaired.

The independent computation uses geopandas (``make_valid``, ``overlay``, ``dissolve``,
``explode``) and no code of :mod:`gisgrid.coverage`:

- inputs are made valid with ``make_valid(method="structure", keep_collapsed=False)`` keeping
  only polygonal parts, as the validator does for overlay (it still reports the invalidity);
- overlaps: ``overlay(children, children, how="intersection", keep_geom_type=True)``, unordered
  pairs (``code_1 < code_2``), dissolved per pair: ONE overlap per pair of siblings whose total
  intersection area exceeds ``min_area``. A multi-part intersection between one pair (Wuhan and
  Huanggang share 28 overlapping pieces) counts once with the summed area, as in the validator;
- gaps: each polygon of ``overlay(parent, union of children, how="difference")`` with area >
  ``min_area``;
- outside-parent parts: each polygon of ``overlay(union, parent, how="difference")`` with area
  > ``min_area``.

Definitional points, the same on both sides:

- a "connected part" is one polygon of the (valid) difference, so two pieces that meet at a single
  vertex count as two (1/1024-degree staircases produce many of these);
- topology is decided in the CRS the data is stored in (lon/lat) and each part is measured in
  :func:`gisgrid.crs.local_metric_crs` (an Albers equal-area CRS centred on each: both are
  too wide for one Gauss-Kruger zone to measure within 0.02 %).

With those definitions the counts agree exactly and the areas within 0.5 %
(:func:`test_validator_agrees_with_overlay`; in fact to the square metre).

Running the overlay on copies already projected to the metric CRS
(:func:`test_projected_overlay_differs_only_by_projection_artefacts`) gives the same totals
within 0.1 % but not the same counts. A straight lon/lat edge becomes a curve once projected
while the projected copy keeps a straight chord; the China map's outline has edges up to ~35 km
long whose chord and curve lie metres apart. So (pinned by the test) every validator part is the
same land as exactly one projected part, and the projected parts with no validator part are
hairline slivers under 2 m wide. Not asserted, only observed: some projected parts hold two or
more validator parts (Xianning: 11 such parts, 10 joining pieces that touch at a vertex in
lon/lat, one joining two pieces 144 m apart through area the chord/curve shift moved), and single
parts differ in area (one Hubei outside part: 319,326 m2 in lon/lat topology, 377,089 m2
projected) while the totals agree. The data is drawn straight in lon/lat (ECharts draws it so),
hence lon/lat topology is the reference, as in the validator.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely

from gisgrid.coverage import validate_hierarchy, validate_level
from gisgrid.crs import local_metric_crs

DATA = Path(__file__).resolve().parents[1] / "data" / "realworld"
MIN_AREA = 1.0  # m2, the validator's default
AREA_KINDS = {"overlap": "overlaps", "gap": "gaps", "outside_parent": "outside_parent"}

# case: (children file, parent file, parent code, kinds expected to occur, invalid features)
CASES = {
    "hubei_prefectures": ("hubei_prefectures", "hubei_outline_china_map", "420000",
                          {"overlap", "gap", "outside_parent"}, 13),
    "xianning_counties": ("xianning_counties", "xianning_outline_hubei_map", "421200",
                          {"gap", "outside_parent"}, 4),
}


def read_case(name: str) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """(children, parent) of a case, as decoded (lon/lat, invalid rings kept)."""
    children_file, parent_file, parent_code, _, _ = CASES[name]
    children = gpd.read_file(DATA / f"{children_file}.geojson")
    parent = gpd.read_file(DATA / f"{parent_file}.geojson")
    assert set(children["parent_code"]) == {parent_code}
    assert list(parent["code"]) == [parent_code]
    return children, parent


def make_polygonal(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """``code`` and a valid polygonal geometry per feature (make_valid structure, polygons kept)."""
    fixed = frame[["code"]].set_geometry(
        frame.geometry.make_valid(method="structure", keep_collapsed=False), crs=frame.crs)
    parts = fixed.explode(index_parts=False)
    parts = parts[parts.geom_type.isin(["Polygon", "MultiPolygon"])]
    return parts.dissolve(by="code", as_index=False)


def polygons_over(frame: gpd.GeoDataFrame, metric_crs, min_area: float) -> gpd.GeoSeries:
    """The polygons of ``frame``, projected to ``metric_crs``, with area above ``min_area``."""
    parts = frame.geometry.explode(index_parts=False)
    parts = parts[parts.geom_type == "Polygon"].to_crs(metric_crs)
    return parts[parts.area > min_area].reset_index(drop=True)


def overlay_reference(children, parent, metric_crs, *, project_first: bool = False) -> dict:
    """Overlaps per sibling pair, gap parts and outside parts by geopandas.overlay.

    Returns ``{kind: GeoSeries in metric_crs}``; overlaps are indexed by (code_1, code_2).
    Topology in the stored CRS unless ``project_first``.
    """
    kids, outline = make_polygonal(children), make_polygonal(parent)[["geometry"]]
    if project_first:
        kids, outline = kids.to_crs(metric_crs), outline.to_crs(metric_crs)
    pairs = gpd.overlay(kids, kids, how="intersection", keep_geom_type=True)
    pairs = pairs[pairs["code_1"] < pairs["code_2"]].dissolve(by=["code_1", "code_2"])
    pairs = pairs.geometry.to_crs(metric_crs)
    union = gpd.GeoDataFrame(geometry=[kids.geometry.union_all()], crs=kids.crs)
    return {
        "overlap": pairs[pairs.area > MIN_AREA],
        "gap": polygons_over(gpd.overlay(outline, union, how="difference"), metric_crs, MIN_AREA),
        "outside_parent": polygons_over(gpd.overlay(union, outline, how="difference"),
                                        metric_crs, MIN_AREA),
    }


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request):
    """(name, children, parent, report, metric CRS) for each real-data case."""
    children, parent = read_case(request.param)
    metric_crs = local_metric_crs(children)
    report = validate_level(children, parent, min_area=MIN_AREA, sliver_width=0)
    assert report.metric_crs.equals(metric_crs)
    return request.param, children, parent, report, metric_crs


def finding_geometries(report, kind: str, metric_crs) -> np.ndarray:
    """The geometries of the validator's ``kind`` findings, projected to the metric CRS."""
    geoms = [f.geometry for f in report.by_kind(kind)]
    return np.asarray(gpd.GeoSeries(geoms, crs=report.crs).to_crs(metric_crs).values,
                      dtype=object)


def test_validator_agrees_with_overlay(case):
    name, children, parent, report, metric_crs = case
    _, _, _, occurring, n_invalid = CASES[name]
    reference = overlay_reference(children, parent, metric_crs)
    summary = report.summary()
    for kind, key in AREA_KINDS.items():
        expected = reference[kind]
        assert summary[key]["count"] == len(expected), (name, kind)
        assert summary[key]["area_m2"] == pytest.approx(expected.area.sum(), rel=5e-3, abs=1e-6), \
            (name, kind)
        assert (len(expected) > 0) == (kind in occurring), (name, kind)
    pairs = {tuple(sorted(map(str, pair))) for pair in reference["overlap"].index}
    assert {f.codes for f in report.by_kind("overlap")} == pairs
    invalid = int((~children.geometry.is_valid).sum() + (~parent.geometry.is_valid).sum())
    assert invalid == n_invalid
    assert summary["invalid_geometries"] == n_invalid


def inscribed_widths(geoms) -> np.ndarray:
    """Diameter (m) of the maximum inscribed circle of each metric polygon."""
    geoms = np.asarray(geoms, dtype=object)
    return 2 * shapely.length(shapely.maximum_inscribed_circle(geoms, 0.001))


def test_projected_overlay_differs_only_by_projection_artefacts(case):
    """Overlay on projected copies: same areas; count differences are hairlines and merges."""
    name, children, parent, report, metric_crs = case
    projected = overlay_reference(children, parent, metric_crs, project_first=True)
    summary = report.summary()
    for kind, key in AREA_KINDS.items():
        assert summary[key]["area_m2"] == pytest.approx(projected[kind].area.sum(), rel=5e-3,
                                                        abs=1e-6), (name, kind)

    pairs = {tuple(sorted(map(str, pair))): geom for pair, geom in projected["overlap"].items()}
    found = {f.codes for f in report.by_kind("overlap")}
    assert found <= set(pairs), name
    extra = [pairs[p] for p in set(pairs) - found]
    assert (inscribed_widths(extra) < 2.0).all(), name

    for kind in ("gap", "outside_parent"):
        ours = finding_geometries(report, kind, metric_crs)
        theirs = np.asarray(projected[kind].values, dtype=object)
        left, right = shapely.STRtree(theirs).query(ours, predicate="intersects")
        shared = shapely.area(shapely.intersection(ours[left], theirs[right]))
        same_land = shared > 0.5 * np.minimum(shapely.area(ours[left]), shapely.area(theirs[right]))
        left, right = left[same_land], right[same_land]
        # every validator part is one piece of one projected part
        assert np.array_equal(np.sort(left), np.arange(len(ours))), (name, kind)
        # projected parts with no validator part are hairline slivers along projected chords
        unmatched = np.setdiff1d(np.arange(len(theirs)), right)
        assert (inscribed_widths(theirs[unmatched]) < 2.0).all(), (name, kind)


def test_hierarchy_run_agrees_with_overlay():
    """The three real levels in one ``validate_hierarchy`` run: each level's overlaps, gaps and
    outside parts match the overlay of that level against its parent, measured in the
    hierarchy's single metric CRS (the top level's, Albers over Hubei); the 16 prefectures without a
    county layer are childless parents."""
    prefectures, hubei = read_case("hubei_prefectures")
    counties, _ = read_case("xianning_counties")
    levels = {1: hubei.assign(level=1), 2: prefectures.assign(level=2),
              3: counties.assign(level=3)}
    report = validate_hierarchy(levels, min_area=MIN_AREA, sliver_width=0)
    metric_crs = local_metric_crs(hubei)
    assert report.metric_crs.equals(metric_crs)
    xianning = prefectures[prefectures["code"] == "421200"]
    for level, (children, parent) in {2: (prefectures, hubei), 3: (counties, xianning)}.items():
        reference = overlay_reference(children, parent, metric_crs)
        for kind in AREA_KINDS:
            found = [f for f in report.by_kind(kind) if f.level == level]
            assert len(found) == len(reference[kind]), (level, kind)
            assert sum(f.area_m2 for f in found) == pytest.approx(
                reference[kind].area.sum(), rel=5e-3, abs=1e-6), (level, kind)
    childless = {f.codes for f in report.by_kind("childless_parent")}
    assert childless == {(code,) for code in prefectures["code"] if code != "421200"}
