"""The checklist store on a real PostGIS: the plan's lists, a city's edits as versions.

Grids: the field tree of ``tests/db/conftest.py`` (village FV with base grids FV-1 and FV-2,
community FK with FK-1, township FT, city FC).
"""

from __future__ import annotations

import pytest

from gisgrid.db import checklists as checklist_store
from gisgrid.db import patrols as patrol_store
from gisgrid.errors import InputError
from tests.db.field_fixtures import D1, D2, tasks_by_item

pytestmark = pytest.mark.db


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
