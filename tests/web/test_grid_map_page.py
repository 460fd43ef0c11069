"""The grid map page against a real PostGIS database holding a small committed hierarchy.

Layout (CGCS2000 degrees near Chibi, cells of 0.01 degree)::

    C (city, x 0-2) ─── C.01 (township, x 0-2) ─┬─ C.01.001 (village, x 0) ── base C.01.001.01
                                                └─ C.01.002 (village, x 1)   (hostile name)
"""

from __future__ import annotations

import json
import re

import geopandas as gpd
import pytest
import sqlalchemy as sa
from shapely import box

from gisgrid import maps
from gisgrid.config import Settings
from gisgrid.db import migrate
from gisgrid.db.engine import dispose_engines
from gisgrid.db.grids import write_grids
from gisgrid.grids import prepare_grids
from gisgrid.web import create_app

pytestmark = pytest.mark.db

X0, Y0, D = 113.9, 29.7, 0.01
HOSTILE = "<script>alert(1)</script>"
ROWS = [  # level, code, parent, kind, name, x0, x1
    (1, "C", None, "city", "赤壁市", 0, 2),
    (2, "C.01", "C", "township", "车埠镇", 0, 2),
    (3, "C.01.001", "C.01", "village", "一村", 0, 1),
    (3, "C.01.002", "C.01", "village", "二村", 1, 2),
    (4, "C.01.001.01", "C.01.001", "base", HOSTILE, 0, 1),
]


@pytest.fixture(scope="module")
def grid_database(make_database):
    url = make_database("web_grid_map")
    migrate.upgrade(url)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        for level in (1, 2, 3, 4):
            rows = [r for r in ROWS if r[0] == level]
            frame = gpd.GeoDataFrame(
                {"code": [r[1] for r in rows], "parent_code": [r[2] for r in rows],
                 "kind": [r[3] for r in rows], "name": [r[4] for r in rows]},
                geometry=[box(X0 + r[5] * D, Y0, X0 + r[6] * D, Y0 + D) for r in rows],
                crs=4490)
            write_grids(conn, prepare_grids(frame, level, name_field="name"), actor="test")
    engine.dispose()
    yield url
    dispose_engines()


@pytest.fixture
def client(grid_database, tmp_path):
    settings = Settings(home=tmp_path / "home", database_url=grid_database)
    return create_app({"TESTING": True, "GISGRID_SETTINGS": settings}).test_client()


def test_grid_map_draws_every_stored_grid_offline(client):
    response = client.get("/map/grids")
    page = response.get_data(as_text=True)

    assert response.status_code == 200
    assert maps.find_remote_assets(page) == []
    assert 'src="/static/vendor/leaflet/leaflet.js"' in page
    assert page.count('"_key": "3"') == 2 and page.count('"_key": "4"') == 1
    assert HOSTILE not in page and "\\u0026lt;script\\u0026gt;alert(1)" in page


def test_grid_map_filters_by_level_and_speaks_english(client):
    page = client.get("/map/grids?level=3&lang=en").get_data(as_text=True)

    assert page.count('"_key": "3"') == 2 and '"_key": "4"' not in page
    assert "Level 3 (village/community)" in page


def test_grid_map_refuses_a_bad_level(client):
    response = client.get("/map/grids?level=9", headers={"Accept": "application/json"})

    assert response.status_code == 400
    assert "unknown grid level" in response.get_json()["error"]


def test_grid_map_has_a_title_a_way_home_and_the_other_language(client):
    page = client.get("/map/grids?level=3").get_data(as_text=True)

    box = json.loads(re.search(r'"gisgrid-legend gisgrid-titlebox"\);\s*div\.innerHTML = '
                               r'("[^\n]*");', page).group(1))
    assert '<div class="gisgrid-title">网格地图</div>' in box
    assert '<a href="/?lang=zh">首页</a>' in box
    assert '<a href="/map/grids?level=3&amp;lang=en">English</a>' in box
    assert '<link rel="icon" href="data:,">' in page     # no favicon request, no 404
