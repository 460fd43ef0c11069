"""Hazard storage on a real PostGIS: routing at write time, idempotency, workflow, duplicates.

The grid fixture, in degrees (CGCS2000)::

    113.8        113.9        114.0     114.05
    +------------+------------+  29.8
    |  B1        |  B2        |           x  outside (nearest township: T2)
    |  V1 / T1   |  V2 / T2   |
    +------------+------------+  29.6
             city C covers both townships
"""

from __future__ import annotations

import hashlib
import math
import uuid
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from gisgrid.clock import CHINA_TZ
from gisgrid.errors import Conflict, IllegalTransition, InputError, NotFound
from gisgrid.hazards.calendar import due_at
from gisgrid.hazards.reports import HazardReport
from gisgrid.db.hazards import (
    advance_hazard,
    find_duplicates,
    link_duplicate,
    list_hazards,
    read_events,
    read_hazard,
    read_photos,
    record_hazard,
)

pytestmark = pytest.mark.db

REPORTED = datetime(2025, 9, 26, 10, tzinfo=CHINA_TZ)   # a Friday before golden week
NOW = datetime(2025, 9, 26, 11, tzinfo=CHINA_TZ)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x01" * 40
M_PER_DEG_LON = 111_320 * math.cos(math.radians(29.7))


def _box(x0, y0, x1, y1):
    return f"MULTIPOLYGON((({x0} {y0},{x1} {y0},{x1} {y1},{x0} {y1},{x0} {y0})))"


@pytest.fixture
def grids(conn):
    """Insert the hierarchy drawn in the module docstring; return ids by name."""
    ids: dict[str, int] = {}

    def add(name, level, kind, parent, box, path):
        ids[name] = conn.execute(sa.text("""
            INSERT INTO grid (code, name, level, kind, parent_id, path, geom)
            VALUES (:code, :name, :level, :kind, :parent, :path,
                    ST_GeomFromText(:wkt, 4490)) RETURNING id
        """), {"code": f"HZ-{name}", "name": name, "level": level, "kind": kind,
               "parent": ids.get(parent), "path": path, "wkt": _box(*box)}).scalar_one()

    add("C", 1, "city", None, (113.8, 29.6, 114.0, 29.8), "hz")
    add("T1", 2, "township", "C", (113.8, 29.6, 113.9, 29.8), "hz.1")
    add("T2", 2, "street", "C", (113.9, 29.6, 114.0, 29.8), "hz.2")
    add("V1", 3, "village", "T1", (113.8, 29.6, 113.9, 29.8), "hz.1.1")
    add("V2", 3, "community", "T2", (113.9, 29.6, 114.0, 29.8), "hz.2.1")
    add("B1", 4, "base", "V1", (113.8, 29.6, 113.9, 29.8), "hz.1.1.1")
    add("B2", 4, "base", "V2", (113.9, 29.6, 114.0, 29.8), "hz.2.1.1")
    return ids


def report(**changes) -> HazardReport:
    values = dict(lon=113.85, lat=29.7, category="fireworks", description="仓库违规存放烟花爆竹",
                  client_uuid=str(uuid.uuid4()), reported_at=REPORTED)
    values.update(changes)
    return HazardReport(**values)


def record(conn, tmp_path, **changes):
    return record_hazard(conn, report(**changes), actor="网格员张三", photo_dir=tmp_path, now=NOW)


def test_report_inside_is_routed_to_village_with_chain_and_due_date(conn, grids, tmp_path):
    hazard = record(conn, tmp_path)
    assert (hazard.city_grid_id, hazard.township_grid_id, hazard.village_grid_id,
            hazard.base_grid_id) == (grids["C"], grids["T1"], grids["V1"], grids["B1"])
    assert hazard.outside_grids is False and hazard.routed_to_grid_id == grids["V1"]
    assert hazard.state == "reported" and hazard.created
    assert hazard.due_at == due_at("fireworks", REPORTED, major=False)
    assert hazard.due_at.astimezone(CHINA_TZ).date().isoformat() == "2025-10-10"
    (event,) = read_events(conn, hazard.id)
    assert (event.from_state, event.to_state.value, event.actor) == (None, "reported", "网格员张三")


