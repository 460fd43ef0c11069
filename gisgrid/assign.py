"""Assign points to their grid chain: base grid, village/community, township and city.

This is the hot path of every fact that has a place (GPS points, hazards, units). It is pure:
arrays and frames in, arrays and frames out, no I/O.

How it is fast
--------------
Base grids tessellate the city, so most points can be resolved without an exact geometric
test. :meth:`GridIndex.build` lays a fine lookup raster over the grids:

* every cell crossed by a grid edge (a *boundary cell*) is marked "needs an exact test";
* every other cell lies wholly inside one grid, or wholly outside every grid; one exact test
  per horizontal run of such cells labels the whole run.

:func:`assign_points` then resolves most points with one array lookup; only points in
boundary cells go through the exact ``intersects`` test of a :class:`shapely.STRtree`.

The tie rule
------------
A point lies in a grid when the grid *covers* it (interior or boundary). A point on an edge or
vertex shared by several grids is assigned to the one with the **smallest base grid id**;
never to none, never to two. (``geopandas.sjoin(predicate="within")`` gives such a point no grid
at all; that is the only documented difference from it.) The same rule decides between
overlapping grids if the coverage is invalid.

A point with a NaN coordinate, an empty geometry, or outside every base grid is *outside*: its
grid ids are ``-1`` (``NULL`` once stored) and ``outside`` is True. It is never dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from gisgrid.crs import require_crs
from gisgrid.errors import CRSError, InputError
from gisgrid.levels import Level

#: Names of the chain columns, base level first, as carried by every fact table.
CHAIN_COLUMNS = ("base_grid_id", "village_grid_id", "township_grid_id", "city_grid_id")

_OUTSIDE = -1  # lookup value: the cell lies outside every grid
_EDGE = -2  # lookup value: a grid edge crosses the cell, an exact test is needed
_DEFAULT_CELLS_PER_GRID = 1024
_MAX_CELLS = 1 << 25  # 32 M cells (128 MB of int32) at most
_BLOCK_CELLS = 1 << 20  # raster cells labelled at a time while building


@dataclass(frozen=True)
class AssignedChain:
    """The grid chain of each point, as parallel arrays (``-1`` where there is no grid).

    Attributes
    ----------
    base_grid_id, village_grid_id, township_grid_id, city_grid_id : numpy.ndarray of int64
        Grid ids per point; ``-1`` when the point is outside every base grid (or when a base
        grid has no ancestor recorded at that level).
    outside : numpy.ndarray of bool
        True where the point is outside every base grid (NaN coordinates included).
    """

    base_grid_id: np.ndarray
    village_grid_id: np.ndarray
    township_grid_id: np.ndarray
    city_grid_id: np.ndarray
    outside: np.ndarray

    def __len__(self) -> int:
        return len(self.outside)

    def take(self, order: np.ndarray) -> "AssignedChain":
        """The chain of the points at positions ``order``."""
        return AssignedChain(*(getattr(self, name)[order]
                               for name in (*CHAIN_COLUMNS, "outside")))

    def to_frame(self, index=None) -> pd.DataFrame:
        """The chain as a frame: nullable ``Int64`` id columns and bool ``outside_grids``."""
        data = {}
        for name in CHAIN_COLUMNS:
            values = getattr(self, name)
            data[name] = pd.array(np.where(values < 0, 0, values), dtype="Int64")
            data[name][values < 0] = pd.NA
        data["outside_grids"] = self.outside
        return pd.DataFrame(data, index=index)


@dataclass(frozen=True)
class _LookupRaster:
    """A regular raster over the grids' extent: one int32 code per cell (see module doc)."""

    x0: float
    y0: float
    cell_size: float
    nx: int
    ny: int
    codes: np.ndarray  # int32, shape (ny * nx,): grid position, _OUTSIDE or _EDGE

    def locate(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The code of the cell under each point; ``_OUTSIDE`` off the raster or for NaN."""
        inv = 1.0 / self.cell_size
        u = (x - self.x0) * inv
        v = (y - self.y0) * inv
        on = (u >= 0) & (u < self.nx) & (v >= 0) & (v < self.ny)  # False for NaN
        codes = np.full(len(x), _OUTSIDE, dtype=np.int32)
        if on.all():
            cell = v.astype(np.int64) * self.nx + u.astype(np.int64)
            codes[:] = self.codes[cell]
        else:
            cell = v[on].astype(np.int64) * self.nx + u[on].astype(np.int64)
            codes[on] = self.codes[cell]
        return codes


@dataclass(frozen=True)
class GridIndex:
    """An in-memory index of the current base grids and their ancestors, for assignment.

    Build it with :meth:`GridIndex.build` (from base grids that carry their chain) or
    :func:`build_grid_index` (from a grid frame of all four levels). It pickles, so it can be
    broadcast to Dask workers.

    Attributes
    ----------
    geoms : numpy.ndarray of shapely.Polygon
        Base grid geometries, in the index's CRS.
    chain : numpy.ndarray of int64, shape (n + 1, 4)
        Ids per base grid in :data:`CHAIN_COLUMNS` order; the extra last row is all ``-1``
        (the "outside" row, so that ``chain[position]`` works for position ``-1``).
    crs : pyproj.CRS
        CRS of the grids; points must be given in it.
    """

    geoms: np.ndarray
    chain: np.ndarray
    crs: pyproj.CRS
    raster: _LookupRaster
    tree: shapely.STRtree = field(repr=False)

    @classmethod
    def build(
        cls,
        base_grids: gpd.GeoDataFrame,
        *,
        cells_per_grid: int = _DEFAULT_CELLS_PER_GRID,
    ) -> "GridIndex":
        """Index base grids that carry their chain.

        Parameters
        ----------
        base_grids : GeoDataFrame
            One row per base grid: ``id`` (int) and the ids of its ancestors
            ``village_grid_id``, ``township_grid_id``, ``city_grid_id`` (int, or null when
            unknown); polygon geometry in a declared CRS.
        cells_per_grid : int
            Lookup-raster cells per grid on average: more cells means fewer exact tests and
            more memory (at most 32 M cells, 128 MB).

        Raises
        ------
        InputError
            Naming every missing column, duplicate id, or non-polygon geometry.
        CRSError
            If the grids have no CRS.
        """
        crs = require_crs(base_grids, "the base grids")
        _check_base_grids(base_grids)
        geoms = np.asarray(base_grids.geometry.values, dtype=object)
        chain = np.full((len(base_grids) + 1, 4), _OUTSIDE, dtype=np.int64)
        for k, name in enumerate(CHAIN_COLUMNS):
            column = "id" if name == "base_grid_id" else name
            values = pd.to_numeric(base_grids[column]).astype("Float64")
            chain[:-1, k] = values.fillna(_OUTSIDE).to_numpy(dtype=np.int64)
        tree = shapely.STRtree(geoms)
        raster = _build_raster(geoms, chain[:-1, 0], tree, cells_per_grid)
        return cls(geoms=geoms, chain=chain, crs=crs, raster=raster, tree=tree)

    def __len__(self) -> int:
        return len(self.geoms)

    @property
    def ids(self) -> np.ndarray:
        """Base grid ids, in index order."""
        return self.chain[:-1, 0]

    def edge_cell_share(self) -> float:
        """Share of the raster's cells (inside the grids' extent) that need an exact test."""
        codes = self.raster.codes
        inside = codes != _OUTSIDE
        return float((codes == _EDGE).sum() / max(int(inside.sum()), 1))


def build_grid_index(
    grids: gpd.GeoDataFrame,
    *,
    cells_per_grid: int = _DEFAULT_CELLS_PER_GRID,
) -> GridIndex:
    """Index the base grids of a four-level grid frame, deriving each one's chain.

    Parameters
    ----------
    grids : GeoDataFrame
        Grid frame (columns ``id``, ``code``, ``level``, ``parent_code``) holding base grids and
        their ancestors; only base grids (level 4) are indexed geometrically.

    Returns
    -------
    GridIndex
    """
    return GridIndex.build(build_base_chain(grids), cells_per_grid=cells_per_grid)


def build_base_chain(grids: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Base grids with the ids of their village, township and city ancestors.

    Walks ``parent_code`` up from each base grid (level 4). An ancestor that is missing from
    the frame gives a null id at that level and above.

    >>> import shapely
    >>> frame = gpd.GeoDataFrame({
    ...     "id": [1, 2, 3, 4], "code": ["C", "T", "V", "B"], "level": [1, 2, 3, 4],
    ...     "parent_code": [None, "C", "T", "V"]},
    ...     geometry=[shapely.box(0, 0, 1, 1)] * 4, crs=4490)
    >>> build_base_chain(frame)[["id", "village_grid_id", "township_grid_id", "city_grid_id"]]
       id  village_grid_id  township_grid_id  city_grid_id
    0   4                3                 2             1
    """
    missing = [c for c in ("id", "code", "level", "parent_code") if c not in grids.columns]
    if missing:
        raise InputError("the grid frame lacks columns needed to build the chain: "
                         + ", ".join(missing))
    id_by_code = dict(zip(grids["code"], grids["id"]))
    parent_by_code = dict(zip(grids["code"], grids["parent_code"]))
    base = grids[grids["level"] == int(Level.BASE)]
    out = gpd.GeoDataFrame(
        {"id": base["id"].to_numpy()}, geometry=base.geometry.values, crs=grids.crs,
    )
    upper = {Level.VILLAGE: "village_grid_id", Level.TOWNSHIP: "township_grid_id",
             Level.CITY: "city_grid_id"}
    columns = {name: [] for name in upper.values()}
    for code in base["code"]:
        current = parent_by_code.get(code)
        for level in (Level.VILLAGE, Level.TOWNSHIP, Level.CITY):
            columns[upper[level]].append(id_by_code.get(current) if current is not None else None)
            current = parent_by_code.get(current) if current is not None else None
    for name, values in columns.items():
        out[name] = pd.array([None if v is None else int(v) for v in values], dtype="Int64")
    return out[["id", *upper.values(), out.geometry.name]]


