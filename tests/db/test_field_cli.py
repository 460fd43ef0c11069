"""``gisgrid checklists|units|people|patrols`` end to end: output and exit codes.

These commands commit, so the module runs against its own database (``make_database``),
migrated to head, with the field grid tree of ``tests/db/conftest.py`` committed once.
"""

from __future__ import annotations

import json
import uuid

import pytest
import sqlalchemy as sa

pytestmark = pytest.mark.db


@pytest.fixture(scope="module")
def field_url(migrated_database, field_tree_writer):
    return migrated_database("field_cli", field_tree_writer)


@pytest.fixture
def gisgrid(field_url, gisgrid_on):
    """Run ``gisgrid ARGS...`` on the module's database; return (exit code, stdout, stderr)."""
    return gisgrid_on(field_url)


@pytest.fixture
def count(field_url):
    engine = sa.create_engine(field_url, poolclass=sa.pool.NullPool)

    def rows(sql: str) -> int:
        with engine.connect() as c:
            return c.execute(sa.text(sql)).scalar_one()
    yield rows
    engine.dispose()


def test_checklists_load_show_and_city_edit(gisgrid):
    assert gisgrid("checklists", "load")[0] == 0
    code, out, _ = gisgrid("checklists", "load")  # a second load changes nothing
    assert code == 0 and "village" in out
    code, out, _ = gisgrid("checklists", "show", "village")
    assert code == 0 and "网格员日常巡查清单(村)" in out and "V10 [报告 report]" in out
    code, out, _ = gisgrid("checklists", "show", "community", "--format", "json")
    assert code == 0 and len(json.loads(out)["items"]) == 13
    code, out, err = gisgrid("checklists", "edit", "village", "--city", "FC",
                             "--set", "V04.due_workdays=2", "--from-day", "2030-01-01")
    assert code == 0, err
    assert "village v2 for FC" in out
    code, out, _ = gisgrid("checklists", "show", "village", "--city", "FC", "--day",
                           "2030-01-02", "--format", "json")
    shown = json.loads(out)
    assert shown["version"] == 2
    assert next(i for i in shown["items"] if i["code"] == "V04")["due_workdays"] == 2
    code, out, _ = gisgrid("checklists", "show", "village", "--versions", "--format", "json")
    assert [v["version"] for v in json.loads(out)] == [1, 2]
    code, _, err = gisgrid("checklists", "edit", "village", "--city", "FC", "--set", "V04")
    assert code == 2 and "ITEM.FIELD=VALUE" in err
    code, _, err = gisgrid("checklists", "edit", "village", "--city", "FV",
                           "--set", "V04.due_workdays=3")
    assert code == 2 and "not a city" in err
    code, _, err = gisgrid("checklists", "show", "village", "--city", "FT")
    assert code == 2 and "--city: grid FT is at level 2, not a city" in err
    code, _, err = gisgrid("checklists", "show", "village", "--day", "2000-01-01")
    assert code == 2 and "no village checklist in force on 2000-01-01" in err
    assert "first is in force from 2017-01-01" in err and "load" not in err


def test_units_import_all_or_nothing_and_list(gisgrid, tmp_path, count):
    good = tmp_path / "units.csv"
    good.write_text("编号,单位名称,类别,经度,纬度\n"
                    "CLI-1,赤壁纺织厂,规上企业,114.505,30.51\n"
                    "CLI-2,李记面馆,个体工商户,114.525,30.51\n"
                    "CLI-3,湖边渔具店,个体工商户,114.60,30.51\n", encoding="utf-8")
    code, out, err = gisgrid("units", "import", good)
    assert code == 0, err
    assert "3 inserted" in out and "1 outside every grid" in out
    assert "2 individual" not in out and "1 individual" in out and "2 packaged" in out
    code, out, _ = gisgrid("units", "list", "--outside", "--format", "json")
    outside = [u for u in json.loads(out) if u["external_id"] == "CLI-3"]
    assert outside and outside[0]["outside_grids"] is True and outside[0]["lon"] == 114.6
    code, out, _ = gisgrid("units", "list", "--under", "FK")
    assert code == 0 and "CLI-2" in out and "CLI-1" not in out

    before = count("SELECT count(*) FROM unit")
    bad = tmp_path / "bad.csv"
    bad.write_text("编号,单位名称,类别,经度,纬度\n"
                   "CLI-4,好厂,规上企业,114.505,30.51\n"
                   "CLI-5,,飞碟厂,114.5,\n", encoding="utf-8")
    code, _, err = gisgrid("units", "import", bad)
    assert code == 2
    assert "row 3: name is empty" in err and "row 3: class" in err and "row 3: lon and lat" in err
    assert count("SELECT count(*) FROM unit") == before


