"""``gisgrid hazards`` end to end on the session's PostGIS: exit codes and output.

These commands commit, so every hazard here lies outside every grid (no grid is written) and
is found again by its own uuid or id.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime

import pytest
import sqlalchemy as sa

from gisgrid.clock import CHINA_TZ

pytestmark = pytest.mark.db

PNG = b"\x89PNG\r\n\x1a\n" + b"\x02" * 24


@pytest.fixture
def gisgrid(postgis_url, gisgrid_on, monkeypatch):
    """Run ``gisgrid ARGS...`` as 测试员; return (exit code, stdout, stderr)."""
    monkeypatch.setenv("GISGRID_ACTOR", "测试员")
    return gisgrid_on(postgis_url)


def report_args(uid, *extra):
    return ["hazards", "report", "--lon", "113.9", "--lat", "29.7", "--category", "C05",
            "--description", "消防通道堵塞", "--uuid", uid, "--format", "json", *extra]


def test_report_resubmit_advance_show_list(gisgrid, tmp_path):
    photo = tmp_path / "p.png"
    photo.write_bytes(PNG)
    uid = str(uuid.uuid4())
    code, out, err = gisgrid(*report_args(uid, "--photo", photo, "--at", "2025-09-26T10:00"))
    assert code == 0, err
    hazard = json.loads(out)
    assert hazard["category"] == "fire_passage"
    assert hazard["outside_grids"] is True and hazard["state"] == "reported"
    # item C05 allows 1 workday: Sat 27 Sep is off, Sun 28 Sep a make-up working day
    due = datetime.fromisoformat(hazard["due_at"]).astimezone(CHINA_TZ)
    assert due.date().isoformat() == "2025-09-28"
    code, out, _ = gisgrid(*report_args(uid, "--photo", photo, "--at", "2025-09-26T10:00"))
    assert code == 0 and json.loads(out)["id"] == hazard["id"] and not json.loads(out)["created"]
    code, _, err = gisgrid(*report_args(uid, "--at", "2025-09-26T10:00"))
    assert code == 2 and "photos: differs" in err

    hid = hazard["id"]
    assert gisgrid("hazards", "advance", hid, "受理", "--actor", "村专责")[0] == 0
    code, _, err = gisgrid("hazards", "advance", hid, "close", "--actor", "x")
    assert code == 2 and "受理 accepted" in err and "dispatch" in err
    code, out, _ = gisgrid("hazards", "show", hid)
    assert code == 0 and "上报 reported → 受理 accepted  accept  by 村专责" in out
    assert "sha256" in out
    code, out, _ = gisgrid("hazards", "list", "--state", "accepted", "--overdue", "--format", "json")
    assert code == 0 and hid in [h["id"] for h in json.loads(out)]
    code, out, _ = gisgrid("hazards", "list", "--state", "受理")
    line = next(x for x in out.splitlines() if x.startswith(f"#{hid} "))
    assert "受理 accepted  fire_passage" in line and "逾期 overdue" in line
    assert "网格外 outside grids" in line


def test_bad_input_exits_2_naming_the_field(gisgrid):
    code, _, err = gisgrid("hazards", "report", "--lon", "250", "--lat", "29.7", "--category",
                           "ufo", "--description", "x", "--uuid", "nope")
    assert code == 2
    for field in ("lon:", "category:", "client_uuid:"):
        assert field in err
    code, _, err = gisgrid("hazards", "report", "--lon", "east", "--lat", "29.7",
                           "--category", "other", "--description", "x")
    assert code == 2 and "--lon" in err
    assert gisgrid("hazards", "list", "--state", "lost")[0] == 2
    code, _, err = gisgrid("hazards", "advance", "999999999", "accept", "--actor", "x")
    assert code == 2 and "no such hazard" in err
    code, _, err = gisgrid("hazards", "advance", "1", "fly", "--actor", "x")
    assert code == 2 and "action: unknown action 'fly'" in err


def test_link_duplicate(gisgrid):
    ids = []
    for _ in range(2):
        code, out, err = gisgrid("hazards", "report", "--lon", "114.3", "--lat", "29.9",
                                 "--category", "power_line", "--description", "电线被树枝压住",
                                 "--format", "json")
        assert code == 0, err
        ids.append(json.loads(out)["id"])
    assert ids[0] in [d["hazard_id"] for d in json.loads(out)["duplicates"]]
    code, out, _ = gisgrid("hazards", "link", ids[1], "--duplicate-of", ids[0])
    assert code == 0 and f"duplicate of #{ids[0]}" in out
    assert gisgrid("hazards", "link", ids[0], "--duplicate-of", ids[1])[0] == 2


def test_a_hazard_locked_by_another_officer_exits_2_without_a_traceback(
        gisgrid, engine, monkeypatch):
    from gisgrid.db.engine import dispose_engines

    code, out, err = gisgrid(*report_args(str(uuid.uuid4())))
    assert code == 0, err
    hazard_id = json.loads(out)["id"]
    dispose_engines()  # the command's connections must start with the lock timeout below
    monkeypatch.setenv("PGOPTIONS", "-c lock_timeout=200")
    try:
        with engine.connect() as other:
            other.begin()
            other.execute(sa.text("SELECT 1 FROM hazard WHERE id = :id FOR UPDATE"),
                          {"id": hazard_id})
            code, _, err = gisgrid("hazards", "advance", hazard_id, "accept", "--actor", "乙")
            other.rollback()
    finally:
        dispose_engines()
    assert code == 2
    assert err.startswith("gisgrid: the change collides with the stored data") and "lock" in err
    assert "Traceback" not in err
