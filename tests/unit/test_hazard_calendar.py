"""Workday calendar and due dates, checked against chinese_calendar's own data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import chinese_calendar
import pytest

from gisgrid.clock import CHINA_TZ
from gisgrid.errors import InputError
from gisgrid.hazards.calendar import (
    CalendarFallbackWarning,
    add_workdays,
    due_at,
    due_workdays_for,
    extend_due_at,
    is_overdue,
    is_workday,
)


def china(y, m, d, h=9):
    return datetime(y, m, d, h, tzinfo=CHINA_TZ)


def test_library_knows_golden_week_2025():
    # The facts the other tests rely on, read from the library, not assumed.
    for d in range(1, 9):
        assert chinese_calendar.is_holiday(date(2025, 10, d))
    assert chinese_calendar.is_workday(date(2025, 9, 28))   # Sunday, make-up day
    assert chinese_calendar.is_workday(date(2025, 10, 11))  # Saturday, make-up day
    assert date(2025, 9, 28).weekday() == 6 and date(2025, 10, 11).weekday() == 5


def test_add_workdays_skips_golden_week_and_counts_make_up_days():
    # Fri 26 Sep + 1 workday = Sun 28 Sep (make-up), not Mon 29.
    assert add_workdays(china(2025, 9, 26), 1) == china(2025, 9, 28)
    # Tue 30 Sep + 1 = Thu 9 Oct (1-8 Oct holiday); + 3 = Sat 11 Oct (make-up).
    assert add_workdays(china(2025, 9, 30), 1) == china(2025, 10, 9)
    assert add_workdays(china(2025, 9, 30), 3) == china(2025, 10, 11)
    assert add_workdays(china(2025, 9, 30), 4) == china(2025, 10, 13)


def test_add_workdays_agrees_with_library_workday_list():
    start = date(2025, 1, 20)
    workdays = chinese_calendar.get_workdays(start + timedelta(days=1), date(2025, 3, 31))
    for n in (1, 5, 10, 20):
        assert add_workdays(china(2025, 1, 20), n).date() == workdays[n - 1]


def test_spring_festival_2025():
    # 2025 Spring Festival: holidays 28 Jan - 4 Feb; make-up working Sun 26 Jan and Sat 8 Feb.
    assert chinese_calendar.is_workday(date(2025, 1, 26)) and chinese_calendar.is_workday(date(2025, 2, 8))
    assert all(chinese_calendar.is_holiday(date(2025, 1, 28) + timedelta(days=i)) for i in range(8))
    assert add_workdays(china(2025, 1, 24), 1).date() == date(2025, 1, 26)
    assert add_workdays(china(2025, 1, 27), 1).date() == date(2025, 2, 5)
    # major hazard reported on the eve: 3 workdays = 5, 6, 7 Feb
    assert due_at("fireworks", china(2025, 1, 27, 16), major=True) == datetime(
        2025, 2, 7, 23, 59, 59, tzinfo=CHINA_TZ)


def test_due_at_per_category():
    reported = china(2025, 9, 26, 10)
    assert due_at("fireworks", reported, major=False).date() == date(2025, 10, 10)   # 5 workdays
    assert due_at("elevator", reported, major=False).date() == date(2025, 10, 16)    # 10: 28,29,30,9,10,11(Sat),13-16
    assert due_at("elevator", reported, major=True).date() == date(2025, 9, 30)      # 3 workdays
    assert due_at("elevator", reported, major=False, item_due_workdays=2).date() == date(2025, 9, 29)


def test_due_workdays_table():
    assert due_workdays_for("other", major=False) == 10
    assert due_workdays_for("safety_exit", major=False) == 5
    assert due_workdays_for("safety_exit", major=True) == 3
    with pytest.raises(InputError, match="category: unknown hazard category"):
        due_workdays_for("ufo", major=False)


def test_utc_time_counts_by_china_day():
    # 2025-09-30 17:00 UTC is already 1 Oct in China (a holiday): +1 workday is still 9 Oct.
    start = datetime.fromisoformat("2025-09-30T17:00:00+00:00")
    assert add_workdays(start, 1).date() == date(2025, 10, 9)


def test_fallback_outside_known_years_is_monday_to_friday_and_warns():
    with pytest.warns(CalendarFallbackWarning, match="2040"):
        assert is_workday(date(2040, 1, 1)) is False  # a Sunday
    with pytest.warns(CalendarFallbackWarning):
        assert is_workday(date(2040, 1, 2)) is True   # a Monday (no holiday data consulted)
    # Fri 2040-01-06 + 1 workday = Mon 2040-01-09
    with pytest.warns(CalendarFallbackWarning):
        assert add_workdays(china(2040, 1, 6), 1).date() == date(2040, 1, 9)


def test_bad_arguments():
    with pytest.raises(InputError, match="start"):
        add_workdays(datetime(2025, 1, 1), 1)
    with pytest.raises(InputError, match="workdays"):
        add_workdays(china(2025, 1, 1), -1)


@dataclass
class _H:
    state: str
    due_at: datetime | None


def test_is_overdue():
    due = datetime(2025, 10, 10, 23, 59, 59, tzinfo=CHINA_TZ)
    before, after = china(2025, 10, 10, 12), china(2025, 10, 11, 0)
    assert not is_overdue(_H("handling", due), before)
    assert is_overdue(_H("handling", due), after)
    assert is_overdue(_H("reported", due), after)
    for state in ("closed", "voided", "suspended"):
        assert not is_overdue(_H(state, due), after)
    assert not is_overdue(_H("handling", None), after)


def test_postponement_extends_from_later_of_now_and_due():
    due = datetime(2025, 9, 29, 23, 59, 59, tzinfo=CHINA_TZ)
    assert extend_due_at(due, china(2025, 9, 26), 1).date() == date(2025, 9, 30)
    assert extend_due_at(due, china(2025, 10, 9), 1).date() == date(2025, 10, 10)
