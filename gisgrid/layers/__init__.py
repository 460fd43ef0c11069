"""Map layers: one module per layer, listed in :data:`LAYERS`.

Each layer module declares what it is with a :class:`LayerSpec` named ``SPEC`` (name, titles,
geometry type, styles, popup fields) and draws itself with
``render(frame, fmap, *, lang=None, show=True) -> folium.FeatureGroup``: it reprojects
``frame`` (any CRS) to EPSG:4326, adds one ``FeatureGroup`` (shown when the page opens unless
``show=False``) and its legend to ``fmap``, and returns the group. ``lang`` (``"zh"`` or
``"en"``) defaults to the map's language (``gisgrid.maps.build_map(lang=...)``).
Popups and tooltips are built here from the spec, with every value escaped.

>>> sorted(LAYERS)
['findings', 'grids']
>>> get_layer("grids").SPEC.title("en")
'Grids'
"""

from __future__ import annotations

import html
import importlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import folium
import geopandas as gpd
from folium.utilities import JsCode
from shapely.geometry import mapping

from gisgrid.crs import WGS84, require_crs
from gisgrid.errors import InputError
from gisgrid.i18n import DEFAULT_LANG, check_lang, label
from gisgrid.levels import Level

LAYERS: dict[str, str] = {
    "grids": "gisgrid.layers.grids",
    "findings": "gisgrid.layers.findings",
}
"""Layer name -> module (imported on demand by :func:`get_layer`)."""


@dataclass(frozen=True)
class PopupField:
    """One row of a popup: a frame column, its label key in :mod:`gisgrid.i18n`, a formatter."""

    column: str
    label_key: str
    format: Callable[[Any, str], str] | None = None  # (value, lang) -> plain text


@dataclass(frozen=True)
class LayerSpec:
    """What a layer is: its name, titles, geometry type, styles and popup fields.

    ``styles`` maps a style key (a level, a finding kind...) to Leaflet path options.
    """

    name: str
    title_zh: str
    title_en: str
    geometry_type: str
    styles: Mapping[str, Mapping[str, Any]]
    popup_fields: tuple[PopupField, ...]
    tooltip_field: str | None = None
    required_columns: tuple[str, ...] = field(default=())

    def title(self, lang: str = DEFAULT_LANG) -> str:
        return self.title_zh if check_lang(lang) == "zh" else self.title_en


def get_layer(name: str) -> ModuleType:
    """The module of the layer ``name``; :class:`InputError` naming the known layers if none."""
    if name not in LAYERS:
        raise InputError(f"unknown map layer {name!r}: expected one of {', '.join(LAYERS)}")
    return importlib.import_module(LAYERS[name])


def layer_lang(fmap: folium.Map, lang: str | None) -> str:
    """``lang`` if given, else the map's language (``build_map(lang=...)``), else Chinese."""
    return check_lang(lang if lang is not None else getattr(fmap, "lang", DEFAULT_LANG))


def check_columns(spec: LayerSpec, frame: gpd.GeoDataFrame) -> None:
    """Raise :class:`InputError` naming every column of ``spec.required_columns`` missing."""
    missing = [c for c in spec.required_columns if c not in frame.columns]
    if missing:
        raise InputError(f"the {spec.name} layer needs columns {', '.join(missing)}",
                         [f"present: {', '.join(map(str, frame.columns))}"])


def render_popup(spec: LayerSpec, row: Mapping[str, Any], lang: str) -> str:
    """The popup HTML of one feature: a table of the spec's fields, every value escaped.

    >>> spec = LayerSpec("t", "测", "T", "Polygon", {}, (PopupField("name", "name"),))
    >>> render_popup(spec, {"name": "<b>x</b>"}, "en")
    '<table class="gisgrid-popup"><tr><th>Name</th><td>&lt;b&gt;x&lt;/b&gt;</td></tr></table>'
    """
    cells = []
    for popup_field in spec.popup_fields:
        value = row.get(popup_field.column)
        if _is_missing(value):
            continue
        text = popup_field.format(value, lang) if popup_field.format else str(value)
        cells.append(f"<tr><th>{html.escape(label(popup_field.label_key, lang))}</th>"
                     f"<td>{html.escape(text)}</td></tr>")
    return f'<table class="gisgrid-popup">{"".join(cells)}</table>'


_BIND_POPUP = JsCode("""
function (feature, layer) {
    if (feature.properties._popup) { layer.bindPopup(feature.properties._popup); }
    if (feature.properties._tooltip) {
        layer.bindTooltip(feature.properties._tooltip, {sticky: true});
    }
}
""")


def add_features(spec: LayerSpec, frame: gpd.GeoDataFrame, style_keys, parent: folium.Element,
                 *, lang: str) -> folium.GeoJson | None:
    """Draw ``frame`` onto ``parent`` as one GeoJSON layer styled by ``style_keys``.

    ``style_keys`` gives, per row, a key of ``spec.styles``. The frame is reprojected to
    EPSG:4326; only the escaped popup and tooltip travel to the page, not the other columns.
    Returns None (nothing drawn) for an empty frame.
    """
    require_crs(frame, f"the {spec.name} layer")
    if frame.empty:
        return None
    geoms = frame.geometry.to_crs(WGS84)
    records = frame.drop(columns=frame.geometry.name).to_dict("records")
    features = []
    for i, (record, geom, key) in enumerate(zip(records, geoms, style_keys)):
        if geom is None or geom.is_empty:
            continue
        props = {"_key": str(key), "_popup": render_popup(spec, record, lang)}
        tip = record.get(spec.tooltip_field) if spec.tooltip_field else None
        if not _is_missing(tip):
            props["_tooltip"] = html.escape(str(tip))
        features.append({"type": "Feature", "id": str(i),
                         "geometry": mapping(geom), "properties": props})
    if not features:
        return None
    styles = spec.styles
    layer = folium.GeoJson(
        {"type": "FeatureCollection", "features": features},
        name=spec.title(lang),
        style_function=lambda feature: dict(styles[feature["properties"]["_key"]]),
        on_each_feature=_BIND_POPUP,
        marker=folium.CircleMarker(radius=6),
        control=False,
    )
    layer.add_to(parent)
    return layer


def format_level(value: Any, lang: str) -> str:
    """The label of a grid level in ``lang`` (a popup formatter).

    >>> format_level(4, "en")
    'Level 4 (base grid)'
    """
    level = Level.parse(value)
    return level.label_zh if lang == "zh" else level.label_en


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    if isinstance(value, str) and not value.strip():
        return True
    try:
        return bool(value != value)  # pandas NA / NaT
    except (TypeError, ValueError):
        return False