def test_point_on_a_shared_edge_goes_to_the_smallest_id(conn, grids, tmp_path):
    hazard = record(conn, tmp_path, lon=113.9)
    assert hazard.base_grid_id == min(grids["B1"], grids["B2"])
    assert not hazard.outside_grids


def test_major_goes_straight_to_township(conn, grids, tmp_path):
    hazard = record(conn, tmp_path, lon=113.95, major=True)
    assert hazard.routed_to_grid_id == grids["T2"] and hazard.village_grid_id == grids["V2"]
    assert hazard.due_at.astimezone(CHINA_TZ).date().isoformat() == "2025-09-30"  # 3 workdays


def test_outside_every_grid_is_stored_flagged_and_routed_to_nearest_township(conn, grids, tmp_path):
    hazard = record(conn, tmp_path, lon=114.05)
    assert hazard.outside_grids is True
    assert (hazard.city_grid_id, hazard.township_grid_id, hazard.village_grid_id,
            hazard.base_grid_id) == (None, None, None, None)
    assert hazard.routed_to_grid_id == grids["T2"]
    assert read_hazard(conn, hazard.id).outside_grids is True


def test_resubmission_is_idempotent_and_changed_content_conflicts(conn, grids, tmp_path):
    uid = str(uuid.uuid4())
    first = record(conn, tmp_path, client_uuid=uid, photos=(PNG,))
    again = record(conn, tmp_path, client_uuid=uid.upper(), photos=(PNG,))
    assert again.id == first.id and again.created is False
    count = conn.execute(sa.text("SELECT count(*) FROM hazard WHERE client_uuid = :u"),
                         {"u": uid}).scalar_one()
    assert count == 1 and len(read_events(conn, first.id)) == 1
    with pytest.raises(Conflict) as err:
        record(conn, tmp_path, client_uuid=uid, description="别的内容", photos=())
    assert err.value.details == ["description: differs from the stored report",
                                 "photos: differs from the stored report"]


def test_resubmission_without_a_time_is_idempotent(conn, grids, tmp_path):
    """A client that lets the server stamp the time and then retries is not a conflict."""
    uid = str(uuid.uuid4())
    first = record_hazard(conn, report(client_uuid=uid, reported_at=None), actor="x",
                          now=NOW)
    again = record_hazard(conn, report(client_uuid=uid, reported_at=None), actor="x",
                          now=NOW + timedelta(minutes=5))
    assert again.id == first.id and again.created is False
    assert again.reported_at == first.reported_at == NOW
    with pytest.raises(Conflict, match="different content"):  # a time that is given counts
        record_hazard(conn, report(client_uuid=uid, reported_at=NOW + timedelta(minutes=1)),
                      actor="x", now=NOW + timedelta(minutes=5))


def test_unknown_reporter_and_unit_are_named_fields(conn, grids, tmp_path):
    with pytest.raises(InputError) as err:
        record(conn, tmp_path, reporter_id=10**12, unit_id=10**12 + 1)
    assert err.value.details == [f"reporter_id: no person with id {10**12}",
                                 f"unit_id: no business unit with id {10**12 + 1}"]


def test_photos_are_files_with_checksums(conn, grids, tmp_path):
    hazard = record(conn, tmp_path, photos=(PNG, PNG))
    (photo,) = read_photos(conn, hazard.id)
    assert photo.sha256 == hashlib.sha256(PNG).hexdigest() and photo.bytes == len(PNG)
    assert (tmp_path / photo.path).read_bytes() == PNG


def test_bad_input_names_the_field_and_writes_nothing(conn, grids, tmp_path):
    before = conn.execute(sa.text("SELECT count(*) FROM hazard")).scalar_one()
    with pytest.raises(InputError) as err:
        record(conn, tmp_path, lat=95.0, client_uuid="123")
    assert [d.split(":")[0] for d in err.value.details] == ["lat", "client_uuid"]
    assert conn.execute(sa.text("SELECT count(*) FROM hazard")).scalar_one() == before


