"""The workday calendar (工作日历) and hazard due dates.

Workdays follow China's official calendar through ``chinese_calendar`` (PyPI
``chinesecalendar``): public holidays are skipped and make-up working days (调休, a Saturday or
Sunday worked in exchange for a longer holiday) count as workdays. Days are counted in China
Standard Time (Asia/Shanghai), whatever time zone a timestamp arrives in.

Outside the years the library knows (it raises ``NotImplementedError`` there), the calendar
falls back to Monday-Friday and emits a :class:`CalendarFallbackWarning` naming the day, so a
due date is still computed and the caller can tell the user it ignores holidays.

Due dates: a hazard reported at ``t`` is due at the end (23:59:59 China time) of the N-th
workday after the day of ``t``; the day of the report itself never counts. N comes from the
category table in :mod:`gisgrid.hazards.categories` (major 3, fire-related 5, ordinary 10), or
from the checklist item's ``due_workdays`` when it sets one.
"""

from __future__ import annotations

import warnings
from datetime import date, datetime, time, timedelta

import chinese_calendar

from gisgrid.clock import CHINA_TZ
from gisgrid.errors import InputError
from gisgrid.hazards.categories import MAJOR_DUE_WORKDAYS, get_category
from gisgrid.hazards.workflow import CLOCK_STOPPED_STATES, State

END_OF_DAY = time(23, 59, 59)


class CalendarFallbackWarning(UserWarning):
    """A day outside the official calendar's years was judged by Monday-Friday alone."""


def is_known_year(day: date) -> bool:
    """Whether the official calendar has holiday data for ``day``'s year."""
    try:
        chinese_calendar.is_workday(day)
    except NotImplementedError:
        return False
    return True


def is_workday(day: date) -> bool:
    """Whether ``day`` is a working day in China.

    >>> is_workday(date(2025, 10, 8)), is_workday(date(2025, 10, 11))   # holiday, make-up day
    (False, True)
    """
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        warnings.warn(
            f"no official holiday data for {day.year}: {day.isoformat()} judged by "
            "Monday-Friday only (holidays and make-up days ignored)",
            CalendarFallbackWarning,
            stacklevel=2,
        )
        return day.weekday() < 5


def _require_aware(value: datetime, field: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InputError(f"{field}: must be a timezone-aware datetime, got {value!r}")
    return value


def add_workdays(start: datetime, n: int) -> datetime:
    """The same China wall-clock time ``n`` workdays after ``start``'s day.

    The day of ``start`` does not count, whether or not it is a workday; ``n == 0`` returns
    ``start``. The result is in China Standard Time.

    >>> add_workdays(datetime(2025, 9, 30, 10, tzinfo=CHINA_TZ), 1).date()   # golden week
    datetime.date(2025, 10, 9)
    """
    _require_aware(start, "start")
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise InputError(f"workdays: must be a whole number >= 0, got {n!r}")
    local = start.astimezone(CHINA_TZ)
    day, counted = local.date(), 0
    while counted < n:
        day += timedelta(days=1)
        if is_workday(day):
            counted += 1
    return datetime.combine(day, local.timetz())


def due_workdays_for(category: str, *, major: bool, item_due_workdays: int | None = None) -> int:
    """Workdays allowed to close a hazard: major 3; else the checklist item's, else the category's."""
    if major:
        return MAJOR_DUE_WORKDAYS
    if item_due_workdays is not None:
        return int(item_due_workdays)
    return get_category(category).due_workdays


def due_at(
    category: str,
    reported_at: datetime,
    *,
    major: bool,
    item_due_workdays: int | None = None,
) -> datetime:
    """When a hazard reported at ``reported_at`` must be closed (end of a workday, China time).

    >>> due_at("fireworks", datetime(2025, 9, 26, 9, tzinfo=CHINA_TZ), major=False)
    datetime.datetime(2025, 10, 10, 23, 59, 59, tzinfo=zoneinfo.ZoneInfo(key='Asia/Shanghai'))
    """
    n = due_workdays_for(category, major=major, item_due_workdays=item_due_workdays)
    day = add_workdays(_require_aware(reported_at, "reported_at"), n).date()
    return datetime.combine(day, END_OF_DAY, tzinfo=CHINA_TZ)


def extend_due_at(current_due: datetime | None, at: datetime, workdays: int) -> datetime:
    """New due date after a postponement (延期): ``workdays`` after the later of now and the old due."""
    base = max(_require_aware(at, "at"), current_due) if current_due is not None else at
    day = add_workdays(base, workdays).date()
    return datetime.combine(day, END_OF_DAY, tzinfo=CHINA_TZ)


def is_overdue(hazard, now: datetime) -> bool:
    """Whether ``hazard`` (anything with ``state`` and ``due_at``) is past due at ``now``.

    Closed, voided and suspended (挂账) hazards are never overdue; a hazard without a due date
    is not overdue.
    """
    _require_aware(now, "now")
    if State.parse(hazard.state) in CLOCK_STOPPED_STATES or hazard.due_at is None:
        return False
    return now > hazard.due_at
