"""Every finding kind on a hand-built layout (layouts are drawn in coverage_fixtures)."""

from __future__ import annotations

import pytest
import shapely

from gisgrid.coverage import validate_hierarchy, validate_level
from gisgrid.errors import CRSError, InputError
from tests.unit.coverage_fixtures import (
    across_border, box, grid_frame, parent_frame, ring_with_hole, t_junction, two_parents, two_squares,
    bow_tie,
)


def kinds(report):
    return sorted(f.kind for f in report.findings)


def test_clean_partition_has_no_findings():
    children, parents = two_squares()
    report = validate_level(children, parents)
    assert report.findings == []
    assert report.valid and report.summary()["valid"]


def test_overlap_pair_area_and_width():
    children, parents = two_squares(left_x1=110)
    report = validate_level(children, parents)
    (overlap,) = report.by_kind("overlap")
    assert overlap.codes == ("A", "B")
    assert overlap.area_m2 == pytest.approx(1000.0)
    assert overlap.width_m == pytest.approx(10.0, rel=0.02)
    assert overlap.parent_code == "P"
    assert {f.codes for f in report.by_kind("edge_mismatch")} == {("A",), ("B",)}
    assert report.by_kind("gap") == [] and report.by_kind("outside_parent") == []


def test_overlap_below_min_area_is_ignored_but_edges_still_mismatch():
    children, parents = two_squares(left_x1=100.005)   # 0.5 m2
    report = validate_level(children, parents)
    assert report.by_kind("overlap") == []
    assert len(report.by_kind("edge_mismatch")) == 2


def test_contained_grid_overlaps_its_container():
    children, parents = two_squares(extra=[box(120, 20, 140, 40)])
    report = validate_level(children, parents)
    (overlap,) = report.by_kind("overlap")
    assert overlap.codes == ("B", "E0") and overlap.area_m2 == pytest.approx(400.0)


def test_gap_area_width_and_neighbours():
    children, parents = two_squares(left_x1=90)
    report = validate_level(children, parents)
    (gap,) = report.by_kind("gap")
    assert gap.area_m2 == pytest.approx(1000.0)
    assert gap.width_m == pytest.approx(10.0, rel=0.02)
    assert gap.codes == ("A", "B")
    assert report.summary()["gaps"] == {"count": 1, "area_m2": 1000.0}


def test_outside_parent():
    children, parents = two_squares()
    children = grid_frame([box(-20, 0, 100, 100), box(100, 0, 200, 100)], ["A", "B"])
    report = validate_level(children, parents)
    (outside,) = report.by_kind("outside_parent")
    assert outside.codes == ("A",) and outside.area_m2 == pytest.approx(2000.0)
    assert kinds(report) == ["outside_parent"]


def test_edge_mismatch_on_t_junction_without_overlap_or_gap():
    children, parents = t_junction()
    report = validate_level(children, parents)
    assert kinds(report) == ["edge_mismatch", "edge_mismatch"]
    lines = [f.geometry for f in report.by_kind("edge_mismatch")]
    assert all(shapely.get_type_id(g) in (1, 5) for g in lines)   # (multi)linestrings
    assert report.summary()["edge_mismatches"] == 2


def test_bow_tie_reported_with_reason_and_location_and_overlaid_repaired():
    children, parents = bow_tie()
    report = validate_level(children, parents)
    (invalid,) = report.by_kind("invalid_geometry")
    assert invalid.codes == ("A",)
    assert "Self-intersection" in invalid.detail["reason"]
    assert invalid.geometry.equals_exact(shapely.Point(500050, 3300050), 1e-6)
    # structure repair keeps the left and right triangles: top and bottom ones are gaps
    gaps = report.by_kind("gap")
    assert [g.area_m2 for g in gaps] == [pytest.approx(2500.0)] * 2


@pytest.mark.parametrize("geom, reason", [
    (shapely.Polygon(), "empty geometry"),
    (None, "missing geometry"),
    (shapely.LineString([(500000, 3300000), (500100, 3300100)]), "not polygonal: LineString"),
])
def test_empty_missing_and_non_polygonal(geom, reason):
    children = grid_frame([box(0, 0, 100, 100), geom], ["A", "B"])
    report = validate_level(children, parent_frame([box(0, 0, 100, 100)]))
    (invalid,) = report.by_kind("invalid_geometry")
    assert invalid.codes == ("B",) and invalid.detail["reason"] == reason
    assert report.by_kind("gap") == []


