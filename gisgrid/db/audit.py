"""The audit log: who changed what, when: the only SQL touching ``audit_log``.

A data change that has no history of its own leaves one row here, written by
:func:`record_event` in the caller's transaction, so the change and its audit row commit
together or not at all. Hazards (``hazard_event``) and grid versions (``grid_history``) keep
their own history row by row; their imports and repairs leave one summary event per call.

Each kind of event is a small frozen dataclass (:class:`AuditEvent` subclasses) with a stable
``action`` name, the ``entity`` it is about, the ``actor`` and its own fields, which become the
row's ``detail`` (JSON); :func:`record_audit` writes one. The actions:

=====================  ==================  ==================================================
action                 entity (id)         written by
=====================  ==================  ==================================================
``grids.<change>``     grid (none)         :func:`gisgrid.db.grids.write_grids` (import,
                                           repair, create, edit, retire): counts and codes
``finding.accept``     accepted_exception  :func:`gisgrid.db.findings.accept_finding`
``person.add``         person              :func:`gisgrid.db.people.write_person`
``assignment.record``  assignment          :func:`gisgrid.db.people.record_assignment`
``training.record``    training            :func:`gisgrid.db.people.record_training`
``units.import``       unit (none)         :func:`gisgrid.db.units.write_units`: counts
``checklist.load``     checklist (none)    :func:`gisgrid.db.checklists.load_builtin_checklists`
``checklist.edit``     checklist           :func:`gisgrid.db.checklists.record_checklist_edit`
=====================  ==================  ==================================================
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar

import sqlalchemy as sa

from gisgrid.clock import CHINA_TZ
from gisgrid.errors import InputError

DEFAULT_LIMIT = 50
"""Events :func:`read_events` returns unless told otherwise."""

CODES_IN_DETAIL = 20
"""At most this many codes are listed in a summary event; ``more_codes`` counts the rest."""


# ---------------------------------------------------------------------------- events

@dataclass(frozen=True, kw_only=True)
class AuditEvent:
    """An audited change: ``action`` and ``entity`` name its kind; the fields other than
    ``actor`` (and the one named by ``id_field``, the row's ``entity_id``) are its detail."""

    action: ClassVar[str]
    entity: ClassVar[str]
    id_field: ClassVar[str | None] = None
    actor: str | None

    @property
    def entity_id(self) -> int | str | None:
        """The id of the changed row, when the event is about one row."""
        return getattr(self, self.id_field) if self.id_field else None

    def detail(self) -> dict[str, Any]:
        """The event's own fields, for the ``detail`` column."""
        return {k: v for k, v in asdict(self).items() if k not in ("actor", self.id_field)}


@dataclass(frozen=True, kw_only=True)
class GridsWritten(AuditEvent):
    """One :func:`~gisgrid.db.grids.write_grids` call: an import, repair, edit ... of grids."""

    entity: ClassVar[str] = "grid"
    change: str
    level: int | None
    inserted: int
    versioned: int
    unchanged: int
    codes: list[str] = field(default_factory=list)
    more_codes: int = 0
    reason: str | None = None

    @property
    def action(self) -> str:  # one stable name per kind of change
        return f"grids.{self.change}"


@dataclass(frozen=True, kw_only=True)
class FindingAccepted(AuditEvent):
    """A validation finding accepted as an exception (the actor is the reviewer)."""

    action: ClassVar[str] = "finding.accept"
    entity: ClassVar[str] = "accepted_exception"
    id_field: ClassVar[str] = "exception_id"
    exception_id: int
    finding_id: int
    fingerprint: str
    kind: str
    codes: list[str]
    reason: str
    grid_versions: dict[str, int]


@dataclass(frozen=True, kw_only=True)
class PersonAdded(AuditEvent):
    """A grid worker, officer or cadre added (no phone or ID number in the log)."""

    action: ClassVar[str] = "person.add"
    entity: ClassVar[str] = "person"
    id_field: ClassVar[str] = "person_id"
    person_id: int
    name: str
    kind: str
    employment: str | None


@dataclass(frozen=True, kw_only=True)
class AssignmentRecorded(AuditEvent):
    """A person assigned to a grid in a role for a period."""

    action: ClassVar[str] = "assignment.record"
    entity: ClassVar[str] = "assignment"
    id_field: ClassVar[str] = "assignment_id"
    assignment_id: int
    person_id: int
    grid_code: str
    role: str
    valid_from: date
    valid_to: date | None
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class TrainingRecorded(AuditEvent):
    """A training course a person attended."""

    action: ClassVar[str] = "training.record"
    entity: ClassVar[str] = "training"
    id_field: ClassVar[str] = "training_id"
    training_id: int
    person_id: int
    course: str
    held_on: date
    hours: Decimal | None


@dataclass(frozen=True, kw_only=True)
class UnitsImported(AuditEvent):
    """One import of business units: how many were new, updated, outside every grid."""

    action: ClassVar[str] = "units.import"
    entity: ClassVar[str] = "unit"
    inserted: int
    updated: int
    outside: int


@dataclass(frozen=True, kw_only=True)
class ChecklistsLoaded(AuditEvent):
    """The plan's own checklists stored (only those not stored before)."""

    action: ClassVar[str] = "checklist.load"
    entity: ClassVar[str] = "checklist"
    checklists: dict[str, int]


@dataclass(frozen=True, kw_only=True)
class ChecklistEdited(AuditEvent):
    """A city's edit of a checklist: the new version and what changed from the old one."""

    action: ClassVar[str] = "checklist.edit"
    entity: ClassVar[str] = "checklist"
    id_field: ClassVar[str] = "checklist_id"
    checklist_id: int
    code: str
    version: int
    city_code: str
    valid_from: date
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)


