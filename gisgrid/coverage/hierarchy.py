"""Validate one level against its parent level, or the whole four-level hierarchy.

Grid frames follow the in-memory contract (``code``, ``name``, ``level``, ``kind``,
``parent_code``, geometry). Topology is checked in the input's CRS; the findings alone are
projected to the local metric CRS (:func:`gisgrid.crs.local_metric_crs`) to be measured
(areas in m2, widths in m) and compared with the thresholds.

>>> import geopandas as gpd, shapely
>>> city = gpd.GeoDataFrame({"code": ["C"], "level": [1]},
...                         geometry=[shapely.box(500000, 3300000, 500100, 3300100)], crs=4547)
>>> grids = gpd.GeoDataFrame({"code": ["a", "b"], "parent_code": ["C", "C"], "level": [2, 2]},
...     geometry=[shapely.box(500000, 3300000, 500050, 3300100),
...               shapely.box(500050, 3300000, 500090, 3300100)], crs=4547)
>>> report = validate_level(grids, city)
>>> [(f.kind, round(f.area_m2)) for f in report.findings]
[('gap', 1000)]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from gisgrid.coverage import checks
from gisgrid.coverage.report import CoverageReport, Finding, finalise_findings
from gisgrid.crs import local_metric_crs, require_crs
from gisgrid.errors import CRSError, InputError


@dataclass
class Layer:
    """One level of grids, prepared for checking (geometry in the input CRS)."""

    codes: list[str]
    parent_codes: list[str | None]
    level: int | None
    geoms: np.ndarray       # as given
    fixed: np.ndarray       # valid polygonal (make_valid structure where needed)
    has_parent_field: bool
    status: dict | None = None   # checks.classify_geometries(geoms)

    def first_index(self) -> dict[str, int]:
        """Position of the first feature holding each code."""
        out: dict[str, int] = {}
        for i, code in enumerate(self.codes):
            out.setdefault(code, i)
        return out


def _clean_codes(values: pd.Series) -> list[str | None]:
    """Codes as stripped text; None where missing or blank."""
    if len(values) == 0:
        return []
    missing = values.isna().to_numpy()
    text = values.astype(str).str.strip().to_numpy(dtype=object)
    return np.where(missing | (text == ""), None, text).tolist()


def prepare_layer(frame: gpd.GeoDataFrame, *, code_field: str = "code",
                  parent_field: str = "parent_code", level: int | None = None,
                  what: str = "the layer") -> Layer:
    """Read codes, parent codes and level from ``frame`` and repair its geometry for overlay.

    Raises
    ------
    InputError
        When the code field is missing or some features have no code (every row named).
    """
    problems = []
    if code_field not in frame.columns:
        raise InputError(
            f"{what} has no code field {code_field!r}",
            [f"fields present: {', '.join(map(str, frame.columns)) or '(none)'}",
             "choose the field with --code-field"])
    codes = _clean_codes(frame[code_field])
    for pos, code in enumerate(codes):
        if code is None:
            problems.append(f"feature {pos + 1} (row index {frame.index[pos]!r}): "
                            f"empty {code_field!r}")
    if problems:
        raise InputError(f"{what}: {len(problems)} features have no code", problems)
    has_parent = parent_field in frame.columns
    parent_codes = _clean_codes(frame[parent_field]) if has_parent else [None] * len(frame)
    if level is None and "level" in frame.columns and len(frame):
        values = pd.unique(frame["level"].dropna())
        if len(values) > 1:
            raise InputError(f"{what} holds several levels {sorted(map(int, values))}: "
                             "validate it with validate_hierarchy or choose one level")
        level = int(values[0]) if len(values) else None
    geoms = np.asarray(frame.geometry.values, dtype=object)
    status = checks.classify_geometries(geoms)
    return Layer(codes=codes, parent_codes=parent_codes, level=level, geoms=geoms,
                 fixed=checks.polygonal_fix(geoms, status), has_parent_field=has_parent,
                 status=status)


class Projector:
    """Projects geometries from the input CRS to the metric CRS (one transformer per run)."""

    def __init__(self, crs, metric_crs):
        self.crs = pyproj.CRS(crs)
        self.metric_crs = pyproj.CRS(metric_crs)
        self.identity = self.crs.equals(self.metric_crs)
        self.transformer = (None if self.identity else
                            pyproj.Transformer.from_crs(self.crs, self.metric_crs,
                                                        always_xy=True))

    def to_metric(self, geoms) -> np.ndarray:
        """``geoms`` (array, None allowed) in the metric CRS."""
        geoms = np.asarray(geoms, dtype=object)
        if self.identity:
            return geoms
        return shapely.transform(geoms, self._transform_xy)

    def _transform_xy(self, coords: np.ndarray) -> np.ndarray:
        xs, ys = self.transformer.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([xs, ys])

    def scale_factors(self, geoms) -> tuple[float, float]:
        """Metres per CRS unit along x and y near the centre of ``geoms`` (1, 1 when metric)."""
        if self.identity:
            return 1.0, 1.0
        geoms = np.asarray(geoms, dtype=object)
        minx, miny, maxx, maxy = shapely.total_bounds(geoms)
        if not np.isfinite([minx, miny, maxx, maxy]).all():
            return 1.0, 1.0
        cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
        d = max(maxx - minx, maxy - miny, 1e-9) * 1e-3
        xs, ys = self.transformer.transform([cx, cx + d, cx], [cy, cy, cy + d])
        kx = float(np.hypot(xs[1] - xs[0], ys[1] - ys[0]) / d)
        ky = float(np.hypot(xs[2] - xs[0], ys[2] - ys[0]) / d)
        return kx, ky


def scale_factors(frame_or_geoms, crs, metric_crs) -> tuple[float, float]:
    """Metres per CRS unit along x and y near the centre of the data (1, 1 when metric)."""
    return Projector(crs, metric_crs).scale_factors(frame_or_geoms)


def partitions_of(parent_codes: Sequence) -> tuple[list, list[np.ndarray]]:
    """Parent codes in order of first appearance and the positions of each one's children."""
    if len(parent_codes) == 0:
        return [], []
    inverse, keys = pd.factorize(pd.Series(list(parent_codes), dtype=object),
                                 use_na_sentinel=True)
    inverse = np.where(inverse < 0, len(keys), inverse)   # missing parent code: its own group
    order = np.argsort(inverse, kind="stable")
    counts = np.bincount(inverse, minlength=len(keys) + 1)
    groups = np.split(order, np.cumsum(counts)[:-1])
    out_keys = list(keys) + [None]
    kept = [(k, g) for k, g in zip(out_keys, groups) if len(g)]
    kept.sort(key=lambda kg: kg[1][0])                     # first appearance
    return [k for k, _ in kept], [g for _, g in kept]


