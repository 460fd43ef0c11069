"""Month partitions of gps_point: month of a time, table names and bounds (no database)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from gisgrid.db.points import month_of, partition_bounds, partition_name


def micros(*stamps: str) -> np.ndarray:
    return np.array([pd.Timestamp(s).value // 1000 for s in stamps], dtype=np.int64)


def test_months_start_at_midnight_china_standard_time():
    months = month_of(micros("2024-05-31T15:59:59.999999Z", "2024-05-31T16:00:00Z",
                             "2024-01-01T00:00:00+08:00", "2023-12-31T15:59:59Z"))
    assert [partition_name(m) for m in months] == [
        "gps_point_y2024m05", "gps_point_y2024m06", "gps_point_y2024m01",
        "gps_point_y2023m12"]


def test_bounds_of_a_month_are_the_next_months_start():
    december = int(month_of(micros("2023-12-15T12:00:00+08:00"))[0])
    assert partition_bounds(december) == ("2023-12-01 00:00:00+08", "2024-01-01 00:00:00+08")
    assert partition_name(december + 1) == "gps_point_y2024m01"


def test_times_before_1970_get_their_own_month():
    assert partition_name(int(month_of(micros("1969-12-31T16:00:00Z"))[0])) == \
        "gps_point_y1970m01"
    assert partition_name(int(month_of(micros("1969-12-31T15:00:00Z"))[0])) == \
        "gps_point_y1969m12"
