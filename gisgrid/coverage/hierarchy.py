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

from collections.abc import Iterable, Mapping
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

    def first_index(self) -> dict[str, int]:
        """Position of the first feature holding each code."""
        out: dict[str, int] = {}
        for i, code in enumerate(self.codes):
            out.setdefault(code, i)
        return out


def _clean_code(value) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return None
    text = str(value).strip()
    return text or None


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
    codes = [_clean_code(v) for v in frame[code_field].tolist()]
    for pos, code in enumerate(codes):
        if code is None:
            problems.append(f"feature {pos + 1} (row index {frame.index[pos]!r}): "
                            f"empty {code_field!r}")
    if problems:
        raise InputError(f"{what}: {len(problems)} features have no code", problems)
    has_parent = parent_field in frame.columns
    parent_codes = ([_clean_code(v) for v in frame[parent_field].tolist()] if has_parent
                    else [None] * len(frame))
    if level is None and "level" in frame.columns and len(frame):
        values = pd.unique(frame["level"].dropna())
        if len(values) > 1:
            raise InputError(f"{what} holds several levels {sorted(map(int, values))}: "
                             "validate it with validate_hierarchy or choose one level")
        level = int(values[0]) if len(values) else None
    geoms = np.asarray(frame.geometry.values, dtype=object)
    return Layer(codes=codes, parent_codes=parent_codes, level=level, geoms=geoms,
                 fixed=checks.polygonal_fix(geoms), has_parent_field=has_parent)


def scale_factors(frame_or_geoms, crs, metric_crs) -> tuple[float, float]:
    """Metres per CRS unit along x and y near the centre of the data (1, 1 when metric)."""
    if pyproj.CRS(crs).equals(pyproj.CRS(metric_crs)):
        return 1.0, 1.0
    geoms = np.asarray(frame_or_geoms, dtype=object)
    minx, miny, maxx, maxy = shapely.total_bounds(geoms)
    if not np.isfinite([minx, miny, maxx, maxy]).all():
        return 1.0, 1.0
    cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
    d = max(maxx - minx, maxy - miny, 1e-9) * 1e-3
    to_metric = pyproj.Transformer.from_crs(crs, metric_crs, always_xy=True)
    xs, ys = to_metric.transform([cx, cx + d, cx], [cy, cy, cy + d])
    kx = float(np.hypot(xs[1] - xs[0], ys[1] - ys[0]) / d)
    ky = float(np.hypot(xs[2] - xs[0], ys[2] - ys[0]) / d)
    return kx, ky


_AREA_KINDS = ("overlap", "gap", "outside_parent")


def measure_findings(findings: list[Finding], crs, metric_crs, *, min_area: float,
                     sliver_width: float) -> list[Finding]:
    """Measure candidate findings in the metric CRS and drop those under the thresholds.

    Overlaps, gaps and outside parts get area and width and are dropped at or below
    ``min_area``; slivers get area and width and are dropped at or above ``sliver_width``;
    edge mismatches get their length. Each kept finding carries its metric geometry in
    ``detail["_metric"]`` until :func:`~gisgrid.coverage.report.finalise_findings`.
    """
    if not findings:
        return []
    geoms = [f.geometry for f in findings]
    if pyproj.CRS(crs).equals(pyproj.CRS(metric_crs)):
        metric = np.asarray(geoms, dtype=object)
    else:
        metric = np.asarray(gpd.GeoSeries(geoms, crs=crs).to_crs(metric_crs).values, dtype=object)
    kinds = np.array([f.kind for f in findings])
    measured = np.isin(kinds, _AREA_KINDS + ("sliver",))
    areas = np.zeros(len(findings))
    widths = np.zeros(len(findings))
    areas[measured] = shapely.area(metric[measured])
    wide_enough = measured & ((kinds == "sliver") | (areas > min_area))
    widths[wide_enough] = checks.widths_of(metric[wide_enough])
    kept = []
    for i, finding in enumerate(findings):
        if finding.kind in _AREA_KINDS:
            if areas[i] <= min_area:
                continue
            finding.area_m2, finding.width_m = float(areas[i]), float(widths[i])
        elif finding.kind == "sliver":
            if widths[i] >= sliver_width:
                continue
            finding.area_m2, finding.width_m = float(areas[i]), float(widths[i])
        elif finding.kind == "edge_mismatch":
            finding.detail["length_m"] = round(float(shapely.length(metric[i])), 3)
        elif finding.kind == "straddles_parents":
            finding.area_m2 = float(shapely.area(metric[i]))
        finding.detail["_metric"] = metric[i]
        kept.append(finding)
    return kept


