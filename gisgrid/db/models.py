"""GeoAlchemy2 models of the whole gisgrid domain (SQLAlchemy 2 declarative).

Column names are a contract the other modules code against. Enumerations are ``text`` columns
with CHECK constraints (not PostgreSQL ENUM types) so that adding a value is one cheap
migration; the allowed values are exported below as tuples.

Every geometry is declared in EPSG:4490 (CGCS2000) and has a GiST index. A database first
upgraded with another storage SRID (``GISGRID_SRID``) stores that one instead: the storage layer
reads the effective value with :func:`gisgrid.db.engine.storage_srid` (``setting`` table,
key ``storage_srid``), never from these declarations.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from geoalchemy2 import Geometry
from sqlalchemy import (CHAR, BigInteger, Boolean, CheckConstraint, Date, DateTime, Double,
                        ForeignKey, Identity, Index, Integer, MetaData, Numeric, REAL, SmallInteger,
                        Text, UniqueConstraint, Uuid, false, func, text, true)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from gisgrid.crs import DEFAULT_SRID
from gisgrid.levels import ALL_KINDS, KINDS_BY_LEVEL

SRID = DEFAULT_SRID

GRID_KINDS = ALL_KINDS
GRID_CHANGES = ("import", "edit", "repair", "retire", "create")
PERSON_KINDS = ("grid_worker", "officer", "cadre")
EMPLOYMENTS = ("full_time", "part_time")
ASSIGNMENT_ROLES = ("grid_worker", "contact_cadre", "safety_officer", "head")
UNIT_CLASSES = ("enterprise_above_scale", "high_risk_micro", "fire_key_unit", "school",
                "kindergarten", "hospital", "park", "public_institution", "other_micro",
                "individual_business")
UNIT_MANAGEMENT = ("individual", "packaged")
CHECKLIST_CODES = ("community", "village")
CHECKLIST_ITEM_KINDS = ("check", "in_place", "report")
TASK_STATUSES = ("open", "done", "carried_over")
ITEM_RESULTS = ("ok", "hazard_found", "not_checked")
# 上报 受理 派遣 处置 核查 结案 退回 延期 挂账 作废
HAZARD_STATES = ("reported", "accepted", "dispatched", "handling", "verifying", "closed",
                 "returned", "postponed", "suspended", "voided")
FINDING_KINDS = ("invalid_geometry", "overlap", "gap", "outside_parent", "edge_mismatch",
                 "orphan", "childless_parent", "duplicate_code", "straddles_parents", "sliver")
FINDING_STATUSES = ("open", "accepted")
USER_ROLES = ("city_admin", "planner", "township_officer", "village_officer", "grid_worker",
              "auditor")

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every gisgrid table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def one_of(column: str, values: tuple[str, ...]) -> CheckConstraint:
    """CHECK constraint ``column IN (values)`` named ``ck_<table>_<column>_allowed``."""
    listed = ", ".join(f"'{v}'" for v in values)
    return CheckConstraint(f"{column} IN ({listed})", name=f"{column}_allowed")


def _kind_matches_level() -> str:
    parts = []
    for level, kinds in KINDS_BY_LEVEL.items():
        listed = ", ".join(f"'{k}'" for k in kinds)
        parts.append(f"(level = {int(level)} AND kind IN ({listed}))")
    return " OR ".join(parts)


def _pk() -> Mapped[int]:
    return mapped_column(BigInteger, Identity(), primary_key=True)


def _created_at() -> Mapped[dt.datetime]:
    return mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())


def _geometry(kind: str) -> Geometry:
    return Geometry(geometry_type=kind, srid=SRID, spatial_index=True)


class GridChain:
    """The grid ids of a fact at the four levels, plus ``outside_grids`` (kept but flagged)."""

    city_grid_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("grid.id"),
                                                     index=True)
    township_grid_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("grid.id"),
                                                         index=True)
    village_grid_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("grid.id"),
                                                        index=True)
    base_grid_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("grid.id"),
                                                     index=True)
    outside_grids: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=false())


# ---------------------------------------------------------------------------- settings
class Setting(Base):
    """Key/value facts about the database itself (e.g. ``storage_srid``)."""

    __tablename__ = "setting"

    key: Mapped[str] = mapped_column(Text, primary_key=True)
    value: Mapped[str | None] = mapped_column(Text)


# ---------------------------------------------------------------------------- grids
class Grid(Base):
    """One version of a grid at any level (网格); ``valid_to IS NULL`` is the current one."""

    __tablename__ = "grid"
    __table_args__ = (
        CheckConstraint("level BETWEEN 1 AND 4", name="level_range"),
        one_of("kind", GRID_KINDS),
        CheckConstraint(_kind_matches_level(), name="kind_matches_level"),
        CheckConstraint("(level = 1) = (parent_id IS NULL)", name="parent_iff_not_city"),
        CheckConstraint("valid_to IS NULL OR valid_to >= valid_from", name="valid_period"),
        Index("uq_grid_code_current", "code", unique=True,
              postgresql_where=text("valid_to IS NULL")),
        Index("ix_grid_path", "path", postgresql_ops={"path": "text_pattern_ops"}),
    )

    id: Mapped[int] = _pk()
    code: Mapped[str] = mapped_column(Text, nullable=False)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    level: Mapped[int] = mapped_column(SmallInteger, nullable=False, index=True)
    kind: Mapped[str] = mapped_column(Text, nullable=False)
    parent_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("grid.id"), index=True)
    path: Mapped[str] = mapped_column(Text, nullable=False)
    responsible_org: Mapped[str | None] = mapped_column(Text)
    geom = mapped_column(_geometry("MULTIPOLYGON"), nullable=False)
    area_m2: Mapped[float | None] = mapped_column(Double)
    version: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("1"))
    valid_from: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False,
                                                    server_default=func.now())
    valid_to: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    row_version: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("1"))
    created_at: Mapped[dt.datetime] = _created_at()
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False,
                                                    server_default=func.now(),
                                                    onupdate=func.now())

    parent: Mapped[Grid | None] = relationship(remote_side=[id], back_populates="children")
    children: Mapped[list[Grid]] = relationship(back_populates="parent")

    __mapper_args__ = {"version_id_col": row_version}


class GridHistory(Base):
    """A closed (or superseded) version of a grid, written in the same transaction as the edit."""

    __tablename__ = "grid_history"
    __table_args__ = (
        one_of("change", GRID_CHANGES),
        UniqueConstraint("grid_id", "version"),
        Index("ix_grid_history_grid_id_valid_from", "grid_id", "valid_from"),
    )

    id: Mapped[int] = _pk()
    grid_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("grid.id"), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    code: Mapped[str] = mapped_column(Text, nullable=False)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    level: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    kind: Mapped[str] = mapped_column(Text, nullable=False)
    parent_id: Mapped[int | None] = mapped_column(BigInteger)
    path: Mapped[str | None] = mapped_column(Text)
    responsible_org: Mapped[str | None] = mapped_column(Text)
    geom = mapped_column(_geometry("MULTIPOLYGON"))
    area_m2: Mapped[float | None] = mapped_column(Double)
    valid_from: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    valid_to: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    change: Mapped[str] = mapped_column(Text, nullable=False)
    actor: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False,
                                                     server_default=func.now())


# ---------------------------------------------------------------------------- people
class Person(Base):
    """A grid worker (网格员), officer or cadre."""

    __tablename__ = "person"
    __table_args__ = (one_of("kind", PERSON_KINDS), one_of("employment", EMPLOYMENTS))

    id: Mapped[int] = _pk()
    name: Mapped[str] = mapped_column(Text, nullable=False)
    phone: Mapped[str | None] = mapped_column(Text)
    id_number: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text, nullable=False)
    employment: Mapped[str | None] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=true())
    created_at: Mapped[dt.datetime] = _created_at()


class Assignment(Base):
    """A person's role in a grid over a period of days."""

    __tablename__ = "assignment"
    __table_args__ = (
        one_of("role", ASSIGNMENT_ROLES),
        CheckConstraint("valid_to IS NULL OR valid_to >= valid_from", name="valid_period"),
    )

    id: Mapped[int] = _pk()
    person_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("person.id"), nullable=False,
                                           index=True)
    grid_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("grid.id"), nullable=False,
                                         index=True)
    role: Mapped[str] = mapped_column(Text, nullable=False)
    valid_from: Mapped[dt.date] = mapped_column(Date, nullable=False)
    valid_to: Mapped[dt.date | None] = mapped_column(Date)


