"""Storage of field operations: the only SQL for units, people, checklists, patrols and coverage.

Every function takes a SQLAlchemy ``Connection``; the caller owns the transaction. The rules
live in the pure modules :mod:`gisgrid.units`, :mod:`gisgrid.people`,
:mod:`gisgrid.checklists` and :mod:`gisgrid.patrols`; this module reads and writes rows.

Grid chain of units at write time: the units are assigned in bulk with
:mod:`gisgrid.assign` (``GridIndex`` over the current base grids read with
:func:`gisgrid.db.grids.read_grids`), not by a SQL join; a unit outside every base grid is
stored with null grid ids and ``outside_grids = true``, never refused.

Plans, patrols and coverage are written in bulk: :func:`build_plans` makes every plan of a day
in a handful of statements, :func:`record_patrols` records a batch with the rules of
:func:`record_patrol` (which is a batch of one), and large parameter lists travel as one
array literal (:func:`_array`) unnested in SQL.

"Under a grid" means the grid itself and its descendants: ``path = p OR path LIKE 'p.%'``
on the materialised path (LIKE wildcards in ``p`` escaped).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timezone

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import sqlalchemy as sa

from gisgrid.assign import GridIndex, assign_frame, build_grid_index
from gisgrid.checklists import (Checklist, checklist_code_for, edit_checklist,
                                read_builtin_checklists, validate_checklist)
from gisgrid.crs import DEFAULT_SRID
from gisgrid.db.engine import storage_srid
from gisgrid.db.grids import like_prefix, read_grids
from gisgrid.errors import Conflict, GisgridError, InputError, NotFound
from gisgrid.levels import Level
from gisgrid.patrols import (DEFAULT_BUFFER_M, DONE_RESULTS, DailyPlan, ItemResult, OpenTask,
                             PatrolSubmission, build_daily_plan, check_results_against_plan,
                             diff_submissions, measure_patrol_coverage)
from gisgrid.people import (AssignmentRecord, PersonRecord, WorkerFinding, check_assignment,
                            check_base_grid_workers, validate_training)

LONLAT_SRID = DEFAULT_SRID
PLAN_DEFAULT_VALID_FROM = date(2017, 1, 1)
"""``valid_from`` of the plan's own checklists (version 1): the plan dates from 2017."""

_UNDER = "(g.path = :under_path OR g.path LIKE :under_like ESCAPE '\\')"


def begin(settings=None):
    """A transaction on the configured database (``with begin() as conn:``), for commands.

    ``settings`` defaults to :meth:`gisgrid.config.Settings.from_env`.
    """
    from gisgrid.config import Settings
    from gisgrid.db.engine import get_engine

    return get_engine(settings or Settings.from_env()).begin()


# ---------------------------------------------------------------------------- grids

@dataclass(frozen=True)
class GridRow:
    """The few grid fields field operations need."""

    id: int
    code: str
    name: str
    level: int
    kind: str
    parent_id: int | None
    path: str


def read_grid(conn: sa.Connection, code: str, *, field_name: str = "grid") -> GridRow:
    """The current grid with ``code``; :class:`InputError` naming ``field_name`` if none."""
    row = conn.execute(sa.text(
        "SELECT id, code, name, level, kind, parent_id, path FROM grid "
        "WHERE code = :code AND valid_to IS NULL"), {"code": code}).first()
    if row is None:
        raise InputError(f"{field_name}: no current grid with code {code!r}")
    return GridRow(*row)


def read_city(conn: sa.Connection, code: str, *, field_name: str = "city") -> GridRow:
    """The current city (level-1) grid with ``code``; :class:`InputError` naming
    ``field_name`` if there is none or the grid is at another level."""
    city = read_grid(conn, code, field_name=field_name)
    if city.level != Level.CITY:
        raise InputError(f"{field_name}: grid {code} is at level {city.level}, not a city")
    return city


def _under_params(conn: sa.Connection, under: str | None) -> tuple[str, dict]:
    if under is None:
        return "TRUE", {}
    path = read_grid(conn, under, field_name="--under").path
    return _UNDER, {"under_path": path, "under_like": like_prefix(path + ".")}


def _array(values: Iterable) -> str:
    """A PostgreSQL array literal of ``values`` (None is NULL; dates and times in ISO 8601),
    sent as one text parameter and CAST to the array type in SQL: an order of magnitude
    cheaper to send than a list of Python objects (notably bytea and timestamps)."""
    def item(value) -> str:
        if value is None:
            return "NULL"
        if isinstance(value, bool):
            return "t" if value else "f"
        if isinstance(value, int):
            return str(value)
        text = value.isoformat() if isinstance(value, (date, datetime)) else str(value)
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    values = list(values)
    kinds = set(map(type, values))
    if kinds <= {int, type(None)}:  # fast paths of the common columns: ids, and plain words
        return "{" + ",".join(["NULL" if v is None else str(v) for v in values]) + "}"
    if kinds == {str}:
        joined = '","'.join(values)
        if "\\" not in joined and '"' not in joined:
            return '{"' + joined + '"}'
    return "{" + ",".join(map(item, values)) + "}"


def read_base_grids(conn: sa.Connection, *, under: str | None = None,
                    ids: Iterable[int] | None = None) -> list[dict]:
    """Current base grids (under ``under``; with these ``ids``) with the kind of their
    village/community and the id of their city: ``id, code, name, village_kind, city_id``."""
    where, params = _under_params(conn, under)
    if ids is not None:
        where += " AND g.id = ANY(:ids)"
        params["ids"] = list(ids)
    rows = conn.execute(sa.text(f"""
        SELECT g.id, g.code, g.name, v.kind AS village_kind, c.id AS city_id
        FROM grid g
        LEFT JOIN grid v ON v.id = g.parent_id AND v.level = 3
        LEFT JOIN grid t ON t.id = v.parent_id AND t.level = 2
        LEFT JOIN grid c ON c.id = t.parent_id AND c.level = 1
        WHERE g.level = 4 AND g.valid_to IS NULL AND {where}
        ORDER BY g.code
    """), params).mappings().all()
    return [dict(r) for r in rows]


def read_city_of(conn: sa.Connection, grid_id: int) -> int | None:
    """Id of the city (level 1) above ``grid_id`` (itself when it is a city)."""
    return conn.execute(sa.text("""
        WITH RECURSIVE up AS (
            SELECT id, parent_id, level FROM grid WHERE id = :id
            UNION ALL
            SELECT g.id, g.parent_id, g.level FROM grid g JOIN up ON g.id = up.parent_id)
        SELECT id FROM up WHERE level = 1
    """), {"id": grid_id}).scalar_one_or_none()


# ---------------------------------------------------------------------------- checklists

