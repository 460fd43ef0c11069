"""The people store: the only SQL touching ``person``, ``assignment`` and ``training``.

Every function takes a SQLAlchemy ``Connection``; the caller owns the transaction. The rules
(valid people, assignments, training, one grid worker per base grid) live in
:mod:`gisgrid.people`.

A worker is named by person id or by the phone of an active person (:func:`worker_key`):
patrol submissions from the field carry either.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

import sqlalchemy as sa

from gisgrid.db.audit import AssignmentRecorded, PersonAdded, TrainingRecorded, record_audit
from gisgrid.db.grids import read_base_grids, read_grid, under_params
from gisgrid.errors import Conflict, InputError
from gisgrid.people import (AssignmentRecord, PersonRecord, WorkerFinding, check_assignment,
                            check_base_grid_workers, validate_training)


def write_person(conn: sa.Connection, person: PersonRecord, *, actor: str | None = None) -> int:
    """Insert a checked person (:func:`gisgrid.people.validate_person`); returns the id.

    A phone already used by another active person is a :class:`Conflict` (phones identify
    workers in patrol submissions). Writers of the same phone take turns (a transaction-level
    advisory lock on the phone), so two concurrent additions cannot both pass the check.
    Audited as ``person.add`` by ``actor``.
    """
    if person.phone is not None:
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
                     {"key": f"gisgrid person phone {person.phone}"})
        other = conn.execute(sa.text(
            "SELECT id FROM person WHERE phone = :phone AND active"),
            {"phone": person.phone}).scalar_one_or_none()
        if other is not None:
            raise Conflict(f"phone {person.phone} already belongs to person {other}")
    person_id = conn.execute(sa.text(
        "INSERT INTO person (name, phone, id_number, kind, employment, active) "
        "VALUES (:name, :phone, :id_number, :kind, :employment, :active) RETURNING id"),
        {"name": person.name, "phone": person.phone, "id_number": person.id_number,
         "kind": person.kind, "employment": person.employment,
         "active": person.active}).scalar_one()
    record_audit(conn, PersonAdded(actor=actor, person_id=person_id, name=person.name,
                                   kind=person.kind, employment=person.employment))
    return person_id


def worker_key(worker: int | str) -> tuple[bool, int | str]:
    """(by id, value): an int or digits shorter than a phone number is a person id."""
    by_id = isinstance(worker, int) or (isinstance(worker, str) and worker.isdigit()
                                        and len(worker) < 11)
    return by_id, int(worker) if by_id else str(worker)


def read_workers(conn: sa.Connection, workers: Iterable[int | str]
                  ) -> dict[tuple[bool, int | str], PersonRecord]:
    """People by :func:`worker_key` of each of ``workers`` (ids, or phones of active people);
    a worker with no person is absent."""
    keys = {worker_key(w) for w in workers}
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


def person_not_found(field_name: str, worker: int | str) -> InputError:
    """The :class:`InputError` for a ``worker`` with no person, naming ``field_name``."""
    by_id, _ = worker_key(worker)
    return InputError(f"{field_name}: no person with {'id' if by_id else 'phone'} {worker!r}")


def read_person(conn: sa.Connection, worker: int | str, *,
                field_name: str = "worker") -> PersonRecord:
    """The person with id ``worker`` (an int or digits) or with phone ``worker``.

    :class:`InputError` naming ``field_name`` when there is none.
    """
    person = read_workers(conn, [worker]).get(worker_key(worker))
    if person is None:
        raise person_not_found(field_name, worker)
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
                      valid_from: date, valid_to: date | None = None, *,
                      actor: str | None = None) -> tuple[int, list[str]]:
    """Assign a person to a grid (rules: :func:`gisgrid.people.check_assignment`).

    Returns the new assignment id and warnings (e.g. a second grid worker on the grid).
    Audited as ``assignment.record`` by ``actor``.
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
    record_audit(conn, AssignmentRecorded(
        actor=actor, assignment_id=assignment_id, person_id=person.id, grid_code=grid.code,
        role=role, valid_from=valid_from, valid_to=valid_to, warnings=list(warnings)))
    return assignment_id, warnings


def record_training(conn: sa.Connection, person_id: int, course: str, held_on, hours=None,
                    *, actor: str | None = None) -> int:
    """Record a training course a person attended; returns the row id.

    Audited as ``training.record`` by ``actor``.
    """
    person = read_person(conn, person_id, field_name="person")
    course, held_on, hours = validate_training(course, held_on, hours)
    training_id = conn.execute(sa.text(
        "INSERT INTO training (person_id, course, held_on, hours) "
        "VALUES (:p, :c, :d, :h) RETURNING id"),
        {"p": person.id, "c": course, "d": held_on, "h": hours}).scalar_one()
    record_audit(conn, TrainingRecorded(actor=actor, training_id=training_id,
                                        person_id=person.id, course=course, held_on=held_on,
                                        hours=hours))
    return training_id


def read_people(conn: sa.Connection, *, day: date | None = None,
                under: str | None = None) -> list[dict]:
    """People with their assignments in force on ``day`` (all days when None) and training
    hours; ``under`` keeps people assigned to a grid under that code."""
    where, params = under_params(conn, under)
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



def read_assignments_of(conn: sa.Connection, person_ids: Iterable[int]
                        ) -> dict[int, list[AssignmentRecord]]:
    """Assignments of these people, by person id."""
    found: dict[int, list[AssignmentRecord]] = {}
    for row in conn.execute(sa.text(
            "SELECT person_id, grid_id, role, valid_from, valid_to, id FROM assignment "
            "WHERE person_id = ANY(:p) ORDER BY id"), {"p": list(person_ids)}):
        found.setdefault(row[0], []).append(AssignmentRecord(*row))
    return found
