"""Synthetic field data of the demo city: counts, clustering, defects, legal workflows."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import pytest
import shapely

from gisgrid.checklists import read_builtin_checklists
from gisgrid.clock import CHINA_TZ
from gisgrid.demo.city import build_demo_city
from gisgrid.demo.field import (
    build_demo_hazards,
    build_demo_patrols,
    build_demo_people,
    build_demo_units,
)
from gisgrid.hazards.categories import CATEGORIES
from gisgrid.hazards.workflow import TRANSITIONS, State
from gisgrid.levels import Level
from gisgrid.patrols import RESULTS, parse_submission
from gisgrid.people import ASSIGNMENT_ROLES, PERSON_KINDS, ROLE_LEVELS, validate_person
from gisgrid.units import UNIT_CLASSES

START = date(2017, 11, 1)
PATROL_DAYS = 3


@pytest.fixture(scope="module")
def city():
    return build_demo_city()


@pytest.fixture(scope="module")
def units(city):
    return build_demo_units(city)


@pytest.fixture(scope="module")
def people(city):
    return build_demo_people(city)


@pytest.fixture(scope="module")
def patrols(city, people):
    return build_demo_patrols(city, people, START, days=PATROL_DAYS)


@pytest.fixture(scope="module")
def hazards(city, units, people):
    return build_demo_hazards(city, units, start=START, days=30, people=people)


def _grid_of(city, level):
    return city.grids[level].set_index("code").geometry


# --- units


def test_units_have_the_documented_columns_and_every_class(units):
    assert list(units.columns) == ["external_id", "name", "address", "unit_class",
                                   "fire_key_unit", "high_risk", "base_code", "geom"]
    assert units.crs.to_epsg() == 4490 and units.geometry.name == "geom"
    assert 2900 <= len(units) <= 3100
    assert set(units.unit_class) == set(UNIT_CLASSES)
    assert units.external_id.is_unique
    assert (units.geom_type == "Point").all()
    assert units.fire_key_unit[units.unit_class == "fire_key_unit"].all()


def test_some_units_lie_outside_every_grid_and_the_rest_in_their_base_grid(city, units):
    outside = units[units.base_code.isna()]
    assert 3 <= len(outside) <= 20
    assert not shapely.intersects(city.grids[Level.CITY].geometry.iloc[0],
                                  outside.geometry.values).any()
    inside = units[units.base_code.notna()]
    grids = _grid_of(city, Level.BASE).loc[inside.base_code].to_numpy()
    assert shapely.intersects(grids, inside.geometry.values).all()


def test_units_cluster_near_town_centres(city, units):
    per_base = units.base_code.value_counts()
    # clustered: the busiest tenth of the base grids holds far more than a tenth of the units
    top = per_base.sort_values(ascending=False).iloc[: len(city.grids[Level.BASE]) // 10]
    assert top.sum() > 0.3 * per_base.sum()


def test_units_are_deterministic(city, units):
    again = build_demo_units(city)
    assert again.drop(columns="geom").equals(units.drop(columns="geom"))
    assert shapely.equals_exact(again.geometry.values, units.geometry.values, 0).all()


# --- people


def test_people_are_valid_records_with_valid_roles(city, people):
    assert list(people.people.columns) == ["person_code", "name", "kind", "phone",
                                           "employment", "gender"]
    assert list(people.assignments.columns) == ["person_code", "grid_code", "role",
                                                "valid_from", "valid_to"]
    assert people.people.person_code.is_unique and people.people.phone.is_unique
    assert set(people.people.kind) <= set(PERSON_KINDS)
    for row in people.people.head(50).to_dict("records"):
        validate_person({k: (None if v != v else v) for k, v in row.items()})  # NaN -> None
    assert set(people.assignments.role) <= set(ASSIGNMENT_ROLES)
    levels = {code: Level(code.count(".") + 1) for code in city.all_grids().code}
    for role, grid_code in zip(people.assignments.role, people.assignments.grid_code):
        assert levels[grid_code] in ROLE_LEVELS[role]
    kind = people.people.set_index("person_code").kind
    workers = people.assignments[people.assignments.role == "grid_worker"]
    assert (kind.loc[workers.person_code] == "grid_worker").all()


def test_every_base_grid_has_one_worker_except_the_deliberate_ones(city, people):
    workers = people.assignments[people.assignments.role == "grid_worker"]
    per_grid = workers.groupby("grid_code").size().reindex(city.grids[Level.BASE].code,
                                                           fill_value=0)
    assert set(per_grid[per_grid == 0].index) == set(people.unstaffed)
    assert set(per_grid[per_grid > 1].index) == set(people.double_staffed)
    assert 1 <= len(people.unstaffed) <= 10 and len(people.double_staffed) == 1
    defect_grids = {code for d in city.defects for code in d.codes}
    assert not defect_grids & set(people.unstaffed)


def test_every_village_and_township_has_a_safety_officer(city, people):
    officers = set(people.assignments.loc[people.assignments.role == "safety_officer",
                                          "grid_code"])
    assert set(city.grids[Level.VILLAGE].code) <= officers
    assert set(city.grids[Level.TOWNSHIP].code) <= officers


# --- patrols


def test_patrols_have_the_documented_columns(patrols):
    assert list(patrols.patrols.columns) == [
        "client_uuid", "grid_code", "person_code", "worker", "day", "started_at", "ended_at",
        "entered_at", "late", "checklist", "geom"]
    assert list(patrols.results.columns) == ["client_uuid", "item_code", "result"]
    assert patrols.patrols.crs.to_epsg() == 4490
    assert patrols.patrols.client_uuid.is_unique


def test_every_planned_grid_day_is_patrolled_or_missed(city, people, patrols):
    staffed = len(city.grids[Level.BASE]) - len(people.unstaffed)
    patrolled, missed = len(patrols.patrols), len(patrols.missed)
    assert patrolled + missed == len(city.grids[Level.BASE]) * PATROL_DAYS
    assert 0.8 * staffed * PATROL_DAYS < patrolled < staffed * PATROL_DAYS
    assert (patrols.missed.reason == "no_worker").sum() == len(people.unstaffed) * PATROL_DAYS
    assert patrols.patrols.groupby(["grid_code", "day"]).size().max() == 1


def test_patrol_results_cover_the_grid_checklist_with_all_outcomes(patrols):
    lists = {code: set(c.item_codes) for code, c in read_builtin_checklists().items()}
    items = patrols.results.groupby("client_uuid").item_code.apply(set)
    checklist = patrols.patrols.set_index("client_uuid").checklist
    assert all(items.loc[u] == lists[checklist.loc[u]] for u in items.index[:500])
    assert set(patrols.results.result) == set(RESULTS)
    share = patrols.results.result.value_counts(normalize=True)
    assert share["ok"] > 0.8 and share["not_checked"] > 0.01


def test_patrol_times_are_ordered_and_some_entries_are_late(patrols):
    p = patrols.patrols
    assert (p.started_at < p.ended_at).all() and (p.started_at <= p.entered_at).all()
    assert all(s.date() == d for s, d in zip(p.started_at, p.day))
    late = p.late.to_numpy()
    assert 0 < late.sum() < 0.15 * len(p)
    assert all((e.date() > d) == lt for e, d, lt in zip(p.entered_at, p.day, late))


def test_tracks_wander_inside_their_grid(city, patrols):
    p = patrols.patrols.iloc[::25]
    grids = _grid_of(city, Level.BASE).loc[p.grid_code].to_numpy()
    inside = shapely.length(shapely.intersection(p.geometry.values, grids))
    assert np.median(inside / shapely.length(p.geometry.values)) > 0.95
    assert (shapely.get_num_coordinates(p.geometry.values) >= 6).all()


def test_submissions_are_accepted_by_the_patrol_parser(patrols):
    for data in list(patrols.submissions())[:20]:
        submission = parse_submission(data, received_at=datetime.now(CHINA_TZ))
        assert submission.grid_code == data["grid_code"]
        assert len(submission.results) == len(data["results"])


def test_patrols_are_deterministic(city, people, patrols):
    again = build_demo_patrols(city, people, START, days=PATROL_DAYS)
    assert again.patrols.drop(columns="geom").equals(patrols.patrols.drop(columns="geom"))
    assert shapely.equals_exact(again.patrols.geometry.values,
                                patrols.patrols.geometry.values, 0).all()


# --- hazards


def test_hazards_have_the_documented_columns(hazards):
    frame = hazards.hazards
    assert list(frame.columns) == [
        "client_uuid", "item_code", "category", "description", "major", "reported_at",
        "reporter", "unit_external_id", "base_code", "target_state", "geom"]
    assert 1900 <= len(frame) <= 2100
    assert frame.client_uuid.is_unique and frame.crs.to_epsg() == 4490
    assert set(frame.category) <= set(CATEGORIES)
    assert frame.description.str.len().min() > 5
    assert 0 < frame.major.sum() < 0.05 * len(frame)


def test_hazard_categories_follow_the_grid_checklist(city, hazards):
    frame = hazards.hazards.dropna(subset=["base_code", "item_code"])
    village_kind = city.grids[Level.VILLAGE].set_index("code").kind
    kinds = village_kind.loc[frame.base_code.str.rsplit(".", n=1).str[0]].to_numpy()
    prefixes = frame.item_code.str[0].to_numpy()
    assert ((prefixes == "C") == (kinds == "community")).all()


def test_every_state_is_reached_through_allowed_transitions(hazards):
    allowed = {(t.source.value, t.action.value): t.target.value for t in TRANSITIONS}
    state = dict.fromkeys(hazards.hazards.client_uuid, State.REPORTED.value)
    last = dict(zip(hazards.hazards.client_uuid, hazards.hazards.reported_at))
    seq = dict.fromkeys(state, 0)
    end = datetime.combine(START + timedelta(days=30), datetime.min.time(), CHINA_TZ)
    for step in hazards.steps:
        assert step.seq == seq[step.client_uuid] + 1
        assert step.from_state == state[step.client_uuid]
        assert allowed[(step.from_state, step.action)] == step.to_state
        assert last[step.client_uuid] <= step.at < end
        state[step.client_uuid], last[step.client_uuid] = step.to_state, step.at
        seq[step.client_uuid] = step.seq
    final = hazards.hazards.client_uuid.map(state)
    assert (final == hazards.hazards.target_state).all()
    assert set(final) == {s.value for s in State}
    assert (final == "closed").mean() > 0.3


def test_some_hazards_lie_outside_every_grid(city, hazards):
    outside = hazards.hazards[hazards.hazards.base_code.isna()]
    assert 3 <= len(outside) <= 20
    assert not shapely.intersects(city.grids[Level.CITY].geometry.iloc[0],
                                  outside.geometry.values).any()


def test_hazards_cluster(city, hazards):
    per_base = hazards.hazards.base_code.value_counts()
    top = per_base.iloc[: len(city.grids[Level.BASE]) // 10]
    assert top.sum() > 0.3 * per_base.sum()
    linked = hazards.hazards.unit_external_id.notna().mean()
    assert 0.3 < linked < 0.7


def test_hazards_are_deterministic(city, units, people, hazards):
    again = build_demo_hazards(city, units, start=START, days=30, people=people)
    assert again.hazards.drop(columns="geom").equals(hazards.hazards.drop(columns="geom"))
    assert again.steps == hazards.steps


def test_a_small_city_gets_every_kind_of_field_data():
    small = build_demo_city(townships=4, villages=12, base_grids=40, seed=3)
    people = build_demo_people(small, 3, unstaffed=2)
    units = build_demo_units(small, 3, count=100, outside=2)
    hazards = build_demo_hazards(small, units, 3, count=50, outside=2, people=people)
    patrols = build_demo_patrols(small, people, START, days=2, seed=3)
    assert len(units) == 102 and units.base_code.isna().sum() >= 2
    assert set(hazards.hazards.target_state) == {s.value for s in State}
    assert len(patrols.patrols) + len(patrols.missed) == 40 * 2