def write_checklist(conn: sa.Connection, checklist: Checklist, *, valid_from: date,
                    owner_grid_id: int | None = None) -> int:
    """Insert ``checklist`` with its items; returns its id. Versions are never overwritten:
    an existing (code, owner, version) is a :class:`Conflict`."""
    exists = conn.execute(sa.text(
        "SELECT id FROM checklist WHERE code = :code AND version = :version "
        "AND owner_grid_id IS NOT DISTINCT FROM :owner"),
        {"code": checklist.code, "version": checklist.version, "owner": owner_grid_id}).first()
    if exists is not None:
        raise Conflict(f"checklist {checklist.code} v{checklist.version} already exists "
                       f"(id {exists[0]}); an edit makes a new version")
    checklist_id = conn.execute(sa.text(
        "INSERT INTO checklist (code, version, owner_grid_id, title_zh, title_en, valid_from) "
        "VALUES (:code, :version, :owner, :title_zh, :title_en, :valid_from) RETURNING id"),
        {"code": checklist.code, "version": checklist.version, "owner": owner_grid_id,
         "title_zh": checklist.title_zh, "title_en": checklist.title_en,
         "valid_from": valid_from}).scalar_one()
    conn.execute(sa.text(
        "INSERT INTO checklist_item (checklist_id, position, item_kind, code, text_zh, text_en, "
        "due_workdays) VALUES (:cid, :position, :item_kind, :code, :text_zh, :text_en, :due)"),
        [{"cid": checklist_id, "position": i.position, "item_kind": i.item_kind, "code": i.code,
          "text_zh": i.text_zh, "text_en": i.text_en, "due": i.due_workdays}
         for i in checklist.items])
    return checklist_id


def load_builtin_checklists(conn: sa.Connection, *,
                            valid_from: date = PLAN_DEFAULT_VALID_FROM) -> dict[str, int]:
    """Store the plan's two lists (version 1, no owner) unless already there; ids by code.

    Loading twice is harmless; a stored version 1 that differs from the shipped one is a
    :class:`Conflict` (versions are never overwritten).
    """
    ids = {}
    for code, checklist in read_builtin_checklists().items():
        row = conn.execute(sa.text(
            "SELECT id FROM checklist WHERE code = :code AND version = :v "
            "AND owner_grid_id IS NULL"), {"code": code, "v": checklist.version}).first()
        if row is None:
            ids[code] = write_checklist(conn, checklist, valid_from=valid_from)
            continue
        stored, _ = read_checklist(conn, row[0])
        if stored != checklist:
            raise Conflict(f"checklist {code} v{checklist.version} is stored with other "
                           "content than the plan's; edit it as a new version instead")
        ids[code] = row[0]
    return ids


def read_checklist(conn: sa.Connection, checklist_id: int) -> tuple[Checklist, dict[str, int]]:
    """The checklist ``checklist_id`` and its item ids by item code."""
    head = conn.execute(sa.text(
        "SELECT code, version, title_zh, title_en FROM checklist WHERE id = :id"),
        {"id": checklist_id}).mappings().first()
    if head is None:
        raise NotFound(f"checklist {checklist_id}: no such checklist")
    items = conn.execute(sa.text(
        "SELECT id, position, code, item_kind, text_zh, text_en, due_workdays "
        "FROM checklist_item WHERE checklist_id = :id ORDER BY position"),
        {"id": checklist_id}).mappings().all()
    checklist = validate_checklist({**head, "items": [
        {k: v for k, v in item.items() if k != "id"} for item in items]},
        where=f"stored checklist {checklist_id}")
    return checklist, {item["code"]: item["id"] for item in items}


def find_checklist(conn: sa.Connection, code: str, *, city_id: int | None = None,
                   day: date | None = None) -> int:
    """Id of the checklist ``code`` in force for a city on ``day``.

    The city's own newest version valid on ``day`` wins; else the plan's newest (no owner).
    Raises :class:`NotFound` when none is loaded (run ``gisgrid checklists load``) or none is
    in force yet on ``day``.
    """
    row = conn.execute(sa.text("""
        SELECT id FROM checklist
        WHERE code = :code AND (owner_grid_id = :city OR owner_grid_id IS NULL)
          AND valid_from <= :day
        ORDER BY owner_grid_id IS NULL, version DESC LIMIT 1
    """), {"code": code, "city": city_id, "day": day or date.max}).first()
    if row is None:
        first = conn.execute(sa.text(
            "SELECT min(valid_from) FROM checklist WHERE code = :code "
            "AND (owner_grid_id = :city OR owner_grid_id IS NULL)"),
            {"code": code, "city": city_id}).scalar_one()
        if first is None:
            raise NotFound(f"no {code} checklist is stored: load the plan's lists first "
                           "(gisgrid checklists load)")
        raise NotFound(f"no {code} checklist in force on {day}: the first is in force from "
                       f"{first}")
    return row[0]


def record_checklist_edit(conn: sa.Connection, code: str, *, city_code: str,
                          valid_from: date, changes: Mapping[str, Mapping] | None = None,
                          remove: Iterable[str] = (), add: Iterable[Mapping] = ()
                          ) -> tuple[int, Checklist]:
    """A city's edit of its ``code`` list: a new version owned by the city, from ``valid_from``.

    The edit starts from the list the city uses on ``valid_from``; the new version number is
    one above every version of that code the city or the plan has. Edits of one city take
    turns (its grid row is locked), so concurrent edits get consecutive versions.
    """
    city = read_city(conn, city_code, field_name="--city")
    conn.execute(sa.text("SELECT id FROM grid WHERE id = :id FOR UPDATE"), {"id": city.id})
    current, _ = read_checklist(conn, find_checklist(conn, code, city_id=city.id,
                                                     day=valid_from))
    top = conn.execute(sa.text(
        "SELECT max(version) FROM checklist WHERE code = :code "
        "AND (owner_grid_id = :city OR owner_grid_id IS NULL)"),
        {"code": code, "city": city.id}).scalar_one()
    edited = edit_checklist(current, changes=changes, remove=remove, add=add,
                            next_version=top + 1)
    return write_checklist(conn, edited, valid_from=valid_from, owner_grid_id=city.id), edited


def read_checklist_versions(conn: sa.Connection, code: str | None = None) -> list[dict]:
    """Every stored checklist version: id, code, version, owner code, valid_from, item count."""
    rows = conn.execute(sa.text("""
        SELECT c.id, c.code, c.version, g.code AS owner, c.valid_from, count(i.id) AS items
        FROM checklist c LEFT JOIN grid g ON g.id = c.owner_grid_id
        LEFT JOIN checklist_item i ON i.checklist_id = c.id
        WHERE CAST(:code AS text) IS NULL OR c.code = :code
        GROUP BY c.id, g.code ORDER BY c.code, c.version
    """), {"code": code}).mappings().all()
    return [dict(r) for r in rows]


# ---------------------------------------------------------------------------- units

@dataclass(frozen=True)
class UnitsWritten:
    """What :func:`write_units` did."""

    inserted: int
    updated: int
    outside: int
    ids: tuple[int, ...] = ()


def read_grid_index(conn: sa.Connection) -> GridIndex | None:
    """A :class:`GridIndex` of the current base grids, or None when there are none."""
    grids = read_grids(conn)
    if not (grids["level"] == Level.BASE).any():
        return None
    return build_grid_index(grids)