def test_full_workflow_logs_every_step_and_closes(conn, grids, tmp_path):
    hazard = record(conn, tmp_path)
    steps = ["accept", "dispatch", "start", "submit_for_verification", "reject",
             "submit_for_verification", "close"]
    at = NOW
    for step in steps:
        at += timedelta(hours=1)
        hazard = advance_hazard(conn, hazard.id, step, actor="安监站李四", note=step, at=at,
                                role="township" if step == "close" else None)
    assert hazard.state == "closed" and hazard.closed_at == at
    events = read_events(conn, hazard.id)
    assert [e.action for e in events] == ["report", *steps]
    assert (events[-1].actor, events[-1].role) == ("安监站李四", "township")
    assert events[-2].role is None
    with pytest.raises(IllegalTransition, match="结案 closed"):
        advance_hazard(conn, hazard.id, "dispatch", actor="x", at=at)
    assert len(read_events(conn, hazard.id)) == len(steps) + 1


def test_illegal_transition_changes_nothing(conn, grids, tmp_path):
    hazard = record(conn, tmp_path)
    with pytest.raises(IllegalTransition) as err:
        advance_hazard(conn, hazard.id, "close", actor="x", at=NOW)
    assert "accept" in err.value.details[0]
    assert read_hazard(conn, hazard.id).state == "reported"
    with pytest.raises(NotFound):
        advance_hazard(conn, 10**12, "accept", actor="x", at=NOW)
    with pytest.raises(InputError, match="before the hazard was reported"):
        advance_hazard(conn, hazard.id, "accept", actor="x", at=REPORTED - timedelta(days=1))


def test_a_step_before_the_last_logged_step_is_refused(conn, grids, tmp_path):
    hazard = record(conn, tmp_path)
    advance_hazard(conn, hazard.id, "accept", actor="x", at=NOW)
    with pytest.raises(InputError, match="before the hazard's last logged step"):
        advance_hazard(conn, hazard.id, "dispatch", actor="x", at=NOW - timedelta(minutes=30))
    assert read_hazard(conn, hazard.id).state == "accepted"
    assert advance_hazard(conn, hazard.id, "dispatch", actor="x", at=NOW).state == "dispatched"


def test_postpone_extends_due_date(conn, grids, tmp_path):
    hazard = record(conn, tmp_path)
    for step in ("accept", "dispatch", "start"):
        hazard = advance_hazard(conn, hazard.id, step, actor="x", at=NOW)
    later = advance_hazard(conn, hazard.id, "postpone", actor="x", at=NOW, extend_workdays=2)
    # old due Fri 10 Oct; + 2 workdays: Sat 11 Oct (make-up day), Mon 13 Oct
    assert later.state == "postponed"
    assert later.due_at.astimezone(CHINA_TZ).date().isoformat() == "2025-10-13"


def test_list_filters_by_state_grid_and_overdue(conn, grids, tmp_path):
    a = record(conn, tmp_path)
    b = record(conn, tmp_path, lon=113.95, category="elevator")
    advance_hazard(conn, b.id, "accept", actor="x", at=NOW)
    mine = {a.id, b.id}
    assert {h.id for h in list_hazards(conn, under=grids["C"])} == mine
    assert [h.id for h in list_hazards(conn, under=grids["T1"])] == [a.id]
    assert [h.id for h in list_hazards(conn, state="受理", under=grids["C"])] == [b.id]
    after_a = datetime(2025, 10, 11, tzinfo=CHINA_TZ)   # a due 10 Oct, b due 16 Oct
    assert [h.id for h in list_hazards(conn, overdue=True, under=grids["C"], now=after_a)] == [a.id]
    assert [h.id for h in list_hazards(conn, overdue=False, under=grids["C"], now=after_a)] == [b.id]
    advance_hazard(conn, a.id, "accept", actor="x", at=NOW)
    advance_hazard(conn, a.id, "suspend", actor="x", at=NOW)
    assert list_hazards(conn, overdue=True, under=grids["C"], now=after_a) == []


def test_duplicates_by_radius_and_by_unit_then_link(conn, grids, tmp_path):
    unit_id = conn.execute(sa.text("""
        INSERT INTO unit (name, unit_class, management, geom)
        VALUES ('赤壁烟花店', 'individual_business', 'packaged',
                ST_SetSRID(ST_MakePoint(113.85, 29.7), 4490))
        RETURNING id""")).scalar_one()
    first = record(conn, tmp_path, unit_id=unit_id)
    near = record(conn, tmp_path, lon=113.85 + 30 / M_PER_DEG_LON)
    assert [(c.hazard_id, c.reason) for c in near.duplicates] == [(first.id, "nearby")]
    assert 29 < near.duplicates[0].distance_m < 31
    far = record(conn, tmp_path, lon=113.85 + 120 / M_PER_DEG_LON)
    assert far.duplicates == ()
    same_unit = record(conn, tmp_path, lon=113.95, unit_id=unit_id)
    assert [(c.hazard_id, c.reason) for c in same_unit.duplicates] == [(first.id, "same_unit")]
    linked = link_duplicate(conn, near.id, first.id, actor="村专责王五", at=NOW)
    assert linked.duplicate_of_id == first.id and linked.state == "reported"
    event = read_events(conn, near.id)[-1]
    assert event.action == "note" and f"duplicate of hazard {first.id}" in event.note
    with pytest.raises(Conflict):
        link_duplicate(conn, first.id, near.id, actor="x", at=NOW)   # would be a cycle
    assert find_duplicates(conn, read_hazard(conn, far.id)) == []



