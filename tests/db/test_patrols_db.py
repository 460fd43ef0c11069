"""The patrol store on a real PostGIS: plans with carry-over, submissions, coverage.

Grids: the field tree of ``tests/db/conftest.py`` (village FV with base grids FV-1 and FV-2,
community FK with FK-1, township FT, city FC).
"""

from __future__ import annotations

import uuid
from datetime import datetime

import pytest
import sqlalchemy as sa

from gisgrid.db import patrols as patrol_store
from gisgrid.errors import Conflict, InputError
from tests.db.field_fixtures import (CST, D1, D2, D3, VILLAGE_ITEMS, add_worker, patrol,
                                     tasks_by_item)

pytestmark = pytest.mark.db


# ---------------------------------------------------------------------------- plans

def test_one_plan_per_base_grid_with_the_list_of_its_kind(conn, field_grids,
                                                          checklists_loaded):
    outcome = patrol_store.build_plans(conn, D1, under="FC")
    assert sorted(outcome.created) == ["FK-1", "FV-1", "FV-2"]
    assert len(tasks_by_item(conn, "FV-2", D1)) == 10
    assert set(tasks_by_item(conn, "FK-1", D1)) == {f"C{n:02d}" for n in range(1, 14)}
    again = patrol_store.build_plans(conn, D1, under="FC")
    assert again.created == () and sorted(again.existing) == ["FK-1", "FV-1", "FV-2"]


def test_carry_over_across_days(conn, field_grids, checklists_loaded):
    worker = add_worker(conn)
    patrol_store.build_plans(conn, D1, under="FV")
    results = {c: "ok" for c in VILLAGE_ITEMS}
    results.update({"V04": "not_checked", "V05": "hazard_found"})
    del results["V06"]  # not reported at all = not checked
    patrol_store.record_patrol(conn, patrol(worker, results=results))
    outcome = patrol_store.build_plans(conn, D2, under="FV")
    assert outcome.carried_tasks == 2 + 10  # FV-1: V04, V06; FV-2 not patrolled: everything
    fv1 = tasks_by_item(conn, "FV-1", D2)
    assert {c: t["age_days"] for c, t in fv1.items() if t["age_days"]} == {"V04": 1, "V06": 1}
    assert fv1["V04"]["first_planned_on"] == D1 and fv1["V04"]["carried_from_id"]
    assert len(fv1) == 10
    fv2 = tasks_by_item(conn, "FV-2", D2)
    assert {t["age_days"] for t in fv2.values()} == {1}
    day1 = tasks_by_item(conn, "FV-1", D1)
    assert day1["V04"]["status"] == "carried_over" and day1["V05"]["status"] == "done"
    # still not done on day 2: on day 3 the age is 2, first planned on day 1
    patrol_store.build_plans(conn, D3, under="FV")
    fv1 = tasks_by_item(conn, "FV-1", D3)
    assert fv1["V04"]["age_days"] == 2 and fv1["V04"]["first_planned_on"] == D1
    plans = {p["grid_code"]: p for p in patrol_store.read_plans(conn, D3, under="FV")}
    assert plans["FV-2"]["carried_in"] == 10 and plans["FV-2"]["max_age_days"] == 2


def test_late_patrol_of_an_old_day_closes_the_carried_task(conn, field_grids,
                                                           checklists_loaded):
    worker = add_worker(conn)
    patrol_store.build_plans(conn, D1, under="FV-1")
    patrol_store.build_plans(conn, D2, under="FV-1")
    assert tasks_by_item(conn, "FV-1", D2)["V01"]["age_days"] == 1
    late = patrol_store.record_patrol(conn, patrol(worker, day=D1,
                                                   entered=datetime(2024, 5, 7, 9, tzinfo=CST)))
    assert late.late
    assert {t["status"] for t in tasks_by_item(conn, "FV-1", D2).values()} == {"done"}
    stored = conn.execute(sa.text("SELECT late FROM patrol WHERE id = :id"),
                          {"id": late.patrol_id}).scalar_one()
    assert stored is True


