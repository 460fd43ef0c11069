"""Duplicate suggestions (疑似重复隐患) for a newly reported hazard. Pure: frames in, list out.

An existing hazard is suggested as a duplicate of a new one when it is still open (not closed
or voided), has the same category, and either

- concerns the same business unit (``same_unit``), wherever it was pinned, or
- lies within the category's radius (``nearby``; 50 m by default, 200 m for roads, power lines
  and vehicles, 300 m for mining; see :mod:`gisgrid.hazards.categories`).

Distances are metres in the local metric CRS (:func:`gisgrid.crs.local_metric_crs_for`), never
degrees. Suggestions are only suggestions: a person links one with ``link_duplicate``.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import pandas as pd
import shapely

from gisgrid.crs import local_metric_crs_for, require_crs
from gisgrid.hazards.categories import get_category
from gisgrid.hazards.workflow import OPEN_STATES, State

SAME_UNIT = "same_unit"
NEARBY = "nearby"


@dataclass(frozen=True)
class DuplicateCandidate:
    """An open hazard that may report the same thing; ``reason`` is ``same_unit`` or ``nearby``."""

    hazard_id: int
    reason: str
    distance_m: float


def suggest_duplicates(
    lon: float,
    lat: float,
    category: str,
    existing: gpd.GeoDataFrame,
    *,
    unit_id: int | None = None,
    exclude_id: int | None = None,
) -> list[DuplicateCandidate]:
    """Open hazards in ``existing`` that may duplicate a new report at (lon, lat).

    Parameters
    ----------
    lon, lat
        The new hazard's position in degrees (CGCS2000 / WGS 84).
    category
        The new hazard's category key.
    existing
        Hazards to compare with: columns ``id``, ``category``, ``unit_id``, ``state`` and a
        point geometry in a declared CRS.
    unit_id
        The new hazard's business unit, when known.
    exclude_id
        Id of the new hazard itself, when it is already stored.

    Returns
    -------
    list of DuplicateCandidate
        Same-unit matches first, then by distance.

    Examples
    --------
    >>> frame = gpd.GeoDataFrame(
    ...     {"id": [1, 2], "category": ["fireworks"] * 2, "unit_id": [None, None],
    ...      "state": ["reported", "closed"]},
    ...     geometry=gpd.points_from_xy([113.90003, 113.90003], [29.7, 29.7]), crs=4490)
    >>> suggest_duplicates(113.9, 29.7, "fireworks", frame)
    [DuplicateCandidate(hazard_id=1, reason='nearby', distance_m=2.9)]
    """
    radius = get_category(category).duplicate_radius_m
    if existing.empty:
        return []
    require_crs(existing, "the existing hazards")
    metric = local_metric_crs_for(lon, lat)
    here = gpd.GeoSeries([shapely.Point(lon, lat)], crs=4490).to_crs(metric).iloc[0]
    frame = existing.to_crs(metric)
    open_keys = {s.value for s in OPEN_STATES}
    mask = frame["state"].map(lambda s: State.parse(s).value in open_keys)
    mask &= frame["category"] == category
    if exclude_id is not None:
        mask &= frame["id"] != exclude_id
    frame = frame[mask]
    distances = frame.geometry.distance(here)
    if unit_id is not None:
        same_unit = frame["unit_id"].map(lambda u: not pd.isna(u) and int(u) == int(unit_id))
    else:
        same_unit = pd.Series(False, index=frame.index)
    found = []
    for idx in frame.index:
        if same_unit[idx]:
            reason = SAME_UNIT
        elif distances[idx] <= radius:
            reason = NEARBY
        else:
            continue
        found.append(DuplicateCandidate(int(frame.at[idx, "id"]), reason, round(float(distances[idx]), 1)))
    found.sort(key=lambda c: (c.reason != SAME_UNIT, c.distance_m, c.hazard_id))
    return found
