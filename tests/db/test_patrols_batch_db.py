"""The batch patrol path (``record_patrols``) against recording one by one, on real PostGIS.

Grids: the field tree of ``tests/db/conftest.py`` (village FV with FV-1 and FV-2, community FK
with FK-1). Each comparison runs both paths on the same start state inside savepoints and
compares id-free snapshots of plans, tasks and patrols.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import pytest
import sqlalchemy as sa

from gisgrid.db import grids as grid_store
from gisgrid.db import patrols as patrol_store
from gisgrid.db import people as people_store
from gisgrid.errors import Conflict, InputError
from tests.db.field_fixtures import CST, D1, D2, D3, VILLAGE_ITEMS, add_worker, patrol

pytestmark = pytest.mark.db

COMMUNITY_ITEMS = [f"C{n:02d}" for n in range(1, 14)]


def snapshot(conn) -> dict:
    """Plans, tasks (with the grid, day and item they were carried from) and patrols, id-free."""
    tasks = conn.execute(sa.text("""
        SELECT g.code, p.day, i.code, t.first_planned_on, t.status,
               sg.code, sp.day, si.code
        FROM patrol_task t JOIN patrol_plan p ON p.id = t.plan_id JOIN grid g ON g.id = p.grid_id
        JOIN checklist_item i ON i.id = t.item_id
        LEFT JOIN patrol_task s ON s.id = t.carried_from_id
        LEFT JOIN patrol_plan sp ON sp.id = s.plan_id LEFT JOIN grid sg ON sg.id = sp.grid_id
        LEFT JOIN checklist_item si ON si.id = s.item_id""")).all()
    patrols = conn.execute(sa.text("""
        SELECT pa.client_uuid, g.code, pp.day, pa.late, pa.person_id, pa.entered_at,
               ST_AsText(pa.track),
               (SELECT string_agg(i.code || '=' || r.result || ':' || t.status, ',' ORDER BY i.code)
                FROM patrol_item_result r JOIN checklist_item i ON i.id = r.item_id
                JOIN patrol_task t ON t.id = r.task_id WHERE r.patrol_id = pa.id)
        FROM patrol pa JOIN grid g ON g.id = pa.grid_id
        JOIN patrol_plan pp ON pp.id = pa.plan_id""")).all()
    return {"tasks": sorted(map(tuple, tasks), key=repr),
            "patrols": sorted(map(tuple, patrols), key=repr)}


def both_ways(conn, submissions) -> tuple[list, list, dict, dict]:
    """Record ``submissions`` one by one, then (from the same start) as one batch."""
    savepoint = conn.begin_nested()
    one_by_one = [patrol_store.record_patrol(conn, s) for s in submissions]
    sequential = snapshot(conn)
    savepoint.rollback()
    savepoint = conn.begin_nested()
    batch = patrol_store.record_patrols(conn, submissions)
    batched = snapshot(conn)
    savepoint.rollback()
    return one_by_one, batch, sequential, batched


def comparable(outcomes):
    """Outcomes with patrol and plan ids replaced by the position of the creating submission."""
    first = {}
    rows = []
    for n, o in enumerate(outcomes):
        first.setdefault(o.patrol_id, n)
        rows.append((first[o.patrol_id], o.created, o.late, o.plan_id is None, o.warnings))
    return rows


@pytest.fixture
def workers(conn, field_grids, checklists_loaded):
    a, b = add_worker(conn, "甲", "13800000011"), add_worker(conn, "乙", "13800000012")
    people_store.record_assignment(conn, a, "FV-1", "grid_worker", D1)
    return a, b


def scenario(a, b):
    """Submissions over three days: unfinished items, plans made on the fly, a late entry of
    an old day after its tasks were carried, two patrols of one plan, repeats."""
    late = datetime(2024, 5, 7, 20, tzinfo=CST)
    uid = str(uuid.uuid4())
    partial = {c: "ok" for c in VILLAGE_ITEMS if c not in ("V04", "V06")}
    partial["V04"] = "not_checked"
    return [
        patrol(a, results=partial, track=[[114.505, 30.50], [114.505, 30.52]]),
        patrol(b, grid="FK-1", results={c: "ok" for c in COMMUNITY_ITEMS[:5]}),
        patrol(a, day=D2, uid=uid, results={"V01": "ok", "V06": "hazard_found"}),
        patrol(b, grid="FV-2", day=D2, results={"V01": "not_checked", "V02": "ok"}),
        patrol(b, grid="FV-2", day=D1, entered=late),  # late: its tasks live on in D2's plan
        patrol(a, day=D2, uid=uid, results={"V01": "ok", "V06": "hazard_found"}),  # repeat
        patrol(a, day=D3, results={"V02": "ok"}),
        patrol(b, day=D2, results={"V04": "ok"}),  # a second patrol of FV-1's D2 plan
    ]


def test_batch_equals_one_by_one(conn, workers):
    a, b = workers
    patrol_store.build_plans(conn, D1, under="FV")
    submissions = scenario(a, b)
    one_by_one, batch, sequential, batched = both_ways(conn, submissions)
    assert batched == sequential
    assert comparable(batch) == comparable(one_by_one)
    # what the scenario was meant to exercise really happened
    assert [o.late for o in batch] == [False, False, False, False, True, False, False, False]
    assert batch[5].patrol_id == batch[2].patrol_id and not batch[5].created
    assert batch[0].warnings == () and "not assigned" in batch[1].warnings[0]
    carried = {(t[0], t[1], t[2]): t for t in batched["tasks"]}
    v04 = carried[("FV-1", D3, "V04")]
    assert v04[3] == D1 and v04[4] == "done" and v04[5:] == ("FV-1", D2, "V04")
    assert carried[("FV-1", D3, "V02")][3:5] == (D2, "done")  # not done on D2: carried
    assert carried[("FV-1", D3, "V01")][3:5] == (D3, "open")  # done on D2: fresh on D3
    assert carried[("FV-2", D2, "V03")][3:5] == (D1, "done")  # closed by the late entry


def test_idempotent_across_batches_and_conflict_writes_nothing(conn, workers):
    a, b = workers
    first = patrol(a)
    done = patrol_store.record_patrols(conn, [first, patrol(b, grid="FV-2")])
    assert all(o.created for o in done)
    again = patrol_store.record_patrols(conn, [patrol("13800000011", uid=str(first.client_uuid)),
                                               patrol(b, grid="FK-1", results={"C01": "ok"})])
    assert again[0].patrol_id == done[0].patrol_id and not again[0].created
    assert again[1].created
    before = snapshot(conn)
    changed = patrol(a, uid=str(first.client_uuid), results={"V01": "hazard_found"})
    with pytest.raises(Conflict) as caught:
        patrol_store.record_patrols(conn, [patrol(b, grid="FV-2", day=D2), changed])
    assert caught.value.details == [
        f"submission 1 ({first.client_uuid}): client_uuid {first.client_uuid} is already "
        f"patrol {done[0].patrol_id} with other content",
        f"submission 1 ({first.client_uuid}): results differs"]
    assert snapshot(conn) == before  # the good submission of the batch was not kept either


def test_changed_repeat_inside_a_batch_conflicts(conn, workers):
    a, _ = workers
    uid = str(uuid.uuid4())
    with pytest.raises(Conflict, match="twice in the batch|already patrol") as caught:
        patrol_store.record_patrols(conn, [patrol(a, uid=uid),
                                           patrol(a, uid=uid, results={"V01": "not_checked"})])
    assert any("results differs" in d for d in caught.value.details)
    assert conn.execute(sa.text("SELECT count(*) FROM patrol")).scalar_one() == 0


def test_every_bad_submission_is_listed_and_nothing_is_written(conn, workers):
    a, _ = workers
    with pytest.raises(InputError) as caught:
        patrol_store.record_patrols(conn, [patrol(a), patrol(a, grid="NOPE"), patrol(999999999),
                                           patrol(a, grid="FV"), patrol(a, results={"C01": "ok"})])
    text = str(caught.value)
    assert caught.value.message.startswith("4 of 5 patrol submission(s) refused")
    for expected in ("submission 1", "grid_code: no current grid", "submission 2",
                     "worker: no person", "submission 3", "level-3", "submission 4",
                     "C01 is not a task"):
        assert expected in text
    assert conn.execute(sa.text("SELECT count(*) FROM patrol")).scalar_one() == 0
    assert conn.execute(sa.text("SELECT count(*) FROM patrol_plan")).scalar_one() == 0


def test_empty_batch(conn):
    assert patrol_store.record_patrols(conn, []) == []


def test_set_based_plans_equal_grid_by_grid_plans(conn, workers):
    """build_plans (all grids at once) makes what ensure_plan makes grid by grid."""
    a, _ = workers
    patrol_store.build_plans(conn, D1, under="FC")
    patrol_store.record_patrol(conn, patrol(a, results={"V01": "ok", "V02": "hazard_found"}))
    savepoint = conn.begin_nested()
    outcome = patrol_store.build_plans(conn, D3, under="FC")
    bulk = snapshot(conn)
    savepoint.rollback()
    for grid in grid_store.read_base_grids(conn, under="FC"):
        patrol_store.ensure_plan(conn, grid, D3)
    assert snapshot(conn) == bulk
    assert outcome.carried_tasks == 8 + 10 + 13 and sorted(outcome.created) == [
        "FK-1", "FV-1", "FV-2"]