def test_people_add_assign_train_list_check(gisgrid):
    code, out, err = gisgrid("people", "add", "--name", "周网格", "--employment", "full_time",
                             "--phone", "13700000001")
    assert code == 0, err
    person = int(out.split()[1].rstrip(":"))
    code, out, err = gisgrid("people", "assign", person, "FV-1", "--from", "2024-01-01")
    assert code == 0 and "grid_worker of FV-1" in out
    code, _, err = gisgrid("people", "assign", person, "FV-1", "--from", "2024-06-01")
    assert code == 2 and "already grid_worker" in err
    assert gisgrid("people", "train", person, "--course", "隐患排查", "--held-on",
                   "2024-02-01", "--hours", "3")[0] == 0
    code, out, _ = gisgrid("people", "list", "--under", "FV", "--format", "json")
    me = next(p for p in json.loads(out) if p["id"] == person)
    assert "FV-1:grid_worker" in me["grids"] and float(me["training_hours"]) == 3
    code, out, _ = gisgrid("people", "check", "--day", "2024-03-01", "--under", "FV")
    assert code == 1 and "FV-2" in out and "no_worker" in out and "FV-1" not in out
    code, _, err = gisgrid("people", "add", "--name", "无名", "--id-number", "12")
    assert code == 2 and "employment" in err and "id_number" in err


def submission_file(tmp_path, name="p.json", **overrides):
    data = {"client_uuid": str(uuid.uuid4()), "grid_code": "FV-1", "worker": "13700000009",
            "day": "2024-05-06", "started_at": "2024-05-06T09:00:00+08:00",
            "ended_at": "2024-05-06T11:00:00+08:00", "entered_at": "2024-05-06T18:00:00+08:00",
            "results": [{"item_code": f"V{n:02d}", "result": "ok"} for n in range(1, 10)],
            "track": [[114.505, 30.50], [114.505, 30.52]]}
    data.update(overrides)
    path = tmp_path / name
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path, data


def test_plan_submit_resubmit_carry_over_list_and_coverage(gisgrid, tmp_path):
    gisgrid("checklists", "load")
    gisgrid("people", "add", "--name", "吴网格", "--employment", "part_time", "--phone",
            "13700000009")
    code, out, err = gisgrid("patrols", "plan", "--day", "2024-05-06", "--under", "FV")
    assert code == 0 and "2 plans made" in out, err
    path, data = submission_file(tmp_path)  # V10 not reported: carried to the next day
    code, out, err = gisgrid("patrols", "submit", path, "--format", "json")
    assert code == 0, err
    first = json.loads(out)
    assert first["created"] and not first["late"]
    code, out, _ = gisgrid("patrols", "submit", path, "--format", "json")
    assert json.loads(out) == {**first, "created": False, "warnings": []}
    changed, _ = submission_file(tmp_path, "changed.json", client_uuid=data["client_uuid"],
                                 ended_at="2024-05-06T12:00:00+08:00")
    code, _, err = gisgrid("patrols", "submit", changed)
    assert code == 2 and "ended_at differs" in err
    late, _ = submission_file(tmp_path, "late.json", grid_code="FV-2",
                              entered_at="2024-05-08T08:00:00+08:00")
    code, out, _ = gisgrid("patrols", "submit", late)
    assert code == 0 and "late" in out

    code, out, _ = gisgrid("patrols", "plan", "--day", "2024-05-07", "--under", "FV",
                           "--show", "FV-1", "--format", "json")
    tasks = {t["item_code"]: t for t in json.loads(out)}
    assert tasks["V10"]["age_days"] == 1 and tasks["V10"]["first_planned_on"] == "2024-05-06"
    assert tasks["V01"]["age_days"] == 0
    code, out, _ = gisgrid("patrols", "list", "--day", "2024-05-06", "--format", "json")
    listed = {p["grid_code"]: p for p in json.loads(out)}
    assert listed["FV-1"]["ok"] == 9 and listed["FV-1"]["not_checked"] == 1
    assert listed["FV-2"]["late"] is True and 2000 < listed["FV-1"]["track_m"] < 2300
    code, out, _ = gisgrid("patrols", "list", "--plans", "--day", "2024-05-07")
    assert code == 0 and "FV-1" in out
    code, out, _ = gisgrid("patrols", "coverage", "--day", "2024-05-06", "--under", "FC",
                           "--format", "json")
    shares = {r["code"]: r["covered_share"] for r in json.loads(out)}
    # both tracks run through FV-1 (the FV-2 patrol too, as sent): counted once, FV-2 uncovered
    assert shares["FK-1"] == 0 and shares["FV-2"] == 0 and 0.09 < shares["FV-1"] < 0.12