def check_level(layer: Layer, parents: Layer | None, crs, metric_crs, *,
                min_area: float = checks.DEFAULT_MIN_AREA,
                sliver_width: float = checks.DEFAULT_SLIVER_WIDTH,
                straddle_share: float = checks.DEFAULT_STRADDLE_SHARE):
    """All findings of one prepared level, measured, and the number of children per parent.

    Returns
    -------
    (findings, features_by_parent)
    """
    level = layer.level
    kx, ky = scale_factors(layer.fixed, crs, metric_crs)
    findings = checks.check_geometries(layer.geoms, layer.codes, level, layer.parent_codes)
    findings += checks.check_duplicate_codes(layer.codes, level, layer.parent_codes, layer.fixed)
    findings += checks.check_slivers(layer.fixed, layer.codes, level, layer.parent_codes,
                                     sliver_width, scale=0.9 * min(kx, ky))
    parent_index = parents.first_index() if parents is not None else {}
    by_parent: dict[str | None, list[int]] = {}
    for i, pc in enumerate(layer.parent_codes):
        by_parent.setdefault(pc, []).append(i)
    features_by_parent = {(level, pc): len(idx) for pc, idx in by_parent.items()}
    unions = []
    codes_arr = np.asarray(layer.codes, dtype=object)
    for pc, idx in by_parent.items():
        idx = np.asarray(idx)
        parent_geom = None
        if parents is not None and pc in parent_index:
            parent_geom = parents.fixed[parent_index[pc]]
        part_findings, union = checks.check_partition(
            layer.fixed[idx], codes_arr[idx], level, pc, parent_geom)
        findings += part_findings
        unions.append(union)
    if parents is None:
        whole = shapely.union_all(np.asarray(unions, dtype=object)) if unions else shapely.Polygon()
        findings += checks.check_holes(whole, level, shapely.STRtree(layer.fixed), layer.codes)
    else:
        findings += checks.check_parent_links(
            layer.codes, layer.parent_codes, layer.fixed, parents.codes, parents.fixed, level,
            min_area=min_area, straddle_share=straddle_share, m2_per_unit2=kx * ky)
    findings = measure_findings(findings, crs, metric_crs, min_area=min_area,
                                sliver_width=sliver_width)
    return findings, features_by_parent


def _common_crs(frames: Iterable[gpd.GeoDataFrame]) -> pyproj.CRS:
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
    crs = _common_crs(frames)
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
    findings, by_parent = check_level(layer, parent_layer, crs, metric_crs, min_area=min_area,
                                      sliver_width=sliver_width, straddle_share=straddle_share)
    if parent_layer is not None:   # the reference layer's own broken geometries are reported too
        findings += measure_findings(
            checks.check_geometries(parent_layer.geoms, parent_layer.codes, parent_layer.level,
                                    parent_layer.parent_codes),
            crs, metric_crs, min_area=min_area, sliver_width=sliver_width)
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
    crs = _common_crs(by_level.values())
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
    for lvl, layer in layers.items():
        level_findings, counts = check_level(
            layer, layers.get(lvl - 1), crs, metric_crs, min_area=min_area,
            sliver_width=sliver_width, straddle_share=straddle_share)
        findings += level_findings
        by_parent.update(counts)
    findings += measure_findings(_cross_level_duplicates(layers), crs, metric_crs,
                                 min_area=min_area, sliver_width=sliver_width)
    findings = finalise_findings(_ordered(findings), accepted)
    return CoverageReport(findings=findings, crs=crs, metric_crs=metric_crs,
                          features_by_level={lvl: len(f) for lvl, f in by_level.items()},
                          features_by_parent=by_parent)


def _cross_level_duplicates(layers: Mapping[int, Layer]) -> list[Finding]:
    seen: dict[str, list[int]] = {}
    for lvl, layer in layers.items():
        for code in set(layer.codes):
            seen.setdefault(code, []).append(lvl)
    return [Finding(kind="duplicate_code", level=None, codes=(code,), parent_code=None,
                    detail={"levels": sorted(lvls)})
            for code, lvls in sorted(seen.items()) if len(lvls) > 1]


_KIND_ORDER = {k: i for i, k in enumerate((
    "invalid_geometry", "duplicate_code", "orphan", "childless_parent", "straddles_parents",
    "edge_mismatch", "overlap", "gap", "outside_parent", "sliver"))}


def _ordered(findings: list[Finding]) -> list[Finding]:
    """Findings in a stable order: level, kind, parent, codes."""
    return sorted(findings, key=lambda f: (
        -1 if f.level is None else f.level, _KIND_ORDER[f.kind], str(f.parent_code),
        f.codes, -(f.area_m2 or 0.0)))
