"""The business-unit store on a real PostGIS: grid chain at write time, re-imports.

Grids: the field tree of ``tests/db/conftest.py`` (village FV with base grids FV-1 and FV-2,
community FK with FK-1, township FT, city FC).
"""

from __future__ import annotations

import pandas as pd
import pytest

from gisgrid.db import units as unit_store
from tests.db.field_fixtures import units_frame

pytestmark = pytest.mark.db


def test_units_get_their_grid_chain_and_outside_ones_are_flagged(conn, field_grids):
    written = unit_store.write_units(conn, units_frame())
    assert (written.inserted, written.updated, written.outside) == (3, 0, 1)
    stored = unit_store.read_units(conn).set_index("external_id").loc[["E1", "E2", "E3"]]
    e1, e2, e3 = (stored.loc[k] for k in ("E1", "E2", "E3"))
    assert (e1.base_grid_id, e1.village_grid_id, e1.township_grid_id, e1.city_grid_id) == (
        field_grids["FV-1"], field_grids["FV"], field_grids["FT"], field_grids["FC"])
    assert e2.base_grid_code == "FK-1" and e2.management == "packaged"
    assert bool(e3.outside_grids) and pd.isna(e3.base_grid_id) and e3.management == "individual"
    assert list(unit_store.read_units(conn, under="FV")["external_id"]) == ["E1"]
    outside = unit_store.read_units(conn, outside_only=True)
    assert "E3" in set(outside["external_id"])


def test_reimport_updates_by_external_id(conn, field_grids):
    first = unit_store.write_units(conn, units_frame())
    moved = units_frame(lon=[114.515, 114.525, 114.60])
    again = unit_store.write_units(conn, moved)
    assert (again.inserted, again.updated) == (0, 3) and again.ids == first.ids
    e1 = unit_store.read_units(conn).set_index("external_id").loc["E1"]
    assert e1.base_grid_code == "FV-2"