def write_units(conn: sa.Connection, units: gpd.GeoDataFrame) -> UnitsWritten:
    """Store normalised units (:func:`gisgrid.units.normalise_units`) with their grid chain.

    A unit whose ``external_id`` is already stored updates that row (a re-import of a ledger);
    others are inserted. Units outside every current base grid are stored with
    ``outside_grids = true``.
    """
    if units.crs is None or units.crs.to_epsg() != LONLAT_SRID:
        raise InputError("units must be normalised to CGCS2000 longitude/latitude first")
    srid = storage_srid(conn)
    index = read_grid_index(conn)
    points = units.geometry.to_crs(srid) if srid != LONLAT_SRID else units.geometry
    if index is None:
        chain = pd.DataFrame({c: pd.array([None] * len(units), dtype="Int64") for c in
                              ("base_grid_id", "village_grid_id", "township_grid_id",
                               "city_grid_id")}, index=units.index)
        chain["outside_grids"] = True
    else:
        chain = assign_frame(index, gpd.GeoDataFrame(geometry=points.values, crs=srid,
                                                     index=units.index))
    inserted = updated = 0
    ids = []
    geom = f"ST_Transform(ST_SetSRID(ST_GeomFromWKB(:wkb), {LONLAT_SRID}), :srid)"
    # one statement per unit: a ledger re-imported concurrently updates, never collides
    # (xmax = 0 only on a row this statement inserted)
    upsert = sa.text(f"""
        INSERT INTO unit (external_id, name, address, unit_class, fire_key_unit,
            high_risk, management, geom, base_grid_id, village_grid_id,
            township_grid_id, city_grid_id, outside_grids)
        VALUES (:external_id, :name, :address, :unit_class, :fire_key_unit, :high_risk,
            :management, {geom}, :base_grid_id, :village_grid_id, :township_grid_id,
            :city_grid_id, :outside)
        ON CONFLICT (external_id) DO UPDATE SET name = EXCLUDED.name,
            address = EXCLUDED.address, unit_class = EXCLUDED.unit_class,
            fire_key_unit = EXCLUDED.fire_key_unit, high_risk = EXCLUDED.high_risk,
            management = EXCLUDED.management, geom = EXCLUDED.geom,
            base_grid_id = EXCLUDED.base_grid_id, village_grid_id = EXCLUDED.village_grid_id,
            township_grid_id = EXCLUDED.township_grid_id,
            city_grid_id = EXCLUDED.city_grid_id, outside_grids = EXCLUDED.outside_grids
        RETURNING id, xmax = 0""")
    records = units.drop(columns=units.geometry.name).to_dict("records")
    wkbs = shapely.to_wkb(units.geometry.values)
    for unit, wkb, grids in zip(records, wkbs, chain.to_dict("records")):
        params = {
            "external_id": unit["external_id"], "name": unit["name"],
            "address": unit["address"], "unit_class": unit["unit_class"],
            "fire_key_unit": bool(unit["fire_key_unit"]), "high_risk": bool(unit["high_risk"]),
            "management": unit["management"], "wkb": wkb,
            "srid": srid, "outside": bool(grids["outside_grids"]),
            **{c: (None if pd.isna(grids[c]) else int(grids[c])) for c in
               ("base_grid_id", "village_grid_id", "township_grid_id", "city_grid_id")},
        }
        unit_id, was_inserted = conn.execute(upsert, params).one()
        ids.append(unit_id)
        inserted += bool(was_inserted)
        updated += not was_inserted
    return UnitsWritten(inserted, updated, int(chain["outside_grids"].sum()), tuple(ids))


def read_units(conn: sa.Connection, *, under: str | None = None,
               outside_only: bool = False) -> gpd.GeoDataFrame:
    """Stored units (those whose base grid is under ``under``; or only those outside every
    grid), with the code of their base grid, as a GeoDataFrame in CGCS2000 lon/lat."""
    where, params = _under_params(conn, under)
    if under is not None:
        where = f"u.base_grid_id IN (SELECT g.id FROM grid g WHERE {where})"
    if outside_only:
        where += " AND u.outside_grids"
    rows = conn.execute(sa.text(f"""
        SELECT u.id, u.external_id, u.name, u.address, u.unit_class, u.fire_key_unit,
               u.high_risk, u.management, b.code AS base_grid_code, u.base_grid_id,
               u.village_grid_id, u.township_grid_id, u.city_grid_id, u.outside_grids,
               ST_AsBinary(ST_Transform(u.geom, {LONLAT_SRID})) AS wkb
        FROM unit u LEFT JOIN grid b ON b.id = u.base_grid_id
        WHERE {where} ORDER BY u.id"""), params).mappings().all()
    frame = pd.DataFrame([{k: v for k, v in r.items() if k != "wkb"} for r in rows])
    geoms = shapely.from_wkb([bytes(r["wkb"]) for r in rows]) if rows else []
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, crs=LONLAT_SRID).values,
                            crs=LONLAT_SRID)


# ---------------------------------------------------------------------------- people

def write_person(conn: sa.Connection, person: PersonRecord) -> int:
    """Insert a checked person (:func:`gisgrid.people.validate_person`); returns the id.

    A phone already used by another active person is a :class:`Conflict` (phones identify
    workers in patrol submissions). Writers of the same phone take turns (a transaction-level
    advisory lock on the phone), so two concurrent additions cannot both pass the check.
    """
    if person.phone is not None:
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
                     {"key": f"gisgrid person phone {person.phone}"})
        other = conn.execute(sa.text(
            "SELECT id FROM person WHERE phone = :phone AND active"),
            {"phone": person.phone}).scalar_one_or_none()
        if other is not None:
            raise Conflict(f"phone {person.phone} already belongs to person {other}")
    return conn.execute(sa.text(
        "INSERT INTO person (name, phone, id_number, kind, employment, active) "
        "VALUES (:name, :phone, :id_number, :kind, :employment, :active) RETURNING id"),
        {"name": person.name, "phone": person.phone, "id_number": person.id_number,
         "kind": person.kind, "employment": person.employment,
         "active": person.active}).scalar_one()


def _worker_key(worker: int | str) -> tuple[bool, int | str]:
    """(by id, value): an int or digits shorter than a phone number is a person id."""
    by_id = isinstance(worker, int) or (isinstance(worker, str) and worker.isdigit()
                                        and len(worker) < 11)
    return by_id, int(worker) if by_id else str(worker)


def _read_workers(conn: sa.Connection, workers: Iterable[int | str]
                  ) -> dict[tuple[bool, int | str], PersonRecord]:
    """People by :func:`_worker_key` of each of ``workers`` (ids, or phones of active people);
    a worker with no person is absent."""
    keys = {_worker_key(w) for w in workers}
    ids = [v for by_id, v in keys if by_id]
    phones = [v for by_id, v in keys if not by_id]
    columns = "id, name, kind, phone, id_number, employment, active"
    found = {}
    if ids:
        for row in conn.execute(sa.text(f"SELECT {columns} FROM person WHERE id = ANY(:w)"),
                                {"w": ids}).mappings():
            found[(True, row["id"])] = PersonRecord(**row)
    if phones:
        for row in conn.execute(sa.text(
                f"SELECT DISTINCT ON (phone) {columns} FROM person "
                "WHERE phone = ANY(:w) AND active ORDER BY phone, id"), {"w": phones}).mappings():
            found[(False, row["phone"])] = PersonRecord(**row)
    return found


def _no_person(field_name: str, worker: int | str) -> InputError:
    by_id, _ = _worker_key(worker)
    return InputError(f"{field_name}: no person with {'id' if by_id else 'phone'} {worker!r}")


