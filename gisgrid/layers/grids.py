"""The grid layer: the four levels of the hierarchy, each styled differently.

Input is a grid frame (columns ``code``, ``name``, ``level``, optionally ``kind``, ``org``,
``parent_code``; any CRS). Base grids are drawn filled at the bottom; villages, townships and
the city are drawn above them as outlines only, so a click inside a base grid opens the base
grid's popup and a click on a thicker border opens that upper grid's.
"""

from __future__ import annotations

import folium
import geopandas as gpd

from gisgrid.i18n import label
from gisgrid.layers import (LayerSpec, PopupField, add_features, check_columns, format_level,
                            layer_lang)
from gisgrid.levels import Level
from gisgrid.maps import Legend


def _format_kind(value, lang: str) -> str:
    return label(f"kind.{value}", lang, default=str(value))


SPEC = LayerSpec(
    name="grids",
    title_zh="网格",
    title_en="Grids",
    geometry_type="MultiPolygon",
    styles={
        "1": {"color": "#b2182b", "weight": 4, "fill": False, "opacity": 0.9},
        "2": {"color": "#2c7bb6", "weight": 3, "fill": False, "opacity": 0.9},
        "3": {"color": "#1a9641", "weight": 2, "fill": False, "dashArray": "6 4",
              "opacity": 0.9},
        "4": {"color": "#e08214", "weight": 1, "fillColor": "#fdb863", "fillOpacity": 0.25,
              "opacity": 0.8},
    },
    popup_fields=(
        PopupField("name", "name"),
        PopupField("code", "code"),
        PopupField("level", "level", format_level),
        PopupField("kind", "kind", _format_kind),
        PopupField("org", "org"),
        PopupField("parent_code", "parent_code"),
    ),
    tooltip_field="name",
    required_columns=("code", "name", "level"),
)


def render(frame: gpd.GeoDataFrame, fmap: folium.Map, *, lang: str | None = None,
           show: bool = True) -> folium.FeatureGroup:
    """Draw the grids of ``frame`` (a grid frame, any CRS) on ``fmap``, with a legend of the
    levels present; ``lang``, ``show`` and the returned group follow the layer contract of
    :mod:`gisgrid.layers`.
    """
    lang = layer_lang(fmap, lang)
    check_columns(SPEC, frame)
    levels = frame["level"].map(lambda v: int(Level.parse(v)))
    group = folium.FeatureGroup(name=SPEC.title(lang), show=show)
    present = sorted(set(levels))
    for level in reversed(present):  # base grids first, the city outline on top
        part = frame[levels == level]
        add_features(SPEC, part, [str(level)] * len(part), group, lang=lang)
    group.add_to(fmap)
    entries = [(format_level(level, lang), SPEC.styles[str(level)]) for level in present]
    Legend(SPEC.title(lang), entries).add_to(fmap)
    return group