class Training(Base):
    """A training course a person attended."""

    __tablename__ = "training"

    id: Mapped[int] = _pk()
    person_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("person.id"), nullable=False,
                                           index=True)
    course: Mapped[str] = mapped_column(Text, nullable=False)
    held_on: Mapped[dt.date] = mapped_column(Date, nullable=False)
    hours: Mapped[Decimal | None] = mapped_column(Numeric)


# ---------------------------------------------------------------------------- units
class Unit(GridChain, Base):
    """A production and business unit (生产经营单位) at a point."""

    __tablename__ = "unit"
    __table_args__ = (one_of("unit_class", UNIT_CLASSES), one_of("management", UNIT_MANAGEMENT))

    id: Mapped[int] = _pk()
    external_id: Mapped[str | None] = mapped_column(Text, unique=True)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    address: Mapped[str | None] = mapped_column(Text)
    unit_class: Mapped[str] = mapped_column(Text, nullable=False)
    fire_key_unit: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=false())
    high_risk: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=false())
    management: Mapped[str] = mapped_column(Text, nullable=False)
    geom = mapped_column(_geometry("POINT"), nullable=False)
    created_at: Mapped[dt.datetime] = _created_at()


# ---------------------------------------------------------------------------- checklists
class Checklist(Base):
    """A versioned patrol checklist; ``owner_grid_id`` NULL is the plan's default."""

    __tablename__ = "checklist"
    __table_args__ = (
        one_of("code", CHECKLIST_CODES),
        UniqueConstraint("code", "owner_grid_id", "version", postgresql_nulls_not_distinct=True),
    )

    id: Mapped[int] = _pk()
    code: Mapped[str] = mapped_column(Text, nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    owner_grid_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("grid.id"))
    title_zh: Mapped[str | None] = mapped_column(Text)
    title_en: Mapped[str | None] = mapped_column(Text)
    valid_from: Mapped[dt.date] = mapped_column(Date, nullable=False)
    created_at: Mapped[dt.datetime] = _created_at()

    items: Mapped[list[ChecklistItem]] = relationship(
        back_populates="checklist", order_by="ChecklistItem.position")