def assign_points(index: GridIndex, x: np.ndarray, y: np.ndarray) -> AssignedChain:
    """Assign each point ``(x[i], y[i])`` (in ``index.crs``) to its grid chain.

    Parameters
    ----------
    index : GridIndex
    x, y : array-like of float
        Coordinates in the index's CRS (lon/lat for the storage CRS). NaN gives *outside*.

    Returns
    -------
    AssignedChain
        Same length and order as the input; see the module doc for the tie rule.

    Examples
    --------
    >>> import shapely
    >>> base = gpd.GeoDataFrame(
    ...     {"id": [10, 11], "village_grid_id": [3, 3], "township_grid_id": [2, 2],
    ...      "city_grid_id": [1, 1]},
    ...     geometry=[shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)], crs=4490)
    >>> chain = assign_points(GridIndex.build(base), [0.5, 1.0, 5.0], [0.5, 0.5, 0.5])
    >>> chain.base_grid_id.tolist(), chain.outside.tolist()
    ([10, 10, -1], [False, False, True])
    """
    x = np.ascontiguousarray(x, dtype=np.float64)
    y = np.ascontiguousarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise InputError(f"x and y must be 1-d arrays of one length, got {x.shape} and {y.shape}")
    position = index.raster.locate(x, y)
    edge = np.flatnonzero(position == _EDGE)
    if len(edge):
        position[edge] = _resolve_exactly(index.tree, index.ids, x[edge], y[edge])
    rows = index.chain[position]  # position -1 selects the all-(-1) outside row
    return AssignedChain(
        base_grid_id=rows[:, 0],
        village_grid_id=rows[:, 1],
        township_grid_id=rows[:, 2],
        city_grid_id=rows[:, 3],
        outside=position < 0,
    )


