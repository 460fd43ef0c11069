"""Offline folium maps: every script and stylesheet comes from the package, never from a CDN.

folium loads Leaflet, jQuery, Bootstrap and its plugins from public CDNs. gisgrid serves its
own copies instead, installed from npm by ``scripts/install-assets.sh`` into
``gisgrid/web/static/vendor/<package>/`` (see ``"gisgridAssets"`` in ``package.json``).
:func:`build_map` returns an :class:`OfflineMap` that, when rendered, points every asset of the
map and of its plugins at those copies, either as URLs (pages served by the web app, under
``asset_url``) or inlined into the HTML (``inline=True``: one self-contained file for reports).
:func:`render_html` renders and refuses to return a page that would still fetch an asset over
http(s).

There is no tile basemap by default (maps must work offline); pass a tile URL template as
``basemap`` to add one explicitly.

Layers are drawn by the modules of :mod:`gisgrid.layers`, each with a
``render(frame, fmap, *, lang=None)`` function. The self-contained map of validation findings
(the coverage-gap layer, for ``gisgrid validate --format html``) is::

    from gisgrid import maps
    from gisgrid.layers import findings

    fmap = maps.build_map(maps.bounds_of(findings_frame), inline=True, title="网格覆盖检查")
    findings.render(findings_frame, fmap)          # legend and popups in Chinese
    html = maps.render_html(fmap)                  # str; write it with gisgrid.io

To embed the map in a larger page (a report with tables around it), take
``head, body, script = maps.render_parts(fmap)`` instead: checked the same way.
A grid map for a web page: ``build_map(bounds, lang="en")`` then
``gisgrid.layers.grids.render(grids_frame, fmap)``.

Which folium assets are vendored, and which are dropped:

- vendored: Leaflet (JS, CSS, images), jQuery (folium's popups call ``$``), Leaflet.heat
  (``HeatMap``), Leaflet.markercluster (``MarkerCluster``), Leaflet-Geoman (``GeoMan``);
- dropped: Bootstrap JS/CSS and the Bootstrap 3 glyphicons (nothing on a map needs them), and
  Leaflet.awesome-markers with Font Awesome, which only serve ``folium.Icon``: gisgrid draws
  points with ``folium.CircleMarker`` or ``folium.DivIcon``, and :func:`render_html` refuses a
  map holding a ``folium.Icon``.

Any other folium plugin whose assets are not vendored makes :func:`render_html` fail with the
asset's name and URL: vendor it (``package.json`` and :data:`ASSETS`) before using the plugin.
"""

from __future__ import annotations

import base64
import html
import math
import mimetypes
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

import folium
import geopandas as gpd
from branca.element import CssLink, Element, Figure, JavascriptLink, MacroElement
from folium.elements import JSCSSMixin
from folium.template import Template

from gisgrid.crs import WGS84, require_crs
from gisgrid.errors import GisgridError, InputError
from gisgrid.i18n import DEFAULT_LANG, check_lang

VENDOR_DIR = Path(__file__).resolve().parent / "web" / "static" / "vendor"
"""Where ``scripts/install-assets.sh`` puts the front-end assets (git-ignored)."""

DEFAULT_ASSET_URL = "/static/vendor"
"""URL prefix under which the web app serves :data:`VENDOR_DIR`."""

ASSETS: dict[str, str] = {
    # folium.Map
    "leaflet": "leaflet/leaflet.js",
    "leaflet_css": "leaflet/leaflet.css",
    "jquery": "jquery/jquery.min.js",
    # folium.plugins.HeatMap
    "leaflet-heat.js": "leaflet.heat/leaflet-heat.js",
    # folium.plugins.MarkerCluster
    "markerclusterjs": "leaflet.markercluster/leaflet.markercluster.js",
    "markerclustercss": "leaflet.markercluster/MarkerCluster.css",
    "markerclusterdefaultcss": "leaflet.markercluster/MarkerCluster.Default.css",
    # folium.plugins.GeoMan
    "leaflet_geoman_js": "@geoman-io/leaflet-geoman-free/leaflet-geoman.js",
    "leaflet_geoman_css": "@geoman-io/leaflet-geoman-free/leaflet-geoman.css",
}
"""folium's name of an asset -> its path under :data:`VENDOR_DIR`."""

