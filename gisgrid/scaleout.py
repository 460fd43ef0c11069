"""The point-to-grid assignment over Dask partitions, for data that outgrows one machine.

The grid index (:class:`gisgrid.assign.GridIndex`) is built once, on the client, and shipped
to each worker once (a single task in the graph, or scattered with ``broadcast=True`` when a
``Client`` is given); every partition is then assigned with the same pure
:func:`gisgrid.assign.assign_points` used in memory, so the results are identical.
See ``docs/scale-out.md`` for running it on a cluster.
"""

from __future__ import annotations

import dask
import dask.dataframe as dd
import geopandas as gpd
import numpy as np
import pandas as pd

from gisgrid.assign import GridIndex, assign_frame, assign_points
from gisgrid.errors import InputError


def assign_points_dask(
    ddf: dd.DataFrame,
    grids: GridIndex | gpd.GeoDataFrame,
    *,
    xy: tuple[str, str] | None = None,
    client=None,
) -> dd.DataFrame:
    """Add the grid chain columns to every partition of ``ddf``.

    Parameters
    ----------
    ddf : dask_geopandas.GeoDataFrame or dask.dataframe.DataFrame
        Points. A dask-geopandas frame is assigned by its point geometry, which must be in the
        grids' CRS; a plain Dask frame needs ``xy``.
    grids : GridIndex or GeoDataFrame
        A built index, or base grids with their chain (see :meth:`GridIndex.build`).
    xy : (str, str), optional
        Names of the x (lon) and y (lat) columns, in the grids' CRS, for a plain frame.
    client : distributed.Client, optional
        When given, the index is scattered to every worker up front (``broadcast=True``);
        otherwise it travels as one shared task of the graph.

    Returns
    -------
    dask DataFrame of the same kind, lazy: ``ddf``'s columns plus ``base_grid_id``,
    ``village_grid_id``, ``township_grid_id``, ``city_grid_id`` (nullable Int64) and
    ``outside_grids`` (bool).
    """
    index = grids if isinstance(grids, GridIndex) else GridIndex.build(grids)
    if xy is None and not hasattr(ddf, "geometry"):
        raise InputError("the points frame has no geometry: pass xy=(lon_column, lat_column)")
    if xy is not None:
        missing = [c for c in xy if c not in ddf.columns]
        if missing:
            raise InputError("the points frame lacks the coordinate columns: "
                             + ", ".join(missing))
    meta = assign_partition(ddf._meta, index, xy=xy)
    shared = (client.scatter(index, broadcast=True) if client is not None
              else dask.delayed(index, pure=True))
    return ddf.map_partitions(assign_partition, shared, xy=xy, meta=meta)


def assign_partition(part: pd.DataFrame, index: GridIndex, *,
                     xy: tuple[str, str] | None = None) -> pd.DataFrame:
    """One partition with its chain columns appended (the unit of work on a worker)."""
    if xy is None:
        chain = assign_frame(index, part.geometry)
    else:
        x = pd.to_numeric(part[xy[0]], errors="coerce").to_numpy(dtype=np.float64)
        y = pd.to_numeric(part[xy[1]], errors="coerce").to_numpy(dtype=np.float64)
        chain = assign_points(index, x, y).to_frame(index=part.index)
    out = part.copy()
    for name in chain.columns:
        out[name] = chain[name]
    return out
