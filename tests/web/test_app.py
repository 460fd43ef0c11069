"""The web app factory: vendored assets served, pages in zh/en, one error shape."""

from __future__ import annotations

import pytest

from gisgrid import maps
from gisgrid.errors import InputError, NotFound
from gisgrid.web import create_app

HOSTILE = "<script>alert(1)</script>"


@pytest.fixture
def app():
    app = create_app({"TESTING": True})

    @app.get("/api/test-error")
    @app.get("/test-error")
    def refuse():
        raise InputError("bad request for " + HOSTILE, ["row 3: code is missing", HOSTILE])

    @app.get("/test-missing")
    def missing():
        raise NotFound("grid 421281 does not exist")

    return app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.mark.parametrize("path", sorted(set(maps.ASSETS.values()))
                         + ["leaflet/images/layers.png", "leaflet/images/marker-icon.png"])
def test_every_vendored_asset_is_served(client, path):
    response = client.get(f"/static/vendor/{path}")

    assert response.status_code == 200
    assert response.data == (maps.VENDOR_DIR / path).read_bytes()


def test_script_is_served_as_javascript(client):
    response = client.get("/static/vendor/leaflet/leaflet.js")

    assert "javascript" in response.content_type


def test_index_is_chinese_by_default_and_english_on_request(client):
    zh = client.get("/").get_data(as_text=True)
    en = client.get("/?lang=en").get_data(as_text=True)

    assert "安全生产网格化管理" in zh and "网格地图" in zh and 'lang="zh-CN"' in zh
    assert "Safety-production grid management" in en and "Grid map" in en


def test_error_is_json_for_api_clients(client):
    response = client.get("/api/test-error")

    assert response.status_code == 400
    assert response.get_json() == {"error": "bad request for " + HOSTILE,
                                   "details": ["row 3: code is missing", HOSTILE]}


def test_error_is_json_when_the_client_asks_for_it(client):
    response = client.get("/test-missing", headers={"Accept": "application/json"})

    assert response.status_code == 404
    assert response.get_json() == {"error": "grid 421281 does not exist", "details": []}


def test_error_is_an_escaped_page_for_browsers(client):
    response = client.get("/test-error", headers={"Accept": "text/html"})
    page = response.get_data(as_text=True)

    assert response.status_code == 400 and response.content_type.startswith("text/html")
    assert HOSTILE not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "row 3: code is missing" in page


def test_http_errors_share_the_shape(client):
    response = client.get("/api/no-such-thing")

    assert response.status_code == 404
    assert set(response.get_json()) == {"error", "details"}
    assert response.get_json()["error"] == "Not Found"


def test_unknown_language_is_a_400(client):
    response = client.get("/?lang=fr", headers={"Accept": "application/json"})

    assert response.status_code == 400
    assert "zh, en" in response.get_json()["error"]


def test_pages_may_load_nothing_from_another_host(client):
    csp = client.get("/").headers["Content-Security-Policy"]

    assert "default-src 'self'" in csp and "http" not in csp


def test_importing_the_package_builds_nothing():
    import gisgrid.web as web

    assert not any(type(v).__name__ == "Flask" for v in vars(web).values())
