"""The demo city generator: deterministic, near the target counts, seamless except on purpose."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from gisgrid.crs import local_metric_crs
from gisgrid.demo.city import CITY_CODE, build_demo_city, read_demo_outline
from gisgrid.errors import InputError
from gisgrid.levels import Level

GRID_COLUMNS = ["code", "name", "level", "kind", "parent_code", "org", "geom"]


@pytest.fixture(scope="module")
def city():
    return build_demo_city()


@pytest.fixture(scope="module")
def clean_city():
    """A small city without defects: every level must be an exact coverage of its parent."""
    return build_demo_city(townships=5, villages=20, base_grids=120, defects=False, seed=7)


def _metric_area(geoms, crs):
    import geopandas as gpd
    series = gpd.GeoSeries(list(geoms), crs=crs)
    return series.to_crs(local_metric_crs(series)).area.to_numpy()


def test_same_seed_gives_byte_identical_geometries(city):
    again = build_demo_city()
    for level in Level:
        a, b = city.grids[level], again.grids[level]
        assert a.drop(columns="geom").equals(b.drop(columns="geom"))
        assert shapely.to_wkb(a.geometry.values).tolist() == \
            shapely.to_wkb(b.geometry.values).tolist()
    assert city.defects == again.defects


def test_another_seed_gives_another_city(city):
    other = build_demo_city(seed=1, townships=5, villages=20, base_grids=60)
    assert len(other.grids[Level.BASE]) == 60
    assert not other.grids[Level.TOWNSHIP].geometry.iloc[0].equals(
        city.grids[Level.TOWNSHIP].geometry.iloc[0])


def test_counts_match_the_targets(city):
    assert [len(city.grids[level]) for level in Level] == [1, 12, 150, 1500]


def test_frames_follow_the_grid_frame_contract(city):
    for level in Level:
        frame = city.grids[level]
        assert list(frame.columns) == GRID_COLUMNS
        assert frame.geometry.name == "geom"
        assert frame.crs.to_epsg() == 4490
        assert set(frame.level) == {int(level)}
        assert set(frame.kind) <= set(level.kinds)
        assert frame.code.is_unique and frame.code.is_monotonic_increasing
        assert frame.name.str.len().min() > 0 and frame.org.str.len().min() > 0
        assert shapely.is_valid(frame.geometry.values).all()
        assert not shapely.is_empty(frame.geometry.values).any()


def test_codes_are_dotted_paths_with_valid_parents(city):
    all_codes = set(city.all_grids().code)
    assert city.grids[Level.CITY].parent_code.iloc[0] is None
    assert city.grids[Level.CITY].code.iloc[0] == CITY_CODE
    widths = {Level.TOWNSHIP: 2, Level.VILLAGE: 3, Level.BASE: 4}
    for level, width in widths.items():
        frame = city.grids[level]
        parents = frame.code.str.rsplit(".", n=1).str[0]
        assert (parents == frame.parent_code).all()
        assert set(frame.parent_code) <= all_codes
        assert set(frame.parent_code) == set(city.grids[level.parent].code)  # no childless
        assert (frame.code.str.rsplit(".", n=1).str[1].str.len() == width).all()
    assert len(all_codes) == 1 + 12 + 150 + 1500


def test_kinds_names_and_organisations_read_like_the_plan(city):
    towns = city.grids[Level.TOWNSHIP]
    assert towns.name.iloc[0] == "蒲圻街道" and towns.kind.iloc[0] == "street"
    assert (towns.kind == "street").sum() == 3
    assert towns.loc[towns.kind == "street", "org"].str.endswith("街道办事处").all()
    villages = city.grids[Level.VILLAGE]
    assert 10 <= (villages.kind == "community").sum() <= 100
    assert villages.loc[villages.kind == "community", "org"].str.endswith("社区居民委员会").all()
    assert villages.loc[villages.kind == "village", "org"].str.endswith("村村民委员会").all()
    assert villages.name.is_unique
    base = city.grids[Level.BASE]
    assert base.name.iloc[0].endswith("第1网格")
    parent_org = villages.set_index("code").org
    assert (base.org.to_numpy() == parent_org.loc[base.parent_code].to_numpy()).all()


def test_outline_repair_is_recorded(city):
    repair = city.outline_repair
    assert repair.repaired and not repair.valid_before
    assert "Self-intersection" in repair.reason
    assert "make_valid" in repair.method
    assert repair.area_after_m2 == pytest.approx(1.705e9, rel=0.01)
    assert not read_demo_outline().geometry.is_valid.all()   # the shipped file stays invalid


def test_no_level_has_holes_since_the_outline_has_none(city):
    assert shapely.get_num_interior_rings(city.outline) == 0
    for level in (Level.CITY, Level.TOWNSHIP, Level.VILLAGE):
        assert shapely.get_num_interior_rings(city.grids[level].geometry.values).sum() == 0


def test_city_area_equals_the_repaired_outline(city):
    city_area = _metric_area(city.grids[Level.CITY].geometry.values, "EPSG:4490")[0]
    assert city_area == pytest.approx(city.outline_repair.area_after_m2, rel=1e-4)


@pytest.mark.parametrize("level", [Level.TOWNSHIP, Level.VILLAGE, Level.BASE])
def test_every_level_is_an_exact_coverage_of_its_parent_without_defects(clean_city, level):
    _assert_children_cover_parents(clean_city, level)


@pytest.mark.parametrize("level", [Level.TOWNSHIP, Level.VILLAGE])
def test_upper_levels_stay_seamless_with_defects(city, level):
    _assert_children_cover_parents(city, level)


def _assert_children_cover_parents(city, level):
    children = city.grids[level]
    # gap_width (degrees, about 1 m) also finds slivers between siblings inside the parent
    assert shapely.coverage_is_valid(children.geometry.values, gap_width=1e-5)
    assert shapely.get_num_interior_rings(children.geometry.values).sum() == 0
    parents = city.grids[level.parent].set_index("code").geometry
    for parent_code, group in children.groupby("parent_code"):
        union = shapely.coverage_union_all(group.geometry.values)
        diff = shapely.symmetric_difference(union, parents.loc[parent_code])
        assert shapely.area(diff) < 1e-12, parent_code


def test_base_level_has_exactly_the_injected_gap_and_overlap(city):
    kinds = sorted(d.kind for d in city.defects)
    assert kinds == ["gap", "overlap"]
    base = city.grids[Level.BASE]
    geoms = base.set_index("code").geometry
    villages = city.grids[Level.VILLAGE].set_index("code").geometry
    broken_parents = {d.parent_code for d in city.defects}
    for defect in city.defects:
        first, second = (geoms.loc[c] for c in defect.codes)
        if defect.kind == "overlap":
            overlap = shapely.intersection(first, second)
            assert _metric_area([overlap], "EPSG:4490")[0] == pytest.approx(defect.area_m2,
                                                                           rel=0.01)
        else:
            siblings = base.loc[base.parent_code == defect.parent_code].geometry.values
            gap = shapely.difference(villages.loc[defect.parent_code],
                                     shapely.union_all(siblings))
            assert _metric_area([gap], "EPSG:4490")[0] == pytest.approx(defect.area_m2,
                                                                       rel=0.01)
        assert 1000 < defect.area_m2 < 20000
    assert not shapely.coverage_is_valid(base.geometry.values)
    # every other village is still covered exactly by its base grids
    for parent_code, group in base.groupby("parent_code"):
        if parent_code in broken_parents:
            continue
        union = shapely.coverage_union_all(group.geometry.values)
        assert shapely.area(shapely.symmetric_difference(union, villages.loc[parent_code])) \
            < 1e-12, parent_code


def test_coordinates_sit_on_the_storage_precision_grid(city):
    coords = shapely.get_coordinates(city.grids[Level.BASE].geometry.values)
    assert np.allclose(coords * 1e7, np.round(coords * 1e7), atol=1e-3)


def test_urban_grids_are_smaller_than_rural_ones(city):
    villages = city.grids[Level.VILLAGE]
    area = _metric_area(villages.geometry.values, "EPSG:4490")
    assert np.median(area[villages.kind == "community"]) < \
        np.median(area[villages.kind == "village"])


def test_centres_lie_in_their_grids(city):
    centres = city.centres.set_index("code").geometry
    for level in (Level.TOWNSHIP, Level.VILLAGE):
        frame = city.grids[level]
        points = centres.loc[frame.code].to_numpy()
        assert shapely.covers(frame.geometry.values, points).all()


def test_bad_counts_are_refused_all_at_once():
    with pytest.raises(InputError) as caught:
        build_demo_city(townships=40, villages=10, base_grids=5)
    assert len(caught.value.details) == 3