class ChecklistItem(Base):
    """One item of a checklist, with its stable code (e.g. ``C01``)."""

    __tablename__ = "checklist_item"
    __table_args__ = (
        one_of("item_kind", CHECKLIST_ITEM_KINDS),
        UniqueConstraint("checklist_id", "position"),
    )

    id: Mapped[int] = _pk()
    checklist_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("checklist.id", ondelete="CASCADE"), nullable=False)
    position: Mapped[int] = mapped_column(Integer, nullable=False)
    item_kind: Mapped[str] = mapped_column(Text, nullable=False)
    code: Mapped[str | None] = mapped_column(Text)
    text_zh: Mapped[str] = mapped_column(Text, nullable=False)
    text_en: Mapped[str] = mapped_column(Text, nullable=False)
    due_workdays: Mapped[int | None] = mapped_column(Integer)

    checklist: Mapped[Checklist] = relationship(back_populates="items")


# ---------------------------------------------------------------------------- patrols
class PatrolPlan(Base):
    """The plan of one base grid for one day."""

    __tablename__ = "patrol_plan"
    __table_args__ = (UniqueConstraint("grid_id", "day"),)

    id: Mapped[int] = _pk()
    grid_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("grid.id"), nullable=False)
    day: Mapped[dt.date] = mapped_column(Date, nullable=False, index=True)
    checklist_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("checklist.id"),
                                              nullable=False)
    created_at: Mapped[dt.datetime] = _created_at()


class PatrolTask(Base):
    """One checklist item planned for a day; unfinished tasks are carried to the next plan."""

    __tablename__ = "patrol_task"
    __table_args__ = (
        one_of("status", TASK_STATUSES),
        # plans find the open tasks to carry over; few tasks are open at any time
        Index("ix_patrol_task_open_plan_id", "plan_id", postgresql_where=text("status = 'open'")),
    )

    id: Mapped[int] = _pk()
    plan_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("patrol_plan.id", ondelete="CASCADE"), nullable=False, index=True)
    item_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("checklist_item.id"),
                                         nullable=False)
    carried_from_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("patrol_task.id"),
                                                       index=True)
    first_planned_on: Mapped[dt.date] = mapped_column(Date, nullable=False)
    status: Mapped[str] = mapped_column(Text, nullable=False, server_default=text("'open'"))


