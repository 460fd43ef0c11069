"""Repair proposals: overlap assignment, gap merging, parent clipping; round trip on messy data."""

from __future__ import annotations

import json

import numpy as np
import pytest
import shapely
from click.testing import CliRunner

from gisgrid.cli.repair import repair
from gisgrid.coverage import validate_level
from gisgrid.coverage.repair import propose_hierarchy_repair, propose_repair
from gisgrid.io import read_layer, write_layer
from tests.unit.coverage_fixtures import (
    box, grid_frame, jitter, parent_frame, quantise, two_squares, voronoi_frame, with_geoms,
)


def geom_of(proposal, code):
    frame = proposal.children
    return frame.geometry.values[list(frame["code"]).index(code)]


def test_overlap_goes_to_the_side_with_the_longest_shared_border():
    # A = [0, 110] overlaps B = [100, 200]; the strip [100, 110] borders A-only along 100 m and
    # B-only along 100 m: equal, so the tie goes to the larger code; with a priority A wins.
    children, parents = two_squares(left_x1=110)
    proposal = propose_repair(children, parents)
    assert geom_of(proposal, "B").area == pytest.approx(10000.0)
    assert geom_of(proposal, "A").area == pytest.approx(10000.0)
    proposal = propose_repair(children, parents, priority={"A": 2})
    assert geom_of(proposal, "A").area == pytest.approx(11000.0)
    assert validate_level(proposal.children, proposal.parents).valid


def test_contained_grid_keeps_its_area_by_border_rule():
    """E = [120, 140] x [20, 40] inside B: E's face borders only B, so the overlap goes to B
    unless E has the priority."""
    children, parents = two_squares(extra=[box(120, 20, 140, 40)])
    proposal = propose_repair(children, parents, priority={"E0": 1})
    assert geom_of(proposal, "E0").area == pytest.approx(400.0)
    assert geom_of(proposal, "B").area == pytest.approx(9600.0)
    assert validate_level(proposal.children, proposal.parents).valid


def test_narrow_gap_merged_wide_gap_left_and_outside_part_clipped():
    children, parents = two_squares(left_x1=90)      # 10 m wide gap
    proposal = propose_repair(children, parents, max_gap_width=20)
    assert proposal.summary()["gaps_merged"] == 1 and not proposal.unresolved_gaps
    assert validate_level(proposal.children, proposal.parents).valid
    wide = propose_repair(children, parents, max_gap_width=5)
    assert len(wide.unresolved_gaps) == 1
    assert wide.summary()["unresolved_gap_area_m2"] == pytest.approx(1000.0)
    outside = grid_frame([box(-20, 0, 100, 100), box(100, 0, 200, 100)], ["A", "B"])
    clipped = propose_repair(outside, parents)
    assert geom_of(clipped, "A").area == pytest.approx(10000.0)
    (change,) = [c for c in clipped.changed if c.code == "A"]
    assert change.area_before_m2 == pytest.approx(12000.0)
    assert change.area_after_m2 == pytest.approx(10000.0) and change.actions == ["reshaped"]


def test_bow_tie_is_repaired_and_diff_is_geojson():
    children = grid_frame([shapely.Polygon([(500000, 3300000), (500100, 3300100),
                                            (500100, 3300000), (500000, 3300100)]),
                           box(100, 0, 200, 100)], ["A", "B"])
    proposal = propose_repair(children, parent_frame([box(0, 0, 200, 100)]), max_gap_width=200)
    assert validate_level(proposal.children, proposal.parents).valid
    diff = json.loads(json.dumps(proposal.to_geojson()))
    (feature,) = [f for f in diff["features"] if f["properties"]["code"] == "A"]
    assert "made_valid" in feature["properties"]["actions"]
    assert feature["properties"]["area_after_m2"] == pytest.approx(10000.0)
    assert diff["summary"]["changed"] >= 1


def messy(n=200, seed=5, amplitude=3.0, step=2.0):
    """A Voronoi tessellation whose grids were each digitised with noise and quantised."""
    children, parents = voronoi_frame(n, seed, 3000)
    geoms = quantise(jitter(children.geometry.values, amplitude, seed), step)
    return with_geoms(children, geoms), parents


def test_round_trip_on_messy_projected_data():
    children, parents = messy()
    before = validate_level(children, parents)
    assert before.summary()["overlaps"]["count"] > 20 and before.summary()["gaps"]["count"] > 5
    proposal = propose_repair(children, parents)
    after = validate_level(proposal.children, proposal.parents)
    assert after.valid, after.to_text("en")
    assert shapely.coverage_is_valid(proposal.children.geometry.values)
    total = sum(c.area_after_m2 for c in proposal.changes)
    assert total == pytest.approx(3000.0 * 3000.0, rel=1e-6)


def test_round_trip_on_data_quantised_to_1_1024_degree():
    """Grids in CGCS2000 degrees quantised to 1/1024 degree (about 100 m), like the real outline."""
    children, parents = voronoi_frame(60, 11, 20000)
    children, parents = children.to_crs(4490), parents.to_crs(4490)
    geoms = quantise(jitter(children.geometry.values, 2e-4, 3), 1 / 1024)
    children = with_geoms(children, geoms)
    before = validate_level(children, parents, sliver_width=0)
    assert not before.valid
    proposal = propose_repair(children, parents, max_gap_width=400)
    after = validate_level(proposal.children, proposal.parents, sliver_width=0)
    assert after.valid, after.to_text("en")


def test_hierarchy_repair_top_down():
    children, parents = messy(n=80, seed=9)
    city = grid_frame([box(0, 0, 3000, 3000)], ["C"], [None], level=2)
    parents["parent_code"] = "C"
    proposals = propose_hierarchy_repair({2: city, 3: parents, 4: children})
    from gisgrid.coverage import validate_hierarchy
    report = validate_hierarchy({lvl: p.children for lvl, p in proposals.items()})
    assert report.valid, report.to_text("en")


def test_cli_repair_writes_diff_and_fixed_file(tmp_path):
    children, parents = messy(n=60, seed=2)
    grid_file = write_layer(children, tmp_path / "grids.gpkg")
    parent_file = write_layer(parents, tmp_path / "parents.gpkg")
    diff_file, fixed_file = tmp_path / "diff.geojson", tmp_path / "fixed.gpkg"
    result = CliRunner().invoke(repair, [str(grid_file), "--parents", str(parent_file),
                                         "-o", str(diff_file), "--write-fixed", str(fixed_file)],
                                catch_exceptions=False)
    assert result.exit_code == 0
    diff = json.loads(diff_file.read_text(encoding="utf-8"))
    assert diff["type"] == "FeatureCollection" and diff["features"]
    assert {"code", "area_before_m2", "area_after_m2", "actions"} <= set(diff["features"][0]["properties"])
    fixed = read_layer(fixed_file)
    assert len(fixed) == len(children)
    assert np.isclose(fixed.geometry.area.sum(), 3000.0 * 3000.0, rtol=1e-6)
