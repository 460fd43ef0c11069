"""A self-contained HTML coverage report: summary tables and an offline map of the findings.

The page needs no network: Leaflet's JS and CSS are inlined from the vendored copy in
``gisgrid/web/static/vendor/leaflet`` and the map has no tile layer. All user text (codes,
names, reasons) is escaped. Chinese by default, English with ``lang="en"``.

The map is built by one function, :func:`build_findings_map`; it is the seam to switch to
``gisgrid.maps`` once that module offers an offline map.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import folium

from gisgrid.coverage.report import FINDING_KINDS, CoverageReport
from gisgrid.errors import GisgridError
from gisgrid.i18n import DEFAULT_LANG, check_lang, label

VENDOR = Path(__file__).resolve().parent.parent / "web" / "static" / "vendor" / "leaflet"

KIND_COLOURS = {
    "gap": "#d62728", "overlap": "#ff7f0e", "outside_parent": "#9467bd",
    "edge_mismatch": "#e377c2", "invalid_geometry": "#8c564b", "sliver": "#bcbd22",
    "orphan": "#7f7f7f", "childless_parent": "#17becf", "duplicate_code": "#1f77b4",
    "straddles_parents": "#2ca02c",
}

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


def _read_asset(name: str) -> str:
    path = VENDOR / name
    if not path.exists():
        raise GisgridError(f"the vendored Leaflet asset {str(path)!r} is missing: the offline "
                           "HTML report cannot be built (install the web assets first)")
    return path.read_text(encoding="utf-8")


def _popup(props: dict, lang: str) -> str:
    rows = []
    for key in ("finding_id", "finding_kind", "codes", "parent_code", "area_m2", "width_m"):
        value = props.get(key)
        if value is None or value == "":
            continue
        if key == "finding_kind":
            value = label(f"finding.{value}", lang)
        rows.append(f"<tr><th>{html.escape(label(key, lang))}</th>"
                    f"<td>{html.escape(str(value))}</td></tr>")
    return "<table>" + "".join(rows) + "</table>"


def build_findings_map(report: CoverageReport, lang: str = DEFAULT_LANG) -> folium.Map:
    """A folium map of the findings (one layer per kind), with no external assets or tiles."""
    fmap = folium.Map(tiles=None, control_scale=True, prefer_canvas=True)
    fmap.default_js = []
    fmap.default_css = []
    collection = report.to_geojson()
    bounds = None
    for kind in FINDING_KINDS:
        features = []
        for feature in collection["features"]:
            props = feature["properties"]
            if props["kind"] != kind or feature["geometry"] is None:
                continue
            popup = _popup({"finding_id": props["id"], "finding_kind": kind,
                            "codes": props["codes"], "parent_code": props["parent_code"],
                            "area_m2": None if props["area_m2"] is None else round(props["area_m2"], 1),
                            "width_m": None if props["width_m"] is None else round(props["width_m"], 1)},
                           lang)
            features.append({"type": "Feature", "geometry": feature["geometry"],
                             "properties": {"popup": popup}})
        if not features:
            continue
        colour = KIND_COLOURS[kind]
        layer = folium.GeoJson(
            {"type": "FeatureCollection", "features": features},
            name=html.escape(label(f"finding.{kind}", lang)),
            style_function=lambda _f, c=colour: {"color": c, "fillColor": c, "weight": 2,
                                                 "fillOpacity": 0.4},
            marker=folium.CircleMarker(radius=5, color=colour, fill=True),
            popup=folium.GeoJsonPopup(fields=["popup"], labels=False),
        )
        layer.add_to(fmap)
        b = layer.get_bounds()
        if b and b[0][0] is not None:
            bounds = b if bounds is None else [
                [min(bounds[0][0], b[0][0]), min(bounds[0][1], b[0][1])],
                [max(bounds[1][0], b[1][0]), max(bounds[1][1], b[1][1])]]
    if bounds is not None:
        fmap.fit_bounds(bounds)
    folium.LayerControl(collapsed=False).add_to(fmap)
    return fmap


def _map_html(report: CoverageReport, lang: str) -> str:
    """The map as an iframe-free HTML fragment plus its inline Leaflet assets."""
    fmap = build_findings_map(report, lang)
    root = fmap.get_root()
    root.render()
    header = root.header.render()
    body = root.html.render()
    script = root.script.render()
    return header, body, script


def render_html(report: CoverageReport, lang: str = DEFAULT_LANG) -> str:
    """The whole report as one self-contained HTML page (no network needed to view it)."""
    check_lang(lang)
    esc = html.escape
    summary = report.summary()
    header, map_body, map_script = _map_html(report, lang)
    parts = [
        "<!DOCTYPE html>", f'<html lang="{"zh-CN" if lang == "zh" else "en"}"><head>',
        '<meta charset="utf-8">', f"<title>{esc(_t('title', lang))}</title>",
        f"<style>{_read_asset('leaflet.css')}</style>",
        f"<script>{_read_asset('leaflet.js')}</script>",
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