def find_epochs(epochs: np.ndarray, times: np.ndarray) -> np.ndarray:
    """The epoch of each time: ``i`` with ``epochs[i] <= t < epochs[i + 1]``, ``-1`` before
    the first (``epochs`` sorted ascending, distinct).

    >>> find_epochs(np.array([10, 20]), np.array([5, 10, 19, 20, 99])).tolist()
    [-1, 0, 0, 1, 1]
    """
    return np.searchsorted(np.asarray(epochs), np.asarray(times), side="right") - 1


def assign_points_at(index_at: Callable[[int], GridIndex], epochs: np.ndarray,
                     times: np.ndarray, x: np.ndarray, y: np.ndarray) -> AssignedChain:
    """Assign each point with the grids valid at its time.

    Parameters
    ----------
    index_at : callable
        ``index_at(i)`` is the index of the grids valid from ``epochs[i]`` until
        ``epochs[i + 1]`` (the last one: the current grids); called once per epoch that
        some point falls in (the caller caches).
    epochs : numpy.ndarray of int64
        Sorted distinct instants at which any grid version started or ended.
    times, x, y : numpy.ndarray
        Time of each point (same unit as ``epochs``) and its coordinates.

    Returns
    -------
    AssignedChain
        In input order. A point before the first epoch (no grid existed) is *outside*.
    """
    times = np.asarray(times)
    n = len(times)
    last = len(epochs) - 1
    if n and last >= 0 and times.min() >= epochs[last]:  # the common case: current grids
        return assign_points(index_at(last), x, y)
    x = np.ascontiguousarray(x, dtype=np.float64)
    y = np.ascontiguousarray(y, dtype=np.float64)
    epoch = find_epochs(epochs, times)
    out = {name: np.full(n, _OUTSIDE, dtype=np.int64) for name in CHAIN_COLUMNS}
    outside = np.ones(n, dtype=bool)
    order = np.argsort(epoch, kind="stable")
    cuts = [0, *(np.flatnonzero(np.diff(epoch[order])) + 1).tolist(), n]
    for start, stop in zip(cuts[:-1], cuts[1:]):
        if start == stop or epoch[order[start]] < 0:
            continue  # before every grid version: outside
        at = order[start:stop]
        chain = assign_points(index_at(int(epoch[at[0]])), x[at], y[at])
        for name in CHAIN_COLUMNS:
            out[name][at] = getattr(chain, name)
        outside[at] = chain.outside
    return AssignedChain(**out, outside=outside)


