"""Routing rule: village/community normally, township for major, nearest township outside."""

from __future__ import annotations

import pytest

from gisgrid.hazards.routing import GridChain, route_hazard
from gisgrid.levels import Level

FULL = GridChain(city_grid_id=1, township_grid_id=2, village_grid_id=3, base_grid_id=4)


def test_ordinary_goes_to_village_major_to_township():
    assert route_hazard(FULL, major=False).routed_to_grid_id == 3
    routed = route_hazard(FULL, major=True)
    assert (routed.routed_to_grid_id, routed.level) == (2, Level.TOWNSHIP)
    assert not FULL.outside_grids


@pytest.mark.parametrize("major", [False, True])
def test_outside_every_grid_goes_to_nearest_township(major):
    routed = route_hazard(GridChain(), major=major, nearest_township_id=9)
    assert (routed.routed_to_grid_id, routed.level) == (9, Level.TOWNSHIP)
    assert GridChain().outside_grids


def test_outside_with_no_grid_at_all_is_still_routed_nowhere_not_refused():
    routed = route_hazard(GridChain(), major=False)
    assert routed.routed_to_grid_id is None and "no township" in routed.reason


def test_missing_level_falls_back_upwards():
    chain = GridChain(city_grid_id=1, township_grid_id=None, village_grid_id=None, base_grid_id=4)
    routed = route_hazard(chain, major=False)
    assert (routed.routed_to_grid_id, routed.level) == (1, Level.CITY)
    assert route_hazard(GridChain(base_grid_id=4), major=True).routed_to_grid_id == 4
