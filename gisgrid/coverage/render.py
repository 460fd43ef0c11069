"""A self-contained HTML coverage report: summary tables and an offline map of the findings.

The page needs no network: the map comes from :func:`gisgrid.maps.build_map` with its
vendored assets inlined, drawn by the coverage-gap layer :mod:`gisgrid.layers.findings`.
All user text (codes, names, reasons) is escaped. Chinese by default, English with
``lang="en"``.
"""

from __future__ import annotations

import html
import json

import folium
import geopandas as gpd

from gisgrid.coverage.report import CoverageReport
from gisgrid.i18n import DEFAULT_LANG, check_lang, label

_TEXT = {
    "title": ("网格覆盖检查报告", "Grid coverage report"),
    "summary": ("汇总", "Summary"),
    "features": ("网格数", "Features"),
    "valid": ("结论", "Verdict"),
    "clean": ("全覆盖、无缝对接，未发现问题", "Clean: no findings"),
    "dirty": ("发现问题", "Findings found"),
    "accepted": ("已接受的例外", "Accepted exceptions"),
    "count": ("数量", "Count"),
    "per_level": ("各层级", "Per level"),
    "per_parent": ("各上级网格", "Per parent"),
    "map": ("问题地图", "Map of findings"),
    "list": ("问题清单", "Findings"),
    "none": ("无", "none"),
    "detail": ("详情", "Detail"),
}


def _t(key: str, lang: str) -> str:
    zh, en = _TEXT[key]
    return zh if lang == "zh" else en


def findings_frame(report: CoverageReport) -> gpd.GeoDataFrame:
    """The findings as a frame in EPSG:4326 (the input of ``gisgrid.layers.findings``)."""
    rows = [{"id": f.id, "kind": f.kind, "level": f.level, "codes": list(f.codes),
             "parent_code": f.parent_code, "area_m2": f.area_m2, "width_m": f.width_m}
            for f in report.findings]
    frame = gpd.GeoDataFrame(
        rows, columns=["id", "kind", "level", "codes", "parent_code", "area_m2", "width_m"],
        geometry=gpd.GeoSeries(report.geometries_4326(), crs=4326), crs=4326)
    return frame[~(frame.geometry.isna() | frame.geometry.is_empty)]


def build_findings_map(report: CoverageReport, lang: str = DEFAULT_LANG) -> folium.Map:
    """An offline map of the findings (assets inlined, no tiles), via :mod:`gisgrid.maps`."""
    from gisgrid.layers import findings as findings_layer
    from gisgrid.maps import bounds_of, build_map

    frame = findings_frame(report)
    fmap = build_map(bounds_of(frame) if len(frame) else None, lang=lang, inline=True)
    findings_layer.render(frame, fmap, lang=lang)
    return fmap


def _map_html(report: CoverageReport, lang: str) -> tuple[str, str, str]:
    """The map's header (inlined Leaflet), body and script, to embed in the report page."""
    fmap = build_findings_map(report, lang)
    root = fmap.get_root()
    root.render()
    return root.header.render(), root.html.render(), root.script.render()


def render_html(report: CoverageReport, lang: str = DEFAULT_LANG) -> str:
    """The whole report as one self-contained HTML page (no network needed to view it)."""
    check_lang(lang)
    esc = html.escape
    summary = report.summary()
    header, map_body, map_script = _map_html(report, lang)
    parts = [
        "<!DOCTYPE html>", f'<html lang="{"zh-CN" if lang == "zh" else "en"}"><head>',
        '<meta charset="utf-8">', f"<title>{esc(_t('title', lang))}</title>",
        "<style>body{font-family:sans-serif;margin:1em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}"
        ".folium-map{height:480px;width:100%}</style>",
        header, "</head><body>",
        f"<h1>{esc(_t('title', lang))}</h1>",
        f"<h2>{esc(_t('summary', lang))}</h2>", _summary_table(summary, lang),
        f"<h2>{esc(_t('per_level', lang))}</h2>", _levels_table(report, lang),
        f"<h2>{esc(_t('map', lang))}</h2>", map_body,
        f"<h2>{esc(_t('list', lang))}</h2>", _findings_table(report, lang),
        f"<script>{map_script}</script>", "</body></html>",
    ]
    return "\n".join(parts)


def _summary_table(summary: dict, lang: str) -> str:
    esc = html.escape
    verdict = _t("clean", lang) if summary["valid"] else _t("dirty", lang)
    rows = [(_t("features", lang), summary["features"]), (_t("valid", lang), verdict)]
    rows += _kind_rows(summary, lang)
    rows.append((_t("accepted", lang), summary["accepted"]))
    return "<table>" + "".join(
        f"<tr><th>{esc(str(k))}</th><td>{esc(str(v))}</td></tr>" for k, v in rows) + "</table>"


def _kind_rows(summary: dict, lang: str) -> list[tuple[str, str]]:
    keys = [("invalid_geometry", "invalid_geometries"), ("overlap", "overlaps"), ("gap", "gaps"),
            ("outside_parent", "outside_parent"), ("edge_mismatch", "edge_mismatches"),
            ("orphan", "orphans"), ("duplicate_code", "duplicate_codes"), ("sliver", "slivers"),
            ("childless_parent", "childless_parents"), ("straddles_parents", "straddles_parents")]
    rows = []
    for kind, key in keys:
        value = summary[key]
        if isinstance(value, dict):
            value = f"{value['count']} ({value['area_m2']:.1f} m²)"
        rows.append((label(f"finding.{kind}", lang), value))
    return rows


def _levels_table(report: CoverageReport, lang: str) -> str:
    esc = html.escape
    rows = []
    for entry in report.level_summaries():
        verdict = _t("clean", lang) if entry["valid"] else _t("dirty", lang)
        rows.append(f"<tr><th>{esc(label('level', lang))} {esc(str(entry['level']))}</th>"
                    f"<td>{esc(str(entry['features']))}</td><td>{esc(verdict)}</td></tr>")
        for parent in entry["parents"]:
            if parent["valid"]:
                continue
            counts = "; ".join(f"{k}: {v}" for k, v in _kind_rows(parent, lang)
                               if v not in (0, "0 (0.0 m²)"))
            rows.append(f"<tr><td>{esc(label('parent_code', lang))} "
                        f"{esc(str(parent['parent_code']))}</td>"
                        f"<td>{esc(str(parent['features']))}</td><td>{esc(counts)}</td></tr>")
    return "<table>" + "".join(rows) + "</table>"


def _findings_table(report: CoverageReport, lang: str) -> str:
    esc = html.escape
    if not report.findings:
        return f"<p>{esc(_t('none', lang))}</p>"
    head = ["finding_id", "finding_kind", "level", "codes", "parent_code", "area_m2", "width_m"]
    rows = ["<tr>" + "".join(f"<th>{esc(label(h, lang))}</th>" for h in head)
            + f"<th>{esc(_t('detail', lang))}</th></tr>"]
    for f in report.findings:
        cells = [f.id, label(f"finding.{f.kind}", lang)
                 + (f" ({_t('accepted', lang)})" if f.accepted else ""),
                 "" if f.level is None else f.level, ", ".join(f.codes),
                 f.parent_code or "", "" if f.area_m2 is None else f"{f.area_m2:.1f}",
                 "" if f.width_m is None else f"{f.width_m:.1f}",
                 json.dumps(f.detail, ensure_ascii=False)]
        rows.append("<tr>" + "".join(f"<td>{esc(str(c))}</td>" for c in cells) + "</tr>")
    return "<table>" + "".join(rows) + "</table>"
