"""Storage of hazards: the only SQL touching ``hazard``, ``hazard_event`` and ``hazard_photo``.

Every function takes a SQLAlchemy ``Connection``; the caller owns the transaction, so a hazard
row and the event that explains its change commit together or not at all. The rules come from
the pure package :mod:`gisgrid.hazards` (validation, workflow table, calendar, routing,
duplicates); this module only reads and writes rows.

Grid chain at write time: the point is joined to the current base grids with ``ST_Covers``
and the chain read up the grid tree (base → village/community → township → city). This SQL
join is the fallback route of the architecture (the bulk route is :mod:`gisgrid.assign`); one
report at a time, it is one indexed lookup. A point on a shared edge goes to the smallest id,
the same tie rule as :mod:`gisgrid.assign`.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import geopandas as gpd
import shapely
import sqlalchemy as sa

from gisgrid.checklists import read_builtin_checklists
from gisgrid.clock import CHINA_TZ
from gisgrid.db.engine import storage_srid
from gisgrid.errors import Conflict, InputError, NotFound
from gisgrid.hazards.calendar import due_at as compute_due_at
from gisgrid.hazards.calendar import due_workdays_for, extend_due_at
from gisgrid.hazards.categories import get_category
from gisgrid.hazards.duplicates import DuplicateCandidate, suggest_duplicates
from gisgrid.hazards.photos import StoredPhoto, write_photo
from gisgrid.hazards.reports import HazardRecord, HazardReport, validate_report
from gisgrid.hazards.routing import GridChain, route_hazard
from gisgrid.hazards.workflow import (
    CLOCK_STOPPED_STATES,
    EXTENDS_DUE_DATE,
    OPEN_STATES,
    Action,
    HazardEvent,
    State,
    apply_transition,
    first_event,
)
from gisgrid.precision import GEOGRAPHIC_GRID_SIZE

LONLAT_SRID = 4490
"""Reports arrive as CGCS2000 longitude/latitude (WGS 84 differs by centimetres)."""

_LINK_LOCK = 0x6769_7367_6C6B  # advisory lock key of duplicate linking ("gisglk")

# Fields compared when a client_uuid is submitted again: same values → the same report.
_IDENTITY_FIELDS = ("category", "description", "major", "reporter_id", "unit_id",
                    "category_item_id")

_COLUMNS = """
    h.id, h.client_uuid::text AS client_uuid,
    ST_X(ST_Transform(h.geom, 4490)) AS lon, ST_Y(ST_Transform(h.geom, 4490)) AS lat,
    h.category, h.category_item_id, h.description, h.reporter_id, h.unit_id, h.major, h.state,
    h.reported_at, h.due_at, h.closed_at, h.routed_to_grid_id, h.duplicate_of_id,
    h.city_grid_id, h.township_grid_id, h.village_grid_id, h.base_grid_id, h.outside_grids,
    h.created_at