_AREA_KINDS = ("overlap", "gap", "outside_parent")


def width_tolerance(sliver_width: float):
    """Tolerance (m) of the inscribed-circle search: a twentieth of the sliver width.

    Widths only need to be exact relative to the threshold; slivers whose width lands within
    twice the tolerance of it are measured again (:data:`REFINE`) so the decision holds.
    None when no sliver width is set (then a tenth of area / perimeter, per shape).
    """
    return sliver_width / 20.0 if sliver_width > 0 else None


REFINE = 50.0   # near the sliver threshold, widths are measured again with tolerance / REFINE


def measure_findings(findings: list[Finding], crs, metric_crs, *, min_area: float,
                     sliver_width: float, projector: Projector | None = None) -> list[Finding]:
    """Measure candidate findings in the metric CRS and drop those under the thresholds.

    Overlaps, gaps and outside parts get area and width and are dropped at or below
    ``min_area``; slivers get area and width and are dropped at or above ``sliver_width``;
    edge mismatches get their length. Widths carry the tolerance they were measured with
    (``detail["width_tolerance_m"]``, see :func:`width_tolerance`). Each kept finding carries
    its metric geometry in ``detail["_metric"]`` until
    :func:`~gisgrid.coverage.report.finalise_findings`.
    """
    if not findings:
        return []
    projector = projector or Projector(crs, metric_crs)
    metric = projector.to_metric([f.geometry for f in findings])
    kinds = np.array([f.kind for f in findings])
    measured = np.isin(kinds, _AREA_KINDS + ("sliver",))
    areas = np.zeros(len(findings))
    widths = np.zeros(len(findings))
    areas[measured] = shapely.area(metric[measured])
    wide_enough = measured & ((kinds == "sliver") | (areas > min_area))
    base_tol = width_tolerance(sliver_width)
    tols = np.zeros(len(findings))
    if wide_enough.any():
        geoms = metric[wide_enough]
        if base_tol is None:
            perim = shapely.length(geoms)
            with np.errstate(divide="ignore", invalid="ignore"):
                tol = np.where(perim > 0, np.maximum(0.1 * areas[wide_enough] / perim, 1e-3),
                               1e-3)
        else:
            tol = np.full(len(geoms), base_tol)
        tols[wide_enough] = tol
        widths[wide_enough] = checks.widths_of(geoms, tol)
        if base_tol is not None:
            near = (wide_enough & (kinds == "sliver")
                    & (np.abs(widths - sliver_width) <= 2 * tols))
            if near.any():
                tols[near] = base_tol / REFINE
                widths[near] = checks.widths_of(metric[near], tols[near])
    kept = []
    for i, finding in enumerate(findings):
        if finding.kind in _AREA_KINDS or finding.kind == "sliver":
            if finding.kind == "sliver" and widths[i] >= sliver_width:
                continue
            if finding.kind != "sliver" and areas[i] <= min_area:
                continue
            finding.area_m2, finding.width_m = float(areas[i]), float(widths[i])
            finding.detail["width_tolerance_m"] = round(float(tols[i]), 6)
        elif finding.kind == "edge_mismatch":
            finding.detail["length_m"] = round(float(shapely.length(metric[i])), 3)
        elif finding.kind == "straddles_parents":
            finding.area_m2 = float(shapely.area(metric[i]))
        finding.detail["_metric"] = metric[i]
        kept.append(finding)
    return kept


