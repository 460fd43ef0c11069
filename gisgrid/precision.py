"""The precision policy: every stored coordinate is snapped to one fixed grid.

Neighbouring grids then share vertex-identical boundaries, so coverage checks stay exact
after any change. The grid size depends on the CRS units: 1e-7 degree (about 1 cm) for a
geographic storage CRS, 0.01 m for a projected one.
"""

from __future__ import annotations

import pyproj
import shapely

GEOGRAPHIC_GRID_SIZE = 1e-7
PROJECTED_GRID_SIZE = 0.01


def grid_size_for(crs) -> float:
    """The snapping grid size for coordinates in ``crs``.

    >>> grid_size_for("EPSG:4490")
    1e-07
    """
    crs = pyproj.CRS.from_user_input(crs)
    return GEOGRAPHIC_GRID_SIZE if crs.is_geographic else PROJECTED_GRID_SIZE


def snap(geometries, crs):
    """Snap the coordinates of ``geometries`` (array-like of shapely geometries) to the grid.

    Uses ``shapely.set_precision`` in its default (valid-output) mode, so a polygon that
    collapses below the grid size becomes empty rather than invalid.
    """
    return shapely.set_precision(geometries, grid_size_for(crs))