def read_person(conn: sa.Connection, worker: int | str, *,
                field_name: str = "worker") -> PersonRecord:
    """The person with id ``worker`` (an int or digits) or with phone ``worker``.

    :class:`InputError` naming ``field_name`` when there is none.
    """
    person = _read_workers(conn, [worker]).get(_worker_key(worker))
    if person is None:
        raise _no_person(field_name, worker)
    return person


def read_assignments(conn: sa.Connection, *, grid_id: int | None = None,
                     person_id: int | None = None) -> list[AssignmentRecord]:
    """Assignments of a grid and/or a person (all when both are None)."""
    rows = conn.execute(sa.text(
        "SELECT person_id, grid_id, role, valid_from, valid_to, id FROM assignment "
        "WHERE (CAST(:g AS bigint) IS NULL OR grid_id = :g) "
        "AND (CAST(:p AS bigint) IS NULL OR person_id = :p) ORDER BY id"),
        {"g": grid_id, "p": person_id}).all()
    return [AssignmentRecord(*r) for r in rows]


def record_assignment(conn: sa.Connection, person_id: int, grid_code: str, role: str,
                      valid_from: date, valid_to: date | None = None
                      ) -> tuple[int, list[str]]:
    """Assign a person to a grid (rules: :func:`gisgrid.people.check_assignment`).

    Returns the new assignment id and warnings (e.g. a second grid worker on the grid).
    """
    person = read_person(conn, person_id, field_name="person")
    grid = read_grid(conn, grid_code)
    conn.execute(sa.text("SELECT id FROM grid WHERE id = :id FOR UPDATE"), {"id": grid.id})
    new = AssignmentRecord(person.id, grid.id, role, valid_from, valid_to)
    warnings = check_assignment(new, grid_level=grid.level, person=person,
                                existing=read_assignments(conn, grid_id=grid.id),
                                grid_code=grid.code)
    assignment_id = conn.execute(sa.text(
        "INSERT INTO assignment (person_id, grid_id, role, valid_from, valid_to) "
        "VALUES (:p, :g, :role, :f, :t) RETURNING id"),
        {"p": person.id, "g": grid.id, "role": role, "f": valid_from,
         "t": valid_to}).scalar_one()
    return assignment_id, warnings


def record_training(conn: sa.Connection, person_id: int, course: str, held_on, hours=None
                    ) -> int:
    """Record a training course a person attended; returns the row id."""
    person = read_person(conn, person_id, field_name="person")
    course, held_on, hours = validate_training(course, held_on, hours)
    return conn.execute(sa.text(
        "INSERT INTO training (person_id, course, held_on, hours) "
        "VALUES (:p, :c, :d, :h) RETURNING id"),
        {"p": person.id, "c": course, "d": held_on, "h": hours}).scalar_one()


def read_people(conn: sa.Connection, *, day: date | None = None,
                under: str | None = None) -> list[dict]:
    """People with their assignments in force on ``day`` (all days when None) and training
    hours; ``under`` keeps people assigned to a grid under that code."""
    where, params = _under_params(conn, under)
    rows = conn.execute(sa.text(f"""
        SELECT p.id, p.name, p.phone, p.kind, p.employment, p.active,
               coalesce(string_agg(DISTINCT g.code || ':' || a.role, ' '), '') AS grids,
               (SELECT coalesce(sum(t.hours), 0) FROM training t WHERE t.person_id = p.id)
                   AS training_hours
        FROM person p
        LEFT JOIN assignment a ON a.person_id = p.id
             AND (CAST(:day AS date) IS NULL OR (a.valid_from <= :day
                  AND (a.valid_to IS NULL OR a.valid_to >= :day)))
        LEFT JOIN grid g ON g.id = a.grid_id
        GROUP BY p.id
        HAVING CAST(:all_people AS boolean) OR bool_or({where})
        ORDER BY p.id"""), {**params, "day": day, "all_people": under is None}).mappings()
    return [dict(r) for r in rows]


def check_staffing(conn: sa.Connection, day: date, *,
                   under: str | None = None) -> list[WorkerFinding]:
    """Base grids (under ``under``) without exactly one grid worker on ``day``."""
    base_ids = [g["id"] for g in read_base_grids(conn, under=under)]
    return check_base_grid_workers(base_ids, read_assignments(conn), day)


# ---------------------------------------------------------------------------- plans

@dataclass(frozen=True)
class PlanOutcome:
    """Plans made for a day: created, already there, and tasks carried over."""

    day: date
    created: tuple[str, ...] = ()
    existing: tuple[str, ...] = ()
    carried_tasks: int = 0
    skipped: tuple[str, ...] = field(default=())


def _open_tasks(conn: sa.Connection, grid_ids: list[int], day: date
                ) -> dict[int, list[OpenTask]]:
    """Tasks still open on plans before ``day`` of each of ``grid_ids``, by grid id."""
    rows = conn.execute(sa.text("""
        SELECT p.grid_id, i.code, t.first_planned_on, t.id, t.item_id
        FROM patrol_task t JOIN patrol_plan p ON p.id = t.plan_id
        JOIN checklist_item i ON i.id = t.item_id
        WHERE t.status = 'open' AND p.grid_id = ANY(:g) AND p.day < :day
        ORDER BY t.id
    """), {"g": grid_ids, "day": day}).all()
    found: dict[int, list[OpenTask]] = {}
    for grid_id, code, first, task_id, item_id in rows:
        found.setdefault(grid_id, []).append(OpenTask(code, first, task_id, item_id))
    return found


def _checklist_for(conn: sa.Connection, grid: Mapping, day: date, cache: dict
                   ) -> tuple[int, Checklist, dict[str, int]]:
    """The checklist (id, list, item ids by code) in force for base grid ``grid`` on ``day``."""
    key = (checklist_code_for(grid["village_kind"]), grid["city_id"], day)
    if key not in cache:
        checklist_id = find_checklist(conn, key[0], city_id=key[1], day=day)
        cache[key] = (checklist_id, *read_checklist(conn, checklist_id))
    return cache[key]


