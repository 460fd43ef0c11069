"""People of the grids: grid workers (网格员), officers and cadres, their assignments and training.

Pure rules shared by the CLI and the API:

- every base grid has one full- or part-time grid worker (各网格要有一名专(兼)职网格员):
  :func:`check_base_grid_workers` finds base grids with none or several on a day;
- an assignment is a role in a grid over a period of days (``valid_to`` None = open-ended,
  both ends inclusive); the role fits the grid's level; the same person cannot hold the same
  role in the same grid twice over overlapping days (:func:`check_assignment`);
- a second grid worker on a base grid is allowed (hand-over periods happen) but reported as a
  warning, and the audit flags it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

from gisgrid.errors import Conflict, InputError
from gisgrid.levels import Level

PERSON_KINDS = ("grid_worker", "officer", "cadre")
EMPLOYMENTS = ("full_time", "part_time")
ASSIGNMENT_ROLES = ("grid_worker", "contact_cadre", "safety_officer", "head")
ROLE_LEVELS = {
    "grid_worker": (Level.BASE,),
    "contact_cadre": (Level.BASE,),
    "safety_officer": (Level.VILLAGE, Level.TOWNSHIP),
    "head": tuple(Level),
}
ROLE_LABELS_ZH = {"grid_worker": "网格员", "contact_cadre": "联系干部",
                  "safety_officer": "安全生产专责人员", "head": "网格负责人"}


@dataclass(frozen=True)
class PersonRecord:
    """A person as entered (``id`` None) or as stored."""

    name: str
    kind: str
    phone: str | None = None
    id_number: str | None = None
    employment: str | None = None
    active: bool = True
    id: int | None = None


@dataclass(frozen=True)
class AssignmentRecord:
    """A role of a person in a grid from ``valid_from`` to ``valid_to`` (inclusive; None = open)."""

    person_id: int
    grid_id: int
    role: str
    valid_from: date
    valid_to: date | None = None
    id: int | None = None

    def active_on(self, day: date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)


@dataclass(frozen=True)
class WorkerFinding:
    """A base grid without exactly one grid worker on a day."""

    grid_id: int
    day: date
    problem: str  # "no_worker" | "several_workers"
    person_ids: tuple[int, ...] = ()


def validate_person(data: Mapping) -> PersonRecord:
    """Check a new person's fields; :class:`InputError` lists every bad field.

    >>> validate_person({"name": "张三", "kind": "grid_worker", "employment": "part_time"}).kind
    'grid_worker'
    """
    problems = []
    name = _clean(data.get("name"))
    if name is None:
        problems.append("name: missing or empty")
    kind = data.get("kind")
    if kind not in PERSON_KINDS:
        problems.append(f"kind: {kind!r} is not one of {', '.join(PERSON_KINDS)}")
    employment = _clean(data.get("employment"))
    if employment is not None and employment not in EMPLOYMENTS:
        problems.append(f"employment: {employment!r} is not one of {', '.join(EMPLOYMENTS)}")
    if kind == "grid_worker" and employment is None:
        problems.append("employment: a grid worker is full_time or part_time (专职/兼职)")
    phone = _clean(data.get("phone"))
    if phone is not None and not phone.replace("-", "").replace("+", "").isdigit():
        problems.append(f"phone: {phone!r} is not a phone number")
    id_number = _clean(data.get("id_number"))
    if id_number is not None and not (len(id_number) == 18 and id_number[:17].isdigit()
                                      and (id_number[17].isdigit() or id_number[17] in "xX")):
        problems.append(f"id_number: {id_number!r} is not an 18-character resident ID number")
    if problems:
        raise InputError("person refused", problems)
    return PersonRecord(name=name, kind=kind, phone=phone, id_number=id_number,
                        employment=employment, active=bool(data.get("active", True)))


def _clean(value) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def periods_overlap(a_from: date, a_to: date | None, b_from: date, b_to: date | None) -> bool:
    """True when two inclusive day periods share a day (None = open-ended).

    >>> periods_overlap(date(2024, 1, 1), date(2024, 1, 31), date(2024, 1, 31), None)
    True
    >>> periods_overlap(date(2024, 1, 1), date(2024, 1, 30), date(2024, 1, 31), None)
    False
    """
    return (a_to is None or b_from <= a_to) and (b_to is None or a_from <= b_to)


def check_assignment(new: AssignmentRecord, *, grid_level: int, person: PersonRecord,
                     existing: Iterable[AssignmentRecord],
                     grid_code: str | None = None) -> list[str]:
    """Check a new assignment against the grid, the person and the grid's other assignments.

    Returns warnings (a second grid worker on the base grid over overlapping days). Messages
    name the grid by ``grid_code`` when given, else by its id.

    Raises
    ------
    InputError
        ``valid_to`` before ``valid_from``, unknown role, role not held at the grid's level,
        a grid-worker role for a person who is not a grid worker, or an inactive person.
    Conflict
        The same person already holds the same role in the same grid on overlapping days.
    """
    problems = []
    if new.role not in ASSIGNMENT_ROLES:
        problems.append(f"role: {new.role!r} is not one of {', '.join(ASSIGNMENT_ROLES)}")
    elif Level(grid_level) not in ROLE_LEVELS[new.role]:
        allowed = ", ".join(level.label_en for level in ROLE_LEVELS[new.role])
        problems.append(f"role: a {new.role} is assigned to a grid at {allowed}, not "
                        f"{Level(grid_level).label_en}")
    if new.valid_to is not None and new.valid_to < new.valid_from:
        problems.append(f"valid_to {new.valid_to} is before valid_from {new.valid_from}")
    if new.role == "grid_worker" and person.kind != "grid_worker":
        problems.append(f"person {person.id} ({person.name}) is a {person.kind}, not a "
                        "grid worker")
    if not person.active:
        problems.append(f"person {person.id} ({person.name}) is not active")
    if problems:
        raise InputError("assignment refused", problems)
    grid = grid_code if grid_code is not None else new.grid_id
    warnings = []
    for other in existing:
        if other.grid_id != new.grid_id or other.role != new.role:
            continue
        if not periods_overlap(new.valid_from, new.valid_to, other.valid_from, other.valid_to):
            continue
        if other.person_id == new.person_id:
            raise Conflict(f"person {new.person_id} is already {new.role} of grid {grid} "
                           f"from {other.valid_from} to {other.valid_to or 'open'}",
                           [f"assignment {other.id} overlaps {new.valid_from} to "
                            f"{new.valid_to or 'open'}"])
        if new.role == "grid_worker":
            warnings.append(f"grid {grid} also has grid worker {other.person_id} from "
                            f"{other.valid_from} to {other.valid_to or 'open'}: a base grid "
                            "should have exactly one")
    return warnings


def check_base_grid_workers(base_grid_ids: Iterable[int],
                            assignments: Iterable[AssignmentRecord],
                            day: date) -> list[WorkerFinding]:
    """Base grids with no grid worker, or several, on ``day``.

    >>> a = [AssignmentRecord(1, 10, "grid_worker", date(2024, 1, 1)),
    ...      AssignmentRecord(2, 10, "grid_worker", date(2024, 3, 1))]
    >>> [(f.grid_id, f.problem) for f in check_base_grid_workers([10, 11], a, date(2024, 3, 2))]
    [(10, 'several_workers'), (11, 'no_worker')]
    """
    workers: dict[int, set[int]] = {}
    for a in assignments:
        if a.role == "grid_worker" and a.active_on(day):
            workers.setdefault(a.grid_id, set()).add(a.person_id)
    findings = []
    for grid_id in base_grid_ids:
        people = workers.get(grid_id, set())
        if len(people) != 1:
            findings.append(WorkerFinding(grid_id, day,
                                          "no_worker" if not people else "several_workers",
                                          tuple(sorted(people))))
    return findings


def validate_training(course, held_on, hours) -> tuple[str, date, Decimal | None]:
    """Check a training record (course name, day held, hours > 0 or None)."""
    problems = []
    course = _clean(course)
    if course is None:
        problems.append("course: missing or empty")
    if isinstance(held_on, str):
        try:
            held_on = date.fromisoformat(held_on)
        except ValueError:
            problems.append(f"held_on: {held_on!r} is not a date (YYYY-MM-DD)")
    elif not isinstance(held_on, date):
        problems.append("held_on: missing")
    value = None
    if hours is not None:
        try:
            value = Decimal(str(hours))
            if not value.is_finite() or value <= 0 or value > 1000:
                problems.append(f"hours: {hours!r} is not a positive number of hours")
        except InvalidOperation:
            problems.append(f"hours: {hours!r} is not a number")
    if problems:
        raise InputError("training refused", problems)
    return course, held_on, value