DROPPED = frozenset({
    "bootstrap", "bootstrap_css", "glyphicons_css",
    "awesome_markers", "awesome_markers_css", "awesome_markers_font_css", "awesome_rotate_css",
})
"""folium assets gisgrid leaves out of every map (see the module docstring)."""

_REMOTE_ASSET_PATTERNS = (
    re.compile(r"""<script\b[^>]*\bsrc\s*=\s*["']?((?:https?:)?//[^"'\s>]+)""", re.I),
    re.compile(r"""<link\b[^>]*\bhref\s*=\s*["']?((?:https?:)?//[^"'\s>]+)""", re.I),
    re.compile(r"""<img\b[^>]*\bsrc\s*=\s*["']?((?:https?:)?//[^"'\s>]+)""", re.I),
    re.compile(r"""@import\s+(?:url\()?\s*["']?((?:https?:)?//[^"'\s)]+)""", re.I),
    re.compile(r"""url\(\s*["']?((?:https?:)?//[^"'\s)]+)""", re.I),
)
_CSS_URL = re.compile(r"""url\(\s*(["']?)([^"')]+)\1\s*\)""")
_SOURCE_MAP = re.compile(r"^\s*//[#@] sourceMappingURL=.*$", re.M)


class OfflineMap(folium.Map):
    """A :class:`folium.Map` whose assets are the vendored copies (made by :func:`build_map`).

    Attributes
    ----------
    lang : str
        ``"zh"`` or ``"en"``: the default language of the layers drawn on it.
    asset_url : str
        URL prefix of the vendored assets when they are linked, not inlined.
    inline : bool
        Inline every script and stylesheet (and their images) into the HTML.
    """

    def __init__(self, *args, lang: str = DEFAULT_LANG, asset_url: str = DEFAULT_ASSET_URL,
                 inline: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.lang = check_lang(lang)
        self.asset_url = asset_url.rstrip("/")
        self.inline = inline
        self.default_js = list(folium.Map.default_js)
        self.default_css = list(folium.Map.default_css)

    def render(self, **kwargs):
        figure = self.get_root()
        localize_assets(figure, asset_url=self.asset_url, inline=self.inline)
        super().render(**kwargs)
        if self.inline:
            inline_assets(figure)


def build_map(bounds: Sequence[float] | None = None, *, lang: str = DEFAULT_LANG,
              basemap: str | None = None, basemap_attribution: str | None = None,
              inline: bool = False, asset_url: str = DEFAULT_ASSET_URL,
              title: str | None = None) -> OfflineMap:
    """An empty offline map fitted to ``bounds``.

    Parameters
    ----------
    bounds : (minx, miny, maxx, maxy), optional
        Longitude/latitude extent (EPSG:4326) to show, e.g. from :func:`bounds_of`.
        Without it the map shows the whole world.
    lang : {"zh", "en"}
        Language of the legends and popups the layers add.
    basemap : str, optional
        A tile URL template (``https://.../{z}/{x}/{y}.png``); none by default, so the map works
        offline. Tiles are not assets: :func:`render_html` accepts them.
    basemap_attribution : str, optional
        Attribution shown for ``basemap`` (HTML; escape user text yourself).
    inline : bool
        Inline every asset into the HTML (self-contained report files) instead of linking to
        ``asset_url``.
    asset_url : str
        URL prefix where the web app serves the vendored assets.
    title : str, optional
        The page title (escaped).

    Returns
    -------
    OfflineMap
    """
    check_lang(lang)
    extent = _check_bounds(bounds) if bounds is not None else None
    if extent is None:
        location, zoom = None, 2
    else:
        minx, miny, maxx, maxy = extent
        location, zoom = [(miny + maxy) / 2, (minx + maxx) / 2], 10
    fmap = OfflineMap(location=location, zoom_start=zoom, tiles=None, control_scale=True,
                      lang=lang, asset_url=asset_url, inline=inline)
    if basemap:
        folium.TileLayer(tiles=basemap, attr=basemap_attribution or "basemap",
                         name="basemap", overlay=False, control=False).add_to(fmap)
    if title:
        fmap.get_root().title = html.escape(title)
    # no favicon request (a 404 in the browser's console on every page)
    fmap.get_root().header.add_child(RawHTML('<link rel="icon" href="data:,">'),
                                     name="gisgrid_favicon")
    if extent is not None:
        fmap.fit_bounds([[extent[1], extent[0]], [extent[3], extent[2]]])
    return fmap


def bounds_of(*frames: gpd.GeoDataFrame) -> tuple[float, float, float, float] | None:
    """Longitude/latitude extent (EPSG:4326) of all non-empty ``frames``; None if all are empty.

    >>> from shapely.geometry import box
    >>> bounds_of(gpd.GeoDataFrame(geometry=[box(113.5, 29.5, 114.2, 30.0)], crs=4326))
    (113.5, 29.5, 114.2, 30.0)
    """
    boxes = []
    for frame in frames:
        require_crs(frame, "the map layer")
        if len(frame) and not frame.geometry.is_empty.all():
            boxes.append(frame.geometry.to_crs(WGS84).total_bounds)
    if not boxes:
        return None
    return (min(float(b[0]) for b in boxes), min(float(b[1]) for b in boxes),
            max(float(b[2]) for b in boxes), max(float(b[3]) for b in boxes))


def render_html(fmap: folium.Map) -> str:
    """The complete HTML page of ``fmap``; raises if any asset would be fetched over http(s).

    Raises
    ------
    GisgridError
        naming every remote asset left in the page (a plugin whose assets are not vendored,
        a map not made by :func:`build_map`), or a vendored file that is missing.
    """
    page = fmap.get_root().render()
    _refuse_remote_assets(page)
    return page


def render_parts(fmap: folium.Map) -> tuple[str, str, str]:
    """``(head, body, script)`` of ``fmap`` for embedding in a larger page, checked like
    :func:`render_html`: put ``head`` in ``<head>``, ``body`` where the map goes, and
    ``script`` in a ``<script>`` element after it.
    """
    root = fmap.get_root()
    root.render()
    parts = root.header.render(), root.html.render(), root.script.render()
    _refuse_remote_assets("".join(parts))
    return parts


def find_remote_assets(page: str) -> list[str]:
    """Every http(s) or protocol-relative URL ``page`` would fetch as a script, style or image.

    >>> find_remote_assets('<script src="https://cdn.example/leaflet.js"></script>')
    ['https://cdn.example/leaflet.js']
    >>> find_remote_assets('<a href="https://leafletjs.com">Leaflet</a>')
    []
    """
    found: list[str] = []
    for pattern in _REMOTE_ASSET_PATTERNS:
        for match in pattern.finditer(page):
            if match.group(1) not in found:
                found.append(match.group(1))
    return found


def localize_assets(figure: Figure, *, asset_url: str = DEFAULT_ASSET_URL,
                    inline: bool = False) -> None:
    """Point the assets of every element under ``figure`` at the vendored copies, in place.

    Raises :class:`GisgridError` listing every asset that is not vendored or whose vendored
    file is missing, and every ``folium.Icon`` (its assets are dropped).
    """
    problems: list[str] = []
    for element in _walk(figure):
        if isinstance(element, folium.Icon):
            problems.append(f"{element.get_name()}: folium.Icon needs Leaflet.awesome-markers, "
                            "which gisgrid does not vendor; use folium.CircleMarker or DivIcon")
        if not isinstance(element, JSCSSMixin):
            continue
        for attr in ("default_js", "default_css"):
            local = []
            for name, url in getattr(element, attr):
                if name in DROPPED:
                    continue
                if name in ASSETS:
                    path = VENDOR_DIR / ASSETS[name]
                    if not path.is_file():
                        problems.append(f"{name}: vendored file {path} is missing; "
                                        "run scripts/install-assets.sh")
                    local.append((name, path.as_uri() if inline
                                  else f"{asset_url.rstrip('/')}/{ASSETS[name]}"))
                elif _is_remote(url):
                    problems.append(f"{type(element).__name__} asset {name!r} ({url}) is not "
                                    "vendored")
                else:
                    local.append((name, url))
            setattr(element, attr, local)
    if problems:
        raise GisgridError("the map uses assets gisgrid cannot serve offline", problems)


def inline_assets(figure: Figure) -> None:
    """Replace the ``file:`` script and stylesheet links in ``figure``'s header by their text.

    Images a stylesheet refers to become ``data:`` URIs, and Leaflet's default marker icon is
    pointed at inlined images too, so the page needs no file beside it.
    """
    header = figure.header._children
    for name, child in list(header.items()):
        if not isinstance(child, (JavascriptLink, CssLink)) or not child.url.startswith("file:"):
            continue
        path = Path(url2pathname(urlparse(child.url).path))
        text = path.read_text(encoding="utf-8")
        if isinstance(child, JavascriptLink):
            text = _SOURCE_MAP.sub("", text)
            text = re.sub(r"</(script)", r"<\\/\1", text, flags=re.I)
            header[name] = RawHTML(f"<script>{text}</script>")
        else:
            text = _inline_css_urls(text, path.parent)
            text = re.sub(r"</(style)", r"<\\/\1", text, flags=re.I)
            header[name] = RawHTML(f"<style>{text}</style>")
    if "leaflet" in header:
        images = VENDOR_DIR / "leaflet" / "images"
        header["gisgrid_leaflet_icon"] = RawHTML(
            "<script>L.Icon.Default.imagePath = '';"
            "L.Icon.Default.mergeOptions({"
            f"iconUrl: '{_data_uri(images / 'marker-icon.png')}',"
            f"iconRetinaUrl: '{_data_uri(images / 'marker-icon-2x.png')}',"
            f"shadowUrl: '{_data_uri(images / 'marker-shadow.png')}'}});</script>"
        )


class RawHTML(Element):
    """Text put into the page as it is (no Jinja, no escaping): only for trusted text."""

    def __init__(self, text: str):
        super().__init__()
        self.text = text

    def render(self, **kwargs) -> str:
        return self.text


class CornerBox(MacroElement):
    """A Leaflet control in a corner of the map showing trusted HTML (built and escaped by the
    subclass: :class:`Legend`, :class:`TitleBox`)."""

    css_class = "gisgrid-legend"

    _template = Template("""
        {% macro script(this, kwargs) %}
        (function () {
            var box = L.control({position: {{ this.position|tojson }}});
            box.onAdd = function () {
                var div = L.DomUtil.create("div", {{ this.css_class|tojson }});
                div.innerHTML = {{ this.html|tojson }};
                return div;
            };
            box.addTo({{ this._parent.get_name() }});
        })();
        {% endmacro %}
    """)

    def __init__(self, html_text: str, *, position: str):
        super().__init__()
        self._name = type(self).__name__
        self.position = position
        self.html = html_text

    def render(self, **kwargs):
        self.get_root().header.add_child(RawHTML(_LEGEND_CSS), name="gisgrid_legend_css")
        super().render(**kwargs)


class Legend(CornerBox):
    """A legend control in a corner of the map: a title and one swatch per entry.

    Parameters
    ----------
    title : str
        Plain text (escaped here).
    entries : iterable of (label, style)
        Plain-text label (escaped here) and the Leaflet path options drawn as its swatch
        (``color``, ``fillColor``, ``fillOpacity``, ``weight``, ``dashArray``, ``fill``).
    position : str
        A Leaflet control position.
    """

    def __init__(self, title: str, entries: Iterable[tuple[str, dict]], *,
                 position: str = "bottomright"):
        rows = "".join(
            f'<div class="gisgrid-legend-row">{_swatch(style)}'
            f"<span>{html.escape(str(text))}</span></div>"
            for text, style in entries
        )
        super().__init__(f'<div class="gisgrid-legend-title">{html.escape(title)}</div>{rows}',
                         position=position)


class TitleBox(CornerBox):
    """A box in a corner of the map with the page's title and a few links (e.g. back to the
    start page, the other language). Title, link texts and hrefs are escaped here.

    >>> box = TitleBox("网格地图 <1>", [("/?lang=zh&x=1", "首页")])
    >>> box.html
    '<div class="gisgrid-title">网格地图 &lt;1&gt;</div><a href="/?lang=zh&amp;x=1">首页</a>'
    """

    css_class = "gisgrid-legend gisgrid-titlebox"

    def __init__(self, title: str, links: Iterable[tuple[str, str]] = (), *,
                 position: str = "topright"):
        anchors = " · ".join(f'<a href="{html.escape(href, quote=True)}">{html.escape(text)}</a>'
                             for href, text in links)
        super().__init__(f'<div class="gisgrid-title">{html.escape(title)}</div>{anchors}',
                         position=position)


_LEGEND_CSS = """<style>
.gisgrid-legend {background: rgba(255,255,255,0.92); padding: 6px 10px; border-radius: 4px;
  box-shadow: 0 1px 4px rgba(0,0,0,0.3); font: 13px/1.5 "Microsoft YaHei", "PingFang SC",
  "Noto Sans CJK SC", sans-serif; max-width: 260px;}
.gisgrid-legend-title {font-weight: bold; margin-bottom: 4px;}
.gisgrid-title {font-weight: bold; font-size: 15px;}
path.leaflet-interactive:focus {outline: none;}
.gisgrid-legend-row {display: flex; align-items: center; gap: 6px;}
.gisgrid-legend-swatch {display: inline-block; width: 18px; height: 12px; flex: none;}
.gisgrid-popup th {text-align: left; padding-right: 8px; white-space: nowrap; color: #555;}
.gisgrid-popup td {white-space: pre-line; overflow-wrap: break-word;}
</style>"""


def _swatch(style: dict) -> str:
    color = html.escape(str(style.get("color", "#333")), quote=True)
    weight = max(1, min(int(style.get("weight", 2)), 4))
    border = "dashed" if style.get("dashArray") else "solid"
    inner = ""
    if style.get("fill", True) and float(style.get("fillOpacity", 0.2)) > 0:
        fill = html.escape(str(style.get("fillColor", style.get("color", "#333"))), quote=True)
        opacity = float(style.get("fillOpacity", 0.2))
        inner = (f'<b style="display: block; width: 100%; height: 100%; background: {fill}; '
                 f'opacity: {opacity:g};"></b>')
    return (f'<i class="gisgrid-legend-swatch" style="border: {weight}px {border} {color};">'
            f"{inner}</i>")


def _refuse_remote_assets(page: str) -> None:
    remote = find_remote_assets(page)
    if remote:
        raise GisgridError(
            "the map would load assets from the internet; vendor them (package.json, "
            "gisgrid.maps.ASSETS) or build the map with gisgrid.maps.build_map",
            remote,
        )


def _walk(element: Element) -> Iterator[Element]:
    yield element
    for child in list(element._children.values()):
        yield from _walk(child)


def _is_remote(url: str) -> bool:
    return url.startswith(("http://", "https://", "//"))


def _data_uri(path: Path) -> str:
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def _inline_css_urls(css: str, base: Path) -> str:
    def replace(match: re.Match) -> str:
        ref = match.group(2).strip()
        if ref.startswith(("data:", "#", "%23")) or _is_remote(ref):
            return match.group(0)
        path = (base / unquote(ref.split("#")[0].split("?")[0])).resolve()
        if not path.is_file():
            return match.group(0)
        return f'url("{_data_uri(path)}")'

    return _CSS_URL.sub(replace, css)


def _check_bounds(bounds: Sequence[float]) -> tuple[float, float, float, float]:
    try:
        minx, miny, maxx, maxy = (float(v) for v in bounds)
    except (TypeError, ValueError):
        raise InputError(f"map bounds must be four numbers (minx, miny, maxx, maxy), "
                         f"got {bounds!r}") from None
    problems = []
    if not all(math.isfinite(v) for v in (minx, miny, maxx, maxy)):
        problems.append("a bound is not a finite number")
    else:
        if not (-180 <= minx <= maxx <= 180):
            problems.append(f"longitudes {minx}..{maxx} are not within -180..180 in order")
        if not (-90 <= miny <= maxy <= 90):
            problems.append(f"latitudes {miny}..{maxy} are not within -90..90 in order")
    if problems:
        raise InputError(f"map bounds {tuple(bounds)!r} are not a longitude/latitude extent",
                         problems)
    return minx, miny, maxx, maxy
