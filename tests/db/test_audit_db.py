"""The audit log on a real PostGIS: every audited change leaves its event in the same
transaction, a change rolled back or refused leaves none, and ``gisgrid audit log`` lists them.

Grids: the field tree of ``tests/db/conftest.py`` (city FC, township FT, village FV with base
grids FV-1 and FV-2, community FK with FK-1).
"""

from __future__ import annotations

import json
from datetime import date, timedelta, timezone

import geopandas as gpd
import pytest
import shapely
import sqlalchemy as sa

from gisgrid.db import audit
from gisgrid.db import checklists as checklist_store
from gisgrid.db import people as people_store
from gisgrid.db import units as unit_store
from gisgrid.db.engine import storage_srid
from gisgrid.db.findings import accept_finding, validate_stored
from gisgrid.db.grids import write_grids
from gisgrid.errors import Conflict, ImportRefused, InputError
from gisgrid.grids import prepare_grids
from gisgrid.people import validate_person
from tests.db.field_fixtures import add_worker, units_frame

pytestmark = pytest.mark.db

D1 = date(2024, 5, 6)


@pytest.fixture
def new_events(conn):
    """``new_events(**filters)``: the audit rows written since this fixture was set up, oldest
    first (a test that names it before ``field_grids`` sees the tree's own events)."""
    mark = conn.execute(sa.text("SELECT coalesce(max(id), 0) FROM audit_log")).scalar_one()

    def read(**filters) -> list[dict]:
        rows = audit.read_events(conn, limit=10_000, **filters)
        return [r for r in reversed(rows) if r["id"] > mark]
    return read


def grid_layer(codes, parent, boxes, kind):
    return gpd.GeoDataFrame({"code": codes, "name": [f"{c} 网格" for c in codes],
                             "kind": [kind] * len(codes), "parent_code": [parent] * len(codes)},
                            geometry=[shapely.box(*b) for b in boxes], crs=4490)


# ---------------------------------------------------------------------------- grids

def test_each_grid_write_leaves_one_summary_event(conn, new_events, field_grids):
    events = new_events(entity="grid")
    assert [e["action"] for e in events] == ["grids.create"] * 4  # one per level written
    base = events[-1]
    assert base["actor"] == "tests" and base["entity_id"] is None
    assert base["detail"] == {"change": "create", "level": 4, "inserted": 3, "versioned": 0,
                              "unchanged": 0, "codes": ["FK-1", "FV-1", "FV-2"],
                              "more_codes": 0, "reason": None}

    srid = storage_srid(conn)
    moved = grid_layer(["FV-1", "FV-2"], "FV", [(114.50, 30.50, 114.512, 30.52),
                                                (114.512, 30.50, 114.52, 30.52)], "base")
    write_grids(conn, prepare_grids(moved, 4, storage_crs=srid), actor="editor",
                change="edit", reason="move the border")
    (edit,) = new_events(action="grids.edit")
    assert edit["actor"] == "editor"
    assert {k: edit["detail"][k] for k in ("inserted", "versioned", "unchanged", "codes",
                                           "reason")} == {
        "inserted": 0, "versioned": 2, "unchanged": 0, "codes": ["FV-1", "FV-2"],
        "reason": "move the border"}


def test_a_long_import_lists_twenty_codes_and_counts_the_rest(conn, field_grids, new_events):
    boxes = [(114.50 + i * 0.0004, 30.50, 114.5004 + i * 0.0004, 30.501) for i in range(25)]
    layer = grid_layer([f"FV-9{i:02d}" for i in range(25)], "FV", boxes, "base")
    write_grids(conn, prepare_grids(layer, 4, storage_crs=storage_srid(conn)), actor="importer",
                change="import")
    (event,) = new_events(action="grids.import")
    assert event["detail"]["inserted"] == 25 and event["detail"]["more_codes"] == 5
    assert event["detail"]["codes"] == [f"FV-9{i:02d}" for i in range(20)]


