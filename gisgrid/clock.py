"""The one time zone of the plan: China Standard Time, whatever the server's own zone is.

Working days, patrol days, lateness and hazard due dates are all counted in
:data:`CHINA_TZ`; a timestamp may arrive in any zone.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

CHINA_TZ = ZoneInfo("Asia/Shanghai")


def to_local(moment: datetime) -> datetime:
    """``moment`` in China Standard Time; a naive datetime is taken to be local already.

    >>> from datetime import timezone
    >>> to_local(datetime(2024, 5, 1, 17, 0, tzinfo=timezone.utc)).isoformat()
    '2024-05-02T01:00:00+08:00'
    """
    if moment.tzinfo is None:
        return moment.replace(tzinfo=CHINA_TZ)
    return moment.astimezone(CHINA_TZ)


def local_today(now: datetime | None = None) -> date:
    """Today's date in China (the plan's working day), not the server's own zone.

    >>> from datetime import timezone
    >>> local_today(datetime(2024, 5, 1, 17, 0, tzinfo=timezone.utc))
    datetime.date(2024, 5, 2)
    """
    return to_local(now or datetime.now(CHINA_TZ)).date()