class Patrol(Base):
    """A patrol (巡查) as entered by a worker; ``client_uuid`` makes resubmission idempotent."""

    __tablename__ = "patrol"

    id: Mapped[int] = _pk()
    client_uuid: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False, unique=True)
    plan_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("patrol_plan.id"),
                                                index=True)
    person_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("person.id"),
                                                  index=True)
    grid_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("grid.id"), index=True)
    day: Mapped[dt.date] = mapped_column(Date, nullable=False, index=True)
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    entered_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False,
                                                    server_default=func.now())
    late: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=false())
    track = mapped_column(_geometry("MULTILINESTRING"))
    created_at: Mapped[dt.datetime] = _created_at()


class PatrolItemResult(Base):
    """The result of one checklist item in one patrol."""

    __tablename__ = "patrol_item_result"
    __table_args__ = (one_of("result", ITEM_RESULTS), UniqueConstraint("patrol_id", "item_id"))

    id: Mapped[int] = _pk()
    patrol_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("patrol.id", ondelete="CASCADE"), nullable=False)
    task_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("patrol_task.id"),
                                                index=True)
    item_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("checklist_item.id"),
                                         nullable=False)
    result: Mapped[str] = mapped_column(Text, nullable=False)
    note: Mapped[str | None] = mapped_column(Text)


class GpsPoint(Base):
    """A GPS fix; no foreign keys so that it can be bulk-loaded with COPY.

    Partitioned by month of ``recorded_at`` (China Standard Time month starts); the bulk
    ingest creates each month's partition on demand (:mod:`gisgrid.db.points`), loads it
    and builds its indexes before attaching it. The primary key must hold the partition key.
    """

    __tablename__ = "gps_point"
    __table_args__ = (
        Index("ix_gps_point_base_grid_id_recorded_at", "base_grid_id", "recorded_at"),
        # Bulk GPS has no patrol: index only the rows that have one.
        Index("ix_gps_point_patrol_id", "patrol_id",
              postgresql_where=text("patrol_id IS NOT NULL")),
        {"postgresql_partition_by": "RANGE (recorded_at)"},
    )

    id: Mapped[int] = _pk()
    person_id: Mapped[int | None] = mapped_column(BigInteger)
    patrol_id: Mapped[int | None] = mapped_column(BigInteger)
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    accuracy_m: Mapped[float | None] = mapped_column(REAL)
    geom = mapped_column(_geometry("POINT"), nullable=False)
    city_grid_id: Mapped[int | None] = mapped_column(BigInteger)
    township_grid_id: Mapped[int | None] = mapped_column(BigInteger)
    village_grid_id: Mapped[int | None] = mapped_column(BigInteger)
    base_grid_id: Mapped[int | None] = mapped_column(BigInteger)
    outside_grids: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=false())


class PatrolCoverage(Base):
    """Share of a grid covered by the day's tracks buffered by ``buffer_m`` metres."""

    __tablename__ = "patrol_coverage"
    __table_args__ = (CheckConstraint("covered_share BETWEEN 0 AND 1", name="share_range"),)

    grid_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("grid.id"), primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    buffer_m: Mapped[float] = mapped_column(REAL, primary_key=True)
    covered_share: Mapped[float] = mapped_column(Double, nullable=False)
    computed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False,
                                                     server_default=func.now())


# ---------------------------------------------------------------------------- hazards
class Hazard(GridChain, Base):
    """A hazard (隐患) and its current state; every change is a :class:`HazardEvent`."""

    __tablename__ = "hazard"
    __table_args__ = (one_of("state", HAZARD_STATES),)

    id: Mapped[int] = _pk()
    client_uuid: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False, unique=True)
    geom = mapped_column(_geometry("POINT"), nullable=False)
    category_item_id: Mapped[int | None] = mapped_column(BigInteger,
                                                         ForeignKey("checklist_item.id"))
    category: Mapped[str] = mapped_column(Text, nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    reporter_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("person.id"))
    unit_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("unit.id"), index=True)
    major: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=false())
    state: Mapped[str] = mapped_column(Text, nullable=False, server_default=text("'reported'"),
                                       index=True)
    reported_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False,
                                                     index=True)
    due_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    routed_to_grid_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("grid.id"))
    duplicate_of_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("hazard.id"))
    created_at: Mapped[dt.datetime] = _created_at()

    events: Mapped[list[HazardEvent]] = relationship(back_populates="hazard",
                                                     order_by="HazardEvent.id")


