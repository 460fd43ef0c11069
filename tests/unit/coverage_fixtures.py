"""Fixture factories for the coverage tests: hand-built layouts and Voronoi tessellations.

Coordinates are metres in EPSG:4547 (CGCS2000 / 3-degree GK CM 114E, the Chibi zone), near
x=500 000, y=3 300 000, so areas read directly in m2 and EPSG:4326 output stays in Hubei.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely

CRS = 4547
X0, Y0 = 500_000.0, 3_300_000.0


def box(x0, y0, x1, y1):
    """A rectangle in fixture units (metres from the fixture origin)."""
    return shapely.box(X0 + x0, Y0 + y0, X0 + x1, Y0 + y1)


def poly(*coords):
    """A polygon from (x, y) pairs in fixture units (ring closed automatically)."""
    return shapely.Polygon([(X0 + x, Y0 + y) for x, y in coords])


def grid_frame(geoms, codes, parent_codes=None, level=4, crs=CRS) -> gpd.GeoDataFrame:
    """A grid frame following the contract (code, name, level, kind, parent_code, geom)."""
    n = len(codes)
    parent_codes = list(parent_codes) if parent_codes is not None else ["P"] * n
    frame = gpd.GeoDataFrame(
        {"code": list(codes), "name": [f"网格{c}" for c in codes], "level": [level] * n,
         "kind": ["base" if level == 4 else "village"] * n, "parent_code": parent_codes},
        geometry=gpd.GeoSeries(list(geoms), crs=crs), crs=crs)
    return frame.rename_geometry("geom")


def parent_frame(geoms, codes=("P",), level=3, crs=CRS) -> gpd.GeoDataFrame:
    """A parent-level frame (parent codes None)."""
    return grid_frame(geoms, codes, [None] * len(codes), level=level, crs=crs)


def voronoi_cells(n: int, seed: int, size: float = 2000.0) -> np.ndarray:
    """``n`` Voronoi cells tiling the square [0, size]^2 (fixture units), valid coverage."""
    rng = np.random.default_rng(seed)
    extent = box(0, 0, size, size)
    pts = shapely.multipoints(rng.uniform(0, size, (n, 2)) + (X0, Y0))
    cells = shapely.get_parts(shapely.voronoi_polygons(pts, extend_to=extent))
    cells = shapely.intersection(cells, extent)
    order = np.argsort(shapely.get_x(shapely.centroid(cells)) * 7 + shapely.get_y(shapely.centroid(cells)))
    return cells[order]


def voronoi_frame(n: int, seed: int, size: float = 2000.0, parent_code: str = "P"):
    """(children, parent): a tessellation of ``n`` cells and its square parent."""
    cells = voronoi_cells(n, seed, size)
    codes = [f"G{i:04d}" for i in range(len(cells))]
    return (grid_frame(cells, codes, [parent_code] * len(cells)),
            parent_frame([box(0, 0, size, size)], [parent_code]))


def with_geoms(frame: gpd.GeoDataFrame, geoms) -> gpd.GeoDataFrame:
    """A copy of ``frame`` with its geometries replaced by ``geoms`` (same CRS)."""
    out = frame.copy()
    out[out.geometry.name] = gpd.GeoSeries(list(geoms), index=out.index, crs=frame.crs)
    return out


def two_squares(right_x0: float = 100.0, left_x1: float = 100.0, *, extra=(), codes=("A", "B")):
    """Two children side by side inside parent P = [0, 200] x [0, 100]::

        +---------P---------+
        |    A    |    B    |      A = [0, left_x1], B = [right_x0, 200]
        +---------+---------+

    ``left_x1 > right_x0`` makes an overlap, ``left_x1 < right_x0`` a gap.
    """
    children = grid_frame([box(0, 0, left_x1, 100), box(right_x0, 0, 200, 100), *extra],
                          list(codes) + [f"E{i}" for i in range(len(extra))])
    return children, parent_frame([box(0, 0, 200, 100)])


def t_junction():
    """A has edge x=100 as one segment; B has an extra vertex at (100, 50)::

        +----+----+
        | A  |    |
        |    *  B |    * = vertex only in B: edges do not match, no overlap, no gap
        |    |    |
        +----+----+
    """
    a = box(0, 0, 100, 100)
    b = poly((100, 0), (200, 0), (200, 100), (100, 100), (100, 50))
    return grid_frame([a, b], ["A", "B"]), parent_frame([box(0, 0, 200, 100)])


def bow_tie():
    """A is a self-intersecting bow-tie (crossing at (50, 50)), B a square to its right::

        +   +--+
        |\\ /|  |
        | X |B |
        |/ \\|  |
        +   +--+
    """
    a = poly((0, 0), (100, 100), (100, 0), (0, 100))
    return grid_frame([a, box(100, 0, 200, 100)], ["A", "B"]), parent_frame([box(0, 0, 200, 100)])


def two_parents():
    """Parents P = [0, 200] x [0, 100] and Q = [200, 400] x [0, 100]::

        +----P----+----Q----+
        | A  | C==|==   | D |     C = [100, 300] declared in P straddles P and Q
        +----+----+-----+---+

    A = [0, 100] (P), C = [100, 300] (P), D = [300, 400] (Q).
    """
    children = grid_frame([box(0, 0, 100, 100), box(100, 0, 300, 100), box(300, 0, 400, 100)],
                          ["A", "C", "D"], ["P", "P", "Q"])
    parents = parent_frame([box(0, 0, 200, 100), box(200, 0, 400, 100)], ["P", "Q"])
    return children, parents


def ring_with_hole():
    """Four children around an uncovered 20 x 20 hole, no parent layer::

        +-----------+
        |     N     |
        +--+-----+--+
        |W | hole| E|
        +--+-----+--+
        |     S     |
        +-----------+
    """
    geoms = [box(0, 0, 60, 20), box(0, 40, 60, 60), box(0, 20, 20, 40), box(40, 20, 60, 40)]
    return grid_frame(geoms, ["S", "N", "W", "E"])


def jitter(geoms, amplitude: float, seed: int = 0):
    """Move every vertex by up to ``amplitude`` (CRS units), differently in each geometry.

    Shared vertices of neighbours move apart (as when each grid was digitised on its own);
    rings stay closed because the shift is a function of the vertex and the geometry.
    """
    out = []
    for i, geom in enumerate(geoms):
        salt = (seed * 7919 + i * 104729) % 10007

        def shift(coords, salt=salt):
            a = np.sin(coords[:, 0] * 12.9898 * 1e3 + coords[:, 1] * 78.233 * 1e3 + salt)
            b = np.cos(coords[:, 0] * 39.3468 * 1e3 + coords[:, 1] * 11.135 * 1e3 + 2 * salt)
            return coords + amplitude * np.column_stack([a, b])
        out.append(shapely.transform(geom, shift))
    return np.asarray(out, dtype=object)


def quantise(geoms, step: float):
    """Round every coordinate to a multiple of ``step`` (e.g. 1/1024 degree), no repair."""
    return shapely.transform(np.asarray(geoms, dtype=object), lambda c: np.round(c / step) * step)


def across_border(*, extra_vertex: bool = False, shift: float = 0.0):
    """Parents P = [0, 100] x [0, 100] and Q = [100, 200] x [0, 100], two children each::

        +----P----+----Q----+
        | A1 | A2 | B1 | B2 |     A2 and B1 share the parents' border x = 100
        +----+----+----+----+

    ``extra_vertex`` gives A2 a vertex at (100, 50) that neither P nor B1 has (the two
    partitions are each valid on their own); ``shift`` moves A2 right by that many metres,
    across the border, over B1.
    """
    a2 = (poly((50, 0), (100, 0), (100, 50), (100, 100), (50, 100)) if extra_vertex
          else box(50, 0, 100, 100))
    a2 = shapely.affinity.translate(a2, shift, 0.0)
    children = grid_frame([box(0, 0, 50, 100), a2, box(100, 0, 150, 100), box(150, 0, 200, 100)],
                          ["A1", "A2", "B1", "B2"], ["P", "P", "Q", "Q"])
    parents = parent_frame([box(0, 0, 100, 100), box(100, 0, 200, 100)], ["P", "Q"])
    return children, parents