def summarise_codes(codes, limit: int = CODES_IN_DETAIL) -> tuple[list[str], int]:
    """The first ``limit`` of ``codes`` (sorted) and how many more there are.

    >>> summarise_codes(["b", "a", "c"], limit=2)
    (['a', 'b'], 1)
    """
    ordered = sorted(str(c) for c in codes)
    return ordered[:limit], max(0, len(ordered) - limit)


# ---------------------------------------------------------------------------- storage

def record_event(conn: sa.Connection, *, actor: str | None, action: str, entity: str,
                 entity_id: int | str | None = None,
                 detail: Mapping[str, Any] | None = None) -> int:
    """Write one audit row in the caller's transaction; returns its id.

    ``detail`` is stored as JSON (dates and times in ISO 8601, decimals as numbers).
    """
    if not action:
        raise InputError("an audit event needs an action")
    return conn.execute(sa.text(
        "INSERT INTO audit_log (actor, action, entity, entity_id, detail) "
        "VALUES (:actor, :action, :entity, :entity_id, CAST(:detail AS jsonb)) RETURNING id"),
        {"actor": actor, "action": action, "entity": entity,
         "entity_id": None if entity_id is None else str(entity_id),
         "detail": None if detail is None else json.dumps(
             dict(detail), ensure_ascii=False, default=_json_value)}).scalar_one()


def record_audit(conn: sa.Connection, event: AuditEvent) -> int:
    """Write ``event`` with :func:`record_event`; returns the row id."""
    return record_event(conn, actor=event.actor, action=event.action, entity=event.entity,
                        entity_id=event.entity_id, detail=event.detail())


def read_events(conn: sa.Connection, *, entity: str | None = None,
                since: datetime | date | None = None, action: str | None = None,
                limit: int = DEFAULT_LIMIT) -> list[dict]:
    """The newest audit rows (of ``entity``, with ``action``, at or after ``since``; a day
    counts from its midnight in China), newest first, at most ``limit``:
    ``id, at, actor, action, entity, entity_id, detail``."""
    if limit < 1:
        raise InputError(f"limit: {limit} is not a positive number of events")
    if isinstance(since, date) and not isinstance(since, datetime):  # from midnight, China time
        since = datetime.combine(since, datetime.min.time(), CHINA_TZ)
    rows = conn.execute(sa.text("""
        SELECT id, at, actor, action, entity, entity_id, detail FROM audit_log
        WHERE (CAST(:entity AS text) IS NULL OR entity = :entity)
          AND (CAST(:action AS text) IS NULL OR action = :action)
          AND (CAST(:since AS timestamptz) IS NULL OR at >= :since)
        ORDER BY at DESC, id DESC LIMIT :limit"""),
        {"entity": entity, "action": action, "since": since, "limit": limit}).mappings()
    return [dict(r) for r in rows]


def _json_value(value: Any) -> Any:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return str(value)
