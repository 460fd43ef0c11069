"""Findings and the coverage report: dataclasses, summaries and their serialisations.

A :class:`Finding` is one defect of the grid coverage (a gap, an overlap, an invalid ring...).
A :class:`CoverageReport` holds the findings of one validation run plus what is needed to
summarise them overall, per level and per parent, and to write them as JSON, GeoJSON or text.

The JSON shape written by :meth:`CoverageReport.to_dict` is a contract (pinned by a test)::

    {"summary": {...}, "levels": [{...}, ...], "findings": [{...}, ...]}
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pyproj
import shapely

from gisgrid.i18n import DEFAULT_LANG, label

FINDING_KINDS = (
    "invalid_geometry", "overlap", "gap", "outside_parent", "edge_mismatch", "orphan",
    "childless_parent", "duplicate_code", "straddles_parents", "sliver",
)

# Kinds measured by area in the summary, with the summary key used for each.
_AREA_KINDS = {"overlap": "overlaps", "gap": "gaps", "outside_parent": "outside_parent"}
# Kinds counted in the summary, with their key.
_COUNT_KINDS = {
    "invalid_geometry": "invalid_geometries", "edge_mismatch": "edge_mismatches",
    "orphan": "orphans", "duplicate_code": "duplicate_codes", "sliver": "slivers",
    "childless_parent": "childless_parents", "straddles_parents": "straddles_parents",
}

FINGERPRINT_GRID_M = 1.0  # geometry rounded to 1 m before hashing


def fingerprint_of(kind: str, codes: Iterable[str], metric_geometry) -> str:
    """A fingerprint stable across runs: hash of kind, sorted codes and rounded geometry.

    ``metric_geometry`` is in a metric CRS and rounded to :data:`FINGERPRINT_GRID_M`.

    >>> a = fingerprint_of("gap", ["B", "A"], shapely.box(0, 0, 10, 10))
    >>> a == fingerprint_of("gap", ["A", "B"], shapely.box(0.2, 0, 10, 10.1))
    True
    """
    digest = hashlib.sha1()
    digest.update(kind.encode())
    for code in sorted(str(c) for c in codes):
        digest.update(b"\x00" + code.encode())
    if metric_geometry is not None and not shapely.is_empty(metric_geometry):
        rounded = shapely.normalize(_rounded(metric_geometry))
        digest.update(b"\x01" + shapely.to_wkb(rounded, hex=False))
    return digest.hexdigest()


def _rounded(geometry):
    """``geometry`` on the fingerprint grid; a thin shape made invalid by its projection is
    rounded coordinate by coordinate when ``set_precision`` cannot node it."""
    try:
        return shapely.set_precision(geometry, FINGERPRINT_GRID_M)
    except shapely.errors.GEOSException:
        return shapely.transform(
            geometry, lambda xy: np.round(xy / FINGERPRINT_GRID_M) * FINGERPRINT_GRID_M)


@dataclass
class Finding:
    """One coverage defect.

    Attributes
    ----------
    id : str
        Identifier of the finding: the first 16 hex digits of the fingerprint (a database
        run may replace it with its row id).
    kind : str
        One of :data:`FINDING_KINDS`.
    level : int or None
        Level of the grids involved (the child level for gaps, overlaps, outside parts).
    codes : tuple of str
        Codes of the grids involved (sorted).
    parent_code : str or None
        The parent partition the finding belongs to.
    area_m2, width_m : float or None
        Area in square metres and width (diameter of the maximum inscribed circle) in metres,
        measured in the local metric CRS.
    geometry : shapely geometry or None
        The defect (overlap polygon, gap polygon, invalid edges, location point) in the CRS
        of the input.
    detail : dict
        Kind-specific facts (e.g. shapely's invalidity reason), JSON-serialisable.
    fingerprint : str
        Stable across runs; see :func:`fingerprint_of`.
    accepted : bool
        True when an accepted exception covers this finding: reported apart, not a failure.
    """

    kind: str
    level: int | None
    codes: tuple[str, ...]
    parent_code: str | None = None
    area_m2: float | None = None
    width_m: float | None = None
    geometry: object = None
    detail: dict = field(default_factory=dict)
    fingerprint: str = ""
    id: str = ""
    accepted: bool = False

    def to_dict(self, geometry_4326=None) -> dict:
        """The JSON form of the finding; ``geometry_4326`` is its geometry in EPSG:4326."""
        geom = None
        if geometry_4326 is not None and not shapely.is_empty(geometry_4326):
            geom = json.loads(shapely.to_geojson(geometry_4326))
        return {
            "id": str(self.id), "kind": self.kind,
            "level": None if self.level is None else int(self.level),
            "codes": [str(c) for c in self.codes],
            "parent_code": None if self.parent_code is None else str(self.parent_code),
            "area_m2": None if self.area_m2 is None else float(self.area_m2),
            "width_m": None if self.width_m is None else float(self.width_m),
            "geometry": geom,
            "fingerprint": self.fingerprint,
            "accepted": bool(self.accepted),
            "detail": self.detail,
        }


def empty_summary(features: int = 0) -> dict:
    """A summary with nothing found, for ``features`` features."""
    summary = {"features": int(features), "valid": True}
    summary["invalid_geometries"] = 0
    for key in _AREA_KINDS.values():
        summary[key] = {"count": 0, "area_m2": 0.0}
    for kind, key in _COUNT_KINDS.items():
        if kind != "invalid_geometry":
            summary[key] = 0
    summary["accepted"] = 0
    return summary


def summarise(findings: Iterable[Finding], features: int) -> dict:
    """Summary counts of ``findings``; accepted findings count only under ``"accepted"``.

    ``edge_mismatches`` counts features with at least one invalid edge (one finding each).
    """
    summary = empty_summary(features)
    for finding in findings:
        if finding.accepted:
            summary["accepted"] += 1
            continue
        summary["valid"] = False
        if finding.kind in _AREA_KINDS:
            entry = summary[_AREA_KINDS[finding.kind]]
            entry["count"] += 1
            entry["area_m2"] += float(finding.area_m2 or 0.0)
        else:
            summary[_COUNT_KINDS[finding.kind]] += 1
    for key in _AREA_KINDS.values():
        summary[key]["area_m2"] = round(summary[key]["area_m2"], 3)
    return summary


@dataclass
class CoverageReport:
    """The result of validating one level or a whole hierarchy.

    Attributes
    ----------
    findings : list of Finding
    crs : pyproj.CRS
        CRS of the finding geometries (the input's CRS).
    metric_crs : pyproj.CRS
        CRS in which areas and widths were measured.
    features_by_level : dict
        Number of features per level.
    features_by_parent : dict
        Number of children per (level, parent_code).
    """

    findings: list[Finding]
    crs: pyproj.CRS | None
    metric_crs: pyproj.CRS | None
    features_by_level: dict[int | None, int] = field(default_factory=dict)
    features_by_parent: dict[tuple[int | None, str | None], int] = field(default_factory=dict)

    @property
    def features(self) -> int:
        return int(sum(self.features_by_level.values()))

    @property
    def valid(self) -> bool:
        """True when no finding is left once accepted exceptions are set aside."""
        return all(f.accepted for f in self.findings)

    def by_kind(self, kind: str) -> list[Finding]:
        """The findings of one kind."""
        return [f for f in self.findings if f.kind == kind]

    def summary(self) -> dict:
        """Summary over every level."""
        return summarise(self.findings, self.features)

    def level_summaries(self) -> list[dict]:
        """One summary per level, each with a ``parents`` list of per-parent summaries."""
        out = []
        for level in sorted(self.features_by_level, key=lambda v: (v is None, v)):
            at_level = [f for f in self.findings if f.level == level]
            entry = {"level": level, "parent_code": None}
            entry.update(summarise(at_level, self.features_by_level[level]))
            parents = []
            for (lvl, parent), count in sorted(
                    self.features_by_parent.items(), key=lambda kv: (str(kv[0][0]), str(kv[0][1]))):
                if lvl != level:
                    continue
                item = {"level": level, "parent_code": parent}
                item.update(summarise([f for f in at_level if f.parent_code == parent], count))
                parents.append(item)
            entry["parents"] = parents
            out.append(entry)
        return out

    def geometries_4326(self) -> list:
        """Finding geometries reprojected to EPSG:4326 (None where a finding has none)."""
        geoms = [f.geometry for f in self.findings]
        if not geoms:
            return []
        if self.crs is None:
            return geoms
        series = gpd.GeoSeries(geoms, crs=self.crs)
        return list(series.to_crs(4326).values)

    def to_dict(self) -> dict:
        """The JSON contract: ``summary``, ``levels`` and ``findings``."""
        geoms = self.geometries_4326()
        return {
            "summary": self.summary(),
            "levels": self.level_summaries(),
            "findings": [f.to_dict(g) for f, g in zip(self.findings, geoms)],
        }

    def to_json(self, **kwargs) -> str:
        """:meth:`to_dict` as JSON text (UTF-8, not ASCII-escaped)."""
        return json.dumps(self.to_dict(), ensure_ascii=False, **kwargs)

    def to_geojson(self) -> dict:
        """The findings as a GeoJSON FeatureCollection in EPSG:4326: the coverage-gap layer."""
        features = []
        for finding, geom in zip(self.findings, self.geometries_4326()):
            props = finding.to_dict(None)
            props.pop("geometry")
            props["codes"] = ",".join(props["codes"])
            props["detail"] = json.dumps(props["detail"], ensure_ascii=False)
            features.append({
                "type": "Feature", "id": finding.id, "properties": props,
                "geometry": (json.loads(shapely.to_geojson(geom))
                             if geom is not None and not shapely.is_empty(geom) else None),
            })
        return {"type": "FeatureCollection", "features": features}

    def to_text(self, lang: str = DEFAULT_LANG) -> str:
        """A short human-readable summary followed by one line per finding."""
        summary = self.summary()
        if lang == "zh":
            verdict = "无问题" if summary["valid"] else "发现问题"
            lines = [f"共 {summary['features']} 个网格：{verdict}"]
        else:
            verdict = "clean" if summary["valid"] else "findings"
            lines = [f"{summary['features']} features: {verdict}"]
        counts: dict[str, int] = {}
        for f in self.findings:
            if not f.accepted:
                counts[f.kind] = counts.get(f.kind, 0) + 1
        for kind in FINDING_KINDS:
            if kind in counts:
                lines.append(f"  {label('finding.' + kind, lang)}: {counts[kind]}")
        if summary["accepted"]:
            lines.append(f"  {'已接受的例外' if lang == 'zh' else 'accepted'}: {summary['accepted']}")
        for f in self.findings:
            measure = []
            if f.area_m2 is not None:
                measure.append(f"{f.area_m2:.1f} m2")
            if f.width_m is not None:
                measure.append(f"width {f.width_m:.1f} m")
            mark = " [accepted]" if f.accepted else ""
            lines.append(
                f"{f.id} {f.kind} level={f.level} parent={f.parent_code} "
                f"codes={','.join(f.codes)} {' '.join(measure)}{mark}".rstrip())
        return "\n".join(lines) + "\n"


def finalise_findings(findings: Sequence[Finding], accepted: Iterable[str] = ()) -> list[Finding]:
    """Fingerprint measured findings and set their id and accepted flag.

    Each finding carries its metric geometry in ``detail["_metric"]`` (put there when it was
    measured); the fingerprint is taken from it and the key is removed.
    """
    accepted = set(accepted)
    findings = list(findings)
    for finding in findings:
        metric = finding.detail.pop("_metric", None)
        finding.fingerprint = fingerprint_of(finding.kind, finding.codes, metric)
        finding.id = finding.fingerprint[:16]
        finding.accepted = finding.fingerprint in accepted or finding.id in accepted
    return findings
