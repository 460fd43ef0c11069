"""Offline maps: no asset from the internet, vendored files present, user text escaped, zh/en.

The grid fixture (EPSG:4490)::

    +-----------------------+  city "1" (113.8-114.0 E, 29.6-29.8 N)
    | +---------+           |  township "1.1" = west half, its village "1.1.1" = south-west
    | | 1.1.1.1 |           |  quarter, whose only base grid "1.1.1.1" has a hostile name
    +-+---------+-----------+
"""

from __future__ import annotations

import json
import re

import folium
import geopandas as gpd
import pytest
from folium import plugins
from shapely.geometry import LineString, Point, box

from gisgrid import maps
from gisgrid.errors import CRSError, GisgridError, InputError
from gisgrid.layers import LAYERS, findings, get_layer, grids, render_popup

HOSTILE = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


def make_grids(name: str = "基础网格", crs=4490) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"code": ["1", "1.1", "1.1.1", "1.1.1.1"],
         "name": ["赤壁市", "车埠镇", "某村", name],
         "level": [1, 2, 3, 4],
         "kind": ["city", "township", "village", "base"],
         "org": ["赤壁市应急管理局", None, "某村委会", "网格员 & 志愿者"],
         "parent_code": [None, "1", "1.1", "1.1.1"]},
        geometry=[box(113.8, 29.6, 114.0, 29.8), box(113.8, 29.6, 113.9, 29.8),
                  box(113.8, 29.6, 113.85, 29.7), box(113.8, 29.6, 113.85, 29.7)],
        crs=crs)


def make_findings(kinds=("gap", "overlap", "edge_mismatch", "invalid_geometry")):
    shapes = {"gap": box(113.95, 29.72, 113.98, 29.78),
              "overlap": box(113.90, 29.70, 113.91, 29.71),
              "edge_mismatch": LineString([(113.9, 29.6), (113.9, 29.8)]),
              "invalid_geometry": Point(113.85, 29.65)}
    return gpd.GeoDataFrame(
        {"id": [f"f{i}" for i in range(len(kinds))],
         "kind": list(kinds),
         "codes": ([[HOSTILE, "1.2"]] + [["1.1"]] * len(kinds))[:len(kinds)],
         "area_m2": ([1234567.891] + [None] * len(kinds))[:len(kinds)],
         "width_m": ([900.5] + [None] * len(kinds))[:len(kinds)]},
        geometry=[shapes.get(k, box(113.81, 29.61, 113.82, 29.62)) for k in kinds], crs=4490)


def rendered(*, lang="zh", inline=False, name="基础网格", plugin=None) -> str:
    frame = make_grids(name)
    fmap = maps.build_map(maps.bounds_of(frame), lang=lang, inline=inline)
    grids.render(frame, fmap)
    findings.render(make_findings(), fmap)
    if plugin is not None:
        plugin.add_to(fmap)
    return maps.render_html(fmap)


def legend_text(page: str) -> str:
    """The HTML of every legend of ``page`` (folium embeds it as a JSON string)."""
    return "".join(json.loads(m) for m in re.findall(r"div\.innerHTML = (\"[^\n]*\");", page))


def test_every_vendored_asset_is_installed():
    missing = [path for path in maps.ASSETS.values() if not (maps.VENDOR_DIR / path).is_file()]
    assert missing == [], "run scripts/install-assets.sh"


@pytest.mark.parametrize("plugin", [
    None,
    plugins.HeatMap([[29.7, 113.9, 1.0]]),
    plugins.MarkerCluster(locations=[[29.7, 113.9]]),
    plugins.GeoMan(),
], ids=["plain", "heatmap", "markercluster", "geoman"])
def test_linked_map_loads_only_vendored_files(plugin):
    page = rendered(plugin=plugin)

    assert maps.find_remote_assets(page) == []
    linked = re.findall(r'(?:src|href)="/static/vendor/([^"]+)"', page)
    assert "leaflet/leaflet.js" in linked
    assert all((maps.VENDOR_DIR / path).is_file() for path in linked), linked
    assert "bootstrap" not in page and "awesome-markers" not in page


