"""``gisgrid validate --db``, ``gisgrid validate accept`` and ``gisgrid repair --db --apply``
through the real command, on their own databases (the commands commit).

Each test gets a fresh database (``make_database``) holding the messy hierarchy of
``tests/db/test_coverage_db.py``: city C = township C.01 = village C.01.001 = one square, and
~40 base grids digitised with noise and quantised, so they overlap and leave gaps.
"""

from __future__ import annotations

import json
import uuid

import pytest
import sqlalchemy as sa

from gisgrid.db.grids import read_grids, write_grids
from gisgrid.grids import prepare_grids
from tests.db.test_coverage_db import write_messy_hierarchy

pytestmark = pytest.mark.db


@pytest.fixture
def stored_url(make_database):
    """URL of a new database, migrated, with the messy hierarchy committed."""
    from gisgrid.db import migrate

    url = make_database(f"coverage_cli_{uuid.uuid4().hex[:8]}")
    migrate.upgrade(url)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as connection:
        write_messy_hierarchy(connection)
    engine.dispose()
    return url


@pytest.fixture
def gisgrid(stored_url, gisgrid_on):
    """Run ``gisgrid ARGS...`` on the test's database; return (exit code, stdout, stderr)."""
    return gisgrid_on(stored_url)


def validate_json(gisgrid, *args):
    code, out, err = gisgrid("validate", "--db", "--format", "json", *args)
    return code, json.loads(out), err


def test_validate_accept_and_lapse_after_an_edit(gisgrid, stored_url):
    code, report, err = validate_json(gisgrid)
    assert code == 1 and "validation run" in err
    summary = report["summary"]
    assert not summary["valid"] and summary["gaps"]["count"] > 0 and summary["accepted"] == 0
    gap = next(f for f in report["findings"] if f["kind"] == "gap")
    assert gap["id"].isdigit()     # the stored row id

    code, out, _ = gisgrid("validate", "accept", gap["id"], "--reason", "river bed, no grid",
                           "--reviewer", "auditor")
    assert code == 0 and f"finding {gap['id']} accepted" in out and "auditor" in out

    code, again, _ = validate_json(gisgrid)
    assert code == 1                                  # other findings remain
    (same,) = [f for f in again["findings"] if f["fingerprint"] == gap["fingerprint"]]
    assert same["accepted"] is True
    assert again["summary"]["accepted"] == 1
    assert again["summary"]["gaps"]["count"] == summary["gaps"]["count"] - 1
    assert again["summary"]["gaps"]["area_m2"] == pytest.approx(
        summary["gaps"]["area_m2"] - gap["area_m2"], abs=1e-3)
    code, text, _ = gisgrid("validate", "--db", "--lang", "en")
    assert code == 1 and "accepted: 1" in text and "[accepted]" in text

    # a new version of one grid the gap involves: the acceptance lapses
    engine = sa.create_engine(stored_url, poolclass=sa.pool.NullPool)
    with engine.begin() as connection:
        grids = read_grids(connection, level=4)
        edited = grids[grids["code"] == gap["codes"][0]].copy()
        edited[edited.geometry.name] = edited.geometry.scale(0.999, 0.999)
        write_grids(connection, prepare_grids(
            edited[["code", "parent_code", "name", edited.geometry.name]], 4),
            actor="tester", change="edit")
    engine.dispose()
    code, after, _ = validate_json(gisgrid)
    assert code == 1 and after["summary"]["accepted"] == 0
    assert not any(f["accepted"] for f in after["findings"])


def test_validate_one_level_under_a_code(gisgrid):
    code, report, _ = validate_json(gisgrid, "--level", "4", "--code", "C.01.001")
    assert code == 1
    assert [entry["level"] for entry in report["levels"]] == [4]
    assert {f["level"] for f in report["findings"]} <= {4, None}
    assert report["summary"]["features"] == report["levels"][0]["features"] > 30
    code, _, err = gisgrid("validate", "--db", "--code", "NO.SUCH.CODE")
    assert code == 2 and "NO.SUCH.CODE" in err


def test_repair_apply_then_validate_exits_zero(gisgrid, stored_url):
    code, before, _ = validate_json(gisgrid)
    assert code == 1 and before["summary"]["overlaps"]["count"] > 0
    code, _, err = gisgrid("repair", "--db", "--apply")
    assert code == 0, err
    assert "level 4" in err
    code, report, _ = validate_json(gisgrid)
    assert code == 0, report["findings"]
    assert report["summary"]["valid"] and report["findings"] == []
    engine = sa.create_engine(stored_url, poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        runs = connection.execute(sa.text(
            "SELECT count(*) FROM validation_run")).scalar_one()
        repaired = connection.execute(sa.text(
            "SELECT count(*) FROM grid_history WHERE change = 'repair'")).scalar_one()
    engine.dispose()
    assert runs == 2 and repaired > 0


def test_validate_db_html_draws_the_stored_grids_under_the_findings(gisgrid):
    code, page, _ = gisgrid("validate", "--db", "--code", "C.01.001", "--format", "html",
                            "--lang", "en")

    assert code == 1
    assert "Coverage findings" in page and "Level 4 (base grid)" in page
    assert '"_key": "4"' in page and "gisgrid-legend" in page
