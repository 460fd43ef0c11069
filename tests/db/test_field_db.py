"""Field operations on a real PostGIS: checklists, units, people, plans, patrols, coverage.

Grids: the field tree of ``tests/db/conftest.py`` (village FV with base grids FV-1 and FV-2,
community FK with FK-1, township FT, city FC).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta, timezone

import pandas as pd
import pytest
import sqlalchemy as sa

from gisgrid.db import checklists as checklist_store
from gisgrid.db import patrols as patrol_store
from gisgrid.db import people as people_store
from gisgrid.db import units as unit_store
from gisgrid.errors import Conflict, InputError
from gisgrid.patrols import parse_submission
from gisgrid.people import validate_person
from gisgrid.units import normalise_units

pytestmark = pytest.mark.db

D1 = date(2024, 5, 6)
D2, D3 = D1 + timedelta(1), D1 + timedelta(2)
CST = timezone(timedelta(hours=8))
VILLAGE_ITEMS = [f"V{n:02d}" for n in range(1, 11)]


def add_worker(conn, name="李网格", phone=None, kind="grid_worker") -> int:
    person = validate_person({"name": name, "kind": kind, "phone": phone,
                              "employment": "part_time" if kind == "grid_worker" else None})
    return people_store.write_person(conn, person)


def patrol(worker, *, grid="FV-1", day=D1, results=None, entered=None, uid=None, track=None):
    """A checked submission: by default every village item ok, entered the same evening."""
    started = datetime.combine(day, datetime.min.time(), CST) + timedelta(hours=9)
    data = {"client_uuid": uid or str(uuid.uuid4()), "grid_code": grid, "worker": worker,
            "day": day.isoformat(), "started_at": started.isoformat(),
            "ended_at": (started + timedelta(hours=2)).isoformat(),
            "entered_at": (entered or started + timedelta(hours=9)).isoformat(),
            "results": results if results is not None else {c: "ok" for c in VILLAGE_ITEMS},
            "track": track}
    return parse_submission({k: v for k, v in data.items() if v is not None},
                            received_at=started + timedelta(hours=10))


def tasks_by_item(conn, grid, day):
    return {t["item_code"]: t for t in patrol_store.read_plan_tasks(conn, grid, day)}


# ---------------------------------------------------------------------------- checklists

def test_builtin_checklists_load_once_and_read_back(conn, checklists_loaded):
    again = checklist_store.load_builtin_checklists(conn)
    assert again == checklists_loaded
    community, item_ids = checklist_store.read_checklist(conn, checklists_loaded["community"])
    assert len(community.items) == 13 and set(item_ids) == set(community.item_codes)
    assert community.item("C11").text_zh == "有无锁闭安全出口。"


def test_city_edit_is_a_new_version_used_from_its_first_day(conn, field_grids,
                                                             checklists_loaded):
    new_id, edited = checklist_store.record_checklist_edit(
                  conn, "village", city_code="FC", valid_from=D2,
                  changes={"V04": {"due_workdays": 2}}, remove=["V07"])
    assert edited.version == 2 and len(edited.items) == 9
    assert checklist_store.find_checklist(conn, "village", city_id=field_grids["FC"], day=D1) == \
        checklists_loaded["village"]
    assert checklist_store.find_checklist(conn, "village", city_id=field_grids["FC"],
                                          day=D2) == new_id
    assert checklist_store.find_checklist(conn, "village", day=D2) == checklists_loaded["village"]
    patrol_store.build_plans(conn, D1, under="FV")
    patrol_store.build_plans(conn, D2, under="FV")
    assert len(tasks_by_item(conn, "FV-1", D1)) == 10
    day2 = tasks_by_item(conn, "FV-1", D2)
    # V07 was dropped by the edit but was not done on day 1: it stays until done
    assert day2["V07"]["age_days"] == 1 and day2["V01"]["age_days"] == 1
    with pytest.raises(InputError, match="not a city"):
        checklist_store.record_checklist_edit(conn, "village", city_code="FT", valid_from=D2,
                                              changes={"V04": {"due_workdays": 2}})


# ---------------------------------------------------------------------------- units

def units_frame(**overrides):
    rows = {"external_id": ["E1", "E2", "E3"], "name": ["化工厂", "小卖部", "网格外加油站"],
            "class": ["规上企业", "个体工商户", "高危小微企业"],
            "lon": [114.505, 114.525, 114.60], "lat": [30.51, 30.51, 30.51]}
    rows.update(overrides)
    return normalise_units(pd.DataFrame(rows))


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


# ---------------------------------------------------------------------------- people

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
