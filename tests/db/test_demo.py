"""The demo job end to end on a real PostGIS: every stage through the same code users run."""

from __future__ import annotations

from datetime import date

import geopandas as gpd
import pytest
import sqlalchemy as sa
from shapely.geometry import box

from gisgrid import maps
from gisgrid.config import Settings
from gisgrid.db.engine import dispose_engines, get_engine
from gisgrid.db.grids import write_grids
from gisgrid.demo.city import build_demo_city
from gisgrid.demo.field import build_demo_hazards, build_demo_people, build_demo_units
from gisgrid.demo.run import run_demo
from gisgrid.errors import Conflict
from gisgrid.grids import prepare_grids

START = date(2025, 9, 29)   # the month runs into the National Day holidays
DAYS = 3


@pytest.fixture(scope="module")
def demo(make_database, tmp_path_factory):
    """The demo loaded once into its own database (it commits), with 3 days of field data."""
    home = tmp_path_factory.mktemp("demo-home")
    settings = Settings(home=home, database_url=make_database("demo"))
    out = home / "out"
    outcome = run_demo(settings, out, start=START, days=DAYS)
    engine = get_engine(settings)
    yield outcome, engine, settings
    dispose_engines()


@pytest.fixture(scope="module")
def city():
    return build_demo_city()


def scalar(engine, sql: str, **params):
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar_one()


def test_grids_are_stored_level_by_level(demo, city):
    outcome, engine, _ = demo
    assert outcome.grids == {int(level): len(frame) for level, frame in city.grids.items()}
    assert scalar(engine, "SELECT count(*) FROM grid WHERE valid_to IS NULL") == sum(
        outcome.grids.values())
    # every stored grid has its first history version, written by the import path
    assert scalar(engine, "SELECT count(*) FROM grid_history WHERE change = 'import'") == sum(
        outcome.grids.values())


def test_validation_finds_exactly_the_injected_defects(demo, city):
    outcome, engine, _ = demo
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT kind, codes, area_m2 FROM finding WHERE kind IN ('gap', 'overlap')")).all()
    assert sorted(kind for kind, _, _ in rows) == sorted(d.kind for d in city.defects)
    for defect in city.defects:
        # a gap names every grid around it, the defect the grids it was cut from
        (area,) = [a for kind, codes, a in rows
                   if kind == defect.kind and set(defect.codes) <= set(codes)]
        assert area == pytest.approx(defect.area_m2, rel=0.02)
    assert outcome.findings["gap"] == 1 and outcome.findings["overlap"] == 1


def test_units_outside_every_grid_are_kept_and_flagged(demo, city):
    _, engine, _ = demo
    units = build_demo_units(city, seed=city.seed)
    assert scalar(engine, "SELECT count(*) FROM unit") == len(units)
    assert scalar(engine, "SELECT count(*) FROM unit WHERE outside_grids") == int(
        units["base_code"].isna().sum())


def test_unstaffed_base_grids_are_left_for_the_audit(demo, city):
    _, engine, _ = demo
    people = build_demo_people(city, seed=city.seed)
    with engine.connect() as conn:
        unstaffed = {r.code for r in conn.execute(sa.text("""
            SELECT g.code FROM grid g WHERE g.level = 4 AND g.valid_to IS NULL AND NOT EXISTS (
                SELECT 1 FROM assignment a WHERE a.grid_id = g.id AND a.role = 'grid_worker')"""))}
    assert unstaffed == set(people.unstaffed)


def test_the_demos_changes_are_in_the_audit_log(demo, city):
    outcome, engine, _ = demo
    people = build_demo_people(city, seed=city.seed)
    with engine.connect() as conn:
        actions = dict(conn.execute(sa.text(
            "SELECT action, count(*) FROM audit_log WHERE actor = 'gisgrid demo' "
            "GROUP BY action")).all())
    assert actions == {"grids.import": len(outcome.grids), "checklist.load": 1,
                       "units.import": 1, "person.add": len(people.people),
                       "assignment.record": len(people.assignments)}


def test_patrols_plans_and_coverage_for_every_day(demo):
    outcome, engine, _ = demo
    with engine.connect() as conn:
        days = conn.execute(sa.text(
            "SELECT DISTINCT day FROM patrol_plan ORDER BY day")).scalars().all()
        carried = conn.execute(sa.text(
            "SELECT count(*) FROM patrol_task WHERE carried_from_id IS NOT NULL")).scalar_one()
        covered = conn.execute(sa.text(
            "SELECT count(DISTINCT day) FROM patrol_coverage")).scalar_one()
        tracks = conn.execute(sa.text(
            "SELECT count(*) FROM patrol WHERE track IS NOT NULL")).scalar_one()
    assert days == [date.fromordinal(START.toordinal() + i) for i in range(DAYS)]
    assert carried > 0 and covered == DAYS
    assert tracks == outcome.field_counts["patrols"] > 0


def test_every_hazard_ends_in_its_target_state(demo, city):
    outcome, engine, _ = demo
    units = build_demo_units(city, seed=city.seed)
    people = build_demo_people(city, seed=city.seed)
    hazards = build_demo_hazards(city, units, seed=city.seed, start=START, days=DAYS,
                                 people=people).hazards
    with engine.connect() as conn:
        stored = dict(conn.execute(sa.text(
            "SELECT client_uuid::text, state FROM hazard")).all())
        events = conn.execute(sa.text("SELECT count(*) FROM hazard_event")).scalar_one()
    assert stored == dict(zip(hazards["client_uuid"], hazards["target_state"]))
    assert events == len(stored) + outcome.field_counts["hazard_steps"]
    assert scalar(engine, "SELECT count(*) FROM hazard WHERE outside_grids") == int(
        hazards["base_code"].isna().sum()) > 0


def test_maps_and_reports_are_written_offline(demo):
    outcome, _, _ = demo
    names = {p.name for p in outcome.files}
    assert {"grids.html", "coverage.html", "coverage.json", "coverage-gaps.geojson"} <= names
    for path in outcome.files:
        if path.suffix == ".html":
            assert maps.find_remote_assets(path.read_text(encoding="utf-8")) == [], path
    gaps = gpd.read_file(outcome.out_dir / "coverage-gaps.geojson")
    assert set(gaps["kind"]) >= {"gap", "overlap"}


def test_demo_reloads_itself_but_never_overwrites_other_data(demo, make_database, tmp_path):
    _, _, settings = demo
    again = run_demo(settings, tmp_path / "out", start=START, days=0)
    assert again.grids == demo[0].grids

    other = Settings(home=tmp_path / "home", database_url=make_database("foreign"))
    city = gpd.GeoDataFrame({"code": ["110000"], "name": ["别的城市"], "kind": ["city"]},
                            geometry=[box(116.0, 39.5, 116.5, 40.0)], crs=4490)
    with get_engine(other).begin() as conn:
        write_grids(conn, prepare_grids(city, 1, name_field="name"), actor="test")
    with pytest.raises(Conflict, match="not the demo city"):
        run_demo(other, tmp_path / "out2", days=0)
    assert scalar(get_engine(other), "SELECT count(*) FROM grid") == 1
