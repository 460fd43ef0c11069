"""Repair of a grid level as a proposal: nothing is applied here, a diff is returned.

How the proposal is built, for one level against its (frozen) parent level:

1. Children and parents are made valid (``make_valid(method="structure")``); parents are
   snapped to the precision grid of their CRS (:mod:`gisgrid.precision`) and not changed
   otherwise.
2. All boundaries are noded together *in fixed precision* (``union_all(..., grid_size=...)``):
   near-coincident vertices collapse onto one precision-grid point, and the plane is cut into
   faces (``polygonize``) that share vertex-identical edges.
3. Each face inside a parent is given to a child of that parent: the one child covering it;
   for an overlap face, the covering child with the longest shared border with it (or the
   highest priority); for a gap, the whole connected gap goes to the neighbour with the
   longest shared border when it is narrower than ``max_gap_width`` (or, with
   ``split_gaps=True``, each gap face to its own best neighbour). Faces outside every parent
   are dropped (children are clipped to their parent). Wider gaps stay, listed as unresolved.
4. Each child's faces are dissolved (``coverage_union_all``): the result is a coverage whose
   shared edges match vertex for vertex, snapped to the precision grid.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pyproj
import shapely

from gisgrid.coverage.checks import polygonal_fix, widths_of
from gisgrid.coverage.hierarchy import common_crs, prepare_layer, split_levels
from gisgrid.crs import local_metric_crs
from gisgrid.errors import InputError
from gisgrid.precision import grid_size_for

DEFAULT_MAX_GAP_WIDTH = 50.0  # m


@dataclass
class GridChange:
    """The proposed change of one grid (areas in m2, geometries in the input CRS)."""

    code: str
    parent_code: str | None
    area_before_m2: float
    area_after_m2: float
    geometry_before: object
    geometry_after: object
    actions: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.actions)


@dataclass
class RepairProposal:
    """A proposed repair of one level (or of a hierarchy, level by level).

    Attributes
    ----------
    children : GeoDataFrame
        The repaired grids (same rows and columns as the input, geometry replaced).
    parents : GeoDataFrame or None
        The parent level as frozen for the repair: made valid and snapped to the precision
        grid, cut by the same arrangement as the children (so their edges match exactly).
    changes : list of GridChange
        One entry per grid, changed or not.
    unresolved_gaps : list
        Gaps too wide to merge (geometries in the input CRS), each needing a new grid.
    """

    children: gpd.GeoDataFrame
    parents: gpd.GeoDataFrame | None
    changes: list[GridChange]
    unresolved_gaps: list = field(default_factory=list)
    unresolved_gap_areas_m2: list[float] = field(default_factory=list)
    counts: dict = field(default_factory=dict)

    @property
    def changed(self) -> list[GridChange]:
        return [c for c in self.changes if c.changed]

    def summary(self) -> dict:
        """Counts of the changes and of what is left."""
        out = {"grids": len(self.changes), "changed": len(self.changed),
               "area_moved_m2": round(sum(abs(c.area_after_m2 - c.area_before_m2)
                                          for c in self.changed), 3),
               "unresolved_gaps": len(self.unresolved_gaps),
               "unresolved_gap_area_m2": round(float(sum(self.unresolved_gap_areas_m2)), 3)}
        out.update(self.counts)
        return out

    def to_geojson(self) -> dict:
        """The diff as a FeatureCollection in EPSG:4326: one feature per changed grid.

        Properties: ``code``, ``parent_code``, ``area_before_m2``, ``area_after_m2``,
        ``area_change_m2``, ``actions``; the geometry is the proposed one. The collection
        carries the ``summary``.
        """
        changed = self.changed
        crs = self.children.crs
        after = gpd.GeoSeries([c.geometry_after for c in changed], crs=crs).to_crs(4326)
        features = []
        for change, geom in zip(changed, after.values):
            features.append({
                "type": "Feature",
                "properties": {
                    "code": change.code, "parent_code": change.parent_code,
                    "area_before_m2": round(change.area_before_m2, 3),
                    "area_after_m2": round(change.area_after_m2, 3),
                    "area_change_m2": round(change.area_after_m2 - change.area_before_m2, 3),
                    "actions": ",".join(change.actions)},
                "geometry": (json.loads(shapely.to_geojson(geom))
                             if geom is not None and not shapely.is_empty(geom) else None)})
        return {"type": "FeatureCollection", "summary": self.summary(), "features": features}


def _priorities(frame: gpd.GeoDataFrame, codes: list[str], priority) -> np.ndarray:
    if priority is None:
        return np.zeros(len(codes))
    if isinstance(priority, str):
        if priority not in frame.columns:
            raise InputError(f"no priority field {priority!r} in the grid layer")
        return np.asarray(frame[priority].fillna(0).astype(float))
    if isinstance(priority, Mapping):
        return np.asarray([float(priority.get(c, 0)) for c in codes])
    raise InputError("priority must be a field name or a mapping of code to number")


def propose_repair(children: gpd.GeoDataFrame, parents: gpd.GeoDataFrame | None = None, *,
                   code_field: str = "code", parent_field: str = "parent_code",
                   max_gap_width: float = DEFAULT_MAX_GAP_WIDTH, priority=None,
                   split_gaps: bool = False, metric_crs=None) -> RepairProposal:
    """Propose a repair of one level of grids, with the parent level frozen.

    Parameters
    ----------
    children : grid frame of the level to repair
    parents : grid frame of the parent level, or None (then no clipping; enclosed holes are
        the gaps)
    code_field, parent_field : column names
    max_gap_width : gaps narrower than this (m) are merged into neighbours
    priority : None, a field name or ``{code: number}``; the higher number wins an overlap
        (default rule: the grid with the longest shared border with the overlap)
    split_gaps : give each face of a gap to its own best neighbour instead of the whole gap
        to one
    metric_crs : CRS to measure in (default from the data)

    Returns
    -------
    RepairProposal
    """
    crs = common_crs([children] + ([parents] if parents is not None else []))
    metric_crs = pyproj.CRS(metric_crs) if metric_crs is not None else local_metric_crs(children)
    grid = grid_size_for(crs)
    layer = prepare_layer(children, code_field=code_field, parent_field=parent_field)
    codes = layer.codes
    fixed = layer.fixed
    prio = _priorities(children, codes, priority)
    parent_geoms, parent_codes, frozen_parents = None, [], None
    if parents is not None:
        player = prepare_layer(parents, code_field=code_field, parent_field=parent_field,
                               what="the parent layer")
        parent_geoms = shapely.set_precision(player.fixed, grid)
        parent_codes = player.codes
        frozen_parents = parents.copy()
        frozen_parents[frozen_parents.geometry.name] = gpd.GeoSeries(
            parent_geoms, index=parents.index, crs=crs)

    faces = _faces(fixed, parent_geoms, grid)
    face_parent, owners = _face_owners(faces, fixed, layer.parent_codes, parent_geoms,
                                       parent_codes)
    assigned = np.full(len(faces), -1)
    single = np.array([len(o) == 1 for o in owners], dtype=bool)
    assigned[single] = [o[0] for o in np.asarray(owners, dtype=object)[single]]
    counts = {"overlap_faces": int(sum(len(o) > 1 for o in owners)),
              "gap_faces": 0, "gaps_merged": 0}
    adjacency = _adjacency(faces, np.flatnonzero(~single & (face_parent >= -1)))
    _assign_overlaps(owners, assigned, adjacency, prio, codes)
    gap_faces = np.flatnonzero(np.array([len(o) == 0 for o in owners]) & (face_parent >= -1))
    counts["gap_faces"] = int(len(gap_faces))
    unresolved, merged = _assign_gaps(faces, gap_faces, assigned, adjacency, face_parent,
                                      layer.parent_codes, parent_codes, crs, metric_crs,
                                      max_gap_width, split_gaps=split_gaps)
    counts["gaps_merged"] = merged

    new_geoms = _dissolve(faces, assigned, len(fixed))
    counts["detached_parts_moved"] = _absorb_detached_parts(faces, assigned, new_geoms, fixed,
                                                            face_parent)
    if frozen_parents is not None:
        # the parents as cut by the same fixed-precision arrangement: identical boundaries to
        # their children (moved at most half a precision-grid cell from the input)
        inside = face_parent >= 0
        renoded = _dissolve(faces[inside], face_parent[inside], len(parent_codes))
        frozen_parents[frozen_parents.geometry.name] = gpd.GeoSeries(
            renoded, index=parents.index, crs=crs)
    before_m, after_m = _areas(layer.geoms, new_geoms, crs, metric_crs)
    changes = []
    for i, code in enumerate(codes):
        actions = _actions(layer.geoms[i], fixed[i], new_geoms[i], grid)
        changes.append(GridChange(code=code, parent_code=layer.parent_codes[i],
                                  area_before_m2=float(before_m[i]), area_after_m2=float(after_m[i]),
                                  geometry_before=layer.geoms[i], geometry_after=new_geoms[i],
                                  actions=actions))
    out = children.copy()
    out[out.geometry.name] = gpd.GeoSeries(new_geoms, index=children.index, crs=crs)
    gap_geoms = [g for g, _ in unresolved]
    return RepairProposal(children=out, parents=frozen_parents, changes=changes,
                          unresolved_gaps=gap_geoms,
                          unresolved_gap_areas_m2=[a for _, a in unresolved], counts=counts)


def propose_hierarchy_repair(frames, **options) -> dict[int, RepairProposal]:
    """Repair every level top-down, each against the repaired level above.

    The top level is repaired alone (no clipping). Returns ``{level: RepairProposal}``.
    """
    by_level = split_levels(frames)
    proposals: dict[int, RepairProposal] = {}
    above = None
    for lvl in sorted(by_level):
        proposal = propose_repair(by_level[lvl], above, **options)
        proposals[lvl] = proposal
        if above is not None:
            # the level above as re-cut with this level's boundaries
            proposals[lvl - 1].children = proposal.parents
        above = proposal.children
    return proposals


def _faces(fixed: np.ndarray, parent_geoms, grid: float) -> np.ndarray:
    """Faces of the fixed-precision arrangement of every child and parent boundary."""
    lines = [shapely.boundary(fixed[~shapely.is_empty(fixed)])]
    if parent_geoms is not None:
        lines.append(shapely.boundary(parent_geoms[~shapely.is_empty(parent_geoms)]))
    lines = np.concatenate(lines) if lines else np.array([], dtype=object)
    if len(lines) == 0:
        return np.array([], dtype=object)
    noded = shapely.union_all(lines, grid_size=grid)
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    return faces[shapely.area(faces) > 0]


def _face_owners(faces, fixed, child_parent_codes, parent_geoms, parent_codes):
    """For each face: index of its parent (-1 when there is no parent layer, -2 outside every
    parent) and the list of children (of that parent) covering it."""
    points = shapely.point_on_surface(faces)
    n = len(faces)
    face_parent = np.full(n, -1)
    if parent_geoms is not None:
        face_parent[:] = -2
        f_idx, p_idx = shapely.STRtree(parent_geoms).query(points, predicate="intersects")
        face_parent[f_idx] = p_idx            # parents do not overlap after the parent repair
    owners: list[list[int]] = [[] for _ in range(n)]
    f_idx, c_idx = shapely.STRtree(fixed).query(points, predicate="intersects")
    parent_of_child = None
    if parent_geoms is not None:
        index = {code: j for j, code in enumerate(parent_codes)}
        parent_of_child = np.array([index.get(pc, -1) for pc in child_parent_codes])
        # an orphan (unknown parent code) belongs to the parent it lies in
        orphan = parent_of_child < 0
        if orphan.any():
            rep = shapely.point_on_surface(fixed[orphan])
            o_idx, p_idx = shapely.STRtree(parent_geoms).query(rep, predicate="intersects")
            fill = parent_of_child[orphan]
            fill[o_idx] = p_idx
            parent_of_child[orphan] = fill
    for f, c in zip(f_idx.tolist(), c_idx.tolist()):
        if face_parent[f] == -2:
            continue
        if parent_of_child is not None and parent_of_child[c] != face_parent[f]:
            continue
        owners[f].append(c)
    return face_parent, owners


def _adjacency(faces, unresolved) -> dict[int, dict[int, float]]:
    """Shared boundary length between each unresolved face and its neighbouring faces."""
    adjacency: dict[int, dict[int, float]] = {}
    if len(unresolved) == 0:
        return adjacency
    tree = shapely.STRtree(faces)
    left, right = tree.query(faces[unresolved], predicate="intersects")
    left = unresolved[left]
    keep = left != right
    left, right = left[keep], right[keep]
    shared = shapely.length(shapely.intersection(shapely.boundary(faces[left]),
                                                 shapely.boundary(faces[right])))
    for a, b, length in zip(left.tolist(), right.tolist(), shared.tolist()):
        if length > 0:
            adjacency.setdefault(a, {})[b] = length
    return adjacency


def _assign_overlaps(owners, assigned, adjacency, prio, codes) -> None:
    """Give each overlap face to a covering child: highest priority, then longest shared border
    with faces already held by that child; repeat until no face moves."""
    pending = [f for f, o in enumerate(owners) if len(o) > 1]
    while pending:
        left = []
        for f in pending:
            score = {c: 0.0 for c in owners[f]}
            for g, length in adjacency.get(f, {}).items():
                if assigned[g] in score:
                    score[assigned[g]] += length
            if max(score.values()) == 0:
                left.append(f)
                continue
            assigned[f] = max(score, key=lambda c: (prio[c], score[c], codes[c]))
        if len(left) == len(pending):   # enclosed by other overlap faces: priority, then code
            for f in left:
                assigned[f] = max(owners[f], key=lambda c: (prio[c], codes[c]))
            break
        pending = left


def _assign_gaps(faces, gap_faces, assigned, adjacency, face_parent, child_parent_codes,
                 parent_codes, crs, metric_crs, max_gap_width, *, split_gaps: bool):
    """Merge gaps narrower than ``max_gap_width`` into neighbours; return the unresolved ones."""
    if len(gap_faces) == 0:
        return [], 0
    gap_set = set(gap_faces.tolist())
    # connected gap components (within one parent)
    root = {f: f for f in gap_set}

    def find(f):
        while root[f] != f:
            root[f] = root[root[f]]
            f = root[f]
        return f

    for f in gap_set:
        for g in adjacency.get(f, {}):
            if g in gap_set and face_parent[g] == face_parent[f]:
                root[find(f)] = find(g)
    components: dict[int, list[int]] = {}
    for f in gap_set:
        components.setdefault(find(f), []).append(f)
    comps = list(components.values())
    geoms = [shapely.union_all(faces[c]) for c in comps]
    metric = gpd.GeoSeries(geoms, crs=crs).to_crs(metric_crs).values
    widths = widths_of(np.asarray(metric, dtype=object))
    areas = shapely.area(metric)
    unresolved, merged = [], 0
    for comp, geom, width, area in zip(comps, geoms, widths, areas):
        if width >= max_gap_width:
            unresolved.append((geom, float(area)))
            continue
        if split_gaps:
            done = all(_give_to_best(f, [f], assigned, adjacency) for f in sorted(comp))
        else:
            done = _give_to_best(comp[0], comp, assigned, adjacency)
        if done:
            merged += 1
        else:
            unresolved.append((geom, float(area)))
    return unresolved, merged


def _give_to_best(_first, comp, assigned, adjacency) -> bool:
    """Assign the faces ``comp`` to the held neighbour with the longest shared border."""
    members = set(comp)
    score: dict[int, float] = {}
    for f in comp:
        for g, length in adjacency.get(f, {}).items():
            if g not in members and assigned[g] >= 0:
                score[assigned[g]] = score.get(assigned[g], 0.0) + length
    if not score:
        return False
    best = max(score, key=lambda c: (score[c], -c))
    for f in comp:
        assigned[f] = best
    return True


def _absorb_detached_parts(faces, assigned, new_geoms, fixed, face_parent) -> int:
    """Give each detached part a repair left on a one-part grid to the neighbour (same parent)
    with the longest shared border; updates ``assigned`` and ``new_geoms`` in place."""
    n_parts = shapely.get_num_geometries(new_geoms)
    was_single = shapely.get_num_geometries(fixed) <= 1
    moved = 0
    tree = shapely.STRtree(faces)
    for child in np.flatnonzero((n_parts > 1) & was_single):
        parts = list(shapely.get_parts(new_geoms[child]))
        parts.sort(key=lambda g: g.area, reverse=True)
        for part in parts[1:]:
            own = [f for f in tree.query(part, predicate="covers") if assigned[f] == child]
            if not own:
                continue
            near = tree.query(part, predicate="intersects")
            score: dict[int, float] = {}
            boundary = shapely.boundary(part)
            for g in near:
                owner = assigned[g]
                if owner < 0 or owner == child or face_parent[g] != face_parent[own[0]]:
                    continue
                length = shapely.length(shapely.intersection(boundary, shapely.boundary(faces[g])))
                if length > 0:
                    score[owner] = score.get(owner, 0.0) + length
            if not score:
                continue
            best = max(score, key=lambda c: (score[c], -c))
            assigned[own] = best
            moved += 1
            for target in (child, best):
                held = faces[assigned == target]
                new_geoms[target] = (held[0] if len(held) == 1
                                     else shapely.coverage_union_all(held))
    return moved


def _dissolve(faces, assigned, n_children) -> np.ndarray:
    """Each child's faces dissolved into one (multi)polygon; empty when it holds none."""
    out = np.empty(n_children, dtype=object)
    out[:] = [shapely.Polygon()] * n_children
    order = np.argsort(assigned, kind="stable")
    sorted_assigned = assigned[order]
    starts = np.searchsorted(sorted_assigned, np.arange(n_children), side="left")
    ends = np.searchsorted(sorted_assigned, np.arange(n_children), side="right")
    for child in np.flatnonzero(ends > starts):
        parts = faces[order[starts[child]:ends[child]]]
        out[child] = parts[0] if len(parts) == 1 else shapely.coverage_union_all(parts)
    return out


