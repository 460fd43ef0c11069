"""A hazard report as submitted (:class:`HazardReport`), its validation, and the stored record.

Pure: the API and the CLI build a :class:`HazardReport`, :func:`validate_report` checks every
field at once (an :class:`~gisgrid.errors.InputError` lists each bad field by name), and
:func:`gisgrid.db.hazards.record_hazard` stores it. Photos are given as file paths or bytes;
their content is checked here (an image, not empty, not too large), stored by
:mod:`gisgrid.hazards.photos`.
"""

from __future__ import annotations

import math
import os
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

from gisgrid.errors import InputError
from gisgrid.hazards.categories import CATEGORIES
from gisgrid.hazards.duplicates import DuplicateCandidate

MAX_PHOTO_BYTES = 20 * 1024 * 1024
MAX_DESCRIPTION_CHARS = 4000
CLOCK_SKEW = timedelta(minutes=10)
EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc)

_IMAGE_MAGIC = (
    (b"\xff\xd8\xff", "jpg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
)


@dataclass(frozen=True)
class HazardReport:
    """What a grid worker submits. ``client_uuid`` makes resubmission idempotent."""

    lon: float
    lat: float
    category: str
    description: str
    client_uuid: str | None = None
    reported_at: datetime | None = None
    major: bool = False
    reporter_id: int | None = None
    unit_id: int | None = None
    category_item_id: int | None = None
    photos: tuple = ()
    item_code: str | None = None
    """Stable code of the checklist item (``C05``) when the id is not known to the client."""


@dataclass(frozen=True)
class PhotoContent:
    """A validated photo: its bytes and the file suffix of its image type."""

    data: bytes = field(repr=False)
    suffix: str


@dataclass(frozen=True)
class HazardRecord:
    """A stored hazard (a ``hazard`` row), with its photos and duplicate suggestions.

    ``created`` is False when the report was a resubmission of an existing ``client_uuid``.
    """

    id: int
    client_uuid: str
    lon: float
    lat: float
    category: str
    category_item_id: int | None
    description: str
    reporter_id: int | None
    unit_id: int | None
    major: bool
    state: str
    reported_at: datetime
    due_at: datetime | None
    closed_at: datetime | None
    routed_to_grid_id: int | None
    duplicate_of_id: int | None
    city_grid_id: int | None
    township_grid_id: int | None
    village_grid_id: int | None
    base_grid_id: int | None
    outside_grids: bool
    created_at: datetime | None = None
    created: bool = True
    duplicates: tuple[DuplicateCandidate, ...] = ()

    def to_dict(self) -> dict:
        """JSON-ready mapping (times as ISO 8601)."""
        out = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if isinstance(value, datetime):
                value = value.isoformat()
            elif name == "duplicates":
                value = [{"hazard_id": c.hazard_id, "reason": c.reason, "distance_m": c.distance_m}
                         for c in value]
            out[name] = value
        return out


def _read_photo(item, where: str, problems: list[str]) -> PhotoContent | None:
    if isinstance(item, (bytes, bytearray)):
        data = bytes(item)
    elif isinstance(item, (str, os.PathLike)):
        try:
            data = Path(item).read_bytes()
        except OSError as exc:
            problems.append(f"{where}: cannot read {os.fspath(item)!r}: {exc.strerror or exc}")
            return None
    else:
        problems.append(f"{where}: expected a file path or bytes, got {type(item).__name__}")
        return None
    if not data:
        problems.append(f"{where}: empty file")
        return None
    if len(data) > MAX_PHOTO_BYTES:
        problems.append(f"{where}: {len(data)} bytes, more than {MAX_PHOTO_BYTES}")
        return None
    for magic, suffix in _IMAGE_MAGIC:
        if data.startswith(magic):
            return PhotoContent(data, suffix)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return PhotoContent(data, "webp")
    if data[4:8] == b"ftyp" and data[8:12] in (b"heic", b"heix", b"mif1", b"msf1"):
        return PhotoContent(data, "heic")
    problems.append(f"{where}: not a JPEG, PNG, GIF, WebP or HEIC image")
    return None


def _optional_id(value, name: str, problems: list[str]) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        problems.append(f"{name}: must be a positive integer id, got {value!r}")


def validate_report(
    report: HazardReport, *, now: datetime | None = None
) -> tuple[HazardReport, tuple[PhotoContent, ...]]:
    """Check every field of ``report``; return it normalised, and its photos' content.

    Normalised: ``client_uuid`` in canonical lower-case form (a new UUID4 when absent),
    ``reported_at`` set to ``now`` when absent, description stripped.

    Raises
    ------
    InputError
        One detail line per bad field, named as in the API/CLI (``lon``, ``lat``,
        ``category``, ``description``, ``client_uuid``, ``reported_at``, ``photos[i]``...).

    Examples
    --------
    >>> validate_report(HazardReport(200, 29.7, "x", ""))
    Traceback (most recent call last):
    ...
    gisgrid.errors.InputError: hazard report refused: 3 bad fields
      - lon: 200 is outside -180..180
      - category: unknown hazard category 'x' (allowed: fireworks, methanol_fuel, ...)
      - description: required
    """
    now = now or datetime.now(timezone.utc)
    problems: list[str] = []
    for name, value, limit in (("lon", report.lon, 180), ("lat", report.lat, 90)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            problems.append(f"{name}: must be a number in degrees, got {value!r}")
        elif not -limit <= value <= limit:
            problems.append(f"{name}: {value!r} is outside -{limit}..{limit}")
    if report.category not in CATEGORIES:
        problems.append(f"category: unknown hazard category {report.category!r} "
                        f"(allowed: {', '.join(CATEGORIES)})")
    description = report.description.strip() if isinstance(report.description, str) else ""
    if not description:
        problems.append("description: required")
    elif len(description) > MAX_DESCRIPTION_CHARS:
        problems.append(f"description: {len(description)} characters, more than {MAX_DESCRIPTION_CHARS}")
    client_uuid = report.client_uuid
    if client_uuid is None:
        client_uuid = str(uuid.uuid4())
    else:
        try:
            client_uuid = str(uuid.UUID(str(client_uuid)))
        except ValueError:
            problems.append(f"client_uuid: {client_uuid!r} is not a UUID")
    reported_at = report.reported_at or now
    if not isinstance(reported_at, datetime) or reported_at.tzinfo is None:
        problems.append(f"reported_at: needs a date, time and time zone, got {reported_at!r}")
    elif reported_at > now + CLOCK_SKEW:
        problems.append(f"reported_at: {reported_at.isoformat()} is in the future")
    elif reported_at < EARLIEST:
        problems.append(f"reported_at: {reported_at.isoformat()} is before {EARLIEST.year}")
    if not isinstance(report.major, bool):
        problems.append(f"major: must be true or false, got {report.major!r}")
    _optional_id(report.reporter_id, "reporter_id", problems)
    _optional_id(report.unit_id, "unit_id", problems)
    _optional_id(report.category_item_id, "category_item_id", problems)
    if report.item_code is not None and (not isinstance(report.item_code, str)
                                         or not report.item_code.strip()):
        problems.append(f"item_code: must be a checklist item code like C05, got {report.item_code!r}")
    photos = tuple(p for i, item in enumerate(report.photos)
                   if (p := _read_photo(item, f"photos[{i}]", problems)) is not None)
    if problems:
        noun = "field" if len(problems) == 1 else "fields"
        raise InputError(f"hazard report refused: {len(problems)} bad {noun}", problems)
    normal = replace(report, client_uuid=client_uuid, reported_at=reported_at,
                     description=description, lon=float(report.lon), lat=float(report.lat))
    return normal, photos