def _write_plans(conn: sa.Connection, day: date, grids: Iterable[Mapping], *,
                 checklists: dict | None = None) -> tuple[dict[int, int], dict[int, DailyPlan]]:
    """Make the plans of base grids ``grids`` (:func:`read_base_grids` rows) for ``day`` in bulk.

    Returns the plan id of every grid, and the :class:`DailyPlan` of those whose plan was made
    now (both by grid id). The rules are :func:`gisgrid.patrols.build_daily_plan`'s; the grids
    are locked (``FOR UPDATE``, in id order) so that concurrent planners of a grid serialise.
    A statement reads the open tasks of all grids, three write plans, tasks and the
    superseded tasks' status.
    """
    by_id = {g["id"]: g for g in grids}
    if not by_id:
        return {}, {}
    ids = sorted(by_id)
    conn.execute(sa.text("SELECT id FROM grid WHERE id = ANY(:ids) ORDER BY id FOR UPDATE"),
                 {"ids": ids})
    plan_ids = dict(conn.execute(sa.text(
        "SELECT grid_id, id FROM patrol_plan WHERE day = :d AND grid_id = ANY(:ids)"),
        {"d": day, "ids": ids}).all())
    todo = [by_id[i] for i in ids if i not in plan_ids]
    if not todo:
        return plan_ids, {}
    no_list = [g["code"] for g in todo if g["village_kind"] is None]
    if no_list:
        raise InputError(f"{len(no_list)} base grid(s) have no village/community parent, so no "
                         "checklist", [f"grid {c}: no village/community parent" for c in no_list])
    cache = {} if checklists is None else checklists
    open_tasks = _open_tasks(conn, [g["id"] for g in todo], day)
    plans, item_ids, checklist_ids = {}, {}, {}
    for grid in todo:
        checklist_id, checklist, items = _checklist_for(conn, grid, day, cache)
        plans[grid["id"]] = build_daily_plan(grid["code"], day, checklist,
                                             open_tasks.get(grid["id"], ()))
        item_ids[grid["id"]], checklist_ids[grid["id"]] = items, checklist_id
    made = dict(conn.execute(sa.text("""
        INSERT INTO patrol_plan (grid_id, day, checklist_id)
        SELECT g, :d, c FROM unnest(CAST(:g AS bigint[]), CAST(:c AS bigint[])) AS u(g, c)
        RETURNING grid_id, id"""),
        {"d": day, "g": _array(plans), "c": _array(checklist_ids[g] for g in plans)}).all())
    plan_ids.update(made)
    rows = [(made[g], t.item_id or item_ids[g][t.item_code], t.carried_from_id,
             t.first_planned_on) for g, plan in plans.items() for t in plan.tasks]
    plan_col, item_col, carried_col, first_col = zip(*rows)
    conn.execute(sa.text("""
        INSERT INTO patrol_task (plan_id, item_id, carried_from_id, first_planned_on, status)
        SELECT p, i, c, f, 'open' FROM unnest(CAST(:p AS bigint[]), CAST(:i AS bigint[]),
            CAST(:c AS bigint[]), CAST(:f AS date[])) WITH ORDINALITY AS u(p, i, c, f, n)
        ORDER BY n"""), {"p": _array(plan_col), "i": _array(item_col),
                         "c": _array(carried_col), "f": _array(first_col)})
    # every task still open on an earlier day now lives on in the new plan (an item open on
    # several days is carried once, from its oldest task; the others are superseded)
    superseded = [t.task_id for tasks in open_tasks.values() for t in tasks]
    if superseded:
        conn.execute(sa.text(
            "UPDATE patrol_task SET status = 'carried_over' "
            "WHERE id = ANY(CAST(:ids AS bigint[]))"), {"ids": _array(superseded)})
    return plan_ids, plans


def ensure_plan(conn: sa.Connection, grid: Mapping, day: date, *,
                checklists: dict | None = None) -> tuple[int, DailyPlan | None]:
    """The plan id of base grid ``grid`` (a :func:`read_base_grids` row) for ``day``, building
    and storing it when missing (then the :class:`DailyPlan` is returned too, else None).

    ``checklists`` is an optional cache of checklists read in this transaction, shared across
    calls.
    """
    if grid["village_kind"] is None:
        raise InputError(f"grid {grid['code']}: no village/community parent, so no checklist")
    plan_ids, made = _write_plans(conn, day, [grid], checklists=checklists)
    return plan_ids[grid["id"]], made.get(grid["id"])


def build_plans(conn: sa.Connection, day: date, *, under: str | None = None) -> PlanOutcome:
    """Make the plan of every current base grid (under ``under``) for ``day``.

    Idempotent: a grid that already has its plan for ``day`` is left alone. Items not done on
    earlier plans are carried into the new plan with their first-planned day. Base grids with
    no village/community parent have no checklist and are listed as skipped.

    Set-based: a handful of statements for all grids of the day, whatever their number.
    """
    grids = read_base_grids(conn, under=under)
    skipped = tuple(g["code"] for g in grids if g["village_kind"] is None)
    planned = [g for g in grids if g["village_kind"] is not None]
    _, made = _write_plans(conn, day, planned)
    created = tuple(g["code"] for g in planned if g["id"] in made)
    existing = tuple(g["code"] for g in planned if g["id"] not in made)
    carried = sum(plan.carried_count for plan in made.values())
    return PlanOutcome(day, created, existing, carried, skipped)


def read_plan_tasks(conn: sa.Connection, grid_code: str, day: date) -> list[dict]:
    """Tasks of a grid's plan for ``day``: item code, kind, texts, first planned, age, status."""
    rows = conn.execute(sa.text("""
        SELECT i.code AS item_code, i.item_kind, i.text_zh, i.text_en, t.first_planned_on,
               (p.day - t.first_planned_on) AS age_days, t.status, t.id AS task_id,
               t.carried_from_id
        FROM patrol_plan p JOIN grid g ON g.id = p.grid_id
        JOIN patrol_task t ON t.plan_id = p.id JOIN checklist_item i ON i.id = t.item_id
        WHERE g.code = :code AND g.valid_to IS NULL AND p.day = :day
        ORDER BY t.first_planned_on, i.position, i.code
    """), {"code": grid_code, "day": day}).mappings().all()
    return [dict(r) for r in rows]


def read_plans(conn: sa.Connection, day: date, *, under: str | None = None) -> list[dict]:
    """One row per plan of ``day``: grid, checklist, task counts by status, oldest open age."""
    where, params = _under_params(conn, under)
    rows = conn.execute(sa.text(f"""
        SELECT g.code AS grid_code, c.code AS checklist, c.version,
               count(*) AS tasks,
               count(*) FILTER (WHERE t.status = 'done') AS done,
               count(*) FILTER (WHERE t.status = 'open') AS open,
               count(*) FILTER (WHERE t.first_planned_on < p.day) AS carried_in,
               max(p.day - t.first_planned_on) AS max_age_days
        FROM patrol_plan p JOIN grid g ON g.id = p.grid_id
        JOIN checklist c ON c.id = p.checklist_id JOIN patrol_task t ON t.plan_id = p.id
        WHERE p.day = :day AND {where}
        GROUP BY g.code, c.code, c.version ORDER BY g.code"""),
        {**params, "day": day}).mappings().all()
    return [dict(r) for r in rows]


# ---------------------------------------------------------------------------- patrols

@dataclass(frozen=True)
class PatrolOutcome:
    """What :func:`record_patrol` did: the patrol id, whether it is new, lateness, warnings."""

    patrol_id: int
    created: bool
    late: bool
    plan_id: int | None
    warnings: tuple[str, ...] = ()


