"""Feed the demo's synthetic field data through the field code paths, in the order of real life.

checklists → business units (units import path) → people and assignments → day by day: the
daily plans, that day's patrol submissions, that day's patrol coverage → hazards reported and
taken through their workflow steps. Nothing is written to a table directly: each step calls the
function a command or the API would call, so the demo exercises (and proves) those paths.

The loader commits as it goes, as the field would: each stage, and each day's plans before that
day's patrols (marking a task done in the transaction that created it re-runs its foreign-key
checks). Pass a connection with no transaction begun (``engine.connect()``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path

import pandas as pd
import shapely
import sqlalchemy as sa
from tqdm import tqdm

from gisgrid.clock import CHINA_TZ
from gisgrid.db.checklists import load_builtin_checklists
from gisgrid.db.hazards import advance_hazard, record_hazard
from gisgrid.db.patrols import build_plans, record_patrol_coverage, record_patrols
from gisgrid.db.people import record_assignment, write_person
from gisgrid.db.units import write_units
from gisgrid.demo.city import DemoCity
from gisgrid.demo.field import (DemoHazards, DemoPatrols, DemoPeople, build_demo_hazards,
                                build_demo_patrols, build_demo_people, build_demo_units)
from gisgrid.demo.run import DEMO_ACTOR
from gisgrid.hazards.reports import HazardReport
from gisgrid.patrols import parse_submission
from gisgrid.people import validate_person
from gisgrid.units import normalise_units

Step = Callable[[str], None]


def load_field_data(conn: sa.Connection, city: DemoCity, *, start: date | None = None,
                    days: int = 30, photo_dir: Path | None = None,
                    step: Step = lambda _: None) -> dict[str, int]:
    """Generate and store the demo's field data; return counts of what was stored.

    ``start`` defaults to ``days`` days before today, so the month ends yesterday.
    """
    start = start or (datetime.now(CHINA_TZ).date() - timedelta(days=days))
    step("loading the plan's two checklists (附件1, 附件2)")
    load_builtin_checklists(conn, actor=DEMO_ACTOR)
    step("importing business units")
    units = build_demo_units(city, seed=city.seed)
    unit_ids = load_units(conn, units)
    step("registering grid workers and officers")
    people = build_demo_people(city, seed=city.seed)
    person_ids = load_people(conn, people)
    conn.commit()
    step(f"{days} day(s) of daily plans, patrols and patrol coverage from {start}")
    patrols = build_demo_patrols(city, people, start=start, days=days, seed=city.seed)
    patrol_count = load_patrols(conn, patrols, start=start, days=days)
    step("reporting hazards and taking them through the workflow")
    hazards = build_demo_hazards(city, units, seed=city.seed, start=start, days=days,
                                 people=people)
    by_phone = {phone: person_ids[code] for code, phone in
                zip(people.people["person_code"], people.people["phone"]) if isinstance(phone, str)}
    hazard_count, step_count = load_hazards(conn, hazards, unit_ids=unit_ids,
                                            person_ids_by_phone=by_phone, photo_dir=photo_dir)
    return {"units": len(unit_ids), "people": len(person_ids), "patrols": patrol_count,
            "hazards": hazard_count, "hazard_steps": step_count}


def load_units(conn: sa.Connection, units) -> dict[str, int]:
    """Units through the import path; unit ids by external id."""
    normalised = normalise_units(units.drop(columns=["base_code"]))
    written = write_units(conn, normalised, actor=DEMO_ACTOR)
    return dict(zip(normalised["external_id"], written.ids))


def load_people(conn: sa.Connection, people: DemoPeople) -> dict[str, int]:
    """People and their assignments; person ids by the generator's person code."""
    ids = {}
    for row in _records(people.people):
        ids[row["person_code"]] = write_person(conn, validate_person(row), actor=DEMO_ACTOR)
    for row in _records(people.assignments):
        record_assignment(conn, ids[row["person_code"]], row["grid_code"],
                          row["role"], row["valid_from"], row["valid_to"], actor=DEMO_ACTOR)
    return ids


def _records(frame: pd.DataFrame) -> list[dict]:
    """Rows as dicts with missing values (NaN, NA, NaT) as None, as a form would send them."""
    return [{k: (None if _missing(v) else v) for k, v in row.items()}
            for row in frame.to_dict("records")]


def _missing(value) -> bool:
    return not isinstance(value, (list, tuple)) and bool(pd.isna(value))


def load_patrols(conn: sa.Connection, patrols: DemoPatrols, *, start: date, days: int) -> int:
    """Day by day: plans (with carry-over), the day's submissions, the day's coverage.

    A late entry is submitted on the day it was entered, as in the field.
    """
    by_entry_day: dict[date, list] = defaultdict(list)
    for data in patrols.submissions():
        entered = datetime.fromisoformat(data["entered_at"])
        by_entry_day[entered.astimezone(CHINA_TZ).date()].append(
            parse_submission(data, received_at=entered))
    stored = 0
    last = start + timedelta(days=days - 1)
    for offset in tqdm(range(days), desc="patrol days", unit="day", leave=False):
        day = start + timedelta(days=offset)
        build_plans(conn, day)
        conn.commit()
        entries = by_entry_day.pop(day, [])
        if day == last:   # entries dated after the window are submitted on its last day
            entries += [s for late_day in sorted(by_entry_day) for s in by_entry_day[late_day]]
        stored += len(record_patrols(conn, entries))
        record_patrol_coverage(conn, day)
        conn.commit()
    return stored


def load_hazards(conn: sa.Connection, hazards: DemoHazards, *, unit_ids: dict[str, int],
                 person_ids_by_phone: dict[str, int], photo_dir: Path | None = None
                 ) -> tuple[int, int]:
    """Report every hazard, then replay each one's workflow steps in time order."""
    hazard_ids = {}
    frame = hazards.hazards.sort_values("reported_at", kind="stable")
    xy = shapely.get_coordinates(frame.geometry.values)
    for (lon, lat), row in tqdm(zip(xy, _records(frame.drop(columns=frame.geometry.name))),
                                total=len(frame),
                                desc="hazards", unit="report", leave=False):
        unit = row.get("unit_external_id")
        report = HazardReport(
            lon=float(lon), lat=float(lat), category=row["category"],
            description=row["description"], client_uuid=row["client_uuid"],
            reported_at=row["reported_at"], major=bool(row["major"]),
            reporter_id=person_ids_by_phone.get(row.get("reporter")),
            unit_id=unit_ids.get(unit) if unit else None, item_code=row["item_code"])
        actor = row.get("reporter") or DEMO_ACTOR
        hazard_ids[row["client_uuid"]] = record_hazard(conn, report, actor=actor,
                                                       photo_dir=photo_dir).id
    steps = sorted(hazards.steps, key=lambda s: (s.at, s.client_uuid, s.seq))
    for s in tqdm(steps, desc="workflow steps", unit="step", leave=False):
        advance_hazard(conn, hazard_ids[s.client_uuid], s.action, actor=s.actor, note=s.note,
                       at=s.at, role=s.role)
    conn.commit()
    return len(hazard_ids), len(steps)

