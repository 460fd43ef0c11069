"""Routing (流转) of a new hazard report to the grid that must receive it. Pure.

The plan's reporting route (实施方案, 四级网格职责): the grid worker reports to the
village/community (村/社区), which collects reports and passes them to the township safety
station (乡镇安监站/安办); "如有重大情况" -- a major matter -- the worker reports straight to
the township. So:

========================================  ==========================================
the hazard                                 ``routed_to_grid_id``
========================================  ==========================================
ordinary, inside a base grid               its village/community grid
major (重大), inside a base grid            its township grid
inside, but the chain lacks that level     the next level up that exists
outside every base grid                    the nearest township grid (ordinary or major)
outside, and no grid in the database       ``None`` (stored, flagged, routed by hand)
========================================  ==========================================

A report outside every grid is never refused: it is stored with ``outside_grids = True`` (a
coverage gap for the audit) and sent to the township nearest to it, whose safety station is
the closest body able to act; the grid chain columns stay empty because no grid holds it.
"""

from __future__ import annotations

from dataclasses import dataclass

from gisgrid.levels import Level


@dataclass(frozen=True)
class GridChain:
    """The grids holding a point at each level (ids), ``None`` where no grid holds it."""

    city_grid_id: int | None = None
    township_grid_id: int | None = None
    village_grid_id: int | None = None
    base_grid_id: int | None = None

    @property
    def outside_grids(self) -> bool:
        """True when no base grid holds the point (the fact is kept but flagged)."""
        return self.base_grid_id is None

    def grid_at(self, level: Level) -> int | None:
        return {
            Level.CITY: self.city_grid_id,
            Level.TOWNSHIP: self.township_grid_id,
            Level.VILLAGE: self.village_grid_id,
            Level.BASE: self.base_grid_id,
        }[level]


@dataclass(frozen=True)
class Routing:
    """Where a report goes: the grid id, its level, and why (a short English reason)."""

    routed_to_grid_id: int | None
    level: Level | None
    reason: str


def route_hazard(
    chain: GridChain,
    *,
    major: bool,
    nearest_township_id: int | None = None,
) -> Routing:
    """Decide which grid receives a new hazard report.

    Parameters
    ----------
    chain
        The grids holding the hazard's point.
    major
        Whether the reporter marked it major (重大), which skips the village/community.
    nearest_township_id
        For a point outside every base grid: the township grid nearest to it, if any.

    Examples
    --------
    >>> route_hazard(GridChain(1, 2, 3, 4), major=False).routed_to_grid_id
    3
    >>> route_hazard(GridChain(1, 2, 3, 4), major=True).routed_to_grid_id
    2
    >>> route_hazard(GridChain(), major=False, nearest_township_id=7).reason
    'outside every grid: nearest township'
    """
    if chain.outside_grids:
        if nearest_township_id is None:
            return Routing(None, None, "outside every grid: no township to route to")
        return Routing(nearest_township_id, Level.TOWNSHIP, "outside every grid: nearest township")
    wanted = Level.TOWNSHIP if major else Level.VILLAGE
    level: Level | None = wanted
    while level is not None:
        grid_id = chain.grid_at(level)
        if grid_id is not None:
            kind = "major: straight to the township" if major else "ordinary: village/community"
            reason = kind if level is wanted else f"{kind} (missing; sent to level {int(level)})"
            return Routing(grid_id, level, reason)
        level = level.parent
    return Routing(chain.base_grid_id, Level.BASE, "no parent grid in the chain: the base grid")