def _stored_submissions(conn: sa.Connection, client_uuids: Iterable[uuid.UUID]
                        ) -> dict[uuid.UUID, tuple[int, bool, PatrolSubmission]]:
    """The stored patrols with these client UUIDs: (id, late, submission) by UUID."""
    uuids = list(set(client_uuids))
    if not uuids:
        return {}
    rows = conn.execute(sa.text(f"""
        SELECT pa.client_uuid, pa.id, pa.late, g.code, pa.person_id, pa.day, pa.started_at,
               pa.ended_at, pa.entered_at,
               ST_AsBinary(ST_Transform(pa.track, {LONLAT_SRID})) AS track
        FROM patrol pa LEFT JOIN grid g ON g.id = pa.grid_id
        WHERE pa.client_uuid = ANY(:u)"""), {"u": uuids}).all()
    if not rows:
        return {}
    results: dict[int, list[ItemResult]] = {}
    for patrol_id, code, result, note in conn.execute(sa.text("""
            SELECT r.patrol_id, i.code, r.result, r.note FROM patrol_item_result r
            JOIN checklist_item i ON i.id = r.item_id
            WHERE r.patrol_id = ANY(:ids) AND (r.result <> 'not_checked' OR r.note IS NOT NULL)
            ORDER BY r.patrol_id, i.code"""), {"ids": [r.id for r in rows]}):
        results.setdefault(patrol_id, []).append(ItemResult(code, result, note))
    return {row.client_uuid: (row.id, row.late, PatrolSubmission(
        row.client_uuid, row.code, row.person_id, row.day, row.started_at, row.ended_at,
        row.entered_at, tuple(results.get(row.id, ())),
        shapely.from_wkb(bytes(row.track)) if row.track is not None else None))
        for row in rows}


def record_patrol(conn: sa.Connection, submission: PatrolSubmission) -> PatrolOutcome:
    """Store one patrol submission and mark its plan's tasks done.

    - Idempotent on ``client_uuid``: the same content again returns the stored patrol
      (``created=False``); other content under the same UUID is a :class:`Conflict` naming
      the fields that differ.
    - The grid must be a current base grid and the worker a known person (id or phone), else
      :class:`InputError` naming the field.
    - The day's plan is made on the fly if missing (with carry-over). Results must name tasks of
      that plan; a task not reported is recorded ``not_checked`` and stays open (carried over).
    - A task done late, after it was carried to a later plan, closes the carried task too.

    The same code path as :func:`record_patrols` with a batch of one; a refused submission
    leaves nothing behind (not even the plan made on the fly).
    """
    outcome = _record_patrols(conn, [submission])[0]
    if isinstance(outcome, GisgridError):
        raise outcome
    return outcome


def record_patrols(conn: sa.Connection, submissions: Sequence[PatrolSubmission]
                   ) -> list[PatrolOutcome]:
    """Store many patrol submissions in bulk, with exactly the rules of :func:`record_patrol`.

    The outcomes are those of recording the submissions one by one in the given order
    (carry-over, late flags, idempotency on ``client_uuid`` against the database and within
    the batch, closing of carried tasks), but plans, patrols, item results and task updates
    are written a few statements at a time. The batch is split only where order matters: a
    plan to be made on the fly for a grid that an earlier submission of the batch touched.

    All or nothing: when any submission is refused nothing of the batch is written, and one
    error lists every refused submission by position and UUID (:class:`Conflict` when every
    refusal is a conflict, else :class:`InputError`).
    """
    outcomes = _record_patrols(conn, list(submissions))
    refused = [(n, o) for n, o in enumerate(outcomes) if isinstance(o, GisgridError)]
    if not refused:
        return outcomes
    details = []
    for n, error in refused:
        where = f"submission {n} ({submissions[n].client_uuid})"
        details.append(f"{where}: {error.message}")
        details.extend(f"{where}: {d}" for d in error.details)
    kind = Conflict if all(isinstance(e, Conflict) for _, e in refused) else InputError
    raise kind(f"{len(refused)} of {len(outcomes)} patrol submission(s) refused; none of the "
               "batch was recorded", details)


@dataclass
class _Fresh:
    """A submission to be written: normalised (worker = person id), its base grid and plan."""

    index: int
    submission: PatrolSubmission
    grid: Mapping
    person: PersonRecord
    plan_id: int | None = None


def _record_patrols(conn: sa.Connection, subs: list[PatrolSubmission]
                    ) -> list[PatrolOutcome | GisgridError]:
    """The outcome or the refusal of every submission; refusals roll back the whole batch."""
    out: list = [None] * len(subs)
    if not subs:
        return out
    people = _read_workers(conn, [s.worker for s in subs])
    stored = _stored_submissions(conn, [s.client_uuid for s in subs])
    grids, base = _read_patrol_grids(conn, {s.grid_code for s in subs})
    normalised: list[PatrolSubmission | None] = [None] * len(subs)
    first_of: dict[uuid.UUID, int] = {}
    fresh: list[_Fresh] = []
    for n, sub in enumerate(subs):
        person = people.get(_worker_key(sub.worker))
        if person is None:
            out[n] = _no_person("worker", sub.worker)
            continue
        normalised[n] = new = _with_worker(sub, person.id)
        if sub.client_uuid in stored:
            out[n] = _same_or_conflict(stored[sub.client_uuid], new)
            continue
        if sub.client_uuid in first_of:
            continue  # compared with the first of the batch once that one is written
        first_of[sub.client_uuid] = n
        grid = grids.get(sub.grid_code)
        if grid is None:
            out[n] = InputError(f"grid_code: no current grid with code {sub.grid_code!r}")
        elif grid.level != Level.BASE:
            out[n] = InputError(f"grid_code: {grid.code} is a level-{grid.level} grid; patrols "
                                "are planned per base grid (level 4)")
        else:
            fresh.append(_Fresh(n, new, base[grid.id], person))
    savepoint = conn.begin_nested()
    try:
        _write_patrols(conn, fresh, out)
        for n, sub in enumerate(normalised):
            if sub is not None and out[n] is None:
                out[n] = _same_as_first(out[first_of[sub.client_uuid]],
                                        normalised[first_of[sub.client_uuid]], sub)
    except BaseException:
        savepoint.rollback()
        raise
    if any(isinstance(o, GisgridError) for o in out):
        savepoint.rollback()
    else:
        savepoint.commit()
    return out


def _read_patrol_grids(conn: sa.Connection, codes: Iterable[str]
                       ) -> tuple[dict[str, GridRow], dict[int, dict]]:
    """Current grids by code, and the :func:`read_base_grids` rows of the base ones by id."""
    grids = {row[1]: GridRow(*row) for row in conn.execute(sa.text(
        "SELECT id, code, name, level, kind, parent_id, path FROM grid "
        "WHERE code = ANY(:codes) AND valid_to IS NULL"), {"codes": list(codes)})}
    base_ids = [g.id for g in grids.values() if g.level == Level.BASE]
    base = {g["id"]: g for g in read_base_grids(conn, ids=base_ids)} if base_ids else {}
    return grids, base


def _split_runs(fresh: list[_Fresh], planned: set[tuple[int, date]]) -> list[list[_Fresh]]:
    """Cut the batch where recording one by one would see an earlier submission's effect.

    Making a plan reads the grid's open tasks, which earlier patrols of the same grid change:
    a run ends before a submission that needs a new plan for a grid already in the run.
    ``planned`` holds the (grid id, day) whose plan exists; it is updated.
    """
    runs: list[list[_Fresh]] = [[]]
    grids_in_run: set[int] = set()
    for item in fresh:
        key = (item.grid["id"], item.submission.day)
        if key not in planned:
            if key[0] in grids_in_run:
                runs.append([])
                grids_in_run = set()
            planned.add(key)
        runs[-1].append(item)
        grids_in_run.add(key[0])
    return [run for run in runs if run]


