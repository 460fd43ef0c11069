"""Patrol rules: daily plans with carry-over, submissions, lateness, coverage."""

import math
import uuid
from datetime import date, datetime, timedelta, timezone

import geopandas as gpd
import pytest
import shapely

from gisgrid.checklists import read_builtin_checklists
from gisgrid.errors import CRSError, InputError
from gisgrid.patrols import (OpenTask, build_daily_plan, check_results_against_plan,
                             diff_submissions, is_late, measure_patrol_coverage,
                             parse_submission, parse_submissions, union_by_group)

D1 = date(2024, 5, 6)
RECEIVED = datetime(2024, 5, 6, 20, 0)


@pytest.fixture(scope="module")
def lists():
    return read_builtin_checklists()


def open_tasks_after(plan, done_codes, first_id=100):
    """The open tasks left by ``plan`` when only ``done_codes`` were done (ids made up)."""
    return [OpenTask(t.item_code, t.first_planned_on, task_id=first_id + n)
            for n, t in enumerate(plan.tasks) if t.item_code not in done_codes]


def test_fresh_plan_has_every_item_of_the_list_at_age_zero(lists):
    plan = build_daily_plan("B1", D1, lists["community"])
    assert [t.item_code for t in plan.tasks] == list(lists["community"].item_codes)
    assert {t.age_on(D1) for t in plan.tasks} == {0}
    assert plan.carried_count == 0


def test_item_not_done_carries_to_next_day_with_its_age(lists):
    village = lists["village"]
    day1 = build_daily_plan("B1", D1, village)
    done = set(village.item_codes) - {"V04"}
    day2 = build_daily_plan("B1", D1 + timedelta(1), village, open_tasks_after(day1, done))
    ages = {t.item_code: t.age_on(day2.day) for t in day2.tasks}
    assert ages["V04"] == 1 and ages["V01"] == 0
    assert len(day2.tasks) == len(village.items)  # one task per item, not a duplicate
    carried = next(t for t in day2.tasks if t.item_code == "V04")
    assert carried.carried_from_id is not None and carried.first_planned_on == D1
    # still not done on day 2: day 3 shows it aged 2 days, first planned on day 1
    day3 = build_daily_plan("B1", D1 + timedelta(2), village, open_tasks_after(day2, done, 200))
    v04 = next(t for t in day3.tasks if t.item_code == "V04")
    assert v04.age_on(day3.day) == 2 and v04.first_planned_on == D1


def test_a_whole_plan_not_patrolled_carries_over_entirely(lists):
    day1 = build_daily_plan("B1", D1, lists["community"])
    day2 = build_daily_plan("B1", D1 + timedelta(1), lists["community"],
                            open_tasks_after(day1, set()))
    assert day2.carried_count == 13
    assert all(t.age_on(day2.day) == 1 for t in day2.tasks)
    assert len(day2.carried) == 13


def test_carried_item_dropped_by_a_new_version_stays_until_done(lists):
    from gisgrid.checklists import edit_checklist

    v2 = edit_checklist(lists["village"], remove=["V07"])
    plan = build_daily_plan("B1", D1 + timedelta(1), v2, [OpenTask("V07", D1, task_id=5)])
    assert [t.item_code for t in plan.tasks][-1] == "V07"
    assert len(plan.tasks) == 10


def test_open_task_must_come_from_an_earlier_day(lists):
    with pytest.raises(InputError, match="not before the plan day"):
        build_daily_plan("B1", D1, lists["village"], [OpenTask("V01", D1)])


def submission(**overrides):
    data = {
        "client_uuid": "6f1c1b8e-3d52-4a7e-9a55-0c8d3f4a1b21", "grid_code": "B1", "worker": 7,
        "day": "2024-05-06", "started_at": "2024-05-06T09:00:00+08:00",
        "ended_at": "2024-05-06T10:30:00+08:00", "entered_at": "2024-05-06T18:00:00+08:00",
        "results": [{"item_code": "V01", "result": "ok"},
                    {"item_code": "V02", "result": "hazard_found", "note": "烟花"}],
        "track": [[113.90, 29.70], [113.901, 29.701], [113.902, 29.7005]],
    }
    data.update(overrides)
    return data


