"""Validation of a hazard report (every bad field named) and the photo store."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from gisgrid.errors import InputError
from gisgrid.hazards.categories import category_for_item, render_category_table
from gisgrid.hazards.photos import verify_photo, write_photo
from gisgrid.hazards.reports import HazardReport, validate_report

NOW = datetime(2025, 10, 9, 8, tzinfo=timezone.utc)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def report(**changes):
    base = dict(lon=113.9, lat=29.72, category="fireworks", description="仓库违规存放烟花")
    base.update(changes)
    return HazardReport(**base)


def test_valid_report_is_normalised():
    uid = uuid.uuid4()
    ok, photos = validate_report(report(client_uuid=str(uid).upper(), description="  x  ",
                                        photos=(PNG,)), now=NOW)
    assert ok.client_uuid == str(uid) and ok.description == "x" and ok.reported_at == NOW
    assert [p.suffix for p in photos] == ["png"]
    generated, _ = validate_report(report(), now=NOW)
    assert uuid.UUID(generated.client_uuid).version == 4


def test_every_bad_field_is_named_at_once(tmp_path):
    bad = report(lon=181.0, lat=float("nan"), category="ufo", description=" ",
                 client_uuid="not-a-uuid", reported_at=NOW + timedelta(days=1),
                 unit_id=0, reporter_id=True,
                 photos=(b"", b"plain text", str(tmp_path / "missing.jpg")))
    with pytest.raises(InputError) as err:
        validate_report(bad, now=NOW)
    fields = [d.split(":")[0] for d in err.value.details]
    assert fields == ["lon", "lat", "category", "description", "client_uuid", "reported_at",
                      "reporter_id", "unit_id", "photos[0]", "photos[1]", "photos[2]"]
    assert "future" in err.value.details[5]
    assert "'ufo'" in err.value.details[2] and "other)" in err.value.details[2]  # all allowed


def test_naive_time_is_refused():
    with pytest.raises(InputError, match="reported_at: needs a date, time and time zone"):
        validate_report(report(reported_at=datetime(2025, 10, 1, 9)), now=NOW)


def test_photo_store_is_content_addressed_and_verifiable(tmp_path):
    _, (photo,) = validate_report(report(photos=(PNG,)), now=NOW)
    first = write_photo(photo, tmp_path)
    again = write_photo(photo, tmp_path)
    assert first == again and first.sha256 == hashlib.sha256(PNG).hexdigest()
    assert first.bytes == len(PNG) and first.path.endswith(".png")
    assert verify_photo(first, tmp_path)
    (tmp_path / first.path).write_bytes(PNG + b"tampered")
    assert not verify_photo(first, tmp_path)


def test_checklist_items_map_to_categories():
    assert category_for_item("C05") == "fire_passage"
    assert category_for_item("V02") == category_for_item("C01") == "fireworks"
    assert category_for_item("C99") == "other"
    assert "| `power_line` | 电力线路受人、物影响 |" in render_category_table()
