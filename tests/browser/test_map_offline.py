"""A self-contained map report opened in a real headless Chromium with the network cut off.

The layout (EPSG:4490, degrees)::

    113.80          113.90          114.00
      +---------------+---------------+ 29.80   city 1 (outline), township 1.1 = west half
      |  1.1          |      [gap]    |         (outline), village 1.1.1 = its south-west
      |               |               |         quarter (outline), base grid 1.1.1.1 (filled)
      +-------+       |               | 29.70   with a hostile name; one gap finding in the
      | 1.1.1 |       |               |         east half
      | [base]|       |               |
      +-------+-------+---------------+ 29.60

Every request the page makes to a host other than localhost is recorded and aborted; the test
asserts there is none, that Leaflet ran, that the polygons became SVG paths, and that the
hostile name is shown as text, not run.
"""

from __future__ import annotations

import threading
from pathlib import Path
from urllib.parse import urlparse

import geopandas as gpd
import pytest
from flask import url_for
from shapely.geometry import box
from werkzeug.serving import make_server

from gisgrid import maps
from gisgrid.layers import findings, grids
from gisgrid.web import create_app

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
HOSTILE = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", ""}


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install the Debian package chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS,
                                              headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def offline_page(browser):
    """A page whose requests to non-local hosts are aborted and listed in ``page.external``."""
    page = browser.new_page()
    page.external = []
    page.errors = []

    def guard(route):
        url = route.request.url
        if urlparse(url).scheme in ("file", "data", "blob", "about") \
                or urlparse(url).hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            page.external.append(url)
            route.abort()

    page.route("**/*", guard)
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    yield page
    page.close()


def make_frames():
    grid_frame = gpd.GeoDataFrame(
        {"code": ["1", "1.1", "1.1.1", "1.1.1.1"],
         "name": ["赤壁市", "车埠镇", "某村", HOSTILE],
         "level": [1, 2, 3, 4],
         "kind": ["city", "township", "village", "base"],
         "parent_code": [None, "1", "1.1", "1.1.1"]},
        geometry=[box(113.8, 29.6, 114.0, 29.8), box(113.8, 29.6, 113.9, 29.8),
                  box(113.8, 29.6, 113.85, 29.7), box(113.8, 29.6, 113.85, 29.7)],
        crs=4490)
    finding_frame = gpd.GeoDataFrame(
        {"kind": ["gap"], "codes": [["1.2"]], "area_m2": [1.2e6], "width_m": [900.0]},
        geometry=[box(113.95, 29.72, 113.98, 29.78)], crs=4490)
    return grid_frame, finding_frame


def draw_map(lang: str, **options) -> str:
    grid_frame, finding_frame = make_frames()
    fmap = maps.build_map(maps.bounds_of(grid_frame), lang=lang, **options)
    grids.render(grid_frame, fmap)
    findings.render(finding_frame, fmap)
    return maps.render_html(fmap)


def write_report(tmp_path: Path, lang: str) -> Path:
    path = tmp_path / "report.html"
    path.write_text(draw_map(lang, inline=True), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def served_app():
    """The web app on a free loopback port, with a map page that needs no database."""
    app = create_app({"TESTING": True})

    @app.get("/test-map")
    def test_map():
        return draw_map("zh", asset_url=url_for("static", filename="vendor"))

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


def test_self_contained_report_renders_with_no_external_request(offline_page, tmp_path):
    page = offline_page
    page.goto(write_report(tmp_path, "zh").as_uri())
    page.wait_for_function("() => window.L !== undefined && "
                           "document.querySelectorAll('path.leaflet-interactive').length >= 6")

    assert page.evaluate("L.version") == "1.9.4"
    # 4 grids + the gap + the gap's dot (a circle marker is a path too)
    assert page.locator("path.leaflet-interactive").count() == 6
    assert page.locator(".gisgrid-legend").count() == 2
    legends = "\n".join(page.locator(".gisgrid-legend").all_inner_texts())
    assert "四级网格（基础网格）" in legends and "空隙（盲区） (1)" in legends
    assert page.external == []
    assert page.errors == []


def test_popup_shows_hostile_name_as_text(offline_page, tmp_path):
    page = offline_page
    page.goto(write_report(tmp_path, "en").as_uri())
    page.wait_for_selector("path.leaflet-interactive[fill='#fdb863']")

    page.locator("path.leaflet-interactive[fill='#fdb863']").click(force=True)
    popup = page.locator(".leaflet-popup-content")
    popup.wait_for()

    assert HOSTILE in popup.inner_text()
    assert "Level 4 (base grid)" in popup.inner_text()
    assert page.evaluate("window.__xss") is None
    assert page.external == []
    assert page.errors == []


def test_served_map_loads_vendored_files_under_the_content_security_policy(offline_page,
                                                                         served_app):
    page = offline_page
    console_errors = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    loaded = []
    page.on("requestfinished", lambda request: loaded.append(request.url))

    response = page.goto(f"{served_app}/test-map")
    page.wait_for_function("() => window.L !== undefined && "
                           "document.querySelectorAll('path.leaflet-interactive').length >= 5")

    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert f"{served_app}/static/vendor/leaflet/leaflet.js" in loaded
    assert f"{served_app}/static/vendor/leaflet/leaflet.css" in loaded
    assert page.locator(".gisgrid-legend").count() == 2
    assert page.external == [] and page.errors == [] and console_errors == []


def test_the_guard_catches_a_cdn_map(offline_page, tmp_path):
    """The check above could fail: folium's own CDN page is caught trying the internet."""
    import folium

    path = tmp_path / "cdn.html"
    folium.Map(tiles=None).save(str(path))

    offline_page.goto(path.as_uri())

    assert any("cdn.jsdelivr.net" in url for url in offline_page.external)


def test_gap_dot_opens_the_gap_popup(offline_page, tmp_path):
    page = offline_page
    page.goto(write_report(tmp_path, "en").as_uri())
    dot = "path.leaflet-interactive[fill='#e31a1c'][stroke='#ffffff']"
    page.wait_for_selector(dot)

    page.locator(dot).click(force=True)
    popup = page.locator(".leaflet-popup-content")
    popup.wait_for()

    assert "Gap" in popup.inner_text() and "Area (m²)" in popup.inner_text()
