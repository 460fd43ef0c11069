"""Streaming GPS reader: chunking, time zones, and every bad value named (no database)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gisgrid.errors import InputError
from gisgrid.ingest import WorkerDirectory, read_gps_chunks

HEADER = "worker,time,lon,lat,accuracy\n"


def write_csv(tmp_path, body: str, name: str = "gps.csv"):
    path = tmp_path / name
    path.write_text(HEADER + body, encoding="utf-8")
    return path


def read_all(path, **options):
    return list(read_gps_chunks(path, **options))


def test_chunks_have_the_asked_size_and_keep_every_row(tmp_path):
    rows = "".join(f"1,2024-05-01 08:00:{i:02d},113.9,29.7,{i}\n" for i in range(7))
    chunks = read_all(write_csv(tmp_path, rows), chunk_size=3)
    assert [len(c) for c in chunks] == [3, 3, 1]
    assert [c.first_row for c in chunks] == [1, 4, 7]
    np.testing.assert_array_equal(np.concatenate([c.accuracy_m for c in chunks]), np.arange(7))


def test_times_with_and_without_offsets(tmp_path):
    body = ("1,2024-05-01T08:00:00+08:00,113.9,29.7,\n"
            "1,2024-05-01 08:00:00,113.9,29.7,\n"
            "1,2024-05-01T00:00:00Z,113.9,29.7,\n")
    (chunk,) = read_all(write_csv(tmp_path, body))
    expected = pd.Timestamp("2024-05-01T00:00:00Z").value // 1000
    assert chunk.recorded_at_us.tolist() == [expected] * 3
    assert np.isnan(chunk.accuracy_m).all()
    (utc,) = read_all(write_csv(tmp_path, "1,2024-05-01 00:00:00,113.9,29.7,\n"), timezone="UTC")
    assert utc.recorded_at_us.tolist() == [expected]


def test_every_problem_is_listed_by_line_even_after_a_malformed_line(tmp_path):
    body = ("1,2024-05-01 08:00:00,113.9,29.7,5\n"
            "x,2024-05-01 08:00:00,abc,29.7,3\n"
            "3,2024-05-01 08:00:00,113\n"
            ",nonsense,113,,-1\n"
            "1,2024-05-01 08:00:00,113.9,29.7,5\n")
    with pytest.raises(InputError) as info:
        read_all(write_csv(tmp_path, body), chunk_size=2)
    assert info.value.details == [
        "line 3: worker: 'x' is not a person id",
        "line 3: lon: 'abc' is not a number",
        "line 4: expected 5 values, found 3",
        "line 5: worker: empty",
        "line 5: time: 'nonsense' is not an ISO 8601 date-time",
        "line 5: lat: empty",
        "line 5: accuracy: -1.0 is negative",
    ]


def test_unknown_workers_and_phone_numbers(tmp_path):
    body = "7,2024-05-01 08:00:00,113.9,29.7,\n13800138000,2024-05-01 08:00:00,113.9,29.7,\n"
    workers = WorkerDirectory(np.array([7]), np.array([13800138000]), np.array([9]))
    (chunk,) = read_all(write_csv(tmp_path, body), workers=workers)
    assert chunk.worker.tolist() == [7, 9]
    with pytest.raises(InputError, match="no person with id or phone 13800138000"):
        read_all(write_csv(tmp_path, body), workers=WorkerDirectory(np.array([7])))


def test_parquet_rows_are_numbered_from_one(tmp_path):
    frame = pd.DataFrame({"worker": ["1", "2"], "time": pd.to_datetime(
        ["2024-05-01 08:00", "2024-05-01 09:00"]), "lon": [113.9, 190.0], "lat": [29.7, 29.7]})
    frame.to_parquet(tmp_path / "gps.parquet")
    with pytest.raises(InputError) as info:
        read_all(tmp_path / "gps.parquet")
    assert info.value.details == ["row 2: lon: 190.0 is outside -180..180"]


def test_unknown_suffix_and_missing_columns(tmp_path):
    with pytest.raises(InputError, match="--format"):
        read_all(write_csv(tmp_path, "", name="gps.dat"))
    (tmp_path / "few.csv").write_text("worker,lon\n1,2\n")
    with pytest.raises(InputError, match="time, lat"):
        read_all(tmp_path / "few.csv")