class HazardEvent(Base):
    """One transition of a hazard's state (the event log)."""

    __tablename__ = "hazard_event"

    id: Mapped[int] = _pk()
    hazard_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("hazard.id", ondelete="CASCADE"), nullable=False, index=True)
    from_state: Mapped[str | None] = mapped_column(Text)
    to_state: Mapped[str] = mapped_column(Text, nullable=False)
    action: Mapped[str] = mapped_column(Text, nullable=False)
    actor: Mapped[str] = mapped_column(Text, nullable=False)
    role: Mapped[str | None] = mapped_column(Text)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False,
                                            server_default=func.now())
    note: Mapped[str | None] = mapped_column(Text)

    hazard: Mapped[Hazard] = relationship(back_populates="events")


class HazardPhoto(Base):
    """A photo of a hazard, stored on disk and identified by its SHA-256."""

    __tablename__ = "hazard_photo"
    __table_args__ = (UniqueConstraint("hazard_id", "sha256"),)

    id: Mapped[int] = _pk()
    hazard_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("hazard.id", ondelete="CASCADE"), nullable=False)
    path: Mapped[str | None] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(CHAR(64), nullable=False)
    bytes: Mapped[int | None] = mapped_column(BigInteger)


# ---------------------------------------------------------------------------- validation
class ValidationRun(Base):
    """One run of the coverage validation (from the database or a file)."""

    __tablename__ = "validation_run"

    id: Mapped[int] = _pk()
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False,
                                                    server_default=func.now())
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    source: Mapped[str | None] = mapped_column(Text)
    scope_level: Mapped[int | None] = mapped_column(SmallInteger)
    scope_code: Mapped[str | None] = mapped_column(Text)
    params: Mapped[dict | None] = mapped_column(JSONB)
    summary: Mapped[dict | None] = mapped_column(JSONB)
    actor: Mapped[str | None] = mapped_column(Text)


class Finding(Base):
    """A defect found by a validation run; ``fingerprint`` is stable across runs."""

    __tablename__ = "finding"
    __table_args__ = (one_of("kind", FINDING_KINDS), one_of("status", FINDING_STATUSES))

    id: Mapped[int] = _pk()
    run_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("validation_run.id", ondelete="CASCADE"), nullable=False,
        index=True)
    fingerprint: Mapped[str] = mapped_column(Text, nullable=False, index=True)
    kind: Mapped[str] = mapped_column(Text, nullable=False)
    level: Mapped[int | None] = mapped_column(SmallInteger)
    codes: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False)
    parent_code: Mapped[str | None] = mapped_column(Text)
    area_m2: Mapped[float | None] = mapped_column(Double)
    width_m: Mapped[float | None] = mapped_column(Double)
    geom = mapped_column(_geometry("GEOMETRY"))
    detail: Mapped[dict | None] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(Text, nullable=False, server_default=text("'open'"))


class AcceptedException(Base):
    """A finding accepted by a reviewer; void once a geometry it involves changes."""

    __tablename__ = "accepted_exception"

    id: Mapped[int] = _pk()
    fingerprint: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    kind: Mapped[str | None] = mapped_column(Text)
    codes: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    reviewer: Mapped[str] = mapped_column(Text, nullable=False)
    accepted_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False,
                                                     server_default=func.now())
    grid_versions: Mapped[dict] = mapped_column(JSONB, nullable=False)


# ---------------------------------------------------------------------------- users, audit
class AppUser(Base):
    """A user of the web app / API with a role and a grid scope."""

    __tablename__ = "app_user"
    __table_args__ = (one_of("role", USER_ROLES),)

    id: Mapped[int] = _pk()
    username: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    password_hash: Mapped[str] = mapped_column(Text, nullable=False)
    role: Mapped[str] = mapped_column(Text, nullable=False)
    scope_grid_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("grid.id"))
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=true())
    created_at: Mapped[dt.datetime] = _created_at()


class ApiToken(Base):
    """An API token of a user (only its hash is stored)."""

    __tablename__ = "api_token"

    id: Mapped[int] = _pk()
    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("app_user.id", ondelete="CASCADE"), nullable=False, index=True)
    token_hash: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    created_at: Mapped[dt.datetime] = _created_at()
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class AuditLog(Base):
    """Who did what to which entity, and when."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_entity_entity_id", "entity", "entity_id"),)

    id: Mapped[int] = _pk()
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False,
                                            server_default=func.now(), index=True)
    actor: Mapped[str | None] = mapped_column(Text)
    action: Mapped[str] = mapped_column(Text, nullable=False)
    entity: Mapped[str | None] = mapped_column(Text)
    entity_id: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict | None] = mapped_column(JSONB)