def _write_patrols(conn: sa.Connection, fresh: list[_Fresh], out: list) -> None:
    """Write the new submissions run by run; outcomes and refusals go to ``out``."""
    if not fresh:
        return
    pairs = {(f.grid["id"], f.submission.day) for f in fresh}
    grid_col, day_col = (list(c) for c in zip(*pairs))
    plan_of = {(g, d): p for g, d, p in conn.execute(sa.text("""
        SELECT p.grid_id, p.day, p.id FROM patrol_plan p
        JOIN unnest(CAST(:g AS bigint[]), CAST(:d AS date[])) AS u(g, d)
          ON p.grid_id = u.g AND p.day = u.d"""), {"g": grid_col, "d": day_col})}
    assignments = _read_assignments_of(conn, {f.person.id for f in fresh})
    checklists: dict = {}
    for run in _split_runs(fresh, set(plan_of)):
        to_make: dict[date, dict[int, Mapping]] = {}
        for f in run:
            if (f.grid["id"], f.submission.day) in plan_of:
                continue
            if f.grid["village_kind"] is None:
                out[f.index] = InputError(f"grid {f.grid['code']}: no village/community "
                                          "parent, so no checklist")
            else:
                to_make.setdefault(f.submission.day, {})[f.grid["id"]] = f.grid
        for day, rows in to_make.items():
            made, _ = _write_plans(conn, day, rows.values(), checklists=checklists)
            plan_of.update({(g, day): p for g, p in made.items()})
        writable = []
        for f in run:
            f.plan_id = plan_of.get((f.grid["id"], f.submission.day))
            if f.plan_id is not None:
                writable.append(f)
        tasks = _read_tasks(conn, {f.plan_id for f in writable})
        checked = []
        for f in writable:
            try:
                check_results_against_plan(f.submission.results,
                                           [code for _, _, code in tasks[f.plan_id]])
            except InputError as error:
                out[f.index] = error
                continue
            checked.append(f)
        _insert_patrols(conn, checked, tasks, out)
        for f in checked:
            outcome = out[f.index]
            if isinstance(outcome, PatrolOutcome) and outcome.created:
                out[f.index] = replace(outcome, warnings=_worker_warnings(
                    assignments, f.person, f.grid, f.submission.day))


def _read_tasks(conn: sa.Connection, plan_ids: Iterable[int]
                ) -> dict[int, list[tuple[int, int, str]]]:
    """(task id, item id, item code) of each plan, in checklist order, by plan id."""
    rows = conn.execute(sa.text("""
        SELECT t.plan_id, array_agg(t.id ORDER BY i.position, t.id),
               array_agg(t.item_id ORDER BY i.position, t.id),
               array_agg(i.code ORDER BY i.position, t.id)
        FROM patrol_task t JOIN checklist_item i ON i.id = t.item_id
        WHERE t.plan_id = ANY(CAST(:p AS bigint[])) GROUP BY t.plan_id"""),
        {"p": _array(plan_ids)}).all()
    return {plan_id: list(zip(ids, items, codes)) for plan_id, ids, items, codes in rows}


def _insert_patrols(conn: sa.Connection, checked: list[_Fresh],
                    tasks: Mapping[int, list[tuple[int, int, str]]], out: list) -> None:
    """Insert patrols, their item results and the done tasks (with the tasks they were
    carried into) in three statements; a UUID stored concurrently is compared instead."""
    if not checked:
        return
    srid = storage_srid(conn)
    subs = [f.submission for f in checked]
    ids = dict(conn.execute(sa.text(f"""
        INSERT INTO patrol (client_uuid, plan_id, person_id, grid_id, day, started_at,
            ended_at, entered_at, late, track)
        SELECT u, p, pe, g, d, s, e, en, l, CASE WHEN t IS NULL THEN NULL ELSE ST_Multi(
            ST_Transform(ST_SetSRID(ST_GeomFromWKB(decode(t, 'hex')), {LONLAT_SRID}), :srid)) END
        FROM unnest(CAST(:u AS uuid[]), CAST(:p AS bigint[]), CAST(:pe AS bigint[]),
            CAST(:g AS bigint[]), CAST(:d AS date[]), CAST(:s AS timestamptz[]),
            CAST(:e AS timestamptz[]), CAST(:en AS timestamptz[]), CAST(:l AS boolean[]),
            CAST(:t AS text[])) WITH ORDINALITY AS x(u, p, pe, g, d, s, e, en, l, t, n)
        ORDER BY n
        ON CONFLICT (client_uuid) DO NOTHING
        RETURNING client_uuid, id"""), {
        "srid": srid, "u": _array(s.client_uuid for s in subs),
        "p": _array(f.plan_id for f in checked), "pe": _array(f.person.id for f in checked),
        "g": _array(f.grid["id"] for f in checked), "d": _array(s.day for s in subs),
        "s": _array(s.started_at for s in subs), "e": _array(s.ended_at for s in subs),
        "en": _array(s.entered_at for s in subs), "l": _array(s.late for s in subs),
        "t": _array(shapely.to_wkb(np.array([s.track for s in subs], dtype=object),
                                   hex=True))}).all())
    lost = [f for f in checked if f.submission.client_uuid not in ids]
    if lost:  # the same UUIDs were stored concurrently
        stored = _stored_submissions(conn, [f.submission.client_uuid for f in lost])
        for f in lost:
            out[f.index] = _same_or_conflict(stored[f.submission.client_uuid], f.submission)
    rows, done = [], []
    for f in checked:
        patrol_id = ids.get(f.submission.client_uuid)
        if patrol_id is None:
            continue
        reported = {r.item_code: r for r in f.submission.results}
        for task_id, item_id, code in tasks[f.plan_id]:
            result = reported.get(code)
            value = result.result if result is not None else "not_checked"
            rows.append((patrol_id, task_id, item_id, value,
                         result.note if result is not None else None))
            if value in DONE_RESULTS:
                done.append(task_id)
        out[f.index] = PatrolOutcome(patrol_id, True, f.submission.late, f.plan_id)
    if rows:
        patrol_col, task_col, item_col, result_col, note_col = zip(*rows)
        conn.execute(sa.text("""
            INSERT INTO patrol_item_result (patrol_id, task_id, item_id, result, note)
            SELECT * FROM unnest(CAST(:p AS bigint[]), CAST(:t AS bigint[]),
                CAST(:i AS bigint[]), CAST(:r AS text[]), CAST(:n AS text[]))"""),
            {"p": _array(patrol_col), "t": _array(task_col), "i": _array(item_col),
             "r": _array(result_col), "n": _array(note_col)})
    if done:
        _close_tasks(conn, done)


def _close_tasks(conn: sa.Connection, task_ids: list[int]) -> None:
    """Mark tasks done, with every task they were carried into (the carry-over chain).

    The chain is followed step by step (usually one step finds nothing: a task done on its
    own day was not carried yet) rather than with a recursive CTE, whose row estimate is so
    far off that PostgreSQL JIT-compiles the update (~0.1-0.2 s per call).
    """
    chain, step = list(task_ids), list(task_ids)
    while step:
        step = conn.execute(sa.text(
            "SELECT id FROM patrol_task WHERE carried_from_id = ANY(CAST(:ids AS bigint[]))"),
            {"ids": _array(step)}).scalars().all()
        chain.extend(step)
    conn.execute(sa.text(
        "UPDATE patrol_task SET status = 'done' "
        "WHERE id = ANY(CAST(:ids AS bigint[])) AND status <> 'done'"), {"ids": _array(chain)})