def assign_frame(index: GridIndex, points: gpd.GeoDataFrame | gpd.GeoSeries) -> pd.DataFrame:
    """The chain columns (:data:`CHAIN_COLUMNS` and ``outside_grids``) for point features.

    The CRS of ``points`` must equal the index's; a mismatch raises :class:`CRSError`. Empty
    or missing geometries are *outside*. Returns a frame aligned on ``points.index``.
    """
    crs = require_crs(points, "the points")
    if not crs.equals(index.crs):
        raise CRSError(f"the points are in {crs.to_string()} but the grids in "
                       f"{index.crs.to_string()}: reproject the points first")
    geoms = np.asarray(points.geometry.values, dtype=object)
    kind = shapely.get_type_id(geoms)
    bad = np.flatnonzero((kind != 0) & (kind != -1) & ~shapely.is_empty(geoms))
    if len(bad):
        raise InputError("only point features can be assigned to grids",
                         [f"feature {points.index[i]!r}: {geoms[i].geom_type} is not a point"
                          for i in bad[:20]])
    x = np.full(len(geoms), np.nan)
    y = np.full(len(geoms), np.nan)
    real = (kind == 0) & ~shapely.is_empty(geoms)
    x[real] = shapely.get_x(geoms[real])
    y[real] = shapely.get_y(geoms[real])
    return assign_points(index, x, y).to_frame(index=points.index)


def _check_base_grids(base: gpd.GeoDataFrame) -> None:
    problems = []
    wanted = ["id", "village_grid_id", "township_grid_id", "city_grid_id"]
    missing = [c for c in wanted if c not in base.columns]
    if missing:
        problems.append("missing columns: " + ", ".join(missing))
    else:
        if base["id"].isna().any():
            problems.append("some base grids have no id")
        duplicated = base["id"][base["id"].duplicated()].unique()
        if len(duplicated):
            problems.append("duplicate ids: " + ", ".join(map(str, duplicated[:20])))
    kind = shapely.get_type_id(np.asarray(base.geometry.values, dtype=object))
    bad = np.flatnonzero((kind != 3) & (kind != 6))
    for i in bad[:20]:
        problems.append(f"base grid at row {i}: geometry is not a polygon")
    if problems:
        raise InputError("cannot index the base grids", problems)


def _resolve_exactly(tree: shapely.STRtree, ids: np.ndarray, x: np.ndarray,
                     y: np.ndarray) -> np.ndarray:
    """Exact position of the grid covering each point (smallest id wins), or ``-1``."""
    position = np.full(len(x), _OUTSIDE, dtype=np.int32)
    if not len(x):
        return position
    point_i, grid_i = tree.query(shapely.points(x, y), predicate="intersects")
    if len(point_i):
        order = np.lexsort((ids[grid_i], point_i))
        point_i, grid_i = point_i[order], grid_i[order]
        first = np.r_[True, point_i[1:] != point_i[:-1]]
        position[point_i[first]] = grid_i[first]
    return position


