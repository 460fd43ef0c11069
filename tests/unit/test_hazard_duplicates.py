"""Duplicate suggestion: same unit and category, or within the category's radius (metres)."""

from __future__ import annotations

import math

import geopandas as gpd
import pytest

from gisgrid.errors import InputError
from gisgrid.hazards.duplicates import NEARBY, SAME_UNIT, suggest_duplicates

LON, LAT = 113.90, 29.72  # Chibi
M_PER_DEG_LON = 111_320 * math.cos(math.radians(LAT))


def hazards(*rows):
    """Frame of existing hazards from (id, east_offset_m, category, unit_id, state) rows."""
    ids, xs, cats, units, states = zip(*rows)
    return gpd.GeoDataFrame(
        {"id": ids, "category": cats, "unit_id": units, "state": states},
        geometry=gpd.points_from_xy([LON + dx / M_PER_DEG_LON for dx in xs], [LAT] * len(xs)),
        crs=4490,
    )


def test_nearby_within_default_radius_only():
    frame = hazards((1, 30, "fireworks", None, "reported"),
                    (2, 70, "fireworks", None, "handling"))
    found = suggest_duplicates(LON, LAT, "fireworks", frame)
    assert [(c.hazard_id, c.reason) for c in found] == [(1, NEARBY)]
    assert found[0].distance_m == pytest.approx(30, abs=0.5)


def test_power_lines_have_a_larger_radius():
    frame = hazards((1, 150, "power_line", None, "reported"),
                    (2, 150, "fireworks", None, "reported"),
                    (3, 250, "power_line", None, "reported"))
    assert [c.hazard_id for c in suggest_duplicates(LON, LAT, "power_line", frame)] == [1]
    assert suggest_duplicates(LON, LAT, "fireworks", frame) == []


def test_same_unit_and_category_at_any_distance_comes_first():
    frame = hazards((1, 5000, "elevator", 42, "accepted"),
                    (2, 10, "elevator", None, "reported"),
                    (3, 5000, "fire_passage", 42, "reported"),
                    (4, 6000, "elevator", 43, "reported"))
    found = suggest_duplicates(LON, LAT, "elevator", frame, unit_id=42)
    assert [(c.hazard_id, c.reason) for c in found] == [(1, SAME_UNIT), (2, NEARBY)]


def test_closed_voided_and_self_are_not_candidates():
    frame = hazards((1, 1, "other", None, "closed"),
                    (2, 1, "other", None, "voided"),
                    (3, 1, "other", None, "suspended"),
                    (4, 0, "other", None, "reported"))
    assert [c.hazard_id for c in suggest_duplicates(LON, LAT, "other", frame, exclude_id=4)] == [3]


def test_empty_and_unknown_category():
    assert suggest_duplicates(LON, LAT, "other", hazards((1, 1, "other", None, "reported")).iloc[:0]) == []
    with pytest.raises(InputError, match="category"):
        suggest_duplicates(LON, LAT, "nope", hazards((1, 1, "other", None, "reported")))