def test_orphan_childless_and_straddling():
    children, parents = two_parents()
    children.loc[2, "parent_code"] = "X"          # D names an unknown parent
    report = validate_level(children, parents)
    (orphan,) = report.by_kind("orphan")
    assert orphan.codes == ("D",) and orphan.detail["reason"] == "unknown parent code"
    (childless,) = report.by_kind("childless_parent")
    assert childless.codes == ("Q",) and childless.level == 3
    (straddle,) = report.by_kind("straddles_parents")
    assert straddle.codes == ("C",)
    assert straddle.detail["parent_shares"] == {"P": 0.5, "Q": 0.5}
    assert straddle.area_m2 == pytest.approx(20000.0)
    (outside,) = report.by_kind("outside_parent")
    assert outside.codes == ("C",) and outside.area_m2 == pytest.approx(10000.0)


def test_missing_parent_code_is_an_orphan():
    children, parents = two_squares()
    children.loc[1, "parent_code"] = None
    report = validate_level(children, parents)
    (orphan,) = report.by_kind("orphan")
    assert orphan.codes == ("B",) and orphan.detail["reason"] == "missing parent code"


def test_duplicate_code():
    children, parents = two_squares(codes=("A", "A"))
    report = validate_level(children, parents)
    (dup,) = report.by_kind("duplicate_code")
    assert dup.codes == ("A",) and dup.detail["count"] == 2
    assert report.summary()["duplicate_codes"] == 1


def test_sliver_part_of_multipolygon_by_width_not_area():
    thin = box(0, 100, 200, 103)                 # 600 m2 but only 3 m wide
    a = shapely.MultiPolygon([box(0, 0, 200, 98), thin])
    children = grid_frame([a], ["A"])
    report = validate_level(children, parent_frame([box(0, 0, 200, 103)]), sliver_width=10)
    (sliver,) = report.by_kind("sliver")
    assert sliver.codes == ("A",) and sliver.width_m == pytest.approx(3.0, rel=0.02)
    assert sliver.area_m2 == pytest.approx(600.0) and sliver.detail["parts"] == 2
    # A wide but small grid is not a sliver
    small = grid_frame([box(0, 0, 12, 12)], ["S"])
    assert validate_level(small, sliver_width=10).by_kind("sliver") == []


def test_holes_when_there_is_no_parent_layer():
    report = validate_level(ring_with_hole())
    (gap,) = report.by_kind("gap")
    assert gap.area_m2 == pytest.approx(400.0)
    assert gap.codes == ("E", "N", "S", "W")
    assert gap.parent_code is None


def test_hierarchy_in_one_run_with_cross_level_duplicate():
    children, parents = two_squares(left_x1=90)
    city = grid_frame([box(0, 0, 200, 100)], ["C"], [None], level=2)
    parents = parent_frame([box(0, 0, 200, 100)], ["P"], level=3)
    parents["parent_code"] = "C"
    children.loc[0, "code"] = "C"                # code C is used on levels 2 and 4
    report = validate_hierarchy({2: city, 3: parents, 4: children})
    assert report.features_by_level == {2: 1, 3: 1, 4: 2}
    assert [f.kind for f in report.findings if f.level == 4] == ["gap"]
    (dup,) = [f for f in report.findings if f.kind == "duplicate_code"]
    assert dup.level is None and dup.detail["levels"] == [2, 4]
    levels = report.level_summaries()
    assert [entry["level"] for entry in levels] == [2, 3, 4]
    assert levels[2]["gaps"]["count"] == 1 and levels[1]["valid"]


def test_hierarchy_from_one_frame_with_level_column():
    children, parents = two_squares()
    import pandas as pd
    frame = pd.concat([parents, children], ignore_index=True)
    report = validate_hierarchy(frame)
    assert report.valid and report.features_by_level == {3: 1, 4: 2}


def test_input_errors_name_the_problem():
    children, parents = two_squares()
    with pytest.raises(InputError, match="no code field 'gid'") as exc:
        validate_level(children, code_field="gid")
    assert any("code" in line for line in exc.value.details)
    children.loc[1, "code"] = None
    with pytest.raises(InputError, match="1 features have no code"):
        validate_level(children, parents)
    with pytest.raises(CRSError, match="different CRSs"):
        validate_level(two_squares()[0], parents.to_crs(4490))