GAP_AREA_SAFETY = 2.0   # a partition skips the gap overlay only below min_area / this


def check_level(layer: Layer, parents: Layer | None, crs, metric_crs, *,
                min_area: float = checks.DEFAULT_MIN_AREA,
                sliver_width: float = checks.DEFAULT_SLIVER_WIDTH,
                straddle_share: float = checks.DEFAULT_STRADDLE_SHARE,
                parent_edges: np.ndarray | None = None, projector: Projector | None = None):
    """All findings of one prepared level, measured, and the number of children per parent.

    Parent partitions whose children plus the parent's frame ring form a valid coverage, lie
    inside the frame and fill the parent's area (to within ``min_area`` / GAP_AREA_SAFETY)
    have no overlap, gap or outside part: the overlay is skipped for them.

    Parameters
    ----------
    parent_edges : invalid edges of the parent level (from its own check; None where a
        parent's edges all match), or None to compute them here
    projector : the run's :class:`Projector` (built here when None)

    Returns
    -------
    (findings, features_by_parent, edges) : ``edges`` holds each feature's invalid edges
    (None where they all match), for the check of the level below
    """
    level = layer.level
    projector = projector or Projector(crs, metric_crs)
    fixed = layer.fixed
    kx, ky = projector.scale_factors(fixed)
    findings = checks.check_geometries(layer.geoms, layer.codes, level, layer.parent_codes,
                                       layer.status)
    findings += checks.check_duplicate_codes(layer.codes, level, layer.parent_codes, fixed)
    findings += checks.check_slivers(fixed, layer.codes, level, layer.parent_codes,
                                     sliver_width, scale=0.9 * min(kx, ky))
    keys, partitions = partitions_of(layer.parent_codes)
    features_by_parent = {(level, pc): len(idx) for pc, idx in zip(keys, partitions)}
    parent_index = parents.first_index() if parents is not None else {}
    parent_pos = [parent_index.get(pc, -1) for pc in keys]
    parent_geoms = [parents.fixed[p] if parents is not None and p >= 0 else None
                    for p in parent_pos]
    checked = checks.check_edges(fixed, partitions, parent_geoms)
    edges = checked.edges
    flagged = np.array([e is not None for e in edges], dtype=bool)
    for i in np.flatnonzero(flagged):
        findings.append(Finding(
            kind="edge_mismatch", level=level, codes=(str(layer.codes[i]),),
            parent_code=layer.parent_codes[i], geometry=edges[i]))
    areas = shapely.area(fixed)
    bounds = shapely.bounds(fixed)
    codes_arr = np.asarray(layer.codes, dtype=object)
    unions = []
    straddle_candidates: list[np.ndarray] = []
    for k, (pc, idx) in enumerate(zip(keys, partitions)):
        parent_geom = parent_geoms[k]
        bad = np.flatnonzero(checked.candidates[idx])
        if checked.exact[k]:
            continue
        box = checked.boxes[k]
        if box is not None and not len(bad):
            # valid with the ring: no overlap and nothing outside, unless a child lies wholly
            # outside the frame box (the ring cannot see it); gaps only if area is missing
            b = bounds[idx]
            beyond = ((b[:, 0] < box[0]) | (b[:, 1] < box[1])
                      | (b[:, 2] > box[2]) | (b[:, 3] > box[3])).any()
            deficit = (float(shapely.area(parent_geom)) - areas[idx].sum()) * kx * ky
            if not beyond and deficit * GAP_AREA_SAFETY <= min_area:
                continue
        part_findings, union, outside = checks.check_partition(
            fixed[idx], codes_arr[idx], level, pc, parent_geom, bad=bad,
            union=parents is None, whole=checked.unions[k])
        findings += part_findings
        straddle_candidates.append(idx[outside])
        if parents is None:
            unions.append(union)
    if parents is None:
        whole = shapely.union_all(np.asarray(unions, dtype=object)) if unions else shapely.Polygon()
        findings += checks.check_holes(whole, level, shapely.STRtree(fixed), layer.codes)
    else:
        orphaned = [idx for p, idx in zip(parent_pos, partitions) if p < 0]
        straddle_candidates += orphaned
        if parent_edges is None:   # the parent layer checked by its own parent codes
            parent_groups = partitions_of(parents.parent_codes)[1]
            parent_edges = checks.check_edges(parents.fixed, parent_groups,
                                              [None] * len(parent_groups)).edges
        straddle_candidates += _near_mismatched_parents(
            fixed, parents.fixed, parent_pos, partitions, parent_edges)
        candidates = (np.unique(np.concatenate(straddle_candidates)) if straddle_candidates
                      else np.zeros(0, dtype=int))
        findings += checks.check_parent_links(
            layer.codes, layer.parent_codes, fixed, parents.codes, parents.fixed, level,
            min_area=min_area, straddle_share=straddle_share, m2_per_unit2=kx * ky,
            candidates=candidates)
    findings = measure_findings(findings, crs, metric_crs, min_area=min_area,
                                sliver_width=sliver_width, projector=projector)
    return findings, features_by_parent, edges


