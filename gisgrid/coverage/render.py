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
    "summary": ("汇总", "Summary"),
    "features": ("网格数", "Features"),
    "valid": ("结论", "Verdict"),
    "clean": ("全覆盖、无缝对接，未发现问题", "Clean: no findings"),
    "dirty": ("发现问题", "Findings found"),
    "accepted": ("已接受的例外", "Accepted exceptions"),
    "count": ("数量", "Count"),
    "per_level": ("各层级", "Per level"),
    "scope": ("范围", "Scope"),
    "findings_by_kind": ("问题", "Findings"),
    "map": ("问题地图", "Map of findings"),
    "map_hint": ("每个问题另有一个圆点标记，城市尺度下也能看到；点击圆点或图形查看详情。",
                 "Each finding also has a dot, visible at city scale; click a dot or a shape "
                 "for its details."),
    "list": ("问题清单", "Findings"),
    "explain": ("问题类型说明", "What the findings mean"),
    "none": ("无", "none"),
    "detail": ("详情", "Detail"),
}

# What each finding kind means and what to do about it, for the planner reading the report.
_EXPLAIN = {
    "invalid_geometry": ("边界自相交、为空或不是面，需在原始数据中修正。",
                         "The boundary self-intersects, is empty or is not a polygon: fix it "
                         "in the source data."),
    "overlap": ("两个同级网格互相重叠，重叠部分的责任不清，应划归其中一个网格。",
                "Two sibling grids overlap: nobody knows who is responsible for the overlap; "
                "assign it to one of them."),
    "gap": ("上级网格内没有任何下级网格覆盖的区域（盲区），应并入相邻网格。",
            "Part of the parent grid covered by no child grid (a blind spot): merge it into a "
            "neighbouring grid."),
    "outside_parent": ("下级网格超出其上级网格的边界。",
                       "A child grid reaches beyond its parent's boundary."),
    "edge_mismatch": ("相邻网格的共用边界节点不一致（线为不吻合的边），会产生细小空隙或重叠；"
                      "吸附到同一精度即可消除。",
                      "Neighbouring grids' shared boundary vertices differ (the line is the "
                      "mismatched edge), leaving tiny gaps or overlaps; snapping to one "
                      "precision removes it."),
    "orphan": ("上级编码为空或不存在。", "The parent code is missing or unknown."),
    "childless_parent": ("该网格没有任何下级网格。", "The grid has no child grids."),
    "duplicate_code": ("多个网格使用同一编码。", "Several grids share one code."),
    "straddles_parents": ("网格跨越了多个上级网格。", "The grid lies across several parents."),
    "sliver": ("网格（或其一部分）过于狭长，通常是数字化误差。",
               "The grid, or a part of it, is thinner than the sliver width: usually a "
               "digitising artefact."),
}

# Labels of the keys of Finding.detail shown in the findings table.
_DETAIL_LABELS = {
    "length_m": ("不吻合边长 {} 米", "mismatched edge length {} m"),
    "parts": ("{} 个部分", "{} part(s)"),
    "width_tolerance_m": ("宽度精度 ±{} 米", "width within ±{} m"),
    "sliver_width_m": ("狭长阈值 {} 米", "sliver width {} m"),
    "reason": ("原因：{}", "reason: {}"),
    "count": ("{} 个", "{} features"),
    "levels": ("层级 {}", "levels {}"),
    "parent_shares": ("各上级占比 {}", "parent shares {}"),
}

_CSS = """
body {font: 14px/1.5 "Microsoft YaHei", "PingFang SC", "Noto Sans CJK SC",
      "WenQuanYi Micro Hei", sans-serif; color: #222;
      padding: 1.5em 2em !important; box-sizing: border-box;}
h1 {font-size: 1.6em; margin: 0 0 .3em;} h2 {font-size: 1.25em; margin: 1.4em 0 .5em;
    border-bottom: 1px solid #ddd; padding-bottom: .2em;}
table {border-collapse: collapse; margin-bottom: .5em;}
td, th {border: 1px solid #ccc; padding: 3px 8px; text-align: left; vertical-align: top;}
thead th {background: #f3f3f3;}
td.num {text-align: right; font-variant-numeric: tabular-nums;}
tr.dirty td, tr.dirty th {background: #fff1f0;} tr.clean td, tr.clean th {background: #f0fff0;}
tr.sub td:first-child {padding-left: 2em;}
.verdict-dirty {color: #b2182b; font-weight: bold; font-size: 1.2em;}
.verdict-clean {color: #1a9641; font-weight: bold; font-size: 1.2em;}
.hint {color: #666;}
.kind-swatch {display: inline-block; width: 12px; height: 12px; margin-right: 6px;
  vertical-align: -1px; border: 1px solid rgba(0,0,0,.4);}
.folium-map {height: 560px !important; width: 100%; border: 1px solid #ccc;}
"""


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


