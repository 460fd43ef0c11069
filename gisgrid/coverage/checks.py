"""Pure coverage checks: arrays of geometries in the input CRS in, candidate findings out.

Topology is decided in the CRS the grids are stored in (a straight edge in lon/lat is not
straight once projected, so overlaying projected copies would invent slivers along long
edges). Every ``check_*`` function returns candidate
:class:`~gisgrid.coverage.report.Finding` objects with geometry in the input CRS and no
measure yet; :func:`gisgrid.coverage.hierarchy.measure_findings` projects only those to the
metric CRS, measures areas (m2) and widths (m) and drops those at or below the thresholds.

Overlay never runs on invalid input: :func:`polygonal_fix` repairs with
``make_valid(method="structure")`` while :func:`check_geometries` still reports the
invalidity (validity is tested once, :func:`classify_geometries`).

Coverage checks run per parent partition, never as one call over the whole city:
:func:`check_edges` finds every feature's invalid edges, across parent borders too, and
which partitions are *exact* (valid coverage whose union is the parent, vertex for vertex);
only the other partitions go through the overlay of :func:`check_partition` (overlaps, gaps,
parts outside the parent), and a partition valid against its parent's frame ring that lacks
no area skips even that. On a clean, recomputed hierarchy nearly every partition is exact, so
the cost stays close to one GEOS coverage check of the base level.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import shapely

from gisgrid.coverage.report import Finding

DEFAULT_MIN_AREA = 1.0        # m2
DEFAULT_SLIVER_WIDTH = 10.0   # m
DEFAULT_STRADDLE_SHARE = 0.1  # a parent must hold > 10 % of a child for it to straddle

_POLYGONAL = (shapely.GeometryType.POLYGON, shapely.GeometryType.MULTIPOLYGON)


def classify_geometries(geoms: np.ndarray) -> dict[str, np.ndarray]:
    """Boolean masks ``missing``, ``empty``, ``polygonal`` and ``valid`` of ``geoms``.

    ``valid`` is computed once here (it is the costly test) and reused by
    :func:`polygonal_fix` and :func:`check_geometries`; it is True only for polygonal,
    non-empty, valid features.
    """
    geoms = np.asarray(geoms, dtype=object)
    missing = shapely.is_missing(geoms)
    present = np.where(missing, shapely.Polygon(), geoms)
    polygonal = ~missing & np.isin(shapely.get_type_id(present), _POLYGONAL)
    empty = ~missing & shapely.is_empty(present)
    valid = polygonal & ~empty
    valid[valid] = shapely.is_valid(geoms[valid])
    return {"missing": missing, "empty": empty, "polygonal": polygonal, "valid": valid}


def polygonal_fix(geoms: np.ndarray, status: dict | None = None) -> np.ndarray:
    """Valid polygonal versions of ``geoms`` for overlay (empty where nothing polygonal is left).

    Valid polygons are returned as they are (``status`` from :func:`classify_geometries`
    saves testing them again); the rest go through
    ``make_valid(method="structure", keep_collapsed=False)`` and keep only polygonal parts.
    """
    geoms = np.asarray(geoms, dtype=object)
    status = status if status is not None else classify_geometries(geoms)
    out = geoms.copy()
    out[status["missing"]] = shapely.Polygon()
    ok = status["valid"] | (status["polygonal"] & status["empty"])
    for i in np.flatnonzero(~ok):
        fixed = out[i]
        if shapely.get_type_id(fixed) in (shapely.GeometryType.POLYGON,
                                          shapely.GeometryType.MULTIPOLYGON,
                                          shapely.GeometryType.GEOMETRYCOLLECTION):
            fixed = shapely.make_valid(fixed, method="structure", keep_collapsed=False)
        parts = [p for p in shapely.get_parts(fixed)
                 if shapely.get_type_id(p) in _POLYGONAL and not p.is_empty]
        out[i] = shapely.union_all(parts) if parts else shapely.Polygon()
    return out


def widths_of(geoms: np.ndarray, tolerance=None) -> np.ndarray:
    """Width (diameter of the maximum inscribed circle) of each polygonal geometry, in its units.

    ``tolerance`` (scalar or one per geometry, in the geometries' units) is passed to
    ``shapely.maximum_inscribed_circle``: the radius found is at most ``tolerance`` short, so
    the width is at most twice that short. Default: a tenth of area / perimeter (relative).
    """
    geoms = np.asarray(geoms, dtype=object)
    if len(geoms) == 0:
        return np.zeros(0)
    if tolerance is None:
        area = shapely.area(geoms)
        perim = shapely.length(geoms)
        with np.errstate(divide="ignore", invalid="ignore"):
            tolerance = np.where(perim > 0, np.maximum(0.1 * area / perim, 1e-3), 1e-3)
    radius = shapely.length(shapely.maximum_inscribed_circle(geoms, tolerance))
    return 2.0 * np.nan_to_num(radius)


def check_geometries(geoms: np.ndarray, codes: Sequence[str], level, parent_codes,
                     status: dict | None = None) -> list[Finding]:
    """``invalid_geometry`` findings: missing, empty, non-polygonal and invalid features.

    The finding geometry is the location shapely reports (a point) or the feature itself.
    ``status`` is :func:`classify_geometries` of ``geoms`` when already known.
    """
    geoms = np.asarray(geoms, dtype=object)
    status = status if status is not None else classify_geometries(geoms)
    missing, empty = status["missing"], status["empty"]
    polygonal, valid = status["polygonal"], status["valid"]
    findings = []
    for i in np.flatnonzero(~valid):
        if missing[i]:
            reason, where = "missing geometry", None
        elif empty[i]:
            reason, where = "empty geometry", None
        elif not polygonal[i]:
            reason, where = f"not polygonal: {geoms[i].geom_type}", geoms[i]
        else:
            reason = shapely.is_valid_reason(geoms[i])
            where = _reason_location(reason) or geoms[i]
        findings.append(Finding(
            kind="invalid_geometry", level=level, codes=(str(codes[i]),),
            parent_code=parent_codes[i], geometry=where, detail={"reason": reason}))
    return findings


def _reason_location(reason: str):
    """The point in shapely's ``is_valid_reason`` text, e.g. ``Self-intersection[3 4]``."""
    if "[" not in reason or not reason.endswith("]"):
        return None
    try:
        x, y = (float(v) for v in reason[reason.rindex("[") + 1:-1].split()[:2])
    except ValueError:
        return None
    return shapely.Point(x, y)


def check_duplicate_codes(codes: Sequence[str], level, parent_codes, geoms) -> list[Finding]:
    """``duplicate_code`` findings: one per code used by more than one feature of a level."""
    repeated = sorted(code for code, count in Counter(codes).items() if count > 1)
    if not repeated:
        return []
    positions: dict[str, list[int]] = {code: [] for code in repeated}
    for i, c in enumerate(codes):
        if c in positions:
            positions[c].append(i)
    findings = []
    for code in repeated:
        idx = positions[code]
        count = len(idx)
        parts = [g for g in (geoms[i] for i in idx) if g is not None and not shapely.is_empty(g)]
        findings.append(Finding(
            kind="duplicate_code", level=level, codes=(str(code),),
            parent_code=parent_codes[idx[0]],
            geometry=shapely.GeometryCollection(parts) if parts else None,
            detail={"count": count}))
    return findings


def check_slivers(fixed: np.ndarray, codes: Sequence[str], level, parent_codes,
                  sliver_width: float, scale: float = 1.0) -> list[Finding]:
    """Candidate ``sliver`` findings: grids, or parts of multipolygon grids, that may be narrower
    than ``sliver_width`` (m); their width is measured and checked later.

    Width is the diameter of the maximum inscribed circle. A part whose
    ``area / perimeter`` (converted to metres with ``scale``, the smallest metres-per-unit
    factor) is at least ``sliver_width`` is skipped: for a convex part the width is at least
    twice that ratio, so the screen leaves a factor-2 margin.
    """
    if sliver_width <= 0 or len(fixed) == 0:
        return []
    fixed = np.asarray(fixed, dtype=object)
    n_parts = shapely.get_num_geometries(fixed)
    # a polygon is its own only part: get_parts only for the multipolygons
    single = (n_parts == 1) & (shapely.get_type_id(fixed) == shapely.GeometryType.POLYGON)
    multi = np.flatnonzero((n_parts >= 1) & ~single)
    split, split_owner = shapely.get_parts(fixed[multi], return_index=True)
    parts = np.concatenate([fixed[single], split])
    owner = np.concatenate([np.flatnonzero(single), multi[split_owner]])
    if len(parts) == 0:
        return []
    area = shapely.area(parts)
    perim = shapely.length(parts)
    candidates = np.flatnonzero((perim > 0) & (area * scale < sliver_width * perim))
    candidates = candidates[np.argsort(owner[candidates], kind="stable")]
    return [Finding(kind="sliver", level=level, codes=(str(codes[owner[j]]),),
                    parent_code=parent_codes[owner[j]], geometry=parts[j],
                    detail={"parts": int(n_parts[owner[j]]), "sliver_width_m": float(sliver_width)})
            for j in candidates]


def _area_parts(geom, min_area: float = 0.0):
    """Polygon parts of ``geom`` with area above ``min_area`` (CRS units)."""
    if geom is None or shapely.is_empty(geom):
        return []
    parts = [p for p in shapely.get_parts(geom) if shapely.get_type_id(p) == shapely.GeometryType.POLYGON]
    return [p for p in parts if p.area > min_area]


def union_of(fixed: np.ndarray, *, coverage_valid: bool, bad=None):
    """Union of valid polygons: ``coverage_union_all`` on a valid coverage, else ``union_all``.

    ``bad``: positions of the only features with invalid edges; the others form a valid
    coverage, dissolved by ``coverage_union_all`` before the overlay with the bad ones.
    """
    fixed = np.asarray(fixed, dtype=object)
    if len(fixed) == 0:
        return shapely.Polygon()
    if not coverage_valid and bad is not None and 0 < len(bad) < len(fixed):
        good = np.ones(len(fixed), dtype=bool)
        good[bad] = False
        try:
            rest = shapely.coverage_union_all(fixed[good])
        except shapely.errors.GEOSException:
            return shapely.union_all(fixed)
        return shapely.union_all(np.concatenate([[rest], fixed[~good]]))
    if coverage_valid:
        try:
            return shapely.coverage_union_all(fixed)
        except shapely.errors.GEOSException:
            pass
    return shapely.union_all(fixed)


FRAME_MARGIN = 0.05   # the frame around a parent reaches this share of its size beyond it


def frame_rings(parent_geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The frame of each parent: (its box, the box minus the parent).

    The box is the parent's bounding box grown by :data:`FRAME_MARGIN` of its size; the ring
    (box minus parent, holes included) holds the parent's boundary with its own vertices, so
    a coverage check of the children plus the ring tests that they reach the parent's border
    vertex for vertex and do not cross it. Empty parents get an empty ring.
    """
    geoms = np.asarray(parent_geoms, dtype=object)
    if len(geoms) == 0:
        return np.zeros((0, 4)), np.zeros(0, dtype=object)
    bounds = shapely.bounds(geoms)
    size = np.fmax(bounds[:, 2] - bounds[:, 0], bounds[:, 3] - bounds[:, 1])
    margin = np.nan_to_num(FRAME_MARGIN * size) + 1e-9
    boxes = np.column_stack([bounds[:, 0] - margin, bounds[:, 1] - margin,
                             bounds[:, 2] + margin, bounds[:, 3] + margin])
    empty = shapely.is_empty(geoms)
    rings = np.full(len(geoms), shapely.Polygon(), dtype=object)
    if (~empty).any():
        rings[~empty] = shapely.difference(shapely.box(*boxes[~empty].T), geoms[~empty])
    return boxes, rings


@dataclass
class EdgeCheck:
    """What :func:`check_edges` learnt about a level.

    Attributes
    ----------
    edges : array
        Per feature: its invalid edges, or None when they all match.
    candidates : array of bool
        Per feature: an invalid edge against its siblings or its parent's frame ring
        (stage 1); every child that overlaps a sibling or crosses its parent's border is one.
    exact : array of bool
        Per partition: the children form a valid coverage whose union is exactly the parent
        (vertex for vertex): no overlap, gap or part outside the parent is possible.
    unions : list
        Per partition: the union of the children when their coverage is valid, else None.
    boxes : list
        Per partition: the frame box ``(minx, miny, maxx, maxy)`` its children were checked
        in, or None when no ring was needed.
    """

    edges: np.ndarray
    candidates: np.ndarray
    exact: np.ndarray
    unions: list
    boxes: list


def check_edges(fixed: np.ndarray, partitions: Sequence[np.ndarray],
                parent_geoms: Sequence) -> EdgeCheck:
    """Invalid edges of each feature (``shapely.coverage_invalid_edges``), partition by partition.

    Parameters
    ----------
    fixed : valid polygonal geometries of one level
    partitions : index arrays into ``fixed``, one per parent partition
    parent_geoms : one per partition, the parent's valid polygonal geometry or None

    Notes
    -----
    Never one coverage call over the whole level; two stages instead:

    1. each partition is checked alone. When its coverage is valid and its union is exactly
       the parent (normalised, vertex for vertex), its children also match the parent's
       border: nothing more to do. Otherwise the children touching the parent's frame ring
       (:func:`frame_rings`) are checked again with the ring as one more member. A child with
       an invalid edge in either check is a *candidate*. A child whose edges all match its
       siblings and its parent's border can only mismatch a child of another parent where the
       two parents mismatch (reported on their own level; for the straddle check, see
       :func:`gisgrid.coverage.hierarchy.check_level`). Partitions without a parent geometry have no ring: their children
       touching another partition are candidates too.
    2. each partition's candidates are checked again with every feature of the level they
       intersect (siblings and children of neighbouring parents), without the ring; the edges
       found there are the result. A candidate's whole neighbourhood is in its group, so its
       edges are those one check of the whole level would give; a non-candidate's mismatches
       are all with candidates, hence found in their groups.
    """
    fixed = np.asarray(fixed, dtype=object)
    n, m = len(fixed), len(partitions)
    candidate = np.zeros(n, dtype=bool)
    partition_of = np.full(n, -1)
    exact = np.zeros(m, dtype=bool)
    unions: list = [None] * m
    boxes: list = [None] * m
    for k, idx in enumerate(partitions):
        partition_of[idx] = k
        members = fixed[idx]
        mismatched = ~shapely.is_empty(shapely.coverage_invalid_edges(members))
        parent = parent_geoms[k]
        if parent is None or shapely.is_empty(parent):
            candidate[idx] = mismatched
            continue
        if not mismatched.any():
            unions[k] = union_of(members, coverage_valid=True)
            if shapely.equals_exact(shapely.normalize(unions[k]), shapely.normalize(parent), 0.0):
                exact[k] = True
                continue
        box, ring = frame_rings(np.array([parent], dtype=object))
        boxes[k] = tuple(box[0])
        # sibling mismatches are known: only the children touching the ring are checked with it
        shapely.prepare(ring[0])
        touching = np.flatnonzero(shapely.intersects(ring[0], members))
        framed = np.concatenate([members[touching], ring])
        against_ring = ~shapely.is_empty(shapely.coverage_invalid_edges(framed)[:len(touching)])
        candidate[idx] = mismatched
        candidate[idx[touching[against_ring]]] = True
    edges = np.full(n, None, dtype=object)
    unframed = [k for k in range(m) if parent_geoms[k] is None or shapely.is_empty(parent_geoms[k])]
    tree = None
    if unframed and m > 1:
        tree = shapely.STRtree(fixed)
        sel = np.concatenate([partitions[k] for k in unframed])
        a, b = tree.query(fixed[sel], predicate="intersects")
        candidate[sel[a[partition_of[sel[a]] != partition_of[b]]]] = True
    if candidate.any():
        tree = tree if tree is not None else shapely.STRtree(fixed)
        found: dict[int, list] = {}
        for idx in partitions:
            picked = idx[candidate[idx]]
            if len(picked) == 0:
                continue
            _, near = tree.query(fixed[picked], predicate="intersects")
            group = np.union1d(picked, near)
            group_edges = shapely.coverage_invalid_edges(fixed[group])
            for g in np.flatnonzero(~shapely.is_empty(group_edges)):
                found.setdefault(int(group[g]), []).append(group_edges[g])
        for i, parts in found.items():
            edges[i] = parts[0] if len(parts) == 1 else shapely.line_merge(shapely.union_all(parts))
    return EdgeCheck(edges=edges, candidates=candidate, exact=exact, unions=unions, boxes=boxes)


def check_partition(fixed: np.ndarray, codes: Sequence[str], level, parent_code,
                    parent_geom=None, *, bad: np.ndarray | None = None, union: bool = True,
                    whole=None):
    """Check the children of one parent: overlaps, gaps, parts outside the parent.

    Parameters
    ----------
    fixed : array of valid polygonal geometries, the children of one parent
    codes : their codes
    level : the children's level
    parent_code : the parent's code (None for a top level)
    parent_geom : the parent's valid polygonal geometry, or None to skip gaps and outside parts
    bad : positions (in ``fixed``) of the children that may overlap a sibling (those with an
        invalid edge; in a pair where one contains the other, the contained one has invalid
        edges). None: computed here with ``shapely.coverage_invalid_edges``.
    union : whether the union of the children is wanted back (it is computed anyway when
        gaps or outside parts are measured)
    whole : the union of the children when already known

    Returns
    -------
    (findings, union, outside) : the findings, the union of the children (None when not
    computed), and the positions of the children with a part outside the parent
    """
    fixed = np.asarray(fixed, dtype=object)
    findings: list[Finding] = []
    if len(fixed) == 0:
        return findings, shapely.Polygon(), np.zeros(0, dtype=int)
    if bad is None:
        edges = shapely.coverage_invalid_edges(fixed)
        bad = np.flatnonzero(~shapely.is_empty(edges) & ~shapely.is_missing(edges))
    if len(bad):
        findings.extend(_overlaps(fixed, codes, np.asarray(bad), level, parent_code))
    has_parent = parent_geom is not None and not shapely.is_empty(parent_geom)
    if whole is None and (union or has_parent):
        whole = union_of(fixed, coverage_valid=len(bad) == 0, bad=bad)
    outside_children: set[int] = set()
    if has_parent:
        tree = shapely.STRtree(fixed)
        gaps = _area_parts(shapely.difference(parent_geom, whole))
        minx, miny, maxx, maxy = shapely.bounds(parent_geom)
        touch = 1e-7 * max(maxx - minx, maxy - miny)   # overlay round-off, in CRS units
        findings.extend(gap_findings(gaps, tree, codes, level, parent_code, touch))
        outside = _area_parts(shapely.difference(whole, parent_geom))
        for part in outside:
            hits = tree.query(part, predicate="intersects")
            hits = [h for h in hits if shapely.area(shapely.intersection(fixed[h], part)) > 0]
            outside_children.update(int(h) for h in hits)
            findings.append(Finding(
                kind="outside_parent", level=level, codes=tuple(sorted(str(codes[h]) for h in hits)),
                parent_code=parent_code, geometry=part))
    return findings, whole, np.array(sorted(outside_children), dtype=int)


def gap_findings(gaps: Sequence, tree: shapely.STRtree, codes: Sequence[str], level,
                 parent_code, touch_distance: float = 0.0) -> list[Finding]:
    """One ``gap`` finding per gap polygon, naming the grids that border it."""
    findings = []
    for gap in gaps:
        hits = tree.query(gap, predicate="dwithin", distance=touch_distance)
        findings.append(Finding(
            kind="gap", level=level, codes=tuple(sorted({str(codes[h]) for h in hits})),
            parent_code=parent_code, geometry=gap))
    return findings


def _overlaps(fixed, codes, bad, level, parent_code) -> list[Finding]:
    """One candidate ``overlap`` finding per unordered pair whose intersection has an area.

    Only features with an invalid edge can take part in an overlap (in a pair where one
    contains the other, the contained one has invalid edges), so only they are queried.
    """
    tree = shapely.STRtree(fixed)
    left, right = tree.query(fixed[bad], predicate="intersects")
    left = bad[left]
    pairs = {(min(a, b), max(a, b)) for a, b in zip(left.tolist(), right.tolist()) if a != b}
    if not pairs:
        return []
    pairs = sorted(pairs)
    a_idx = np.array([p[0] for p in pairs])
    b_idx = np.array([p[1] for p in pairs])
    inter = shapely.intersection(fixed[a_idx], fixed[b_idx])
    findings = []
    for a, b, geom in zip(a_idx, b_idx, inter):
        parts = _area_parts(geom, 0.0)
        if not parts:
            continue
        poly = shapely.union_all(parts) if len(parts) > 1 else parts[0]
        findings.append(Finding(
            kind="overlap", level=level, codes=tuple(sorted((str(codes[a]), str(codes[b])))),
            parent_code=parent_code, geometry=poly, detail={"parts": len(parts)}))
    return findings


def check_holes(union, level, tree: shapely.STRtree, codes) -> list[Finding]:
    """Candidate ``gap`` findings for a layer with no parent: holes enclosed by its union."""
    holes = []
    for part in shapely.get_parts(union):
        if shapely.get_type_id(part) != shapely.GeometryType.POLYGON:
            continue
        for ring in part.interiors:
            hole = shapely.Polygon(ring)
            if hole.area > 0:
                holes.append(hole)
    minx, miny, maxx, maxy = shapely.bounds(union) if not shapely.is_empty(union) else (0, 0, 0, 0)
    return gap_findings(holes, tree, codes, level, None, 1e-7 * max(maxx - minx, maxy - miny))


def check_parent_links(child_codes, child_parent_codes, child_fixed, parent_codes, parent_fixed,
                       level, *, min_area: float = DEFAULT_MIN_AREA,
                       straddle_share: float = DEFAULT_STRADDLE_SHARE,
                       m2_per_unit2: float = 1.0, candidates=None) -> list[Finding]:
    """``orphan``, ``childless_parent`` and ``straddles_parents`` findings.

    A child is an orphan when its parent code is missing or names no parent. A parent with no
    child is childless. A child straddles parents when at least two parents each hold more than
    ``min_area`` (m2; areas converted with ``m2_per_unit2``) and more than ``straddle_share``
    of its area. Only the children at ``candidates`` (positions) are tested for straddling
    (default: all): a child lying inside its own parent, which overlaps no other parent,
    cannot straddle.
    """
    findings = []
    known = set(parent_codes)
    for i, pc in enumerate(child_parent_codes):
        if pc is None or pc not in known:
            findings.append(Finding(
                kind="orphan", level=level, codes=(str(child_codes[i]),), parent_code=pc,
                geometry=child_fixed[i] if not shapely.is_empty(child_fixed[i]) else None,
                detail={"reason": "missing parent code" if pc is None else "unknown parent code"}))
    used = set(child_parent_codes)
    parent_level = None if level is None else level - 1
    for j, code in enumerate(parent_codes):
        if code not in used:
            findings.append(Finding(
                kind="childless_parent", level=parent_level, codes=(str(code),),
                parent_code=None, geometry=parent_fixed[j], area_m2=None))
    child_fixed = np.asarray(child_fixed, dtype=object)
    parent_fixed = np.asarray(parent_fixed, dtype=object)
    candidates = (np.arange(len(child_fixed)) if candidates is None
                  else np.asarray(candidates, dtype=int))
    if len(candidates) == 0 or len(parent_fixed) == 0:
        return findings
    tree = shapely.STRtree(parent_fixed)
    pos, p_idx = tree.query(child_fixed[candidates], predicate="intersects")
    c_idx = candidates[pos]
    if len(p_idx) == 0:
        return findings
    shares = shapely.area(shapely.intersection(parent_fixed[p_idx], child_fixed[c_idx]))
    child_area = shapely.area(child_fixed[c_idx])
    big = (shares * m2_per_unit2 > min_area) & (shares > straddle_share * child_area)
    held: dict[int, list[tuple[str, float]]] = {}
    for p, c, share in zip(p_idx[big], c_idx[big], shares[big]):
        held.setdefault(int(c), []).append((str(parent_codes[p]), float(share)))
    for c, holders in sorted(held.items()):
        if len(holders) < 2:
            continue
        holders.sort()
        area = float(shapely.area(child_fixed[c]))
        findings.append(Finding(
            kind="straddles_parents", level=level, codes=(str(child_codes[c]),),
            parent_code=child_parent_codes[c], geometry=child_fixed[c],
            detail={"parent_shares": {code: round(share / area, 4) for code, share in holders}}))
    return findings