def _near_mismatched_parents(fixed, parent_fixed, parent_pos, partitions,
                             parent_edges) -> list[np.ndarray]:
    """Children that a second parent may hold although they lie inside their own: those of a
    parent with invalid edges and those touching a parent with invalid edges (overlapping
    parents have invalid edges; a contained parent has them, its container not)."""
    mismatched = np.flatnonzero(np.array([e is not None for e in parent_edges], dtype=bool))
    if len(mismatched) == 0 or len(fixed) == 0:
        return []
    flagged = set(mismatched.tolist())
    out = [idx for p, idx in zip(parent_pos, partitions) if p in flagged]
    tree = shapely.STRtree(fixed)
    _, children = tree.query(parent_fixed[mismatched], predicate="intersects")
    out.append(np.asarray(children, dtype=int))
    return out


def common_crs(frames: Iterable[gpd.GeoDataFrame]) -> pyproj.CRS:
    """The one CRS of ``frames``; :class:`CRSError` when they differ or have none."""
    crs = None
    for frame in frames:
        this = require_crs(frame, "the grid layer")
        if crs is None:
            crs = this
        elif not crs.equals(this):
            raise CRSError(f"grid layers use different CRSs ({crs.to_string()} and "
                           f"{this.to_string()}): reproject them to one CRS first")
    if crs is None:
        raise InputError("no grid layer to validate")
    return crs