def context_grids(grids: gpd.GeoDataFrame, report: CoverageReport) -> gpd.GeoDataFrame:
    """The grids worth drawing under the findings: levels 1-2 (the frame of the city), every
    grid a finding names, and each parent partition holding a finding with its children."""
    codes = {c for f in report.findings for c in f.codes}
    parents = {f.parent_code for f in report.findings if f.parent_code is not None}
    keep = ((grids["level"].astype(int) <= 2) | grids["code"].isin(codes | parents)
            | grids["parent_code"].isin(parents))
    return grids[keep]


def build_findings_map(report: CoverageReport, lang: str = DEFAULT_LANG, *,
                       context: gpd.GeoDataFrame | None = None) -> folium.Map:
    """An offline map of the findings (assets inlined, no tiles), via :mod:`gisgrid.maps`.

    ``context`` (a grid frame, any CRS) is drawn under the findings so they can be placed;
    the map is fitted to the findings, or to ``context`` when there are none.
    """
    from gisgrid.layers import findings as findings_layer
    from gisgrid.layers import grids as grids_layer
    from gisgrid.maps import bounds_of, build_map

    frame = findings_frame(report)
    if len(frame):
        bounds = _padded(bounds_of(frame))
    else:
        bounds = bounds_of(context) if context is not None and len(context) else None
    fmap = build_map(bounds, lang=lang, inline=True)
    if context is not None and len(context):
        grids_layer.render(context, fmap, lang=lang)
    findings_layer.render(frame, fmap, lang=lang)
    return fmap


def _padded(bounds, share: float = 0.1, least: float = 0.005):
    """``bounds`` grown on every side by ``share`` of its span (at least ``least`` degrees),
    so findings on the edge of the extent are not drawn on the map's border."""
    minx, miny, maxx, maxy = bounds
    dx = max((maxx - minx) * share, least)
    dy = max((maxy - miny) * share, least)
    return (max(minx - dx, -180.0), max(miny - dy, -90.0), min(maxx + dx, 180.0),
            min(maxy + dy, 90.0))