def _build_raster(geoms: np.ndarray, ids: np.ndarray, tree: shapely.STRtree,
                  cells_per_grid: int) -> _LookupRaster:
    """Lay the lookup raster over ``geoms`` (see the module doc).

    Works in blocks of rows so that the temporaries stay small next to the raster itself.
    """
    if not len(geoms):
        return _LookupRaster(0.0, 0.0, 1.0, 1, 1, np.full(1, _OUTSIDE, dtype=np.int32))
    minx, miny, maxx, maxy = shapely.total_bounds(geoms)
    width, height = max(maxx - minx, 1e-12), max(maxy - miny, 1e-12)
    n_cells = min(max(cells_per_grid, 1) * len(geoms), _MAX_CELLS)
    cell_size = float(np.sqrt(width * height / n_cells))
    cell_size = max(cell_size, width / 65536, height / 65536)
    nx = int(np.floor(width / cell_size)) + 2
    ny = int(np.floor(height / cell_size)) + 2
    x0, y0 = float(minx - cell_size / 2), float(miny - cell_size / 2)

    codes = np.zeros(ny * nx, dtype=np.int32)
    _mark_edge_cells(codes, geoms, x0, y0, cell_size, nx, ny)
    grid = codes.reshape(ny, nx)
    block_rows = max(1, _BLOCK_CELLS // nx)
    for r0 in range(0, ny, block_rows):
        block = grid[r0:r0 + block_rows]
        _label_runs(block, r0, x0, y0, cell_size, tree, ids)
    return _LookupRaster(x0, y0, cell_size, nx, ny, codes)


def _label_runs(block: np.ndarray, r0: int, x0: float, y0: float, h: float,
                tree: shapely.STRtree, ids: np.ndarray) -> None:
    """Label, in place, each horizontal run of edge-free cells of ``block`` (rows from
    ``r0``): one exact test at the run's first cell decides the whole run."""
    rows, nx = block.shape
    free = np.zeros((rows, nx + 1), dtype=bool)  # a last False column ends runs at row ends
    free[:, :nx] = block != _EDGE
    flat = free.ravel()
    start = flat.copy()
    start[1:] &= ~flat[:-1]
    starts = np.flatnonzero(start)
    if not len(starts):
        return
    row, col = np.divmod(starts, nx + 1)
    label = _resolve_exactly(tree, ids, x0 + (col + 0.5) * h, y0 + (row + r0 + 0.5) * h)
    run = np.cumsum(start, dtype=np.int32) - 1
    labelled = np.where(flat, label[np.maximum(run, 0)], np.int32(_EDGE))
    block[:] = labelled.reshape(rows, nx + 1)[:, :nx]


def _mark_edge_cells(codes: np.ndarray, geoms: np.ndarray, x0: float, y0: float, h: float,
                     nx: int, ny: int) -> None:
    """Set to ``_EDGE`` every raster cell that a grid edge touches (conservatively).

    A segment touches the cells holding its end points and, wherever it crosses a raster
    line, the cells on both sides of the crossing; a small tolerance marks all neighbours of
    a crossing that falls (numerically) on a cell corner.
    """
    rings = shapely.get_parts(shapely.boundary(geoms))
    coords, ring_i = shapely.get_coordinates(rings, return_index=True)
    same = ring_i[1:] == ring_i[:-1]
    u = (coords[:, 0] - x0) / h
    v = (coords[:, 1] - y0) / h
    u1, v1, u2, v2 = u[:-1][same], v[:-1][same], u[1:][same], v[1:][same]
    eps = 1e-6
    _mark_cells_at(codes, u, v, eps, nx, ny)
    for (a1, b1, a2, b2, transpose) in ((u1, v1, u2, v2, False), (v1, u1, v2, u2, True)):
        # crossings of the lines a = k (integer k), at b = b1 + (k - a1) * slope
        lo, hi = np.minimum(a1, a2), np.maximum(a1, a2)
        first = np.ceil(lo).astype(np.int64)
        count = np.maximum(np.floor(hi).astype(np.int64) - first + 1, 0)
        seg = np.repeat(np.arange(len(a1)), count)
        k = first[seg] + (np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count))
        da = a2 - a1
        t = (k - a1[seg]) / np.where(da[seg] == 0, 1.0, da[seg])
        b = b1[seg] + t * (b2 - b1)[seg]
        for side in (k - 1, k):
            a = side.astype(np.float64) + 0.5  # centre of the cell on that side of the line
            if transpose:
                _mark_cells_at(codes, b, a, eps, nx, ny)
            else:
                _mark_cells_at(codes, a, b, eps, nx, ny)


def _mark_cells_at(codes: np.ndarray, u: np.ndarray, v: np.ndarray, eps: float, nx: int,
                   ny: int) -> None:
    """Set to ``_EDGE`` the cells within ``eps`` (in cell units) of each point (u, v)."""
    for du in (-eps, eps):
        iu = np.clip(np.floor(u + du).astype(np.int64), 0, nx - 1)
        for dv in (-eps, eps):
            iv = np.clip(np.floor(v + dv).astype(np.int64), 0, ny - 1)
            codes[iv * nx + iu] = _EDGE