def validate_level(frame: gpd.GeoDataFrame, parents: gpd.GeoDataFrame | None = None, *,
                   code_field: str = "code", parent_field: str = "parent_code",
                   level: int | None = None, min_area: float = checks.DEFAULT_MIN_AREA,
                   sliver_width: float = checks.DEFAULT_SLIVER_WIDTH,
                   straddle_share: float = checks.DEFAULT_STRADDLE_SHARE,
                   accepted: Iterable[str] = (), metric_crs=None) -> CoverageReport:
    """Validate one level of grids, against its parent level when ``parents`` is given.

    Parameters
    ----------
    frame : grid frame of one level
    parents : grid frame of the parent level (codes in ``code_field``), or None: then gaps are
        the holes enclosed by the union of the level
    code_field, parent_field : column names of the code and the parent code
    level : the level number when ``frame`` has no ``level`` column
    min_area : overlaps, gaps and outside parts at or below this area (m2) are ignored
    sliver_width : grids or parts narrower than this (m) are slivers
    straddle_share : share of a child a second parent must hold for it to straddle
    accepted : fingerprints (or ids) of accepted findings
    metric_crs : CRS to measure in (default: :func:`gisgrid.crs.local_metric_crs`)
    """
    frames = [frame] + ([parents] if parents is not None else [])
    crs = common_crs(frames)
    metric_crs = pyproj.CRS(metric_crs) if metric_crs is not None else local_metric_crs(frame)
    parent_layer = None
    if parents is not None:
        parent_level = None if level is None else level - 1
        parent_layer = prepare_layer(parents, code_field=code_field,
                                     parent_field=parent_field, level=parent_level,
                                     what="the parent layer")
    layer = prepare_layer(frame, code_field=code_field, parent_field=parent_field, level=level)
    if layer.level is None and parent_layer is not None and parent_layer.level is not None:
        layer.level = parent_layer.level + 1
    projector = Projector(crs, metric_crs)
    findings, by_parent, _ = check_level(layer, parent_layer, crs, metric_crs,
                                         min_area=min_area, sliver_width=sliver_width,
                                         straddle_share=straddle_share, projector=projector)
    if parent_layer is not None:   # the reference layer's own broken geometries are reported too
        findings += measure_findings(
            checks.check_geometries(parent_layer.geoms, parent_layer.codes, parent_layer.level,
                                    parent_layer.parent_codes, parent_layer.status),
            crs, metric_crs, min_area=min_area, sliver_width=sliver_width, projector=projector)
    findings = finalise_findings(_ordered(findings), accepted)
    return CoverageReport(findings=findings, crs=crs, metric_crs=metric_crs,
                          features_by_level={layer.level: len(frame)},
                          features_by_parent=by_parent)