"""


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _local_text(moment: datetime) -> str:
    """``moment`` in China time to the second, for messages."""
    return moment.astimezone(CHINA_TZ).isoformat(timespec="seconds")


def _point_sql(lon_param: str = "lon", lat_param: str = "lat") -> str:
    return f"ST_Transform(ST_SetSRID(ST_MakePoint(:{lon_param}, :{lat_param}), {LONLAT_SRID}), :srid)"


def _record(row, **extra) -> HazardRecord:
    values = dict(row._mapping)
    return HazardRecord(**values, **extra)


def read_grid_chain(conn: sa.Connection, lon: float, lat: float) -> GridChain:
    """The current grids holding (lon, lat) at the four levels; empty when outside every grid."""
    row = conn.execute(sa.text(f"""
        SELECT b.id AS base, v.id AS village, t.id AS township, c.id AS city
        FROM grid b
        LEFT JOIN grid v ON v.id = b.parent_id AND v.level = 3
        LEFT JOIN grid t ON t.id = v.parent_id AND t.level = 2
        LEFT JOIN grid c ON c.id = t.parent_id AND c.level = 1
        WHERE b.level = 4 AND b.valid_to IS NULL AND ST_Covers(b.geom, {_point_sql()})
        ORDER BY b.id LIMIT 1
    """), {"lon": lon, "lat": lat, "srid": storage_srid(conn)}).first()
    if row is None:
        return GridChain()
    return GridChain(row.city, row.township, row.village, row.base)


def read_nearest_township(conn: sa.Connection, lon: float, lat: float) -> int | None:
    """The current township grid nearest to (lon, lat) (geodesic distance), or None."""
    return conn.execute(sa.text(f"""
        SELECT id FROM grid
        WHERE level = 2 AND valid_to IS NULL
        ORDER BY ST_Distance(ST_Transform(geom, 4490)::geography,
                             ST_SetSRID(ST_MakePoint(:lon, :lat), 4490)::geography), id
        LIMIT 1
    """), {"lon": lon, "lat": lat}).scalar_one_or_none()


def _item_due_workdays(conn: sa.Connection, item_id: int | None) -> int | None:
    if item_id is None:
        return None
    value = conn.execute(sa.text("SELECT due_workdays FROM checklist_item WHERE id = :id"),
                         {"id": item_id}).first()
    if value is None:
        raise InputError(f"category_item_id: no checklist item with id {item_id}")
    return value[0]


def read_checklist_item_id(conn: sa.Connection, item_code: str) -> int | None:
    """Id of checklist item ``item_code`` (e.g. ``C05``) in its newest stored checklist version.

    A city's own version (``owner_grid_id`` set) wins over the plan's default of the same
    checklist. ``None`` when no stored checklist has the item.
    """
    return conn.execute(sa.text("""
        SELECT i.id FROM checklist_item i JOIN checklist c ON c.id = i.checklist_id
        WHERE i.code = :code
        ORDER BY (c.owner_grid_id IS NULL), c.version DESC, i.id DESC LIMIT 1
    """), {"code": item_code}).scalar_one_or_none()


def _resolve_item(conn: sa.Connection, report: HazardReport) -> tuple[int | None, int | None]:
    """(checklist item id, its due workdays) for the report's item, by id or by code.

    By code: the stored item when there is one, else the plan's built-in checklists (their
    due workdays, no id); an unknown code leaves the category's own allowance.
    """
    if report.category_item_id is not None:
        return report.category_item_id, _item_due_workdays(conn, report.category_item_id)
    if report.item_code is None:
        return None, None
    item_id = read_checklist_item_id(conn, report.item_code)
    if item_id is not None:
        return item_id, _item_due_workdays(conn, item_id)
    for checklist in read_builtin_checklists().values():
        if report.item_code in checklist.item_codes:
            return None, checklist.item(report.item_code).due_workdays
    return None, None


def read_hazard(conn: sa.Connection, hazard_id: int, *, lock: bool = False) -> HazardRecord:
    """The hazard ``hazard_id`` (``lock``: ``SELECT ... FOR UPDATE``), or :class:`NotFound`."""
    row = conn.execute(
        sa.text(f"SELECT {_COLUMNS} FROM hazard h WHERE h.id = :id"
                + (" FOR UPDATE" if lock else "")), {"id": hazard_id}).first()
    if row is None:
        raise NotFound(f"hazard {hazard_id}: no such hazard")
    return _record(row)


def _existing_by_uuid(conn, client_uuid: str) -> HazardRecord | None:
    row = conn.execute(sa.text(f"SELECT {_COLUMNS} FROM hazard h WHERE h.client_uuid = CAST(:u AS uuid)"),
                       {"u": client_uuid}).first()
    return None if row is None else _record(row, created=False)


def _check_same_report(conn, existing: HazardRecord, report: HazardReport,
                       photos: list[StoredPhoto], *, compare_time: bool) -> None:
    """Raise :class:`Conflict` unless ``report`` says what the stored hazard says.

    ``compare_time`` is False when the client sent no ``reported_at`` (it defaulted to the
    time of this submission, which a resubmission never repeats).
    """
    differ = [f for f in _IDENTITY_FIELDS if getattr(existing, f) != getattr(report, f)]
    snap = GEOGRAPHIC_GRID_SIZE * 1.5
    if abs(existing.lon - report.lon) > snap or abs(existing.lat - report.lat) > snap:
        differ.append("lon/lat")
    if compare_time and existing.reported_at != report.reported_at:
        differ.append("reported_at")
    stored = sorted(p.sha256 for p in read_photos(conn, existing.id))
    if stored != sorted(p.sha256 for p in photos):
        differ.append("photos")
    if differ:
        raise Conflict(
            f"client_uuid {report.client_uuid}: already used by hazard {existing.id} "
            "with different content",
            [f"{f}: differs from the stored report" for f in differ],
        )


def record_hazard(
    conn: sa.Connection,
    report: HazardReport,
    *,
    actor: str,
    photo_dir: Path | None = None,
    now: datetime | None = None,
) -> HazardRecord:
    """Store a new hazard report, or return the stored one when ``client_uuid`` is known.

    Validates every field (:func:`~gisgrid.hazards.reports.validate_report`), writes the photos
    under ``photo_dir``, computes the grid chain, the routing and the due date, inserts the
    ``hazard`` row in state ``reported`` with its first ``hazard_event`` and the
    ``hazard_photo`` rows, and suggests duplicates. A point outside every grid is stored with
    ``outside_grids = True`` and routed to the nearest township, never refused.

    Returns
    -------
    HazardRecord
        ``created`` False for an identical resubmission (nothing new written). A
        resubmission without ``reported_at`` is compared on everything but the time.

    Raises
    ------
    InputError
        A bad field (each one named; a ``reporter_id`` or ``unit_id`` naming no row too), or
        photos given without ``photo_dir``.
    Conflict
        ``client_uuid`` already used by a report with different content.
    """
    time_given = report.reported_at is not None
    report, contents = validate_report(report, now=now)
    _check_references(conn, report)
    first = first_event(actor=actor, at=report.reported_at)
    item_id, item_due = _resolve_item(conn, report)
    report = replace(report, category_item_id=item_id)
    if contents and photo_dir is None:
        raise InputError("photos: no photo directory configured to store them in")
    photos = list({p.sha256: p for p in (write_photo(c, photo_dir) for c in contents)}.values())
    existing = _existing_by_uuid(conn, report.client_uuid)
    if existing is not None:
        _check_same_report(conn, existing, report, photos, compare_time=time_given)
        return existing
    lon, lat = (float(c) for c in shapely.set_precision(
        shapely.Point(report.lon, report.lat), GEOGRAPHIC_GRID_SIZE).coords[0])
    chain = read_grid_chain(conn, lon, lat)
    nearest = read_nearest_township(conn, lon, lat) if chain.outside_grids else None
    routing = route_hazard(chain, major=report.major, nearest_township_id=nearest)
    due = compute_due_at(report.category, report.reported_at, major=report.major,
                         item_due_workdays=item_due)
    params = {
        "client_uuid": report.client_uuid, "lon": lon, "lat": lat,
        "srid": storage_srid(conn), "category_item_id": report.category_item_id,
        "category": report.category, "description": report.description,
        "reporter_id": report.reporter_id, "unit_id": report.unit_id, "major": report.major,
        "state": State.REPORTED.value, "reported_at": report.reported_at, "due_at": due,
        "routed_to_grid_id": routing.routed_to_grid_id,
        "city_grid_id": chain.city_grid_id, "township_grid_id": chain.township_grid_id,
        "village_grid_id": chain.village_grid_id, "base_grid_id": chain.base_grid_id,
        "outside_grids": chain.outside_grids,
    }
    hazard_id = conn.execute(sa.text(f"""
        INSERT INTO hazard (client_uuid, geom, category_item_id, category, description,
            reporter_id, unit_id, major, state, reported_at, due_at, routed_to_grid_id,
            city_grid_id, township_grid_id, village_grid_id, base_grid_id, outside_grids)
        VALUES (CAST(:client_uuid AS uuid), {_point_sql()}, :category_item_id, :category, :description,
            :reporter_id, :unit_id, :major, :state, :reported_at, :due_at, :routed_to_grid_id,
            :city_grid_id, :township_grid_id, :village_grid_id, :base_grid_id, :outside_grids)
        ON CONFLICT (client_uuid) DO NOTHING
        RETURNING id
    """), params).scalar_one_or_none()
    if hazard_id is None:  # a concurrent submission of the same uuid won the race
        existing = _existing_by_uuid(conn, report.client_uuid)
        _check_same_report(conn, existing, report, photos, compare_time=time_given)
        return existing
    _insert_event(conn, hazard_id, first)
    for photo in photos:
        conn.execute(sa.text("""
            INSERT INTO hazard_photo (hazard_id, path, sha256, bytes)
            VALUES (:hazard_id, :path, :sha256, :bytes)
        """), {"hazard_id": hazard_id, "path": photo.path, "sha256": photo.sha256,
               "bytes": photo.bytes})
    record = read_hazard(conn, hazard_id)
    return _with_duplicates(conn, record)


def _check_references(conn: sa.Connection, report: HazardReport) -> None:
    """:class:`InputError` naming ``reporter_id`` / ``unit_id`` when they name no row."""
    problems = []
    for field_name, table, noun, value in (("reporter_id", "person", "person", report.reporter_id),
                                           ("unit_id", "unit", "business unit", report.unit_id)):
        if value is not None and conn.execute(
                sa.text(f"SELECT 1 FROM {table} WHERE id = :id"), {"id": value}).first() is None:
            problems.append(f"{field_name}: no {noun} with id {value}")
    if problems:
        noun = "field" if len(problems) == 1 else "fields"
        raise InputError(f"hazard report refused: {len(problems)} bad {noun}", problems)


def _insert_event(conn: sa.Connection, hazard_id: int, event: HazardEvent) -> None:
    conn.execute(sa.text("""
        INSERT INTO hazard_event (hazard_id, from_state, to_state, action, actor, role, at, note)
        VALUES (:hazard_id, :from_state, :to_state, :action, :actor, :role, :at, :note)
    """), {"hazard_id": hazard_id,
           "from_state": event.from_state.value if event.from_state else None,
           "to_state": event.to_state.value, "action": event.action,
           "actor": event.actor, "role": event.role, "at": event.at,
           "note": event.note or None})


def advance_hazard(
    conn: sa.Connection,
    hazard_id: int,
    action: "Action | str",
    *,
    actor: str,
    note: str = "",
    at: datetime | None = None,
    role: str | None = None,
    extend_workdays: int | None = None,
) -> HazardRecord:
    """Move a hazard one step through the workflow and log the step.

    The row is locked (``FOR UPDATE``) so two concurrent steps serialise; the transition is
    checked against :data:`~gisgrid.hazards.workflow.TRANSITIONS`. ``close`` sets
    ``closed_at``; ``postpone`` (延期) moves ``due_at`` by ``extend_workdays`` workdays (default:
    the category's allowance) from the later of ``at`` and the old due date.

    Raises
    ------
    NotFound
        No hazard ``hazard_id``.
    IllegalTransition
        ``action`` not allowed from the current state (the allowed ones are listed).
    InputError
        No actor, a naive time, or ``at`` before the hazard was reported or before its last
        logged step.
    """
    at = at or _now()
    action = Action.parse(action)
    hazard = read_hazard(conn, hazard_id, lock=True)
    event = apply_transition(hazard.state, action, actor=actor, at=at, note=note, role=role)
    last = conn.execute(sa.text("SELECT max(at) FROM hazard_event WHERE hazard_id = :id"),
                        {"id": hazard_id}).scalar_one()
    if at < hazard.reported_at:
        raise InputError(f"at: {_local_text(at)} is before the hazard was reported "
                         f"({_local_text(hazard.reported_at)})")
    if last is not None and at < last:
        raise InputError(f"at: {_local_text(at)} is before the hazard's last logged step "
                         f"({_local_text(last)}); steps are logged in time order")
    due = hazard.due_at
    if Action(event.action) in EXTENDS_DUE_DATE:
        days = extend_workdays if extend_workdays is not None else due_workdays_for(
            hazard.category, major=hazard.major)
        due = extend_due_at(hazard.due_at, at, days)
    conn.execute(sa.text("""
        UPDATE hazard SET state = :state, due_at = :due_at,
            closed_at = CASE WHEN CAST(:state AS text) = 'closed' THEN :at ELSE closed_at END
        WHERE id = :id
    """), {"state": event.to_state.value, "due_at": due, "at": at, "id": hazard_id})
    _insert_event(conn, hazard_id, event)
    return read_hazard(conn, hazard_id)


def read_events(conn: sa.Connection, hazard_id: int) -> list[HazardEvent]:
    """The hazard's history, oldest first."""
    rows = conn.execute(sa.text("""
        SELECT from_state, to_state, action, actor, role, at, note FROM hazard_event
        WHERE hazard_id = :id ORDER BY at, id
    """), {"id": hazard_id})
    return [HazardEvent(State(r.from_state) if r.from_state else None, State(r.to_state),
                        r.action, r.actor, r.at, r.note or "", r.role) for r in rows]


def read_photos(conn: sa.Connection, hazard_id: int) -> list[StoredPhoto]:
    """The hazard's photos (path relative to the photo directory, SHA-256, size)."""
    rows = conn.execute(sa.text(
        "SELECT path, sha256, bytes FROM hazard_photo WHERE hazard_id = :id ORDER BY id"),
        {"id": hazard_id})
    return [StoredPhoto(r.path, r.sha256, r.bytes) for r in rows]


def list_hazards(
    conn: sa.Connection,
    *,
    state: "State | str | None" = None,
    under: int | None = None,
    overdue: bool | None = None,
    now: datetime | None = None,
    limit: int | None = None,
) -> list[HazardRecord]:
    """Hazards, newest report first, filtered by state, by grid and by overdue status.

    ``under`` is a grid id at any level: hazards whose chain contains it or that are routed to
    it. ``overdue=True`` keeps hazards past their due date and not closed, voided or suspended
    (see :func:`~gisgrid.hazards.calendar.is_overdue`); ``overdue=False`` the others.
    """
    where, params = ["TRUE"], {"now": now or _now(),
                               "stopped": [s.value for s in CLOCK_STOPPED_STATES]}
    if state is not None:
        where.append("h.state = :state")
        params["state"] = State.parse(state).value
    if under is not None:
        where.append("CAST(:under AS bigint) IN (h.city_grid_id, h.township_grid_id, h.village_grid_id, "
                     "h.base_grid_id, h.routed_to_grid_id)")
        params["under"] = under
    overdue_sql = "(h.state <> ALL(:stopped) AND h.due_at IS NOT NULL AND h.due_at < :now)"
    if overdue is True:
        where.append(overdue_sql)
    elif overdue is False:
        where.append(f"NOT {overdue_sql}")
    sql = f"SELECT {_COLUMNS} FROM hazard h WHERE {' AND '.join(where)} ORDER BY h.reported_at DESC, h.id DESC"
    if limit is not None:
        sql += " LIMIT :limit"
        params["limit"] = int(limit)
    return [_record(r) for r in conn.execute(sa.text(sql), params)]


def find_duplicates(conn: sa.Connection, hazard: HazardRecord) -> list[DuplicateCandidate]:
    """Open hazards that may report the same thing as ``hazard`` (see :mod:`~gisgrid.hazards.duplicates`).

    The database narrows the candidates (same category; same unit, or within the category's
    radius by geodesic distance); the pure rule makes the decision.
    """
    radius = get_category(hazard.category).duplicate_radius_m
    rows = conn.execute(sa.text(f"""
        SELECT h.id, h.category, h.unit_id, h.state,
               ST_X(ST_Transform(h.geom, 4490)) AS lon, ST_Y(ST_Transform(h.geom, 4490)) AS lat
        FROM hazard h
        WHERE h.category = :category AND h.id <> :id AND h.state = ANY(:open)
          AND (h.unit_id = CAST(:unit_id AS bigint)
               OR ST_DWithin(ST_Transform(h.geom, 4490)::geography,
                             ST_SetSRID(ST_MakePoint(:lon, :lat), 4490)::geography, :radius))
    """), {"category": hazard.category, "id": hazard.id, "unit_id": hazard.unit_id,
           "open": [s.value for s in OPEN_STATES], "lon": hazard.lon, "lat": hazard.lat,
           "radius": radius * 1.01}).all()
    if not rows:
        return []
    frame = gpd.GeoDataFrame(
        {"id": [r.id for r in rows], "category": [r.category for r in rows],
         "unit_id": [r.unit_id for r in rows], "state": [r.state for r in rows]},
        geometry=gpd.points_from_xy([r.lon for r in rows], [r.lat for r in rows]), crs=4490)
    return suggest_duplicates(hazard.lon, hazard.lat, hazard.category, frame,
                              unit_id=hazard.unit_id, exclude_id=hazard.id)


def _with_duplicates(conn: sa.Connection, record: HazardRecord) -> HazardRecord:
    return replace(record, duplicates=tuple(find_duplicates(conn, record)))


def link_duplicate(
    conn: sa.Connection,
    hazard_id: int,
    duplicate_of_id: int,
    *,
    actor: str,
    note: str = "",
    at: datetime | None = None,
) -> HazardRecord:
    """Mark ``hazard_id`` as a duplicate of ``duplicate_of_id`` and log it (state unchanged).

    The link always points at the original: linking to a hazard that is itself a duplicate
    follows its link. Refused (:class:`Conflict`) for a link to itself or one making a cycle.
    Links are made one transaction at a time (a transaction-level advisory lock), so two
    concurrent links cannot close a cycle that neither of them sees.
    """
    at = at or _now()
    if not isinstance(actor, str) or not actor.strip():
        raise InputError("actor: required (who links the hazards)")
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LINK_LOCK})
    hazard = read_hazard(conn, hazard_id, lock=True)
    target = read_hazard(conn, duplicate_of_id)
    seen = {hazard_id}
    while target.duplicate_of_id is not None and target.id not in seen:
        seen.add(target.id)
        target = read_hazard(conn, target.duplicate_of_id)
    if target.id in seen:
        raise Conflict(f"hazard {hazard_id}: cannot be a duplicate of {duplicate_of_id}",
                       ["a hazard cannot be a duplicate of itself"
                        if duplicate_of_id == hazard_id
                        else f"hazard {duplicate_of_id} is already (through its links) a "
                             f"duplicate of hazard {hazard_id}: the link would make a cycle"])
    conn.execute(sa.text("UPDATE hazard SET duplicate_of_id = :target WHERE id = :id"),
                 {"target": target.id, "id": hazard_id})
    state = State(hazard.state)
    text = f"duplicate of hazard {target.id}" + (f": {note}" if note else "")
    _insert_event(conn, hazard_id, HazardEvent(state, state, "note", actor.strip(), at, text))
    return read_hazard(conn, hazard_id)
