"""Pure coverage checks: arrays of geometries in the input CRS in, candidate findings out.

Topology is decided in the CRS the grids are stored in (a straight edge in lon/lat is not
straight once projected, so overlaying projected copies would invent slivers along long
edges). Every ``check_*`` function returns candidate
:class:`~gisgrid.coverage.report.Finding` objects with geometry in the input CRS and no
measure yet; :func:`gisgrid.coverage.hierarchy.measure_findings` projects only those to the
metric CRS, measures areas (m2) and widths (m) and drops those at or below the thresholds.

Overlay never runs on invalid input: :func:`polygonal_fix` repairs with
``make_valid(method="structure")`` while :func:`check_geometries` still reports the
invalidity. Checks that need a coverage run per parent partition (:func:`check_partition`),
never as one call over the whole city.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
import shapely

from gisgrid.coverage.report import Finding

DEFAULT_MIN_AREA = 1.0        # m2
DEFAULT_SLIVER_WIDTH = 10.0   # m
DEFAULT_STRADDLE_SHARE = 0.1  # a parent must hold > 10 % of a child for it to straddle

_POLYGONAL = (shapely.GeometryType.POLYGON, shapely.GeometryType.MULTIPOLYGON)


def polygonal_fix(geoms: np.ndarray) -> np.ndarray:
    """Valid polygonal versions of ``geoms`` for overlay (empty where nothing polygonal is left).

    Valid polygons are returned as they are; the rest go through
    ``make_valid(method="structure", keep_collapsed=False)`` and keep only polygonal parts.
    """
    geoms = np.asarray(geoms, dtype=object)
    out = geoms.copy()
    missing = shapely.is_missing(geoms)
    out[missing] = shapely.Polygon()
    types = shapely.get_type_id(out)
    ok = np.isin(types, _POLYGONAL) & shapely.is_valid(out)
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


def widths_of(geoms: np.ndarray) -> np.ndarray:
    """Width (diameter of the maximum inscribed circle) of each polygonal geometry, in its units."""
    geoms = np.asarray(geoms, dtype=object)
    if len(geoms) == 0:
        return np.zeros(0)
    area = shapely.area(geoms)
    perim = shapely.length(geoms)
    with np.errstate(divide="ignore", invalid="ignore"):
        tol = np.where(perim > 0, np.maximum(0.1 * area / perim, 1e-3), 1e-3)
    radius = shapely.length(shapely.maximum_inscribed_circle(geoms, tol))
    return 2.0 * np.nan_to_num(radius)


def check_geometries(geoms: np.ndarray, codes: Sequence[str], level, parent_codes) -> list[Finding]:
    """``invalid_geometry`` findings: missing, empty, non-polygonal and invalid features.

    The finding geometry is the location shapely reports (a point) or the feature itself.
    """
    geoms = np.asarray(geoms, dtype=object)
    findings = []
    missing = shapely.is_missing(geoms)
    types = np.where(missing, -1, shapely.get_type_id(np.where(missing, None, geoms)))
    empty = ~missing & shapely.is_empty(np.where(missing, shapely.Polygon(), geoms))
    polygonal = np.isin(types, _POLYGONAL)
    valid = np.ones(len(geoms), dtype=bool)
    check = polygonal & ~empty
    valid[check] = shapely.is_valid(geoms[check])
    for i in np.flatnonzero(missing | empty | ~polygonal | ~valid):
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
    counts = Counter(codes)
    findings = []
    for code, count in sorted(counts.items()):
        if count < 2:
            continue
        idx = [i for i, c in enumerate(codes) if c == code]
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
    parts, owner = shapely.get_parts(np.asarray(fixed, dtype=object), return_index=True)
    if len(parts) == 0:
        return []
    area = shapely.area(parts)
    perim = shapely.length(parts)
    candidates = np.flatnonzero((perim > 0) & (area * scale < sliver_width * perim))
    n_parts = np.bincount(owner, minlength=len(fixed))
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


def union_of(fixed: np.ndarray, *, coverage_valid: bool):
    """Union of valid polygons: ``coverage_union_all`` on a valid coverage, else ``union_all``."""
    fixed = np.asarray(fixed, dtype=object)
    if len(fixed) == 0:
        return shapely.Polygon()
    if coverage_valid:
        try:
            return shapely.coverage_union_all(fixed)
        except shapely.errors.GEOSException:
            pass
    return shapely.union_all(fixed)


def check_partition(fixed: np.ndarray, codes: Sequence[str], level, parent_code,
                    parent_geom=None):
    """Check the children of one parent: edge mismatches, overlaps, gaps, parts outside the parent.

    Parameters
    ----------
    fixed : array of valid polygonal geometries, the children of one parent
    codes : their codes
    level : the children's level
    parent_code : the parent's code (None for a top level)
    parent_geom : the parent's valid polygonal geometry, or None to skip gaps and outside parts

    Returns
    -------
    (findings, union) : the findings and the union of the children (for the caller's use)
    """
    fixed = np.asarray(fixed, dtype=object)
    findings: list[Finding] = []
    if len(fixed) == 0:
        return findings, shapely.Polygon()
    edges = shapely.coverage_invalid_edges(fixed)
    bad = np.flatnonzero(~shapely.is_empty(edges) & ~shapely.is_missing(edges))
    for i in bad:
        findings.append(Finding(
            kind="edge_mismatch", level=level, codes=(str(codes[i]),), parent_code=parent_code,
            geometry=edges[i]))
    if len(bad):
        findings.extend(_overlaps(fixed, codes, bad, level, parent_code))
    union = union_of(fixed, coverage_valid=len(bad) == 0)
    if parent_geom is not None and not shapely.is_empty(parent_geom):
        tree = shapely.STRtree(fixed)
        gaps = _area_parts(shapely.difference(parent_geom, union))
        minx, miny, maxx, maxy = shapely.bounds(parent_geom)
        touch = 1e-7 * max(maxx - minx, maxy - miny)   # overlay round-off, in CRS units
        findings.extend(gap_findings(gaps, tree, codes, level, parent_code, touch))
        outside = _area_parts(shapely.difference(union, parent_geom))
        for part in outside:
            hits = tree.query(part, predicate="intersects")
            hits = [h for h in hits if shapely.area(shapely.intersection(fixed[h], part)) > 0]
            findings.append(Finding(
                kind="outside_parent", level=level, codes=tuple(sorted(str(codes[h]) for h in hits)),
                parent_code=parent_code, geometry=part))
    return findings, union


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
                       m2_per_unit2: float = 1.0) -> list[Finding]:
    """``orphan``, ``childless_parent`` and ``straddles_parents`` findings.

    A child is an orphan when its parent code is missing or names no parent. A parent with no
    child is childless. A child straddles parents when at least two parents each hold more than
    ``min_area`` (m2; areas converted with ``m2_per_unit2``) and more than ``straddle_share``
    of its area.
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
    if len(child_fixed) and len(parent_fixed):
        tree = shapely.STRtree(child_fixed)
        # predicate(parent, child): the prepared parent is reused for its candidates
        p_idx, c_idx = tree.query(parent_fixed, predicate="overlaps")
        if len(p_idx):
            shares = shapely.area(shapely.intersection(parent_fixed[p_idx], child_fixed[c_idx]))
            child_area = shapely.area(child_fixed[c_idx])
            big = (shares * m2_per_unit2 > min_area) & (shares > straddle_share * child_area)
            held: dict[int, list[tuple[str, float]]] = {}
            for p, c, s in zip(p_idx[big], c_idx[big], shares[big]):
                held.setdefault(int(c), []).append((str(parent_codes[p]), float(s)))
            for c, holders in sorted(held.items()):
                if len(holders) < 2:
                    continue
                holders.sort()
                findings.append(Finding(
                    kind="straddles_parents", level=level, codes=(str(child_codes[c]),),
                    parent_code=child_parent_codes[c], geometry=child_fixed[c],
                    detail={"parent_shares": {code: round(s / float(shapely.area(child_fixed[c])), 4)
                                              for code, s in holders}}))
    return findings