def test_a_refused_grid_import_leaves_no_event(conn, field_grids, new_events):
    orphan = grid_layer(["ZZ-1"], "NO-SUCH-PARENT", [(114.50, 30.50, 114.51, 30.51)], "base")
    with pytest.raises(ImportRefused):
        write_grids(conn, prepare_grids(orphan, 4, storage_crs=storage_srid(conn)),
                    actor="importer", change="import")
    assert new_events(action="grids.import") == []


def test_accepting_a_finding_is_audited_with_the_reviewer(conn, new_events):
    srid = storage_srid(conn)
    for level, layer in [
            (1, grid_layer(["AC"], None, [(114.70, 30.50, 114.72, 30.52)], "city")),
            (2, grid_layer(["AT"], "AC", [(114.70, 30.50, 114.72, 30.52)], "township")),
            (3, grid_layer(["AV"], "AT", [(114.70, 30.50, 114.72, 30.52)], "village")),
            (4, grid_layer(["AV-1"], "AV", [(114.70, 30.50, 114.71, 30.52)], "base"))]:
        write_grids(conn, prepare_grids(layer, level, storage_crs=srid), actor="tests")
    run_id, report = validate_stored(conn, code="AC", actor="tests")
    finding_id = conn.execute(sa.text(
        "SELECT id FROM finding WHERE run_id = :r ORDER BY id LIMIT 1"), {"r": run_id}).scalar()
    assert finding_id is not None, "the half-covered village must give a finding"
    exception_id = accept_finding(conn, finding_id, reason="lake, no grid needed",
                                  reviewer="auditor")
    (event,) = new_events(entity="accepted_exception")
    assert (event["action"], event["actor"], event["entity_id"]) == (
        "finding.accept", "auditor", str(exception_id))
    assert event["detail"]["finding_id"] == finding_id
    assert event["detail"]["reason"] == "lake, no grid needed"
    assert set(event["detail"]["grid_versions"]) >= set(event["detail"]["codes"])


# ---------------------------------------------------------------------------- people

def test_person_assignment_and_training_are_audited(conn, field_grids, new_events):
    person = validate_person({"name": "审计员甲", "kind": "grid_worker",
                              "employment": "full_time", "phone": "13600000001",
                              "id_number": "42128119800101001X"})
    person_id = people_store.write_person(conn, person, actor="clerk")
    assignment_id, _ = people_store.record_assignment(conn, person_id, "FV-1", "grid_worker",
                                                      D1, actor="clerk")
    training_id = people_store.record_training(conn, person_id, "隐患排查", "2024-02-01", "2.5",
                                               actor="trainer")
    added, assigned, trained = new_events()
    assert (added["action"], added["entity"], added["entity_id"], added["actor"]) == (
        "person.add", "person", str(person_id), "clerk")
    assert added["detail"] == {"name": "审计员甲", "kind": "grid_worker",
                               "employment": "full_time"}  # no phone, no ID number
    assert (assigned["action"], assigned["entity_id"]) == ("assignment.record",
                                                           str(assignment_id))
    assert assigned["detail"] == {"person_id": person_id, "grid_code": "FV-1",
                                  "role": "grid_worker", "valid_from": "2024-05-06",
                                  "valid_to": None, "warnings": []}
    assert (trained["action"], trained["entity_id"], trained["actor"]) == (
        "training.record", str(training_id), "trainer")
    assert trained["detail"] == {"person_id": person_id, "course": "隐患排查",
                                 "held_on": "2024-02-01", "hours": 2.5}


def test_rolled_back_or_refused_changes_leave_no_event(conn, field_grids, new_events):
    savepoint = conn.begin_nested()
    people_store.write_person(conn, validate_person(
        {"name": "临时", "kind": "officer", "phone": "13600000002"}), actor="clerk")
    assert [e["action"] for e in new_events()] == ["person.add"]  # seen inside the transaction
    savepoint.rollback()
    assert new_events() == []

    add_worker(conn, "甲", "13600000003")
    with pytest.raises(Conflict):
        add_worker(conn, "乙", "13600000003")
    with pytest.raises(InputError):
        people_store.record_training(conn, 999_999_999, "无人", "2024-02-01", actor="clerk")
    assert [e["detail"]["name"] for e in new_events(entity="person")] == ["甲"]
    assert new_events(entity="training") == []


