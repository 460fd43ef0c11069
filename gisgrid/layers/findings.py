"""The coverage-gap layer: validation findings coloured by kind.

Input is a frame of findings, one row per finding, in any CRS: ``kind`` (``gap``,
``overlap``, ``outside_parent``, ``edge_mismatch``, ``sliver``, ``invalid_geometry``,
``orphan``, ``childless_parent``, ``duplicate_code``, ``straddles_parents``) and optionally
``id``, ``level``, ``codes`` (a list of grid codes, or one string), ``parent_code``,
``area_m2`` and ``width_m``; the geometry may be polygons (gaps, overlaps), lines (mismatched
edges) or points (where a geometry is invalid). A kind not listed here is drawn in grey under
its own name. The legend lists the kinds present with their counts. Every polygon or line
finding also gets a dot at a point inside it (same colour, same popup), so a gap of a few
thousand square metres is still seen on a map of a whole city.

>>> from shapely.geometry import box
>>> import geopandas as gpd
>>> from gisgrid.maps import build_map, render_html
>>> frame = gpd.GeoDataFrame({"kind": ["gap"], "codes": [["421281001"]], "area_m2": [250.0]},
...                          geometry=[box(113.90, 29.70, 113.91, 29.71)], crs=4490)
>>> fmap = build_map((113.9, 29.7, 113.91, 29.71), lang="en")
>>> _ = render(frame, fmap)
>>> "Gap (1)" in render_html(fmap)
True
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import folium
import geopandas as gpd

from gisgrid.i18n import label
from gisgrid.layers import (LayerSpec, PopupField, add_features, check_columns, format_level,
                            layer_lang)
from gisgrid.maps import Legend

OTHER = "other"
"""Style key of a finding kind this layer does not know."""

# Drawing order, bottom to top: large areas first, thin lines and points last.
KINDS = ("invalid_geometry", "outside_parent", "gap", "overlap", "sliver", "straddles_parents",
         "childless_parent", "orphan", "duplicate_code", "edge_mismatch")


def _format_kind(value, lang: str) -> str:
    return label(f"finding.{value}", lang, default=str(value))


def _format_codes(value, lang: str) -> str:
    """One code a line (the popup keeps line breaks), so long codes are never cut."""
    codes = [value] if isinstance(value, str) else [str(c) for c in value]
    return "\n".join(codes)


def _format_area(value, lang: str) -> str:
    return f"{float(value):,.1f}"


def _format_width(value, lang: str) -> str:
    return f"{float(value):,.2f}"


def _area(color: str, *, opacity: float = 0.5, dash: str | None = None) -> dict:
    style = {"color": color, "weight": 2, "fillColor": color, "fillOpacity": opacity,
             "opacity": 0.9}
    if dash:
        style["dashArray"] = dash
    return style


SPEC = LayerSpec(
    name="findings",
    title_zh="网格覆盖问题",
    title_en="Coverage findings",
    geometry_type="Geometry",
    styles={
        "gap": _area("#e31a1c", opacity=0.55),
        "overlap": _area("#6a3d9a", opacity=0.55),
        "outside_parent": _area("#ff7f00", opacity=0.45),
        "sliver": _area("#b15928", opacity=0.6),
        "invalid_geometry": _area("#000000", opacity=0.3, dash="4 3"),
        "straddles_parents": _area("#33a02c", opacity=0.3),
        "childless_parent": _area("#a6cee3", opacity=0.3),
        "orphan": _area("#1f78b4", opacity=0.4),
        "duplicate_code": _area("#fb9a99", opacity=0.5),
        "edge_mismatch": {"color": "#d01c8b", "weight": 4, "fill": False, "opacity": 1.0},
        OTHER: _area("#808080", opacity=0.4),
    },
    popup_fields=(
        PopupField("kind", "finding_kind", _format_kind),
        PopupField("id", "finding_id"),
        PopupField("level", "level", format_level),
        PopupField("codes", "codes", _format_codes),
        PopupField("parent_code", "parent_code"),
        PopupField("area_m2", "area_m2", _format_area),
        PopupField("width_m", "width_m", _format_width),
    ),
    tooltip_field=None,
    required_columns=("kind",),
)

# Dots, bottom to top: the coverage defects themselves (gaps, overlaps, outside parts) are
# drawn last and bigger, so the edge mismatches around them never hide them.
DOT_KINDS = ("edge_mismatch", "sliver", "invalid_geometry", "straddles_parents",
             "childless_parent", "orphan", "duplicate_code", "outside_parent", "overlap", "gap")
_BIG_DOTS = ("gap", "overlap", "outside_parent")

MARKER_SPEC = dataclasses.replace(SPEC, styles={
    kind: {"color": "#ffffff", "weight": 2, "fill": True, "fillOpacity": 0.95,
           "fillColor": style.get("fillColor", style.get("color")), "opacity": 1.0,
           "radius": 9 if kind in _BIG_DOTS else 6}
    for kind, style in SPEC.styles.items()})
"""The dots marking where each polygon or line finding is (a white ring, the kind's colour)."""


def render(frame: gpd.GeoDataFrame, fmap: folium.Map, *, lang: str | None = None,
           show: bool = True) -> folium.FeatureGroup:
    """Draw the findings of ``frame`` on ``fmap``, coloured by kind, with a legend.

    ``frame`` holds findings as in the module docstring, in any CRS; it may be empty (the
    legend then says so). ``fmap`` usually comes from ``gisgrid.maps.build_map(...,
    inline=True)`` for a report file. ``lang`` and ``show`` and the returned group follow the
    layer contract of :mod:`gisgrid.layers`.
    """
    lang = layer_lang(fmap, lang)
    check_columns(SPEC, frame)
    kinds = frame["kind"].astype(str)
    order = {kind: i for i, kind in enumerate(KINDS)}
    ranked = sorted(range(len(frame)), key=lambda i: order.get(kinds.iloc[i], len(KINDS)))
    ordered = frame.iloc[ranked]
    keys = [k if k in SPEC.styles else OTHER for k in kinds.iloc[ranked]]
    group = folium.FeatureGroup(name=SPEC.title(lang), show=show)
    add_features(SPEC, ordered, keys, group, lang=lang)
    _add_dots(ordered, keys, group, lang)
    group.add_to(fmap)
    Legend(SPEC.title(lang), legend_entries(kinds, lang)).add_to(fmap)
    return group


def _add_dots(frame: gpd.GeoDataFrame, keys: list[str], group: folium.FeatureGroup,
              lang: str) -> None:
    """A dot inside each polygon or line finding, in :data:`DOT_KINDS` order."""
    shapes = ~frame.geometry.geom_type.isin(["Point", "MultiPoint"]).to_numpy()
    if not shapes.any():
        return
    dots = frame[shapes].copy()
    dots[dots.geometry.name] = dots.geometry.representative_point()
    dot_keys = [k for k, shape in zip(keys, shapes) if shape]
    rank = {kind: i for i, kind in enumerate(DOT_KINDS)}
    order = sorted(range(len(dots)), key=lambda i: rank.get(dot_keys[i], -1))
    add_features(MARKER_SPEC, dots.iloc[order], [dot_keys[i] for i in order], group, lang=lang)


def legend_entries(kinds: Iterable[str], lang: str) -> list[tuple[str, dict]]:
    """One legend entry per kind present, ``"label (count)"``, in drawing order.

    >>> legend_entries(["gap", "gap", "overlap"], "zh")[0][0]
    '空隙（盲区） (2)'
    >>> legend_entries([], "en")[0][0]
    'No findings'
    """
    counts: dict[str, int] = {}
    for kind in kinds:
        counts[kind] = counts.get(kind, 0) + 1
    if not counts:
        return [("无问题" if lang == "zh" else "No findings", {"color": "#1a9641", "fill": False})]
    order = {kind: i for i, kind in enumerate(KINDS)}
    return [(f"{_format_kind(kind, lang)} ({count})", SPEC.styles.get(kind, SPEC.styles[OTHER]))
            for kind, count in sorted(counts.items(), key=lambda kv: order.get(kv[0], len(KINDS)))]