def test_submission_parses_and_normalises():
    sub = parse_submission(submission(), received_at=RECEIVED)
    assert sub.client_uuid == uuid.UUID("6f1c1b8e-3d52-4a7e-9a55-0c8d3f4a1b21")
    assert sub.day == D1 and not sub.late
    assert sub.result_of("V02") == "hazard_found" and sub.result_of("V05") == "not_checked"
    assert sub.track.geom_type == "MultiLineString" and len(sub.track.geoms) == 1


def test_entry_after_the_patrol_day_is_late():
    sub = parse_submission(submission(entered_at="2024-05-07T08:00:00+08:00"),
                           received_at=RECEIVED)
    assert sub.late
    # 23:30 UTC on the 6th is 07:30 on the 7th in China: late
    assert is_late(D1, datetime(2024, 5, 6, 23, 30, tzinfo=timezone.utc))
    assert not is_late(D1, datetime(2024, 5, 6, 15, 59, tzinfo=timezone.utc))


def test_missing_entered_at_uses_receipt_time():
    data = submission()
    del data["entered_at"]
    sub = parse_submission(data, received_at=datetime(2024, 5, 8, 9, 0))
    assert sub.late and not sub.entered_at_given


def test_bad_submission_names_every_field():
    data = submission(client_uuid="nope", day="2024-13-01", ended_at="2024-05-06T08:00:00+08:00",
                      results=[{"item_code": "V01", "result": "fine"}],
                      track=[[113.9, 29.7]], colour="red")
    with pytest.raises(InputError) as caught:
        parse_submission(data, received_at=RECEIVED)
    text = "\n".join(caught.value.details)
    for expected in ("client_uuid", "day:", "ended_at", "results[0].result", "track[0]",
                     "colour"):
        assert expected in text
    assert caught.value.exit_code == 2


def test_track_accepts_geojson_and_rejects_out_of_range():
    sub = parse_submission(submission(track={"type": "MultiLineString", "coordinates": [
        [[113.9, 29.7], [113.91, 29.71]], [[113.92, 29.7], [113.93, 29.7]]]}),
        received_at=RECEIVED)
    assert len(sub.track.geoms) == 2
    with pytest.raises(InputError, match=r"track\[0\]\[1\]"):
        parse_submission(submission(track=[[113.9, 29.7], [213.9, 29.7]]), received_at=RECEIVED)


def test_resubmission_diff_detects_changed_content():
    a = parse_submission(submission(), received_at=RECEIVED)
    assert diff_submissions(a, parse_submission(submission(), received_at=RECEIVED)) == []
    changed = parse_submission(submission(results={"V01": "not_checked"},
                                          track=[[113.9, 29.7], [113.95, 29.75]]),
                               received_at=RECEIVED)
    assert diff_submissions(a, changed) == ["results", "track"]
    no_entry = submission()
    del no_entry["entered_at"]
    resent = parse_submission(no_entry, received_at=RECEIVED + timedelta(days=3))
    assert diff_submissions(a, resent) == []  # receipt time differs, content does not


def test_results_must_name_items_of_the_plan():
    sub = parse_submission(submission(), received_at=RECEIVED)
    check_results_against_plan(sub.results, ["V01", "V02", "V03"])
    with pytest.raises(InputError, match="V02"):
        check_results_against_plan(sub.results, ["V01"])


# --- coverage: two 1 km x 1 km squares in the Chibi GK zone (EPSG:4547), measured exactly

def squares():
    return gpd.GeoSeries([shapely.box(500000, 3290000, 501000, 3291000),
                          shapely.box(501000, 3290000, 502000, 3291000)],
                         index=["A", "B"], crs=4547)