def test_plugin_assets_are_linked_from_the_vendor_folder():
    page = rendered(plugin=plugins.HeatMap([[29.7, 113.9, 1.0]]))

    assert 'src="/static/vendor/leaflet.heat/leaflet-heat.js"' in page


def test_inline_map_needs_no_file_beside_it():
    page = rendered(inline=True)

    assert maps.find_remote_assets(page) == []
    assert not re.search(r"<script[^>]*\bsrc=|<link[^>]*stylesheet", page)
    assert "file://" not in page and "/static/vendor" not in page
    assert "url(images/layers.png)" not in page and "data:image/png;base64," in page
    assert "L.Icon.Default.mergeOptions" in page


def test_render_parts_are_checked_and_complete():
    fmap = maps.build_map(inline=True)
    findings.render(make_findings(), fmap)

    head, body, script = maps.render_parts(fmap)

    assert "Leaflet 1.9" in head and 'class="folium-map"' in body and "L.map(" in script
    with pytest.raises(GisgridError):
        maps.render_parts(folium.Map(tiles=None))


def test_asset_url_prefix_is_honoured():
    fmap = maps.build_map(asset_url="/app/assets/")
    page = maps.render_html(fmap)

    assert 'src="/app/assets/leaflet/leaflet.js"' in page


def test_render_html_refuses_a_cdn_map():
    with pytest.raises(GisgridError) as caught:
        maps.render_html(folium.Map(tiles=None))

    assert any("cdn.jsdelivr.net/npm/leaflet" in d for d in caught.value.details)


def test_render_html_names_a_plugin_that_is_not_vendored():
    fmap = maps.build_map()
    plugins.Fullscreen().add_to(fmap)

    with pytest.raises(GisgridError) as caught:
        maps.render_html(fmap)

    assert any("Fullscreen" in d and "https://" in d for d in caught.value.details)


def test_render_html_refuses_awesome_marker_icons():
    fmap = maps.build_map()
    folium.Marker([29.7, 113.9], icon=folium.Icon(icon="info-sign")).add_to(fmap)

    with pytest.raises(GisgridError, match="offline") as caught:
        maps.render_html(fmap)

    assert any("folium.Icon" in d for d in caught.value.details)


def test_no_basemap_by_default_and_an_explicit_one_is_allowed():
    assert "L.tileLayer" not in maps.render_html(maps.build_map())

    page = maps.render_html(maps.build_map(basemap="https://tiles.example/{z}/{x}/{y}.png",
                                           basemap_attribution="example"))
    assert "https://tiles.example/{z}/{x}/{y}.png" in page


def test_user_text_reaches_the_page_escaped():
    page = rendered(name=HOSTILE, inline=True)

    assert HOSTILE not in page
    assert "alert(1)" in page
    # folium's JSON embedding turns '&' into \\u0026, so the HTML-escaped text shows up as:
    assert ESCAPED.replace("&", "\\u0026") in page


def test_popup_escapes_every_value_and_formats_numbers():
    row = make_findings().iloc[0].to_dict()

    popup = render_popup(findings.SPEC, row, "en")

    assert HOSTILE not in popup and ESCAPED in popup
    assert "1,234,567.9" in popup and "900.50" in popup and "Gap" in popup


def test_grid_popup_skips_missing_fields():
    frame = make_grids()
    popup = render_popup(grids.SPEC, frame.drop(columns="geometry").iloc[1].to_dict(), "zh")

    assert "车埠镇" in popup and "二级网格（乡镇/街道）" in popup and "乡镇" in popup
    assert "责任单位" not in popup  # org is None for this township


