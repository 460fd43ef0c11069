"""Property tests: Voronoi tessellations with injected shifts, deletions and bow-ties.

The validator must recover the count and area of every injected defect; expected values come
from independent computations (brute-force pairwise intersections, geopandas.overlay).
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings, strategies as st

from gisgrid.coverage import validate_level
from gisgrid.coverage.checks import polygonal_fix
from tests.unit.coverage_fixtures import voronoi_frame, with_geoms

MIN_AREA = 1.0


def bow_tie_of(cell):
    """The cell with two consecutive ring vertices swapped: a self-intersecting ring."""
    coords = np.asarray(cell.exterior.coords)[:-1]
    for k in range(len(coords)):
        ring = np.roll(coords, -k, axis=0)
        ring[[0, 1]] = ring[[1, 0]]
        tie = shapely.Polygon(ring)
        if not tie.is_valid:
            return tie
    raise AssertionError(f"no swap of neighbouring vertices makes {cell} invalid")


def pick_apart(cells, rng, counts, min_vertices=(0, 0, 0)):
    """Disjoint groups of cell indices, no two picked cells touching each other; the cells of
    group k have at least ``min_vertices[k]`` ring vertices."""
    tree = shapely.STRtree(cells)
    blocked: set[int] = set()
    groups = []
    n_vertices = shapely.get_num_coordinates(cells) - 1
    for count, least in zip(counts, min_vertices):
        group = []
        for i in rng.permutation(len(cells)):
            if len(group) == count:
                break
            if int(i) in blocked or n_vertices[i] < least:
                continue
            group.append(int(i))
            blocked.update(int(j) for j in tree.query(cells[i].buffer(1.0), predicate="intersects"))
        groups.append(group)
    return groups


def overlay_parts(left, right, crs, how):
    """Parts (> MIN_AREA) of geopandas.overlay(left, right, how) — the independent reference."""
    a = gpd.GeoDataFrame(geometry=list(left), crs=crs)
    b = gpd.GeoDataFrame(geometry=list(right), crs=crs)
    result = gpd.overlay(a, b, how=how, keep_geom_type=True)
    parts = result.geometry.explode(index_parts=False)
    return parts[parts.area > MIN_AREA]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), shifts=st.integers(0, 3), deletions=st.integers(0, 3),
       bow_ties=st.integers(0, 2), dx=st.floats(5, 40), dy=st.floats(-20, 20))
def test_injected_defects_are_recovered(seed, shifts, deletions, bow_ties, dx, dy):
    children, parents = voronoi_frame(60, seed, 2000)
    cells = children.geometry.values.copy()
    rng = np.random.default_rng(seed)
    shifted, deleted, tied = pick_apart(cells, rng, [shifts, deletions, bow_ties],
                                         min_vertices=(0, 0, 4))
    for i in shifted:
        cells[i] = shapely.affinity.translate(cells[i], dx, dy)
    for i in tied:
        cells[i] = bow_tie_of(cells[i])
    keep = np.setdiff1d(np.arange(len(cells)), deleted)
    frame = with_geoms(children, cells).iloc[keep].reset_index(drop=True)
    report = validate_level(frame, parents, sliver_width=0)
    summary = report.summary()

    assert summary["invalid_geometries"] == len(tied)
    fixed = polygonal_fix(frame.geometry.values)
    # overlaps: brute force over every pair
    i, j = np.triu_indices(len(fixed), k=1)
    areas = shapely.area(shapely.intersection(fixed[i], fixed[j]))
    expected = areas[areas > MIN_AREA]
    assert summary["overlaps"]["count"] == len(expected)
    assert summary["overlaps"]["area_m2"] == pytest.approx(expected.sum(), rel=5e-3, abs=1e-6)
    # gaps and parts outside the parent: geopandas.overlay
    gaps = overlay_parts(parents.geometry.values, fixed, frame.crs, "difference")
    assert summary["gaps"]["count"] == len(gaps)
    assert summary["gaps"]["area_m2"] == pytest.approx(gaps.area.sum(), rel=5e-3, abs=1e-6)
    outside = overlay_parts(fixed, parents.geometry.values, frame.crs, "difference")
    assert summary["outside_parent"]["area_m2"] == pytest.approx(outside.area.sum(), rel=5e-3,
                                                                   abs=1e-6)
    if not shifts and not bow_ties:   # deletions alone: one gap per deleted cell, same area
        found = sorted(f.area_m2 for f in report.by_kind("gap"))
        assert found == pytest.approx(sorted(shapely.area(children.geometry.values[deleted])),
                                      rel=1e-9)