def test_coverage_share_of_a_track_across_one_grid():
    # a straight track across square A, 1 km long, buffered 50 m: a 100 m strip = 10 %
    track = gpd.GeoSeries([shapely.LineString([(500000, 3290500), (501000, 3290500)])],
                          crs=4547)
    share = measure_patrol_coverage(squares(), track, buffer_m=50)
    assert share["A"] == pytest.approx(0.10, abs=1e-3)
    # the round cap at the track's end reaches 50 m into B: half a disc
    assert share["B"] == pytest.approx(math.pi * 50 ** 2 / 2 / 1e6, rel=1e-2)
    wider = measure_patrol_coverage(squares(), track, buffer_m=100)
    assert wider["A"] == pytest.approx(0.20, abs=1e-3)


def test_coverage_in_degrees_is_measured_in_metres():
    grids = squares().to_crs(4490)
    track = gpd.GeoSeries([shapely.LineString([(500500, 3290000), (500500, 3291000)]),
                           shapely.LineString([(500500, 3290000), (500500, 3291000)])],
                          crs=4547).to_crs(4490)
    share = measure_patrol_coverage(grids, track)  # overlapping tracks count once
    assert share["A"] == pytest.approx(0.10, abs=2e-3)


def test_coverage_of_an_edge_track_counts_in_both_grids():
    track = gpd.GeoSeries([shapely.LineString([(501000, 3290000), (501000, 3291000)])],
                          crs=4547)
    share = measure_patrol_coverage(squares(), track, buffer_m=50)
    assert share["A"] == pytest.approx(0.05, abs=1e-3)
    assert share["B"] == pytest.approx(0.05, abs=1e-3)


def test_coverage_with_no_tracks_is_zero_and_crs_mismatch_raises():
    empty = gpd.GeoSeries([], crs=4547)
    assert measure_patrol_coverage(squares(), empty).tolist() == [0.0, 0.0]
    track = gpd.GeoSeries([shapely.LineString([(113.9, 29.7), (113.91, 29.7)])], crs=4490)
    with pytest.raises(CRSError):
        measure_patrol_coverage(squares(), track)


def test_union_by_group_matches_union_all_per_group():
    import numpy as np

    rng = np.random.default_rng(5)
    centres = rng.uniform(0, 10, size=(40, 2))
    discs = shapely.buffer(shapely.points(centres), rng.uniform(0.5, 2, size=40))
    groups = rng.integers(0, 6, size=40)  # groups of 1 to ~12 overlapping discs
    labels, unions = union_by_group(groups, discs.copy())
    assert labels.tolist() == sorted(set(groups.tolist()))
    for label, union in zip(labels, unions):
        expected = shapely.union_all(discs[groups == label])
        assert shapely.area(union) == pytest.approx(shapely.area(expected), rel=1e-9)


def test_parse_submissions_numbers_every_refused_item():
    good = {"client_uuid": str(uuid.uuid4()), "grid_code": "B1", "worker": 1,
            "day": "2024-05-06", "started_at": "2024-05-06T09:00:00+08:00",
            "ended_at": "2024-05-06T10:00:00+08:00"}
    assert len(parse_submissions([good, good], received_at=RECEIVED)) == 2
    with pytest.raises(InputError) as caught:
        parse_submissions([good, {**good, "day": "May"}, {**good, "track": [[1, True]]}],
                          received_at=RECEIVED)
    assert caught.value.details[0].startswith("submission 1: day")
    assert caught.value.details[-1].startswith("submission 2: track[0]")
    with pytest.raises(InputError, match="patrol submission refused") as single:
        parse_submissions([{**good, "day": "May"}], received_at=RECEIVED, numbered=False)
    assert single.value.details[0].startswith("day")


def test_local_today_is_the_china_date_not_the_servers():
    from gisgrid.clock import local_today

    evening_utc = datetime(2024, 5, 1, 16, 30, tzinfo=timezone.utc)  # 00:30 on 2 May in China
    assert local_today(evening_utc) == date(2024, 5, 2)
    assert local_today(datetime(2024, 5, 1, 15, 59, tzinfo=timezone.utc)) == date(2024, 5, 1)