def _areas(before, after, crs, metric_crs):
    def measure(geoms):
        geoms = np.asarray(geoms, dtype=object)
        clean = np.where(shapely.is_missing(geoms), shapely.Polygon(), geoms)
        return shapely.area(polygonal_fix(gpd.GeoSeries(clean, crs=crs).to_crs(metric_crs).values))
    return measure(before), measure(after)


def _actions(original, fixed, new, grid) -> list[str]:
    """What changed between the input and the proposal, in words."""
    actions = []
    if original is None or shapely.is_empty(original) or not shapely.is_valid(original):
        actions.append("made_valid")
    if shapely.is_empty(new):
        if not shapely.is_empty(fixed):
            actions.append("removed")
        return actions
    if same_vertices_key(new) == same_vertices_key(fixed):
        return actions
    snapped = shapely.set_precision(fixed, grid)
    diff = shapely.symmetric_difference(snapped, new)
    if shapely.is_empty(diff) or shapely.area(diff) <= (grid * grid):
        actions.append("snapped")
    else:
        actions.append("reshaped")
    return actions


def same_vertices_key(geom) -> bytes | None:
    """A key equal for two polygonal geometries with the same vertices, whatever their ring
    order, start point or Polygon/MultiPolygon wrapping (one-part MultiPolygons are stored)."""
    if geom is None:
        return None
    if shapely.get_type_id(geom) == 3:  # Polygon
        geom = shapely.multipolygons([geom])
    return shapely.to_wkb(shapely.normalize(geom))
