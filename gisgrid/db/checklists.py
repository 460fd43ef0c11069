"""The checklist store: the only SQL touching ``checklist`` and ``checklist_item``.

Every function takes a SQLAlchemy ``Connection``; the caller owns the transaction. The rules
(validation, edits, which list a grid kind uses) live in :mod:`gisgrid.checklists`.

Versions are never overwritten: the plan's two lists are version 1 with no owner; a city's
edit (:func:`record_checklist_edit`) is a new version owned by that city, in force from its
``valid_from``; :func:`find_checklist` picks the list in force for a city on a day.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import date

import sqlalchemy as sa

from gisgrid.checklists import (Checklist, edit_checklist, read_builtin_checklists,
                                validate_checklist)
from gisgrid.db.audit import ChecklistEdited, ChecklistsLoaded, record_audit
from gisgrid.db.grids import read_city
from gisgrid.errors import Conflict, NotFound

PLAN_DEFAULT_VALID_FROM = date(2017, 1, 1)
"""``valid_from`` of the plan's own checklists (version 1): the plan dates from 2017."""


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
                            valid_from: date = PLAN_DEFAULT_VALID_FROM,
                            actor: str | None = None) -> dict[str, int]:
    """Store the plan's two lists (version 1, no owner) unless already there; ids by code.

    Loading twice is harmless; a stored version 1 that differs from the shipped one is a
    :class:`Conflict` (versions are never overwritten). A load that stores a list is audited
    (``checklist.load`` by ``actor``).
    """
    ids, stored_now = {}, {}
    for code, checklist in read_builtin_checklists().items():
        row = conn.execute(sa.text(
            "SELECT id FROM checklist WHERE code = :code AND version = :v "
            "AND owner_grid_id IS NULL"), {"code": code, "v": checklist.version}).first()
        if row is None:
            ids[code] = stored_now[code] = write_checklist(conn, checklist,
                                                           valid_from=valid_from)
            continue
        stored, _ = read_checklist(conn, row[0])
        if stored != checklist:
            raise Conflict(f"checklist {code} v{checklist.version} is stored with other "
                           "content than the plan's; edit it as a new version instead")
        ids[code] = row[0]
    if stored_now:
        record_audit(conn, ChecklistsLoaded(actor=actor, checklists=stored_now))
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
                          remove: Iterable[str] = (), add: Iterable[Mapping] = (),
                          actor: str | None = None) -> tuple[int, Checklist]:
    """A city's edit of its ``code`` list: a new version owned by the city, from ``valid_from``.

    The edit starts from the list the city uses on ``valid_from``; the new version number is
    one above every version of that code the city or the plan has. Edits of one city take
    turns (its grid row is locked), so concurrent edits get consecutive versions. The edit is
    audited (``checklist.edit`` by ``actor``, with the codes of the items whose kind, text or
    due days changed, and of those removed and added).
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
    checklist_id = write_checklist(conn, edited, valid_from=valid_from, owner_grid_id=city.id)
    before = {item.code: replace(item, position=0) for item in current.items}
    after = {item.code: replace(item, position=0) for item in edited.items}  # a move is no edit
    record_audit(conn, ChecklistEdited(
        actor=actor, checklist_id=checklist_id, code=code, version=edited.version,
        city_code=city.code, valid_from=valid_from,
        changed=sorted(c for c in after if c in before and after[c] != before[c]),
        removed=sorted(set(before) - set(after)), added=sorted(set(after) - set(before))))
    return checklist_id, edited


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