def test_same_day_entry_is_not_late_and_plan_is_made_on_the_fly(conn, field_grids,
                                                                checklists_loaded):
    worker = add_worker(conn)
    outcome = patrol_store.record_patrol(conn, patrol(worker, grid="FV-2"))
    assert outcome.created and not outcome.late and outcome.plan_id
    assert "not assigned" in outcome.warnings[0]
    assert {t["status"] for t in tasks_by_item(conn, "FV-2", D1).values()} == {"done"}


# ---------------------------------------------------------------------------- idempotency

def test_resubmission_is_idempotent_and_changed_content_conflicts(conn, field_grids,
                                                                   checklists_loaded):
    worker = add_worker(conn, phone="13900000009")
    uid = str(uuid.uuid4())
    first = patrol_store.record_patrol(conn, patrol(worker, uid=uid))
    again = patrol_store.record_patrol(conn, patrol("13900000009", uid=uid))  # worker by phone
    assert again.patrol_id == first.patrol_id and not again.created
    with pytest.raises(Conflict) as caught:
        patrol_store.record_patrol(conn, patrol(worker, uid=uid, results={"V01": "hazard_found"}))
    assert "results differs" in caught.value.details
    count = conn.execute(sa.text("SELECT count(*) FROM patrol WHERE client_uuid = :u"),
                         {"u": uuid.UUID(uid)}).scalar_one()
    assert count == 1


def test_bad_submission_names_the_field_and_writes_nothing(conn, field_grids,
                                                          checklists_loaded):
    worker = add_worker(conn)
    before = conn.execute(sa.text("SELECT count(*) FROM patrol")).scalar_one()
    with pytest.raises(InputError, match="grid_code: no current grid"):
        patrol_store.record_patrol(conn, patrol(worker, grid="NOPE"))
    with pytest.raises(InputError, match="worker: no person"):
        patrol_store.record_patrol(conn, patrol(999999999))
    with pytest.raises(InputError, match="level-3"):
        patrol_store.record_patrol(conn, patrol(worker, grid="FV"))
    with pytest.raises(InputError, match="C01 is not a task"):
        patrol_store.record_patrol(conn, patrol(worker, results={"C01": "ok"}))
    assert conn.execute(sa.text("SELECT count(*) FROM patrol")).scalar_one() == before


# ---------------------------------------------------------------------------- coverage

def test_coverage_share_stored_per_grid_and_day(conn, field_grids, checklists_loaded):
    worker = add_worker(conn)
    # a south-north track through the middle of FV-1, the whole height of the grid
    track = [[114.505, 30.50], [114.505, 30.52]]
    patrol_store.record_patrol(conn, patrol(worker, track=track))
    result = patrol_store.record_patrol_coverage(conn, D1, under="FC").set_index("code")
    width_m = 0.01 * 111_320 * 0.8616  # grid width at 30.51 N, about 960 m
    assert result.loc["FV-1", "covered_share"] == pytest.approx(100 / width_m, rel=0.03)
    assert result.loc["FV-2", "covered_share"] == 0.0
    assert result.loc["FK-1", "covered_share"] == 0.0
    stored = patrol_store.read_patrol_coverage(conn, D1).set_index("code")
    assert stored.loc["FV-1", "covered_share"] == pytest.approx(
        result.loc["FV-1", "covered_share"])
    # recomputation replaces, and a wider buffer is stored alongside
    patrol_store.record_patrol_coverage(conn, D1, under="FC")
    patrol_store.record_patrol_coverage(conn, D1, under="FC", buffer_m=100)
    rows = conn.execute(sa.text("SELECT count(*) FROM patrol_coverage WHERE grid_id = :g"),
                        {"g": field_grids["FV-1"]}).scalar_one()
    assert rows == 2
    upper = patrol_store.record_patrol_coverage(conn, D1, under="FC", levels=(3,)).set_index("code")
    assert 0 < upper.loc["FV", "covered_share"] < result.loc["FV-1", "covered_share"]
