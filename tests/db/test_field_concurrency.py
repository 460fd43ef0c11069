"""Concurrent writers of field data take turns instead of colliding or breaking a rule.

Each test opens two connections: the first writes and holds its transaction open, the second
starts the same write in a thread (it must wait), then the first commits and the second's
outcome is checked. The module has its own database (the writes commit), with the field grid
tree of ``tests/db/conftest.py`` and the plan's checklists.
"""

from __future__ import annotations

import threading
from datetime import date

import pandas as pd
import pytest
import sqlalchemy as sa

from gisgrid.db import checklists as checklist_store
from gisgrid.db import people as people_store
from gisgrid.db import units as unit_store
from gisgrid.errors import Conflict
from gisgrid.people import validate_person
from gisgrid.units import normalise_units

pytestmark = pytest.mark.db


@pytest.fixture(scope="module")
def engine_here(migrated_database, field_tree_writer):
    def write(connection):
        field_tree_writer(connection)
        checklist_store.load_builtin_checklists(connection)

    engine = sa.create_engine(migrated_database("field_concurrency", write))
    yield engine
    engine.dispose()


def second_after_first(engine, write):
    """Run ``write(conn)`` on a first connection (kept open), then on a second one in a thread;
    commit the first once the second is seen waiting. Returns the second's result or error."""
    outcome = {}

    def second():
        try:
            with engine.begin() as conn:
                outcome["result"] = write(conn)
        except Exception as exc:  # noqa: BLE001 - handed to the test to assert on
            outcome["error"] = exc

    with engine.connect() as first:
        first.begin()
        write(first)
        thread = threading.Thread(target=second)
        thread.start()
        thread.join(0.5)
        outcome["waited"] = thread.is_alive()
        first.commit()
    thread.join(10)
    return outcome


def test_the_same_phone_added_twice_at_once_is_refused(engine_here):
    person = validate_person({"name": "并发", "kind": "grid_worker", "phone": "13700000077",
                              "employment": "part_time"})
    outcome = second_after_first(engine_here, lambda conn: people_store.write_person(conn, person))
    assert outcome["waited"]
    assert isinstance(outcome.get("error"), Conflict), outcome
    with engine_here.connect() as conn:
        assert conn.execute(sa.text(
            "SELECT count(*) FROM person WHERE phone = '13700000077'")).scalar_one() == 1


def test_the_same_ledger_imported_twice_at_once_updates(engine_here):
    units = normalise_units(pd.DataFrame({"external_id": ["CC-1"], "name": ["并发厂"],
                                          "class": ["规上企业"], "lon": [114.505],
                                          "lat": [30.51]}))
    outcome = second_after_first(engine_here, lambda conn: unit_store.write_units(conn, units))
    assert outcome["waited"]
    written = outcome.get("result")
    assert written is not None, outcome
    assert (written.inserted, written.updated) == (0, 1)


def test_concurrent_checklist_edits_of_a_city_get_consecutive_versions(engine_here):
    days = iter([2, 3])  # each edit changes something in the list it starts from

    def edit(conn):
        return checklist_store.record_checklist_edit(conn, "village", city_code="FC",
                                                     valid_from=date(2030, 1, 1),
                                                     changes={"V04": {"due_workdays": next(days)}}
                                                     )[1].version

    outcome = second_after_first(engine_here, edit)
    assert outcome["waited"]
    assert outcome.get("result") == 3, outcome
    with engine_here.connect() as conn:
        versions = [v["version"] for v in checklist_store.read_checklist_versions(conn, "village")]
    assert versions == [1, 2, 3]