def test_fingerprints_stable_and_accepted_findings_set_apart():
    children, parents = two_squares(left_x1=90)
    first = validate_level(children, parents)
    again = validate_level(children.copy(), parents.copy())
    assert [f.fingerprint for f in first.findings] == [f.fingerprint for f in again.findings]
    (gap,) = first.findings
    accepted = validate_level(children, parents, accepted=[gap.fingerprint])
    assert accepted.valid and accepted.findings[0].accepted
    summary = accepted.summary()
    assert summary["accepted"] == 1 and summary["gaps"]["count"] == 0
    moved = validate_level(two_squares(left_x1=80)[0], parents, accepted=[gap.fingerprint])
    assert not moved.valid     # the geometry changed: the exception no longer applies


def whole_level_mismatches(children):
    """Codes of features GEOS flags when one coverage check runs over the whole level."""
    edges = shapely.coverage_invalid_edges(children.geometry.values)
    return {code for code, e in zip(children["code"], edges) if not e.is_empty}


def test_vertex_mismatch_across_parent_border_is_found():
    children, parents = across_border(extra_vertex=True)
    assert validate_level(children[children["parent_code"] == "P"], parents[:1]).findings == []
    report = validate_level(children, parents)
    assert kinds(report) == ["edge_mismatch", "edge_mismatch"]
    assert {f.codes[0] for f in report.by_kind("edge_mismatch")} == {"A2", "B1"}
    assert {f.codes[0] for f in report.by_kind("edge_mismatch")} == whole_level_mismatches(children)
    b1 = next(f for f in report.by_kind("edge_mismatch") if f.codes == ("B1",))
    assert b1.parent_code == "Q" and b1.detail["length_m"] == pytest.approx(100.0)


def test_child_pushed_over_the_border_flags_the_neighbour_of_the_other_parent():
    children, parents = across_border(shift=2.0)
    report = validate_level(children, parents)
    flagged = {f.codes[0] for f in report.by_kind("edge_mismatch")}
    assert flagged == whole_level_mismatches(children) == {"A2", "B1"}
    (outside,) = report.by_kind("outside_parent")
    assert outside.codes == ("A2",) and outside.area_m2 == pytest.approx(200.0)
    (gap,) = report.by_kind("gap")
    assert gap.parent_code == "P" and gap.area_m2 == pytest.approx(200.0)
    # the overlap crosses partitions: it is reported as A2's part outside P, not as an overlap
    assert report.by_kind("overlap") == []


def test_clean_hierarchy_skips_nothing_it_should_report():
    """Children that fill their parent exactly but one is nested in another: still found."""
    children, parents = two_squares(extra=[box(20, 20, 40, 40)])
    report = validate_level(children, parents)
    (overlap,) = report.by_kind("overlap")
    assert overlap.codes == ("A", "E0") and overlap.area_m2 == pytest.approx(400.0)


@pytest.mark.parametrize("width, sliver", [(9.7, True), (10.3, False)])
def test_sliver_decision_near_the_threshold_is_refined(width, sliver):
    strip = shapely.Polygon([(500000, 3300000), (500300, 3300000), (500300, 3300000 + width),
                             (500150, 3300000 + width * 1.02), (500000, 3300000 + width)])
    report = validate_level(grid_frame([strip], ["S"]), sliver_width=10)
    found = report.by_kind("sliver")
    assert bool(found) is sliver
    if found:
        assert found[0].width_m == pytest.approx(width, abs=0.2)
        assert found[0].detail["width_tolerance_m"] <= 0.5


def test_fingerprint_of_a_geometry_set_precision_cannot_node():
    from gisgrid.coverage.report import fingerprint_of

    thin = shapely.Polygon([(476180.988, 3301692.338), (476552.327, 3301670.684),
                            (476720.801, 3301861.396), (476551.304, 3301669.526),
                            (476180.549, 3301691.147)])
    assert not thin.is_valid
    assert fingerprint_of("outside_parent", ["B"], thin) == fingerprint_of("outside_parent", ["B"],
                                                                             thin)