def test_bad_submission_exits_2_naming_fields(gisgrid, tmp_path):
    path, _ = submission_file(tmp_path, client_uuid="x", day="2024-02-30",
                              results=[{"item_code": "V01", "result": "great"}])
    code, _, err = gisgrid("patrols", "submit", path)
    assert code == 2
    for name in ("client_uuid", "day", "results[0].result"):
        assert name in err
    broken = tmp_path / "broken.json"
    broken.write_text("{", encoding="utf-8")
    code, _, err = gisgrid("patrols", "submit", broken)
    assert code == 2 and "not JSON" in err
    assert gisgrid("patrols", "plan", "--day", "yesterday")[0] == 2


def test_plan_show_of_an_unknown_or_upper_grid_is_refused_before_planning(gisgrid, count):
    gisgrid("checklists", "load")
    before = count("SELECT count(*) FROM patrol_plan")
    code, _, err = gisgrid("patrols", "plan", "--day", "2024-07-01", "--show", "NOPE")
    assert code == 2 and "--show: no current grid with code 'NOPE'" in err
    code, _, err = gisgrid("patrols", "plan", "--day", "2024-07-01", "--show", "FV")
    assert code == 2 and "--show: FV is a level-3 grid" in err
    assert count("SELECT count(*) FROM patrol_plan") == before


def test_submit_a_batch_is_all_or_nothing(gisgrid, tmp_path, count):
    gisgrid("checklists", "load")
    gisgrid("people", "add", "--name", "郑网格", "--employment", "part_time", "--phone",
            "13700000019")
    items = [{"client_uuid": str(uuid.uuid4()), "grid_code": grid, "worker": "13700000019",
              "day": "2024-06-03", "started_at": "2024-06-03T09:00:00+08:00",
              "ended_at": "2024-06-03T10:00:00+08:00", "results": {"V01": "ok"}}
             for grid in ("FV-1", "FV-2")]
    path = tmp_path / "batch.json"
    bad = [items[0], {**items[1], "grid_code": "FK-1"}]  # V01 is not a community task
    path.write_text(json.dumps(bad), encoding="utf-8")
    before = count("SELECT count(*) FROM patrol")
    code, _, err = gisgrid("patrols", "submit", path)
    assert code == 2 and "submission 1" in err and "V01 is not a task" in err
    assert count("SELECT count(*) FROM patrol") == before
    path.write_text(json.dumps(items), encoding="utf-8")
    code, out, err = gisgrid("patrols", "submit", path, "--format", "json")
    assert code == 0, err
    assert [o["created"] for o in json.loads(out)] == [True, True]
    code, out, _ = gisgrid("patrols", "submit", path, "--format", "json")
    assert [o["created"] for o in json.loads(out)] == [False, False]
    path.write_text(json.dumps([items[0], {**items[1], "day": "June"}]), encoding="utf-8")
    code, _, err = gisgrid("patrols", "submit", path)
    assert code == 2 and "submission 1: day" in err


def test_hazards_list_under_takes_a_grid_code(gisgrid):
    """Like every other ``--under``, the hazard list's takes a grid code, at any level."""
    code, out, err = gisgrid("hazards", "report", "--lon", "114.505", "--lat", "30.51",
                             "--category", "fireworks", "--description", "烟花", "--actor", "t",
                             "--format", "json")
    assert code == 0, err
    hazard_id = json.loads(out)["id"]
    for under, listed in (("FV", True), ("FV-1", True), ("FK", False)):
        code, out, err = gisgrid("hazards", "list", "--under", under, "--format", "json")
        assert code == 0, err
        assert (hazard_id in [h["id"] for h in json.loads(out)]) is listed, under
    code, _, err = gisgrid("hazards", "list", "--under", "NOPE")
    assert code == 2 and "--under: no current grid with code 'NOPE'" in err
    code, out, _ = gisgrid("hazards", "list", "--under", "FV-1")
    assert f"#{hazard_id} " in out and "routed to grid FV\n" in out  # the code, not an id
