"""People rules: person fields, assignment periods and roles, one grid worker per base grid."""

from datetime import date

import pytest

from gisgrid.errors import Conflict, InputError
from gisgrid.levels import Level
from gisgrid.people import (AssignmentRecord, PersonRecord, check_assignment,
                            check_base_grid_workers, validate_person, validate_training)

WORKER = PersonRecord("李四", "grid_worker", employment="part_time", id=1)
OFFICER = PersonRecord("王五", "officer", id=2)
JAN1, JAN31, FEB1 = date(2024, 1, 1), date(2024, 1, 31), date(2024, 2, 1)


def assignment(person_id=1, grid_id=10, role="grid_worker", start=JAN1, end=None, id=None):
    return AssignmentRecord(person_id, grid_id, role, start, end, id)


def test_person_fields_are_checked_all_at_once():
    with pytest.raises(InputError) as caught:
        validate_person({"name": " ", "kind": "boss", "phone": "call me",
                         "id_number": "123"})
    text = "\n".join(caught.value.details)
    for field in ("name", "kind", "phone", "id_number"):
        assert field in text


def test_grid_worker_needs_employment():
    with pytest.raises(InputError, match="full_time or part_time"):
        validate_person({"name": "张三", "kind": "grid_worker"})
    person = validate_person({"name": "张三", "kind": "grid_worker", "employment": "full_time",
                              "id_number": "42128119900101123X"})
    assert person.employment == "full_time"


def test_same_person_same_role_overlapping_days_is_a_conflict():
    existing = [assignment(start=JAN1, end=JAN31, id=5)]
    with pytest.raises(Conflict, match="already grid_worker"):
        check_assignment(assignment(start=JAN31), grid_level=Level.BASE, person=WORKER,
                         existing=existing)
    # the day after the old one ends is fine
    assert check_assignment(assignment(start=FEB1), grid_level=Level.BASE, person=WORKER,
                            existing=existing) == []


def test_second_worker_on_a_base_grid_is_a_warning():
    existing = [assignment(person_id=9, start=JAN1)]
    warnings = check_assignment(assignment(start=FEB1), grid_level=Level.BASE, person=WORKER,
                                existing=existing)
    assert len(warnings) == 1 and "exactly one" in warnings[0]


@pytest.mark.parametrize("role, level, person", [
    ("grid_worker", Level.VILLAGE, WORKER),
    ("safety_officer", Level.BASE, OFFICER),
    ("grid_worker", Level.BASE, OFFICER),
    ("chief", Level.BASE, WORKER),
])
def test_role_must_fit_level_and_person(role, level, person):
    with pytest.raises(InputError, match="role|not a grid worker"):
        check_assignment(assignment(role=role), grid_level=level, person=person, existing=[])


def test_period_must_not_end_before_it_starts():
    with pytest.raises(InputError, match="before valid_from"):
        check_assignment(assignment(start=FEB1, end=JAN1), grid_level=Level.BASE,
                         person=WORKER, existing=[])


def test_base_grids_without_exactly_one_worker_are_found():
    assignments = [assignment(person_id=1, grid_id=10, end=JAN31),
                   assignment(person_id=2, grid_id=11),
                   assignment(person_id=3, grid_id=11, start=FEB1),
                   assignment(person_id=4, grid_id=12, role="contact_cadre")]
    jan = {f.grid_id: f.problem for f in check_base_grid_workers([10, 11, 12], assignments,
                                                                 date(2024, 1, 15))}
    assert jan == {12: "no_worker"}
    feb = check_base_grid_workers([10, 11, 12], assignments, FEB1)
    assert {(f.grid_id, f.problem, f.person_ids) for f in feb} == {
        (10, "no_worker", ()), (11, "several_workers", (2, 3)), (12, "no_worker", ())}


def test_training_fields():
    assert validate_training("安全生产知识", "2024-03-01", "4.5")[2] == pytest.approx(4.5)
    with pytest.raises(InputError) as caught:
        validate_training("", "March", "-1")
    assert len(caught.value.details) == 3