# ---------------------------------------------------------------------------- units, lists

def test_a_units_import_leaves_one_event_with_its_counts(conn, field_grids, new_events):
    unit_store.write_units(conn, units_frame(), actor="importer")
    unit_store.write_units(conn, units_frame(lon=[114.515, 114.525, 114.60]), actor="importer")
    first, second = new_events(entity="unit")
    assert first["action"] == "units.import" and first["actor"] == "importer"
    assert first["detail"] == {"inserted": 3, "updated": 0, "outside": 1}
    assert second["detail"] == {"inserted": 0, "updated": 3, "outside": 1}


def test_checklist_load_and_city_edit_are_audited(conn, field_grids, new_events):
    ids = checklist_store.load_builtin_checklists(conn, actor="loader")
    checklist_store.load_builtin_checklists(conn, actor="loader")  # stores nothing: no event
    (load,) = new_events(action="checklist.load")
    assert load["actor"] == "loader" and load["detail"] == {"checklists": ids}
    new_id, edited = checklist_store.record_checklist_edit(
        conn, "village", city_code="FC", valid_from=D1, actor="city editor",
        changes={"V04": {"due_workdays": 2}}, remove=["V09"],
        add=[{"code": "V99", "item_kind": "check", "text_zh": "有无违规动火。",
              "text_en": "Any unauthorised hot work?", "due_workdays": 1}])
    (event,) = new_events(action="checklist.edit")
    assert (event["entity"], event["entity_id"], event["actor"]) == (
        "checklist", str(new_id), "city editor")
    assert event["detail"] == {"code": "village", "version": edited.version,
                               "city_code": "FC", "valid_from": "2024-05-06",
                               "changed": ["V04"], "removed": ["V09"], "added": ["V99"]}


# ---------------------------------------------------------------------------- reading

def test_read_events_filters_and_refuses_a_bad_limit(conn, new_events):
    for n in range(3):
        audit.record_event(conn, actor="tests", action="test.ping", entity="probe",
                           entity_id=n, detail={"n": n, "day": D1})
    newest = audit.read_events(conn, entity="probe", limit=2)
    assert [r["entity_id"] for r in newest] == ["2", "1"]
    assert newest[0]["detail"] == {"n": 2, "day": "2024-05-06"}
    now = conn.execute(sa.text("SELECT now()")).scalar_one()
    assert len(audit.read_events(conn, entity="probe", since=now)) == 3
    assert audit.read_events(conn, entity="probe", since=now + timedelta(seconds=1)) == []
    tomorrow = (now.astimezone(timezone(timedelta(hours=8))) + timedelta(days=1)).date()
    assert audit.read_events(conn, entity="probe", since=tomorrow) == []
    with pytest.raises(InputError, match="limit: 0"):
        audit.read_events(conn, limit=0)


def test_audit_log_command_lists_the_events_of_committed_changes(
        migrated_database, field_tree_writer, gisgrid_on, monkeypatch):
    gisgrid = gisgrid_on(migrated_database("audit_cli", field_tree_writer))
    monkeypatch.setenv("GISGRID_ACTOR", "周主任")
    code, out, err = gisgrid("people", "add", "--name", "周网格", "--employment", "full_time")
    assert code == 0, err
    person_id = out.split()[1].rstrip(":")
    code, out, err = gisgrid("audit", "log", "--entity", "person", "--format", "json")
    assert code == 0, err
    (event,) = json.loads(out)
    assert (event["action"], event["actor"], event["entity_id"]) == (
        "person.add", "周主任", person_id)
    code, out, _ = gisgrid("audit", "log", "--limit", "2")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 3 and lines[0].split()[:4] == [
        "id", "at", "actor", "action"]
    assert "person.add" in lines[1] and "周主任" in lines[1]  # newest first
    assert "grids.create" in lines[2]  # the tree the database was made with
    code, _, err = gisgrid("audit", "log", "--since", "yesterday")
    assert code == 2 and "--since" in err
