"""The demo city: a synthetic four-level grid hierarchy inside the real outline of Chibi (赤壁市).

Only the city outline is real (``gisgrid/data/chibi.geojson``, provenance in
``data/boundaries/README.md``). Everything below it -- townships and streets, villages and
communities, base grids, their names and organisations -- is synthetic: made up by a seeded
generator so that the maps, validation and audits have something realistic to work on.

How the hierarchy is built (:func:`build_demo_city`):

1. The outline is read from package data and repaired (``make_valid(method="structure")``,
   polygonal part kept): the real polygon self-intersects, and the repair is recorded in
   :attr:`DemoCity.outline_repair`.
2. In the local metric CRS (EPSG:4547 for Chibi) each level partitions its parent: seed
   points are drawn from a density that peaks at a synthetic urban centre and at every town
   seat (so streets, communities and urban base grids are small), and the Voronoi cells of the
   seeds are clipped to the parent. Detached pieces of a clipped cell go to the sibling they
   share most boundary with, so every grid is one piece where its parent allows it.
3. The boundaries of all base grids are reprojected to EPSG:4490, noded on the storage
   precision grid (:func:`gisgrid.precision.grid_size_for`) and polygonized: the base grids
   form an exact coverage with vertex-identical shared edges. Villages, townships and the city
   are then the ``coverage_union_all`` of their children, so every parent is exactly the union
   of its children -- seamless by construction.
4. With ``defects=True`` two base grids are then damaged on purpose (a thin gap along a
   shared edge, and one grid grown over its neighbour) and described in
   :attr:`DemoCity.defects`. The third deliberate defect, a grid with no worker, belongs to
   :mod:`gisgrid.demo.field`.

Codes are dotted paths, globally unique, and ``parent_code`` is the code minus its last
segment::

    421281                    city (the real administrative code of Chibi)
    421281.01                 township / street (2 digits)
    421281.01.001             village / community (3 digits)
    421281.01.001.0001        base grid (4 digits)

The same seed always gives byte-identical geometries (for a given numpy, shapely and GEOS).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
from shapely import ops as shapely_ops

from gisgrid.crs import DEFAULT_SRID, local_metric_crs
from gisgrid.errors import InputError
from gisgrid.io import read_layer
from gisgrid.levels import Level
from gisgrid.precision import grid_size_for, snap

CITY_CODE = "421281"
CITY_NAME = "赤壁市"
CITY_ORG = "赤壁市人民政府"
DEFAULT_SEED = 20171017

# Real township-level divisions of Chibi (names only: their demo boundaries are synthetic).
# The first three are street offices (街道), drawn around the urban centre.
TOWNSHIP_NAMES: tuple[tuple[str, str], ...] = (
    ("蒲圻街道", "street"), ("陆水湖街道", "street"), ("赤马港街道", "street"),
    ("车埠镇", "township"), ("赵李桥镇", "township"), ("茶庵岭镇", "township"),
    ("中伙铺镇", "township"), ("官塘驿镇", "township"), ("新店镇", "township"),
    ("神山镇", "township"), ("余家桥乡", "township"), ("赤壁镇", "township"),
    ("柳山湖镇", "township"),
)
STREET_COUNT = 3

# Synthetic village / community names are two syllables drawn from these lists.
_NAME_FIRST = tuple("新桥港湖山岭石竹柳枫松龙凤金丰和平安团红星光明东西南北高马黄白青花杨梅桂莲荷沙双大长万同兴")
_NAME_SECOND = tuple("塘桥湾坪畈冲岭山港湖铺口河洲林园岗坡垴堰店庄屋门源泉溪坑埠峰")

# Density of seed points (relative): a flat base, a strong peak at the urban centre and a
# smaller one at every town seat. Lengths in metres.
_URBAN_PEAK, _URBAN_SIGMA = 14.0, 3500.0
_TOWN_PEAK, _TOWN_SIGMA = 3.0, 1500.0
_STREET_RING_M = 2500.0          # street seeds sit this far from the urban centre
_LATTICE_M = 200.0               # sampling step used to weigh polygons by density
_COMMUNITY_RADIUS_M = 1200.0     # a village whose seed is this close to a town seat is urban
_URBAN_CORE_M = 4500.0           # ... or this close to the urban centre
_GAP_HALF_WIDTH_M = 12.0
_OVERLAP_WIDTH_M = 15.0
_DEFECT_EDGE_M = 400.0


@dataclass(frozen=True)
class OutlineRepair:
    """What was done to the real city outline before partitioning it.

    Attributes
    ----------
    source : str
        Where the outline came from (package data path or "caller").
    valid_before : bool
        Whether the outline was a valid simple feature as read.
    reason : str
        ``shapely.is_valid_reason`` of the outline as read.
    method : str
        The repair applied ("make_valid(method='structure'), polygonal part kept"), or "none".
    area_before_m2, area_after_m2 : float
        Area before and after the repair, in the local metric CRS.
    """

    source: str
    valid_before: bool
    reason: str
    method: str
    area_before_m2: float
    area_after_m2: float

    @property
    def repaired(self) -> bool:
        """True when the outline had to be repaired."""
        return not self.valid_before


@dataclass(frozen=True)
class DemoDefect:
    """A defect injected on purpose, for validation and audits to find.

    Attributes
    ----------
    kind : str
        "gap" (part of the parent no longer covered) or "overlap" (two siblings overlap).
    level : int
        Level of the damaged grids (4: base grids).
    codes : tuple of str
        The grids involved: the damaged grid first, then its neighbour.
    parent_code : str
        The parent whose coverage is broken.
    area_m2 : float
        Approximate area of the gap or overlap, in the local metric CRS.
    description : str
        One line in English.
    """

    kind: str
    level: int
    codes: tuple[str, ...]
    parent_code: str
    area_m2: float
    description: str


@dataclass
class DemoCity:
    """The generated hierarchy.

    Attributes
    ----------
    grids : dict of Level to GeoDataFrame
        One grid frame per level, EPSG:4490, columns ``code, name, level, kind, parent_code,
        org, geom`` (``geom`` active), sorted by code.
    defects : list of DemoDefect
        The injected defects (empty with ``defects=False``).
    outline_repair : OutlineRepair
        What was done to the real outline.
    centres : GeoDataFrame
        Seed points, EPSG:4490, columns ``code, level, geom``: the urban centre (code of the
        city), every township seat and every village centre. Field data clusters around them.
    metric_crs : pyproj.CRS
        The local metric CRS the hierarchy was built in.
    seed : int
        The seed used.
    """

    grids: dict[Level, gpd.GeoDataFrame]
    defects: list[DemoDefect]
    outline_repair: OutlineRepair
    centres: gpd.GeoDataFrame
    metric_crs: pyproj.CRS
    seed: int = DEFAULT_SEED
    outline: shapely.Geometry | None = field(default=None, repr=False)
    """The repaired outline in EPSG:4490 (before snapping)."""

    def all_grids(self) -> gpd.GeoDataFrame:
        """All four levels in one grid frame, city first."""
        frames = [self.grids[level] for level in Level]
        return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geom",
                                crs=frames[0].crs)


def read_demo_outline() -> gpd.GeoDataFrame:
    """Read the real outline of Chibi shipped as package data (EPSG:4326, one feature)."""
    source = resources.files("gisgrid") / "data" / "chibi.geojson"
    with resources.as_file(source) as path:
        return read_layer(path)


def repair_outline(outline: gpd.GeoDataFrame, *, source: str = "caller"
                   ) -> tuple[shapely.Geometry, OutlineRepair]:
    """Union the outline's features and repair them into one valid (multi)polygon.

    Returns the polygonal geometry in the CRS of ``outline`` and the record of the repair.
    """
    if outline.crs is None:
        raise InputError("the demo city outline has no CRS")
    geoms = outline.geometry.values
    valid = bool(np.all(shapely.is_valid(geoms)))
    reasons = sorted({r for r in shapely.is_valid_reason(geoms) if r != "Valid Geometry"})
    reason = "; ".join(reasons) if reasons else "Valid Geometry"
    repaired = shapely.make_valid(geoms, method="structure") if not valid else geoms
    polygonal = [p for g in repaired for p in shapely.get_parts(g)
                 if p.geom_type in ("Polygon", "MultiPolygon") and not p.is_empty]
    if not polygonal:
        raise InputError("the demo city outline has no polygonal part after repair")
    merged = shapely.union_all(polygonal)
    metric = local_metric_crs(outline)
    before = float(outline.to_crs(metric).area.sum())
    after = float(gpd.GeoSeries([merged], crs=outline.crs).to_crs(metric).area.sum())
    record = OutlineRepair(
        source=source, valid_before=valid, reason=reason,
        method="none" if valid else "make_valid(method='structure'), polygonal part kept",
        area_before_m2=before, area_after_m2=after)
    return merged, record


def build_demo_city(outline: gpd.GeoDataFrame | None = None, *, seed: int = DEFAULT_SEED,
                    townships: int = 12, villages: int = 150, base_grids: int = 1500,
                    defects: bool = True) -> DemoCity:
    """Build the synthetic four-level hierarchy inside the city outline.

    Parameters
    ----------
    outline : GeoDataFrame, optional
        The city outline, any CRS; the real outline of Chibi from package data by default.
    seed : int
        Seed of the generator; the same seed gives byte-identical geometries.
    townships, villages, base_grids : int
        How many grids at levels 2, 3 and 4. ``townships`` is at most 13 (the real
        township-level divisions of Chibi, three of them streets).
    defects : bool
        Inject a gap and an overlap among the base grids.

    Returns
    -------
    DemoCity

    Examples
    --------
    >>> city = build_demo_city(townships=4, villages=12, base_grids=40, defects=False)
    >>> [len(city.grids[level]) for level in Level]
    [1, 4, 12, 40]
    >>> city.grids[Level.VILLAGE].code.iloc[0]
    '421281.01.001'
    """
    _check_counts(townships, villages, base_grids)
    source = "gisgrid/data/chibi.geojson" if outline is None else "caller"
    if outline is None:
        outline = read_demo_outline()
    shape, repair = repair_outline(outline, source=source)
    geographic = gpd.GeoSeries([shape], crs=outline.crs).to_crs(DEFAULT_SRID)
    metric_crs = local_metric_crs(geographic)
    area = gpd.GeoSeries(geographic.values, crs=DEFAULT_SRID).to_crs(metric_crs).iloc[0]
    rng = np.random.default_rng(seed)

    plan = _plan_hierarchy(area, rng, townships, villages, base_grids)
    to_storage = pyproj.Transformer.from_crs(metric_crs, DEFAULT_SRID, always_xy=True)
    base_geoms = _build_base_coverage(plan["base_cells"], to_storage)
    grids = _assemble_frames(plan, base_geoms)
    defect_list: list[DemoDefect] = []
    if defects:
        defect_list = _inject_defects(grids, metric_crs, rng)
    centre_codes = pd.concat([grids[level].code for level in
                              (Level.CITY, Level.TOWNSHIP, Level.VILLAGE)], ignore_index=True)
    centre_points = snap(_transform(np.array(plan["centre_points"], dtype=object), to_storage),
                         DEFAULT_SRID)
    centres = gpd.GeoDataFrame(
        {"code": centre_codes, "level": centre_codes.str.count(r"\.") + 1,
         "geom": gpd.GeoSeries(centre_points, crs=DEFAULT_SRID)},
        geometry="geom", crs=DEFAULT_SRID)
    return DemoCity(grids=grids, defects=defect_list, outline_repair=repair, centres=centres,
                    metric_crs=metric_crs, seed=seed, outline=geographic.iloc[0])


# --- planning in the metric CRS -------------------------------------------------------------


def _check_counts(townships: int, villages: int, base_grids: int) -> None:
    problems = []
    if not STREET_COUNT + 1 <= townships <= len(TOWNSHIP_NAMES):
        problems.append(f"townships={townships}: expected {STREET_COUNT + 1} to "
                        f"{len(TOWNSHIP_NAMES)}")
    if villages < 2 * townships:
        problems.append(f"villages={villages}: expected at least 2 per township "
                        f"({2 * townships})")
    if base_grids < 2 * villages:
        problems.append(f"base_grids={base_grids}: expected at least 2 per village "
                        f"({2 * villages})")
    if problems:
        raise InputError("cannot build the demo city: " + "; ".join(problems),
                         details=problems)


class _Density:
    """Relative density of grids: urban peak plus one peak per town seat."""

    def __init__(self, urban: tuple[float, float]):
        self.urban = np.asarray(urban, dtype=float)
        self.towns = np.empty((0, 2))

    def __call__(self, xy: np.ndarray) -> np.ndarray:
        xy = np.atleast_2d(xy)
        d2 = ((xy - self.urban) ** 2).sum(axis=1)
        value = 1.0 + _URBAN_PEAK * np.exp(-d2 / (2 * _URBAN_SIGMA ** 2))
        for town in self.towns:
            t2 = ((xy - town) ** 2).sum(axis=1)
            value += _TOWN_PEAK * np.exp(-t2 / (2 * _TOWN_SIGMA ** 2))
        return value

    @property
    def peak(self) -> float:
        return 1.0 + _URBAN_PEAK + _TOWN_PEAK * max(len(self.towns), 1)


def _plan_hierarchy(area, rng: np.random.Generator, n_town: int, n_village: int,
                    n_base: int) -> dict:
    """Partition ``area`` (metric) into townships, villages and base grids."""
    urban = _choose_urban_centre(area)
    density = _Density(urban)
    town_seeds = _township_seeds(area, urban, n_town, rng)
    density.towns = np.array(town_seeds[STREET_COUNT:])
    town_cells = _split(area, town_seeds)
    lattice = _density_lattice(area, density)

    village_counts = _allocate(n_village, [_weight(c, lattice) for c in town_cells], 2)
    village_cells, village_seeds, village_parent, village_kind = [], [], [], []
    for t, (cell, count) in enumerate(zip(town_cells, village_counts)):
        seeds = _sample_seeds(cell, count, rng, density)
        seeds.sort(key=lambda p: (-p[1], p[0]))      # north to south, then west to east
        village_cells.extend(_split(cell, seeds))
        village_seeds.extend(seeds)
        village_parent.extend([t] * count)
        seat = np.array(town_seeds[t])
        for p in seeds:
            urban_core = float(np.hypot(*(np.array(p) - urban))) <= _URBAN_CORE_M
            near_seat = float(np.hypot(*(np.array(p) - seat))) <= _COMMUNITY_RADIUS_M
            village_kind.append("community" if urban_core or near_seat else "village")
    _ensure_community_per_town(village_kind, village_parent, village_seeds, town_seeds)

    base_counts = _allocate(n_base, [_weight(c, lattice) for c in village_cells], 2)
    base_cells, base_parent = [], []
    for v, (cell, count) in enumerate(zip(village_cells, base_counts)):
        seeds = _sample_seeds(cell, count, rng, density)
        seeds.sort(key=lambda p: (-p[1], p[0]))
        base_cells.extend(_split(cell, seeds))
        base_parent.extend([v] * count)

    return {
        "town_seeds": town_seeds, "village_parent": village_parent,
        "village_kind": village_kind, "base_cells": base_cells, "base_parent": base_parent,
        "centre_points": [shapely.Point(urban)] + [shapely.Point(p) for p in town_seeds]
        + [shapely.Point(p) for p in village_seeds],
    }


def _choose_urban_centre(area) -> tuple[float, float]:
    """A point well inside the outline, a little east of its centre (the synthetic downtown)."""
    minx, miny, maxx, maxy = area.bounds
    target = shapely.Point(minx + 0.62 * (maxx - minx), miny + 0.45 * (maxy - miny))
    inner = area.buffer(-6000.0)
    if inner.is_empty:
        inner = area
    if not inner.contains(target):
        target = shapely_ops.nearest_points(inner, target)[0]
    return (round(target.x, 2), round(target.y, 2))


def _township_seeds(area, urban, count: int, rng) -> list[tuple[float, float]]:
    """Street seeds on a ring around the urban centre, town seeds spread over the rest."""
    seeds = []
    for k in range(STREET_COUNT):
        angle = 2 * np.pi * k / STREET_COUNT + 0.4
        seeds.append((urban[0] + _STREET_RING_M * np.cos(angle),
                      urban[1] + _STREET_RING_M * np.sin(angle)))
    candidates = _uniform_points(area, 4000, rng)
    keep_out = np.array(seeds + [urban])
    # Farthest-point sampling: each town seat as far as possible from all earlier seeds.
    chosen: list[tuple[float, float]] = []
    dist = np.min(np.hypot(candidates[:, None, 0] - keep_out[None, :, 0],
                           candidates[:, None, 1] - keep_out[None, :, 1]), axis=1)
    inner = area.buffer(-3000.0)
    inside_margin = shapely.contains_xy(inner, candidates[:, 0], candidates[:, 1])
    dist = np.where(inside_margin, dist, dist * 0.3)
    for _ in range(count - STREET_COUNT):
        i = int(np.argmax(dist))
        chosen.append((float(candidates[i, 0]), float(candidates[i, 1])))
        dist = np.minimum(dist, np.hypot(candidates[:, 0] - candidates[i, 0],
                                         candidates[:, 1] - candidates[i, 1]))
    return seeds + chosen


def _uniform_points(polygon, count: int, rng) -> np.ndarray:
    """``count`` points uniformly inside ``polygon`` (rejection sampling)."""
    minx, miny, maxx, maxy = polygon.bounds
    shapely.prepare(polygon)
    out = np.empty((0, 2))
    while len(out) < count:
        xy = rng.uniform((minx, miny), (maxx, maxy), size=(2 * count + 16, 2))
        out = np.vstack([out, xy[shapely.contains_xy(polygon, xy[:, 0], xy[:, 1])]])
    return out[:count]


def _sample_seeds(polygon, count: int, rng, density: _Density) -> list[tuple[float, float]]:
    """``count`` seed points inside ``polygon`` drawn from ``density``, not too close together.

    The minimum spacing scales with the local density, so urban seeds sit closer together.
    """
    shapely.prepare(polygon)
    minx, miny, maxx, maxy = polygon.bounds
    probe = _uniform_points(polygon, 64, rng)
    mean_density = float(density(probe).mean())
    spacing_scale = 0.45 * np.sqrt(polygon.area * mean_density / count)
    seeds: list[tuple[float, float]] = []
    relax = 1.0
    while len(seeds) < count:
        xy = rng.uniform((minx, miny), (maxx, maxy), size=(256, 2))
        xy = xy[shapely.contains_xy(polygon, xy[:, 0], xy[:, 1])]
        if len(xy) == 0:
            continue
        d = density(xy)
        xy = xy[rng.uniform(0, density.peak, size=len(xy)) < d]
        d = density(xy)
        accepted_any = False
        for (x, y), dv in zip(xy, d):
            r_min = relax * spacing_scale / np.sqrt(dv)
            if all((x - sx) ** 2 + (y - sy) ** 2 >= r_min ** 2 for sx, sy in seeds):
                seeds.append((float(x), float(y)))
                accepted_any = True
                if len(seeds) == count:
                    break
        if not accepted_any:
            relax *= 0.8
    return seeds


def _split(polygon, seeds: list[tuple[float, float]]) -> list[shapely.Geometry]:
    """Voronoi cells of ``seeds`` clipped to ``polygon``, in seed order, each one piece if
    possible (detached pieces go to the neighbour sharing most boundary)."""
    if len(seeds) == 1:
        return [polygon]
    cells = shapely.voronoi_polygons(shapely.MultiPoint(seeds), extend_to=polygon,
                                     ordered=True)
    clipped = shapely.intersection(shapely.get_parts(cells), polygon)
    parts = [[p for p in shapely.get_parts(c) if p.geom_type == "Polygon" and not p.is_empty]
             for c in clipped]
    mains = []
    for i, pieces in enumerate(parts):
        seed = shapely.Point(seeds[i])
        holding = [p for p in pieces if p.intersects(seed)]
        mains.append(holding[0] if holding else max(pieces, key=lambda p: p.area))
    owned: list[list] = [[m] for m in mains]
    for i, pieces in enumerate(parts):
        for piece in pieces:
            if piece is mains[i]:
                continue
            shared = [(shapely.length(shapely.intersection(piece.boundary, m.boundary)), j)
                      for j, m in enumerate(mains) if j != i]
            best_len, best = max(shared, default=(0.0, i))
            owned[best if best_len > 0 else i].append(piece)
    return [pieces[0] if len(pieces) == 1 else shapely.union_all(pieces) for pieces in owned]


def _density_lattice(area, density: _Density) -> tuple[np.ndarray, np.ndarray]:
    minx, miny, maxx, maxy = area.bounds
    xs = np.arange(minx + _LATTICE_M / 2, maxx, _LATTICE_M)
    ys = np.arange(miny + _LATTICE_M / 2, maxy, _LATTICE_M)
    gx, gy = np.meshgrid(xs, ys)
    xy = np.column_stack([gx.ravel(), gy.ravel()])
    xy = xy[shapely.contains_xy(area, xy[:, 0], xy[:, 1])]
    return xy, density(xy)


def _weight(polygon, lattice) -> float:
    """Density integrated over ``polygon`` (lattice sum), at least its area times the base."""
    xy, values = lattice
    minx, miny, maxx, maxy = polygon.bounds
    box = (xy[:, 0] >= minx) & (xy[:, 0] <= maxx) & (xy[:, 1] >= miny) & (xy[:, 1] <= maxy)
    inside = shapely.contains_xy(polygon, xy[box, 0], xy[box, 1])
    return max(float(values[box][inside].sum()) * _LATTICE_M ** 2, polygon.area)


def _allocate(total: int, weights: list[float], minimum: int) -> list[int]:
    """Split ``total`` in proportion to ``weights`` (largest remainder), each at least
    ``minimum``.

    >>> _allocate(10, [1, 1, 3], 2)
    [3, 3, 4]
    """
    n = len(weights)
    spare = total - minimum * n
    w = np.asarray(weights, dtype=float)
    exact = spare * w / w.sum()
    counts = np.floor(exact).astype(int)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[: spare - counts.sum()]] += 1
    return [int(c) + minimum for c in counts]


def _ensure_community_per_town(kinds, parents, seeds, town_seeds) -> None:
    """Every town has at least one community: the village nearest its seat."""
    for t in range(STREET_COUNT, len(town_seeds)):
        members = [i for i, p in enumerate(parents) if p == t]
        if any(kinds[i] == "community" for i in members):
            continue
        seat = np.array(town_seeds[t])
        nearest = min(members, key=lambda i: float(np.hypot(*(np.array(seeds[i]) - seat))))
        kinds[nearest] = "community"


# --- exact coverage in the storage CRS -------------------------------------------------------


def _transform(geoms: np.ndarray, transformer: pyproj.Transformer) -> np.ndarray:
    def forward(coords: np.ndarray) -> np.ndarray:
        x, y = transformer.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])
    return shapely.transform(geoms, forward)


def _build_base_coverage(cells: list, to_storage: pyproj.Transformer) -> list:
    """Base cells (metric) -> exact coverage in EPSG:4490, one geometry per cell.

    The boundaries of all cells are noded, reprojected, noded again on the storage precision
    grid and polygonized; each face goes to the cell holding it, so shared edges are
    vertex-identical.
    """
    size = grid_size_for(DEFAULT_SRID)
    cells = np.array(cells, dtype=object)
    projected = _transform(cells, to_storage)
    # Node first in the metric CRS, so a shared edge exists once: noded separately, the
    # two copies of a long edge would drift apart when reprojected (a straight segment in
    # metres is not straight in degrees) and leave slivers between neighbours.
    noded = shapely.get_parts(shapely.union_all(shapely.boundary(cells), grid_size=1e-3))
    linework = shapely.union_all(_transform(noded, to_storage), grid_size=size)
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(linework)))
    tree = shapely.STRtree(projected)
    probes = shapely.point_on_surface(faces)
    face_idx, cell_idx = tree.query(probes, predicate="intersects")
    owner = np.full(len(faces), -1)
    counts = np.bincount(face_idx, minlength=len(faces))
    unique = counts == 1
    owner[face_idx[unique[face_idx]]] = cell_idx[unique[face_idx]]
    # Ambiguous faces: slivers from snapping or the face-probe lying on an edge. Give each to
    # the cell covering most of it; faces outside every cell (holes of the outline) are dropped.
    for f in np.flatnonzero(counts > 1):
        candidates = cell_idx[face_idx == f]
        areas = shapely.area(shapely.intersection(projected[candidates], faces[f]))
        owner[f] = candidates[int(np.argmax(areas))]
    # A face no cell holds is either a sliver between two cells whose shared edge was clipped
    # separately (a centimetre wide: give it to the nearest cell) or a hole of the outline.
    orphans = np.flatnonzero(counts == 0)
    if len(orphans):
        near_face, near_cell = tree.query_nearest(probes[orphans], max_distance=10 * size,
                                                  all_matches=False)
        owner[orphans[near_face]] = near_cell
    result = []
    for c in range(len(cells)):
        mine = faces[owner == c]
        if len(mine) == 0:
            raise RuntimeError(f"demo city: base cell {c} lost all its area while snapping")
        result.append(mine[0] if len(mine) == 1 else shapely.coverage_union_all(mine))
    return result


def _assemble_frames(plan: dict, base_geoms: list) -> dict[Level, gpd.GeoDataFrame]:
    """Codes, names, kinds and organisations, and parents as unions of their children."""
    n_town = len(plan["town_seeds"])
    village_parent = plan["village_parent"]
    village_kind = plan["village_kind"]
    base_parent = plan["base_parent"]

    town_codes = [f"{CITY_CODE}.{t + 1:02d}" for t in range(n_town)]
    village_codes, counter = [], {}
    for t in village_parent:
        counter[t] = counter.get(t, 0) + 1
        village_codes.append(f"{town_codes[t]}.{counter[t]:03d}")
    base_codes, counter = [], {}
    for v in base_parent:
        counter[v] = counter.get(v, 0) + 1
        base_codes.append(f"{village_codes[v]}.{counter[v]:04d}")

    village_names = _village_names(len(village_parent), village_kind)
    base_number = [int(code.rsplit(".", 1)[1]) for code in base_codes]

    base_array = np.array(base_geoms, dtype=object)
    base_parent_arr = np.asarray(base_parent)
    village_geoms = [shapely.coverage_union_all(base_array[base_parent_arr == v])
                     for v in range(len(village_parent))]
    village_array = np.array(village_geoms, dtype=object)
    village_parent_arr = np.asarray(village_parent)
    town_geoms = [shapely.coverage_union_all(village_array[village_parent_arr == t])
                  for t in range(n_town)]
    city_geom = shapely.coverage_union_all(np.array(town_geoms, dtype=object))

    town_names = [TOWNSHIP_NAMES[t][0] for t in range(n_town)]
    town_kinds = [TOWNSHIP_NAMES[t][1] for t in range(n_town)]
    town_orgs = [f"{n}办事处" if k == "street" else f"{n}人民政府"
                 for n, k in zip(town_names, town_kinds)]
    village_orgs = [f"{n}居民委员会" if k == "community" else f"{n}村民委员会"
                    for n, k in zip(village_names, village_kind)]

    frames = {
        Level.CITY: _grid_frame([CITY_CODE], [CITY_NAME], Level.CITY, ["city"], [None],
                                [CITY_ORG], [city_geom]),
        Level.TOWNSHIP: _grid_frame(town_codes, town_names, Level.TOWNSHIP, town_kinds,
                                    [CITY_CODE] * n_town, town_orgs, town_geoms),
        Level.VILLAGE: _grid_frame(village_codes, village_names, Level.VILLAGE, village_kind,
                                   [town_codes[t] for t in village_parent], village_orgs,
                                   village_geoms),
        Level.BASE: _grid_frame(base_codes,
                                [f"{village_names[v]}第{k}网格"
                                 for v, k in zip(base_parent, base_number)],
                                Level.BASE, ["base"] * len(base_codes),
                                [village_codes[v] for v in base_parent],
                                [village_orgs[v] for v in base_parent], base_geoms),
    }
    return frames


def _village_names(count: int, kinds: list[str]) -> list[str]:
    """Unique two-syllable names in a fixed shuffled order (independent of the seed).

    >>> _village_names(2, ["village", "community"])
    ['万冲村', '红庄社区']
    """
    stems = [a + b for a in _NAME_FIRST for b in _NAME_SECOND if a != b]
    order = np.random.default_rng(0).permutation(len(stems))
    if count > len(stems):
        raise InputError(f"villages={count}: the demo has only {len(stems)} distinct names")
    names = [stems[i] for i in order[:count]]
    return [f"{stem}社区" if kind == "community" else f"{stem}村"
            for stem, kind in zip(names, kinds)]


def _grid_frame(codes, names, level: Level, kinds, parents, orgs, geoms) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"code": codes, "name": names, "level": int(level), "kind": kinds,
         "parent_code": pd.Series(parents, dtype=object), "org": orgs,
         "geom": gpd.GeoSeries(list(geoms), crs=DEFAULT_SRID)},
        geometry="geom", crs=DEFAULT_SRID,
    )


# --- deliberate defects ----------------------------------------------------------------------


def _inject_defects(grids: dict[Level, gpd.GeoDataFrame], metric_crs,
                    rng: np.random.Generator) -> list[DemoDefect]:
    """Cut a thin gap along one shared edge and grow one grid over its neighbour."""
    base = grids[Level.BASE]
    villages = grids[Level.VILLAGE].set_index("code")
    to_metric = pyproj.Transformer.from_crs(DEFAULT_SRID, metric_crs, always_xy=True)
    to_storage = pyproj.Transformer.from_crs(metric_crs, DEFAULT_SRID, always_xy=True)
    size = grid_size_for(DEFAULT_SRID)
    metric = _transform(base.geometry.values.to_numpy(), to_metric)
    tree = shapely.STRtree(metric)

    def pick(kind: str, avoid: set[str]):
        order = rng.permutation(len(base))
        for i in order:
            row = base.iloc[i]
            if villages.loc[row.parent_code, "kind"] != kind or row.code in avoid:
                continue
            for j in tree.query(metric[i], predicate="touches"):
                if base.iloc[j].parent_code != row.parent_code or base.iloc[j].code in avoid:
                    continue
                edge = shapely.line_merge(shapely.intersection(metric[i].boundary,
                                                               metric[j].boundary))
                edge = max(shapely.get_parts(edge), key=lambda g: g.length, default=None)
                if edge is not None and edge.geom_type == "LineString" \
                        and edge.length >= _DEFECT_EDGE_M * 1.5:
                    return int(i), int(j), edge
        raise RuntimeError(f"demo city: no {kind} base grid with a long enough shared edge")

    def middle(edge):
        start = (edge.length - _DEFECT_EDGE_M) / 2
        return shapely_ops.substring(edge, start, start + _DEFECT_EDGE_M)

    geoms = base.geometry.values.to_numpy().copy()
    defects = []

    i, j, edge = pick("village", set())
    strip = _transform(np.array([shapely.buffer(middle(edge), _GAP_HALF_WIDTH_M,
                                                cap_style="flat")]), to_storage)[0]
    cut = shapely.intersection(strip, geoms[i], grid_size=size)
    geoms[i] = shapely.difference(geoms[i], cut, grid_size=size)
    defects.append(DemoDefect(
        "gap", int(Level.BASE), (base.code.iloc[i], base.code.iloc[j]), base.parent_code.iloc[i],
        _metric_area(cut, to_metric),
        f"a {_DEFECT_EDGE_M:.0f} m by {_GAP_HALF_WIDTH_M:.0f} m strip cut from "
        f"{base.code.iloc[i]} along its edge with {base.code.iloc[j]}"))

    k, m, edge = pick("community", {base.code.iloc[i], base.code.iloc[j]})
    strip = _transform(np.array([shapely.buffer(middle(edge), _OVERLAP_WIDTH_M,
                                                cap_style="flat")]), to_storage)[0]
    grown = shapely.intersection(strip, geoms[m], grid_size=size)
    geoms[k] = shapely.union(geoms[k], grown, grid_size=size)
    defects.append(DemoDefect(
        "overlap", int(Level.BASE), (base.code.iloc[k], base.code.iloc[m]),
        base.parent_code.iloc[k], _metric_area(grown, to_metric),
        f"{base.code.iloc[k]} grown {_OVERLAP_WIDTH_M:.0f} m over {base.code.iloc[m]} along "
        f"{_DEFECT_EDGE_M:.0f} m of their shared edge"))

    damaged = base.copy()
    damaged["geom"] = gpd.GeoSeries(geoms, crs=DEFAULT_SRID, index=base.index)
    grids[Level.BASE] = damaged
    return defects


def _metric_area(geom, to_metric: pyproj.Transformer) -> float:
    return round(float(shapely.area(_transform(np.array([geom]), to_metric)[0])), 1)