def render_html(report: CoverageReport, lang: str = DEFAULT_LANG, *,
                context: gpd.GeoDataFrame | None = None) -> str:
    """The whole report as one self-contained HTML page (no network needed to view it).

    ``context``: grids drawn under the findings on the map (see :func:`build_findings_map`;
    :func:`context_grids` picks them from a whole hierarchy).
    """
    from gisgrid.maps import render_parts

    check_lang(lang)
    esc = html.escape
    summary = report.summary()
    header, map_body, map_script = render_parts(build_findings_map(report, lang,
                                                                   context=context))
    verdict = "clean" if summary["valid"] else "dirty"
    parts = [
        "<!DOCTYPE html>", f'<html lang="{"zh-CN" if lang == "zh" else "en"}"><head>',
        '<meta charset="utf-8">', f"<title>{esc(label('coverage_report', lang))}</title>",
        f"<style>{_CSS}</style>", header, "</head><body>",
        f"<h1>{esc(label('coverage_report', lang))}</h1>",
        f'<p class="verdict-{verdict}">{esc(_t(verdict, lang))}</p>',
        f"<h2>{esc(_t('summary', lang))}</h2>", _summary_table(summary, lang),
        f"<h2>{esc(_t('per_level', lang))}</h2>", _levels_table(report, lang),
        f"<h2>{esc(_t('map', lang))}</h2>", f'<p class="hint">{esc(_t("map_hint", lang))}</p>',
        map_body,
        f"<h2>{esc(_t('list', lang))}</h2>", _findings_table(report, lang),
        _explanations(report, lang),
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


def _kind_rows(summary: dict, lang: str, *, found_only: bool = False) -> list[tuple[str, str]]:
    """(label, count or "count (area m²)") per finding kind; only kinds found if asked."""
    keys = [("invalid_geometry", "invalid_geometries"), ("overlap", "overlaps"), ("gap", "gaps"),
            ("outside_parent", "outside_parent"), ("edge_mismatch", "edge_mismatches"),
            ("orphan", "orphans"), ("duplicate_code", "duplicate_codes"), ("sliver", "slivers"),
            ("childless_parent", "childless_parents"), ("straddles_parents", "straddles_parents")]
    rows = []
    for kind, key in keys:
        value = summary[key]
        count = value["count"] if isinstance(value, dict) else value
        if found_only and not count:
            continue
        if isinstance(value, dict):
            value = f"{value['count']} ({value['area_m2']:,.1f} m²)"
        rows.append((label(f"finding.{kind}", lang), value))
    return rows


def _levels_table(report: CoverageReport, lang: str) -> str:
    esc = html.escape
    head = (f"<thead><tr><th>{esc(_t('scope', lang))}</th><th>{esc(_t('features', lang))}</th>"
            f"<th>{esc(_t('valid', lang))}</th><th>{esc(_t('findings_by_kind', lang))}</th>"
            "</tr></thead>")
    rows = []
    for entry in report.level_summaries():
        rows.append(_level_row(f"{label('level', lang)} {entry['level']}", entry, lang, ""))
        for parent in entry["parents"]:
            if not parent["valid"]:
                rows.append(_level_row(f"{label('parent_code', lang)} {parent['parent_code']}",
                                       parent, lang, " sub"))
    return f"<table>{head}<tbody>{''.join(rows)}</tbody></table>"


def _level_row(scope: str, entry: dict, lang: str, extra_class: str) -> str:
    esc = html.escape
    state = "clean" if entry["valid"] else "dirty"
    counts = "; ".join(f"{k}: {v}" for k, v in _kind_rows(entry, lang, found_only=True))
    return (f'<tr class="{state}{extra_class}"><td>{esc(scope)}</td>'
            f'<td class="num">{esc(str(entry["features"]))}</td>'
            f"<td>{esc(_t(state, lang))}</td><td>{esc(counts)}</td></tr>")


def _findings_table(report: CoverageReport, lang: str) -> str:
    esc = html.escape
    if not report.findings:
        return f"<p>{esc(_t('none', lang))}</p>"
    head = ["finding_id", "finding_kind", "level", "codes", "parent_code", "area_m2", "width_m"]
    rows = ["<thead><tr>" + "".join(f"<th>{esc(label(h, lang))}</th>" for h in head)
            + f"<th>{esc(_t('detail', lang))}</th></tr></thead><tbody>"]
    for f in report.findings:
        kind = label(f"finding.{f.kind}", lang) + (
            f" ({_t('accepted', lang)})" if f.accepted else "")
        cells = [
            ("", esc(str(f.id))),
            ("", _kind_swatch(f.kind) + esc(kind)),
            ("num", "" if f.level is None else esc(str(f.level))),
            ("", esc(("、" if lang == "zh" else ", ").join(f.codes))),
            ("", esc(f.parent_code or "")),
            ("num", "" if f.area_m2 is None else f"{f.area_m2:,.1f}"),
            ("num", "" if f.width_m is None else f"{f.width_m:,.1f}"),
            ("", esc(format_detail(f.detail, lang))),
        ]
        rows.append("<tr>" + "".join(f'<td class="{c}">{v}</td>' if c else f"<td>{v}</td>"
                                     for c, v in cells) + "</tr>")
    return "<table>" + "".join(rows) + "</tbody></table>"


def format_detail(detail: dict, lang: str) -> str:
    """The kind-specific facts of a finding as plain text, labelled in ``lang``.

    >>> format_detail({"length_m": 1374.129}, "zh")
    '不吻合边长 1,374.1 米'
    >>> format_detail({"parts": 1, "width_tolerance_m": 0.5, "x": [1]}, "en")
    'width within ±0.5 m; x: [1]'
    """
    items = []
    for key, value in detail.items():
        if key.startswith("_") or (key == "parts" and value == 1):
            continue
        if isinstance(value, float):
            text = f"{value:,.1f}" if abs(value) >= 10 else f"{value:g}"
        elif isinstance(value, (dict, list)):
            text = json.dumps(value, ensure_ascii=False)
        else:
            text = str(value)
        template = _DETAIL_LABELS.get(key)
        items.append(template[0 if lang == "zh" else 1].format(text) if template
                     else f"{key}: {text}")
    return ("；" if lang == "zh" else "; ").join(items)


def _kind_swatch(kind: str) -> str:
    from gisgrid.layers import findings as findings_layer

    style = findings_layer.SPEC.styles.get(kind, findings_layer.SPEC.styles[findings_layer.OTHER])
    color = html.escape(str(style.get("fillColor", style.get("color", "#888"))), quote=True)
    return f'<i class="kind-swatch" style="background: {color};"></i>'


def _explanations(report: CoverageReport, lang: str) -> str:
    esc = html.escape
    kinds = [k for k in _EXPLAIN if any(f.kind == k for f in report.findings)]
    if not kinds:
        return ""
    rows = "".join(f"<tr><th>{_kind_swatch(k)}{esc(label(f'finding.{k}', lang))}</th>"
                   f"<td>{esc(_EXPLAIN[k][0 if lang == 'zh' else 1])}</td></tr>" for k in kinds)
    return f"<h2>{esc(_t('explain', lang))}</h2><table>{rows}</table>"