def test_due_date_from_stored_checklist_item(conn, grids, tmp_path):
    checklist_id = conn.execute(sa.text("""
        INSERT INTO checklist (code, version, valid_from) VALUES ('community', 99, '2025-01-01')
        RETURNING id""")).scalar_one()
    item_id = conn.execute(sa.text("""
        INSERT INTO checklist_item (checklist_id, position, item_kind, code, text_zh, text_en,
                                    due_workdays)
        VALUES (:c, 1, 'check', 'C06', '电梯', 'elevator', 2) RETURNING id"""),
        {"c": checklist_id}).scalar_one()
    by_code = record(conn, tmp_path, category="elevator", item_code="C06")
    by_id = record(conn, tmp_path, category="elevator", category_item_id=item_id)
    assert by_code.category_item_id == by_id.category_item_id == item_id
    # 2 workdays after Fri 26 Sep: Sun 28 (make-up day), Mon 29
    assert by_id.due_at.astimezone(CHINA_TZ).date().isoformat() == "2025-09-29"
    assert by_code.due_at == by_id.due_at
    with pytest.raises(InputError, match="category_item_id: no checklist item"):
        record(conn, tmp_path, category="elevator", category_item_id=10**12)


def test_concurrent_steps_serialise_on_the_row_lock(engine, tmp_path):
    """Two officers accept the same hazard at once: one waits for the other, then is refused."""
    with engine.begin() as setup:   # committed: outside every grid, found by its own id
        hazard = record_hazard(setup, report(lon=120.5, lat=35.5), actor="x", now=NOW)
    with engine.connect() as first, engine.connect() as second:
        first.begin()
        advance_hazard(first, hazard.id, "accept", actor="甲", at=NOW)
        second.begin()
        second.execute(sa.text("SET LOCAL lock_timeout = '300ms'"))
        with pytest.raises(sa.exc.OperationalError, match="lock"):
            advance_hazard(second, hazard.id, "accept", actor="乙", at=NOW)
        second.rollback()
        first.commit()
        second.begin()
        with pytest.raises(IllegalTransition, match="受理 accepted"):
            advance_hazard(second, hazard.id, "accept", actor="乙", at=NOW)
        second.rollback()
    with engine.connect() as check:
        assert [e.actor for e in read_events(check, hazard.id)] == ["x", "甲"]


def test_concurrent_links_cannot_close_a_cycle(engine, tmp_path):
    """A links to B while B links to A: the second waits for the first, then is refused."""
    with engine.begin() as setup:   # committed, outside every grid
        a = record_hazard(setup, report(lon=120.6, lat=35.6), actor="x", now=NOW)
        b = record_hazard(setup, report(lon=120.6, lat=35.6), actor="x", now=NOW)
    with engine.connect() as first, engine.connect() as second:
        first.begin()
        link_duplicate(first, a.id, b.id, actor="甲", at=NOW)
        second.begin()
        second.execute(sa.text("SET LOCAL lock_timeout = '300ms'"))
        with pytest.raises(sa.exc.OperationalError, match="lock"):
            link_duplicate(second, b.id, a.id, actor="乙", at=NOW)
        second.rollback()
        first.commit()
        second.begin()
        with pytest.raises(Conflict) as err:
            link_duplicate(second, b.id, a.id, actor="乙", at=NOW)
        assert "cycle" in err.value.details[0]
        second.rollback()
    with engine.connect() as check:
        assert read_hazard(check, b.id).duplicate_of_id is None
        assert read_hazard(check, a.id).duplicate_of_id == b.id