@pytest.mark.parametrize("lang, expected, absent", [
    ("zh", ["网格", "一级网格（市级）", "四级网格（基础网格）", "网格覆盖问题", "空隙（盲区） (1)",
            "边界节点不吻合 (1)"], ["Level 4 (base grid)", "Gap (1)"]),
    ("en", ["Grids", "Level 1 (city)", "Level 4 (base grid)", "Coverage findings", "Gap (1)",
            "Edge mismatch (1)"], ["四级网格", "空隙"]),
])
def test_legend_language(lang, expected, absent):
    page = rendered() if lang == "zh" else rendered(lang="en")
    text = legend_text(page)

    assert all(e in text for e in expected), text
    assert not any(a in text for a in absent), text


def test_layer_language_overrides_the_map():
    fmap = maps.build_map(lang="zh")
    grids.render(make_grids(), fmap, lang="en")

    assert "Level 4 (base grid)" in maps.render_html(fmap)


def test_unknown_finding_kind_is_drawn_grey_under_its_name():
    entries = findings.legend_entries(["gap", "new_kind"], "en")

    assert entries[-1] == ("new_kind (1)", findings.SPEC.styles[findings.OTHER])


def test_empty_findings_say_so():
    fmap = maps.build_map()
    findings.render(make_findings(kinds=()), fmap)

    assert "无问题" in legend_text(maps.render_html(fmap))


def test_frame_without_crs_is_refused():
    fmap = maps.build_map()
    with pytest.raises(CRSError):
        grids.render(make_grids(crs=None), fmap)


def test_missing_columns_are_all_named():
    fmap = maps.build_map()
    with pytest.raises(InputError, match="code, name"):
        grids.render(make_grids().drop(columns=["code", "name"]), fmap)


@pytest.mark.parametrize("bounds", [(1, 2, 3), (200, 0, 201, 1), (0, 10, 1, 5),
                                    (0, float("nan"), 1, 1)])
def test_bad_bounds_are_refused(bounds):
    with pytest.raises(InputError):
        maps.build_map(bounds)


def test_bounds_are_reprojected_to_lon_lat():
    frame = make_grids().to_crs(4547)  # CGCS2000 3-degree GK, CM 114E (metres)

    minx, miny, maxx, maxy = maps.bounds_of(frame)

    assert minx == pytest.approx(113.8, abs=1e-3) and maxy == pytest.approx(29.8, abs=1e-3)


def test_registry_lists_importable_layers():
    for name in LAYERS:
        layer = get_layer(name)
        assert layer.SPEC.name == name and callable(layer.render)
    with pytest.raises(InputError, match="findings, grids|grids, findings"):
        get_layer("hazards")


def test_unknown_language_is_refused():
    with pytest.raises(InputError, match="zh, en"):
        maps.build_map(lang="fr")


def test_every_shape_finding_gets_a_dot_and_gaps_are_drawn_on_top():
    frame = make_findings(("gap", "edge_mismatch", "edge_mismatch", "overlap",
                           "invalid_geometry"))
    fmap = maps.build_map(lang="en")
    group = findings.render(frame, fmap)

    layers = [child for child in group._children.values() if isinstance(child, folium.GeoJson)]
    shapes, dots = layers[0].data["features"], layers[1].data["features"]
    assert len(shapes) == 5
    assert all(d["geometry"]["type"] == "Point" for d in dots)
    # one dot per polygon or line finding; the invalid-geometry point is its own marker
    assert sorted(d["properties"]["_key"] for d in dots) == [
        "edge_mismatch", "edge_mismatch", "gap", "overlap"]
    assert [d["properties"]["_key"] for d in dots][-2:] == ["overlap", "gap"]
    assert "Gap" in dots[-1]["properties"]["_popup"]      # a dot opens the finding's popup
    dot_styles = findings.MARKER_SPEC.styles
    assert dot_styles["gap"]["radius"] > dot_styles["edge_mismatch"]["radius"]
    assert HOSTILE not in maps.render_html(fmap)