def split_levels(frames) -> dict[int, gpd.GeoDataFrame]:
    """``{level: frame}`` from a mapping or from one frame with a ``level`` column."""
    if isinstance(frames, Mapping):
        return {int(k): v for k, v in frames.items()}
    if "level" not in frames.columns:
        raise InputError("the hierarchy frame has no 'level' column",
                         [f"fields present: {', '.join(map(str, frames.columns))}"])
    bad = frames["level"].isna() | ~frames["level"].isin([1, 2, 3, 4])
    if bad.any():
        raise InputError("some features have no valid level (1-4)",
                         [f"row index {i!r}: level {v!r}"
                          for i, v in frames.loc[bad, "level"].items()])
    return {int(lvl): part for lvl, part in frames.groupby("level", sort=True)}


def validate_hierarchy(frames, *, code_field: str = "code", parent_field: str = "parent_code",
                       min_area: float = checks.DEFAULT_MIN_AREA,
                       sliver_width: float = checks.DEFAULT_SLIVER_WIDTH,
                       straddle_share: float = checks.DEFAULT_STRADDLE_SHARE,
                       accepted: Iterable[str] = (), metric_crs=None) -> CoverageReport:
    """Validate every level of a hierarchy, each against the level above, in one run.

    ``frames`` is ``{level: frame}`` or one frame with a ``level`` column. A level whose parent
    level is absent is checked alone (gaps are then holes in its union). A code used on two
    levels is a ``duplicate_code`` finding with level None.
    """
    by_level = split_levels(frames)
    crs = common_crs(by_level.values())
    if metric_crs is None:
        top = by_level[min(by_level)]
        metric_crs = local_metric_crs(top)
    metric_crs = pyproj.CRS(metric_crs)
    layers = {lvl: prepare_layer(frame, code_field=code_field,
                                 parent_field=parent_field, level=lvl,
                                 what=f"level {lvl}")
              for lvl, frame in sorted(by_level.items())}
    findings: list[Finding] = []
    by_parent: dict = {}
    edges_by_level: dict = {}
    projector = Projector(crs, metric_crs)
    for lvl, layer in layers.items():
        level_findings, counts, edges_by_level[lvl] = check_level(
            layer, layers.get(lvl - 1), crs, metric_crs, min_area=min_area,
            sliver_width=sliver_width, straddle_share=straddle_share,
            parent_edges=edges_by_level.get(lvl - 1), projector=projector)
        findings += level_findings
        by_parent.update(counts)
    findings += measure_findings(_cross_level_duplicates(layers), crs, metric_crs,
                                 min_area=min_area, sliver_width=sliver_width,
                                 projector=projector)
    findings = finalise_findings(_ordered(findings), accepted)
    return CoverageReport(findings=findings, crs=crs, metric_crs=metric_crs,
                          features_by_level={lvl: len(f) for lvl, f in by_level.items()},
                          features_by_parent=by_parent)


def _cross_level_duplicates(layers: Mapping[int, Layer]) -> list[Finding]:
    code_sets = {lvl: set(layer.codes) for lvl, layer in layers.items()}
    shared: set[str] = set()
    seen: set[str] = set()
    for codes in code_sets.values():
        shared |= codes & seen
        seen |= codes
    return [Finding(kind="duplicate_code", level=None, codes=(code,), parent_code=None,
                    detail={"levels": [lvl for lvl, codes in code_sets.items() if code in codes]})
            for code in sorted(shared)]


_KIND_ORDER = {k: i for i, k in enumerate((
    "invalid_geometry", "duplicate_code", "orphan", "childless_parent", "straddles_parents",
    "edge_mismatch", "overlap", "gap", "outside_parent", "sliver"))}


def _ordered(findings: list[Finding]) -> list[Finding]:
    """Findings in a stable order: level, kind, parent, codes."""
    return sorted(findings, key=lambda f: (
        -1 if f.level is None else f.level, _KIND_ORDER[f.kind], str(f.parent_code),
        f.codes, -(f.area_m2 or 0.0)))
