"""Helpers of the field-operation DB tests: days, a worker, a patrol submission, units.

Grids: the field tree of ``tests/db/conftest.py`` (village FV with base grids FV-1 and FV-2,
community FK with FK-1, township FT, city FC).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta, timezone

import pandas as pd

from gisgrid.db import patrols as patrol_store
from gisgrid.db import people as people_store
from gisgrid.patrols import parse_submission
from gisgrid.people import validate_person
from gisgrid.units import normalise_units

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


def units_frame(**overrides):
    rows = {"external_id": ["E1", "E2", "E3"], "name": ["化工厂", "小卖部", "网格外加油站"],
            "class": ["规上企业", "个体工商户", "高危小微企业"],
            "lon": [114.505, 114.525, 114.60], "lat": [30.51, 30.51, 30.51]}
    rows.update(overrides)
    return normalise_units(pd.DataFrame(rows))
