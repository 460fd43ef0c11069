"""The people store on a real PostGIS: assignments, their rules, the staffing check.

Grids: the field tree of ``tests/db/conftest.py`` (village FV with base grids FV-1 and FV-2,
community FK with FK-1, township FT, city FC).
"""

from __future__ import annotations

import pytest

from gisgrid.db import people as people_store
from gisgrid.errors import Conflict, InputError
from tests.db.field_fixtures import D1, D2, D3, add_worker

pytestmark = pytest.mark.db


def test_assignments_overlap_rules_and_staffing_check(conn, field_grids):
    a, b = add_worker(conn, "甲", "13800000001"), add_worker(conn, "乙", "13800000002")
    officer = add_worker(conn, "丙", kind="officer")
    _, warnings = people_store.record_assignment(conn, a, "FV-1", "grid_worker", D1)
    assert warnings == []
    with pytest.raises(Conflict, match="already grid_worker of grid FV-1 "):
        people_store.record_assignment(conn, a, "FV-1", "grid_worker", D2, D3)
    _, warnings = people_store.record_assignment(conn, b, "FV-1", "grid_worker", D3)
    assert len(warnings) == 1 and "FV-1" in warnings[0]
    with pytest.raises(InputError, match="not a grid worker"):
        people_store.record_assignment(conn, officer, "FV-2", "grid_worker", D1)
    people_store.record_assignment(conn, officer, "FV", "safety_officer", D1)
    findings = {(f.grid_id, f.problem) for f in people_store.check_staffing(conn, D3, under="FC")}
    assert findings == {(field_grids["FV-1"], "several_workers"),
                        (field_grids["FV-2"], "no_worker"), (field_grids["FK-1"], "no_worker")}
    people_store.record_training(conn, a, "安全生产网格员培训", "2024-04-01", "6")
    rows = {r["name"]: r for r in people_store.read_people(conn, under="FV")}
    assert set(rows) == {"甲", "乙", "丙"} and float(rows["甲"]["training_hours"]) == 6.0
    assert people_store.read_person(conn, "13800000002").id == b