def _with_worker(submission: PatrolSubmission, person_id: int) -> PatrolSubmission:
    return replace(submission, worker=person_id)


def _same_or_conflict(stored: tuple[int, bool, PatrolSubmission],
                      new: PatrolSubmission) -> PatrolOutcome | Conflict:
    """The stored patrol's outcome when ``new`` says the same, else the :class:`Conflict`."""
    patrol_id, late, old = stored
    differ = diff_submissions(old, new)
    if differ:
        return Conflict(f"client_uuid {new.client_uuid} is already patrol {patrol_id} with "
                        f"other content", [f"{name} differs" for name in differ])
    return PatrolOutcome(patrol_id, False, late, None)


def _same_as_first(first: PatrolOutcome | GisgridError, first_sub: PatrolSubmission,
                   new: PatrolSubmission) -> PatrolOutcome | GisgridError:
    """The outcome of a repeat, within one batch, of the submission ``first_sub``."""
    if isinstance(first, GisgridError):
        return first if not diff_submissions(first_sub, new) else Conflict(
            f"client_uuid {new.client_uuid} appears twice in the batch with other content",
            [f"{name} differs" for name in diff_submissions(first_sub, new)])
    return _same_or_conflict((first.patrol_id, first.late, first_sub), new)


def _read_assignments_of(conn: sa.Connection, person_ids: Iterable[int]
                         ) -> dict[int, list[AssignmentRecord]]:
    """Assignments of these people, by person id."""
    found: dict[int, list[AssignmentRecord]] = {}
    for row in conn.execute(sa.text(
            "SELECT person_id, grid_id, role, valid_from, valid_to, id FROM assignment "
            "WHERE person_id = ANY(:p) ORDER BY id"), {"p": list(person_ids)}):
        found.setdefault(row[0], []).append(AssignmentRecord(*row))
    return found


def _worker_warnings(assignments: Mapping[int, list[AssignmentRecord]], person: PersonRecord,
                     grid: Mapping, day: date) -> tuple[str, ...]:
    if any(a.grid_id == grid["id"] and a.active_on(day) for a in assignments.get(person.id, ())):
        return ()
    return (f"worker {person.id} ({person.name}) is not assigned to grid {grid['code']} "
            f"on {day}",)


def read_patrols(conn: sa.Connection, *, day: date | None = None,
                 under: str | None = None) -> list[dict]:
    """Stored patrols (of ``day``, of grids under ``under``) with result counts."""
    where, params = _under_params(conn, under)
    rows = conn.execute(sa.text(f"""
        SELECT pa.id, pa.client_uuid::text AS client_uuid, g.code AS grid_code,
               pe.name AS worker, pa.day, pa.started_at, pa.ended_at, pa.entered_at, pa.late,
               count(r.id) FILTER (WHERE r.result = 'ok') AS ok,
               count(r.id) FILTER (WHERE r.result = 'hazard_found') AS hazard_found,
               count(r.id) FILTER (WHERE r.result = 'not_checked') AS not_checked,
               coalesce(ST_Length(ST_Transform(pa.track, {LONLAT_SRID})::geography), 0)
                   AS track_m
        FROM patrol pa JOIN grid g ON g.id = pa.grid_id
        LEFT JOIN person pe ON pe.id = pa.person_id
        LEFT JOIN patrol_item_result r ON r.patrol_id = pa.id
        WHERE (CAST(:day AS date) IS NULL OR pa.day = :day) AND {where}
        GROUP BY pa.id, g.code, pe.name ORDER BY pa.day, g.code, pa.id"""),
        {**params, "day": day}).mappings().all()
    return [dict(r) for r in rows]


# ---------------------------------------------------------------------------- coverage

def record_patrol_coverage(conn: sa.Connection, day: date, *, buffer_m: float = DEFAULT_BUFFER_M,
                           under: str | None = None,
                           levels: Iterable[int] = (Level.BASE,)) -> pd.DataFrame:
    """Measure and store the patrol coverage of ``day`` for current grids (under ``under``, at
    ``levels``): the share of each grid's area within ``buffer_m`` m of that day's tracks.

    Every track of the day counts for every grid it comes near (a worker crossing a neighbour's
    grid covers it too). Grids with no track get 0. Rows are replaced on recomputation.
    Returns ``grid_id, code, level, covered_share``.
    """
    wanted = sorted({int(level) for level in levels})
    grids = read_grids(conn, under=under, level=wanted[0] if len(wanted) == 1 else None)
    grids = grids[grids["level"].isin(wanted)]
    tracks = read_tracks(conn, day)
    share = measure_patrol_coverage(grids, tracks, buffer_m=buffer_m)
    result = pd.DataFrame({"grid_id": grids["id"].to_numpy(), "code": grids["code"].to_numpy(),
                           "level": grids["level"].to_numpy(),
                           "covered_share": share.to_numpy()})
    if len(result):
        conn.execute(sa.text("""
            INSERT INTO patrol_coverage (grid_id, day, buffer_m, covered_share, computed_at)
            SELECT g, :day, :buffer, s, :now
            FROM unnest(CAST(:g AS bigint[]), CAST(:s AS double precision[])) AS u(g, s)
            ON CONFLICT (grid_id, day, buffer_m) DO UPDATE
            SET covered_share = EXCLUDED.covered_share, computed_at = EXCLUDED.computed_at"""),
            {"day": day, "buffer": float(buffer_m), "now": datetime.now(timezone.utc),
             "g": _array(int(g) for g in result["grid_id"]),
             "s": _array(repr(float(v)) for v in result["covered_share"])})
    return result


def read_tracks(conn: sa.Connection, day: date) -> gpd.GeoDataFrame:
    """The tracks of every patrol of ``day`` (``patrol_id``, ``grid_id``), in the storage CRS."""
    srid = storage_srid(conn)
    rows = conn.execute(sa.text(
        "SELECT id, grid_id, ST_AsBinary(track) FROM patrol "
        "WHERE day = :day AND track IS NOT NULL ORDER BY id"), {"day": day}).all()
    geoms = shapely.from_wkb([bytes(r[2]) for r in rows]) if rows else []
    return gpd.GeoDataFrame({"patrol_id": [r[0] for r in rows], "grid_id": [r[1] for r in rows]},
                            geometry=gpd.GeoSeries(geoms, crs=srid).values, crs=srid)


def read_patrol_coverage(conn: sa.Connection, day: date, *,
                         buffer_m: float = DEFAULT_BUFFER_M) -> pd.DataFrame:
    """Stored coverage of ``day``: ``code, level, covered_share, computed_at``."""
    rows = conn.execute(sa.text("""
        SELECT g.code, g.level, c.covered_share, c.computed_at FROM patrol_coverage c
        JOIN grid g ON g.id = c.grid_id WHERE c.day = :day AND c.buffer_m = :b
        ORDER BY g.level, g.code"""), {"day": day, "b": float(buffer_m)}).all()
    return pd.DataFrame(rows, columns=["code", "level", "covered_share", "computed_at"])
