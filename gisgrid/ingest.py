"""Bulk GPS ingest: stream a CSV or Parquet file of GPS fixes into ``gps_point``.

The file is read in chunks (memory does not grow with the file), each chunk is validated,
assigned to its grid chain (:mod:`gisgrid.assign`) and written with binary COPY into the
month's partition of ``gps_point`` (:mod:`gisgrid.db.points`), while the next chunk is read. The whole file is one transaction: when any row is bad the file is
read to its end to list every problem, then :class:`~gisgrid.errors.InputError` is raised and
nothing is stored. A point outside every grid is not a problem: it is stored with
``outside_grids = true``.

Input columns
-------------
``worker``
    The grid worker: a person id (``person.id``) or, failing that, the phone number of an
    active person (digits only); required, must exist.
``time``
    ISO 8601 date-time. With an offset (``Z``, ``+08:00``) it is taken as given; without one it
    is local time in ``timezone`` (default ``Asia/Shanghai``, China Standard Time).
``lon``, ``lat``
    Coordinates in the storage CRS (CGCS2000 lon/lat for EPSG:4490); required, within
    -180..180 and -90..90.
``accuracy``
    Horizontal accuracy in metres, optional (empty = unknown), never negative.

Rows are reported as ``line N`` for CSV (the header is line 1) and ``row N`` (from 1) for Parquet.
"""

from __future__ import annotations

import csv
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import sqlalchemy as sa

from gisgrid.assign import GridIndex, assign_points_at
from gisgrid.db import points as store
from gisgrid.errors import InputError

REQUIRED_COLUMNS = ("worker", "time", "lon", "lat")
OPTIONAL_COLUMNS = ("accuracy",)
FORMATS = ("csv", "parquet")
DEFAULT_CHUNK_SIZE = 100_000
DEFAULT_TIMEZONE = "Asia/Shanghai"
MAX_LISTED_PROBLEMS = 50
REBUILD_MIN_ROWS = 200_000

_CSV_TYPES = {"worker": pa.int64(), "time": pa.string(), "lon": pa.float64(),
              "lat": pa.float64(), "accuracy": pa.float32()}
_BYTES_PER_CSV_ROW = 60  # a typical row (for estimates from the file size)
# pyarrow's streaming CSV reader reads many blocks ahead: small blocks bound its memory
# (16 MB blocks hold 300-500 MB, 4 MB blocks about 100 MB), chunks are then put together.
_CSV_BLOCK_SIZE = 4 << 20
_OFFSET = re.compile(r"(?:Z|[+-]\d\d(?::?\d\d)?)$", re.IGNORECASE)


@dataclass(frozen=True)
class GpsChunk:
    """A validated chunk of GPS fixes: parallel arrays, ``first_row`` counted from 1."""

    first_row: int
    worker: np.ndarray  # int64 person ids
    recorded_at_us: np.ndarray  # int64 microseconds since 1970-01-01 UTC
    lon: np.ndarray
    lat: np.ndarray
    accuracy_m: np.ndarray  # float32, NaN = unknown

    def __len__(self) -> int:
        return len(self.worker)


@dataclass(frozen=True)
class WorkerDirectory:
    """Who a ``worker`` value can name: sorted person ids, and sorted phone numbers (as
    integers) with the person id of each."""

    ids: np.ndarray
    phones: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    phone_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def resolve(self, values: np.ndarray) -> np.ndarray:
        """Person id for each value (an id first, else a phone), ``-1`` when unknown."""
        out = np.where(_isin_sorted(values, self.ids), values, -1)
        rest = np.flatnonzero(out < 0)
        if len(rest) and len(self.phones):
            at = np.clip(np.searchsorted(self.phones, values[rest]), 0, len(self.phones) - 1)
            hit = self.phones[at] == values[rest]
            out[rest[hit]] = self.phone_ids[at[hit]]
        return out


@dataclass(frozen=True)
class IngestSummary:
    """What an ingest stored."""

    rows: int
    outside: int
    seconds: float
    index_seconds: float = 0.0  # of ``seconds``: indexes built after the COPY

    @property
    def rate(self) -> float:
        """Points per second, end to end."""
        return self.rows / self.seconds if self.seconds > 0 else float("nan")


def detect_format(path: Path, file_format: str | None = None) -> str:
    """``file_format`` if given, else ``csv`` or ``parquet`` from the file name's suffix."""
    if file_format is not None:
        if file_format not in FORMATS:
            raise InputError(f"unknown format {file_format!r}: use one of {', '.join(FORMATS)}")
        return file_format
    suffix = Path(path).suffix.lower()
    if suffix in (".csv", ".txt"):
        return "csv"
    if suffix in (".parquet", ".pq", ".geoparquet"):
        return "parquet"
    raise InputError(f"cannot tell the format of {Path(path).name} from its suffix "
                     f"{suffix!r}: pass --format csv or --format parquet")


def read_gps_chunks(
    path: str | Path,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    file_format: str | None = None,
    timezone: str = DEFAULT_TIMEZONE,
    workers: WorkerDirectory | None = None,
) -> Iterator[GpsChunk]:
    """Stream validated chunks of GPS fixes from a CSV or Parquet file.

    Chunks are yielded while every row so far is valid. At the first bad row the rest of the
    file is still read, to list every problem; then :class:`InputError` is raised (the caller
    must not commit anything it wrote). ``workers``, when given, resolves ``worker`` values
    to person ids (unknown ones are problems); without it the values are kept as they are.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such file: {path}")
    if chunk_size < 1:
        raise InputError(f"--chunk-size must be positive, got {chunk_size}")
    kind = detect_format(path, file_format)
    problems = _Problems("line" if kind == "csv" else "row", 1 if kind == "csv" else 0)
    batches = _csv_batches(path, chunk_size, problems) if kind == "csv" else \
        _parquet_batches(path, chunk_size)
    for first_row, batch in batches:
        chunk = _validate_batch(batch, first_row, timezone, workers, problems)
        if not problems:
            yield chunk
    problems.raise_if_any(path)


def ingest_points(
    conn: sa.Connection,
    path: str | Path,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    file_format: str | None = None,
    timezone: str = DEFAULT_TIMEZONE,
    index: GridIndex | None = None,
    rebuild_indexes: bool | None = None,
    progress: Callable[[int], None] | None = None,
) -> IngestSummary:
    """Read, validate, assign and COPY a GPS file into ``gps_point`` within ``conn``'s
    transaction (the caller commits; on :class:`InputError` it must roll back).

    Each point is assigned with the grids valid at its ``time`` (``grid_history``): a point
    recorded before the last grid change gets the grid versions of its time, one recorded
    before any grid existed is outside (without any ``grid_history`` row the current grids
    hold for every time). ``index``, the index of the current grids, defaults to
    one built from the database; the index of each past state is built when a point first
    needs it, and kept for the rest of the file.
    ``rebuild_indexes``: for a month whose partition already holds points, load it detached
    without its indexes and build them again after the COPY (see
    :func:`gisgrid.db.points.load_points`); ``None`` decides from the sizes: when the file
    holds at least :data:`REBUILD_MIN_ROWS` rows and at least a quarter of the partition's
    rows. A month without a partition always gets a new one, indexed after the COPY.
    ``progress`` is called with each chunk's row count.
    """
    started = time.perf_counter()
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such file: {path}")
    file_format = detect_format(path, file_format)
    if index is None:
        index = GridIndex.build(store.read_base_chain(conn))
    epochs = store.read_grid_epochs(conn)
    if not len(epochs):  # grids without any history (written outside the grid store)
        epochs = np.array([np.iinfo(np.int64).min])  # hold for all time
    indexes = {len(epochs) - 1: index}  # epoch -> index of the grids valid from it
    workers = WorkerDirectory(store.read_person_ids(conn), *store.read_person_phones(conn))
    outside = 0
    with store.load_points(conn, expected_rows=estimate_row_count(path, file_format),
                           rebuild_indexes=rebuild_indexes,
                           rebuild_min_rows=REBUILD_MIN_ROWS) as load:
        def index_at(epoch: int) -> GridIndex:
            if epoch not in indexes:  # a past state of the grids, read between two COPYs
                at = store.instant_of(epochs[epoch])
                indexes[epoch] = GridIndex.build(
                    load.read(lambda c: store.read_base_chain(c, at=at)))
            return indexes[epoch]

        for chunk in read_gps_chunks(path, chunk_size=chunk_size, file_format=file_format,
                                     timezone=timezone, workers=workers):
            chain = assign_points_at(index_at, epochs, chunk.recorded_at_us, chunk.lon,
                                     chunk.lat)
            load.write(store.PointRows(
                person_id=chunk.worker, recorded_at_us=chunk.recorded_at_us, lon=chunk.lon,
                lat=chunk.lat, accuracy_m=chunk.accuracy_m, chain=chain))
            outside += int(chain.outside.sum())
            if progress is not None:
                progress(len(chunk))
        # leaving the block ends the COPY, then indexes and attaches new partitions
    return IngestSummary(rows=load.rows, outside=outside,
                         seconds=time.perf_counter() - started,
                         index_seconds=load.index_seconds)


def count_rows_hint(path: str | Path, file_format: str | None = None) -> int | None:
    """Number of rows when cheap to know (Parquet metadata), else ``None`` (CSV)."""
    if detect_format(Path(path), file_format) != "parquet":
        return None
    try:
        return pq.ParquetFile(path).metadata.num_rows
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{Path(path).name} is not a readable Parquet file: {exc}") from exc


def estimate_row_count(path: str | Path, file_format: str | None = None) -> int:
    """Rows of the file: exact for Parquet, from the file size for CSV."""
    exact = count_rows_hint(path, file_format)
    return exact if exact is not None else Path(path).stat().st_size // _BYTES_PER_CSV_ROW


# ------------------------------------------------------------------------------ reading
class _Problems:
    """Every problem found, as text lines naming the row (or line) and the field."""

    _KEPT = 1000  # problems kept for sorting; the first MAX_LISTED_PROBLEMS are listed

    def __init__(self, unit: str, offset: int):
        self.unit, self.offset = unit, offset
        self.found: list[tuple[int, str]] = []
        self.skipped_lines: list[int] = []  # CSV lines dropped by the parser (sorted)
        self.count = 0

    def __bool__(self) -> bool:
        return self.count > 0

    def where(self, row: int) -> int:
        """Row number (from 1) -> line number for CSV, counting lines the parser skipped."""
        line = row + self.offset
        for skipped in self.skipped_lines:
            if skipped <= line:
                line += 1
        return line

    def add_rows(self, first_row: int, bad: np.ndarray, text: Callable[[int], str]) -> None:
        positions = np.flatnonzero(bad)
        self.count += len(positions)
        for i in positions[:max(self._KEPT - len(self.found), 0)]:
            self.found.append((self.where(first_row + int(i)), text(int(i))))

    def add_skipped_line(self, line: int, text: str) -> None:
        self.count += 1
        self.skipped_lines.append(line)
        self.skipped_lines.sort()
        if len(self.found) < self._KEPT:
            self.found.append((line, text))

    def raise_if_any(self, path: Path) -> None:
        if not self.count:
            return
        ordered = sorted(self.found, key=lambda item: item[0])[:MAX_LISTED_PROBLEMS]
        details = [f"{self.unit} {where}: {text}" for where, text in ordered]
        if self.count > len(details):
            details.append(f"... and {self.count - len(details)} more")
        raise InputError(f"{path.name}: {self.count} bad value(s); nothing was stored",
                         details)


def _read_csv_head(path: Path) -> tuple[list[str], dict[str, str]]:
    """The header's column names and the first data row (empty when there is none)."""
    with open(path, encoding="utf-8-sig", newline="") as fh:
        rows = csv.reader(fh)
        header = [name.strip() for name in next(rows, [])]
        first = next(rows, [])
    return header, dict(zip(header, first))


def _check_columns(names: list[str], path: Path) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        raise InputError(f"{path.name} lacks required column(s): {', '.join(missing)}",
                         [f"found columns: {', '.join(names) or '(none)'}",
                          f"expected: {', '.join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)}"])


def _csv_batches(path: Path, chunk_size: int,
                 problems: _Problems) -> Iterator[tuple[int, pa.RecordBatch]]:
    """Typed batches from pyarrow's streaming CSV reader; after a value pyarrow cannot convert
    it re-reads the file with string columns from that row on, to name each bad value."""
    names, first = _read_csv_head(path)
    _check_columns(names, path)
    wanted = [c for c in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS) if c in names]
    types = {c: _CSV_TYPES[c] for c in wanted}
    # Parse times in the reader (fast, multi-threaded) as zoned or local by the first row;
    # a file mixing both falls back to the string reader below, which handles each row.
    first_time = first.get("time", "").strip()
    types["time"] = pa.timestamp("us", tz="UTC" if _OFFSET.search(first_time) else None)
    done = 0
    try:
        reader = pacsv.open_csv(
            path, read_options=pacsv.ReadOptions(block_size=_CSV_BLOCK_SIZE),
            convert_options=pacsv.ConvertOptions(include_columns=wanted, column_types=types))
        for batch in _rechunk(reader, chunk_size):
            yield done + 1, batch
            done += batch.num_rows
        return
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass  # fall through to the string reader, which names each bad value

    def on_invalid(row) -> str:
        problems.add_skipped_line(row.number, f"expected {row.expected_columns} values, "
                                              f"found {row.actual_columns}")
        return "skip"

    reader = pacsv.open_csv(
        path, read_options=pacsv.ReadOptions(block_size=_CSV_BLOCK_SIZE, use_threads=False),
        parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid),
        convert_options=pacsv.ConvertOptions(
            include_columns=wanted, column_types={c: pa.string() for c in wanted}))
    seen = 0
    for batch in reader:
        if seen + batch.num_rows <= done:
            seen += batch.num_rows
            continue
        if seen < done:
            batch = batch.slice(done - seen)
            seen = done
        for piece in _split(batch, chunk_size):
            yield seen + 1, piece
            seen += piece.num_rows


def _parquet_batches(path: Path, chunk_size: int) -> Iterator[tuple[int, pa.RecordBatch]]:
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{path.name} is not a readable Parquet file: {exc}") from exc
    names = parquet.schema_arrow.names
    _check_columns(names, path)
    wanted = [c for c in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS) if c in names]
    done = 0
    for batch in parquet.iter_batches(batch_size=chunk_size, columns=wanted):
        yield done + 1, batch
        done += batch.num_rows


def _split(batch: pa.RecordBatch, size: int) -> Iterator[pa.RecordBatch]:
    for start in range(0, batch.num_rows, size):
        yield batch.slice(start, size)


def _rechunk(batches, size: int) -> Iterator[pa.RecordBatch]:
    """Batches of exactly ``size`` rows (the last one shorter) from batches of any size."""
    pending: list[pa.RecordBatch] = []
    rows = 0
    for batch in batches:
        pending.append(batch)
        rows += batch.num_rows
        if rows < size:
            continue
        table = pa.Table.from_batches(pending)
        whole = rows - rows % size
        for start in range(0, whole, size):
            yield table.slice(start, size).combine_chunks().to_batches()[0]
        rest = table.slice(whole)
        pending = rest.combine_chunks().to_batches() if rest.num_rows else []
        rows = rest.num_rows
    if rows:
        yield pa.Table.from_batches(pending).combine_chunks().to_batches()[0]


# ------------------------------------------------------------------------------ validation
def _validate_batch(batch: pa.RecordBatch, first_row: int, timezone: str,
                    workers: WorkerDirectory | None, problems: _Problems) -> GpsChunk:
    n = batch.num_rows
    names = batch.schema.names
    column = {name: batch.column(names.index(name)) for name in names}

    worker, worker_bad, worker_raw = _to_number(column["worker"], np.int64)
    worker_empty = _is_missing(column["worker"])
    problems.add_rows(first_row, worker_empty, lambda i: "worker: empty")
    problems.add_rows(first_row, worker_bad & ~worker_empty,
                      lambda i: f"worker: {worker_raw(i)!r} is not a person id")
    if workers is not None:
        person = workers.resolve(worker)
        unknown = (person < 0) & ~worker_bad & ~worker_empty
        problems.add_rows(first_row, unknown,
                          lambda i: f"worker: no person with id or phone {worker[i]}")
        worker = np.where(person < 0, worker, person)

    stamp, stamp_bad = _to_epoch_us(column["time"], timezone)
    time_empty = _is_missing(column["time"])
    problems.add_rows(first_row, time_empty, lambda i: "time: empty")
    problems.add_rows(first_row, stamp_bad & ~time_empty,
                      lambda i: f"time: {column['time'][i].as_py()!r} is not an ISO 8601 "
                                "date-time")

    coords = {}
    for name, limit in (("lon", 180.0), ("lat", 90.0)):
        values, bad, raw = _to_number(column[name], np.float64)
        empty = _is_missing(column[name])
        problems.add_rows(first_row, empty, lambda i, name=name: f"{name}: empty")
        problems.add_rows(first_row, bad & ~empty,
                          lambda i, name=name, raw=raw: f"{name}: {raw(i)!r} is not a number")
        with np.errstate(invalid="ignore"):
            out = ~bad & ~empty & ~(np.abs(values) <= limit)
        problems.add_rows(first_row, out, lambda i, name=name, values=values, limit=limit:
                          f"{name}: {values[i]} is outside -{limit:g}..{limit:g}")
        coords[name] = values

    if "accuracy" in column:
        accuracy, bad, raw = _to_number(column["accuracy"], np.float32)
        problems.add_rows(first_row, bad & ~_is_missing(column["accuracy"]),
                          lambda i: f"accuracy: {raw(i)!r} is not a number")
        with np.errstate(invalid="ignore"):
            negative = accuracy < 0
        problems.add_rows(first_row, negative,
                          lambda i: f"accuracy: {accuracy[i]} is negative")
    else:
        accuracy = np.full(n, np.nan, dtype=np.float32)
    return GpsChunk(first_row=first_row, worker=worker, recorded_at_us=stamp,
                    lon=coords["lon"], lat=coords["lat"], accuracy_m=accuracy)


def _is_missing(array: pa.Array) -> np.ndarray:
    """Null, or an empty / blank string."""
    missing = array.is_null().to_numpy(zero_copy_only=False)
    if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
        blank = pc.equal(pc.utf8_trim_whitespace(array), "").fill_null(True)
        missing = missing | blank.to_numpy(zero_copy_only=False)
    return missing


def _to_number(array: pa.Array, dtype) -> tuple[np.ndarray, np.ndarray, Callable[[int], str]]:
    """Values as ``dtype`` (NaN/0 where unusable), the mask of unusable values, and a
    function giving the raw text at a position (for messages)."""
    raw = lambda i: array[i].as_py()  # noqa: E731
    kind = array.type
    integer = np.issubdtype(np.dtype(dtype), np.integer)
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        null = array.is_null().to_numpy(zero_copy_only=False)
        floats = array.to_numpy(zero_copy_only=False).astype(np.float64) if null.any() \
            else array.to_numpy(zero_copy_only=False)
        if integer:
            bad = null | ~np.isfinite(floats) | (floats != np.round(floats))
            return np.where(bad, 0, floats).astype(dtype), bad, raw
        values = floats.astype(dtype)
        values[null] = np.nan
        return values, null, raw
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        numbers = pd.to_numeric(pd.Series(array.to_pandas()).str.strip(), errors="coerce")
        floats = numbers.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = ~np.isfinite(floats)
        if integer:
            bad |= floats != np.round(np.nan_to_num(floats))
            return np.where(bad, 0, floats).astype(dtype), bad, raw
        return floats.astype(dtype), bad, raw
    bad = np.ones(len(array), dtype=bool)
    return np.zeros(len(array), dtype=dtype), bad, (lambda i: f"<{kind}>")


def _to_epoch_us(array: pa.Array, timezone: str) -> tuple[np.ndarray, np.ndarray]:
    """Microseconds since 1970 UTC, and the mask of values that are not date-times."""
    kind = array.type
    if pa.types.is_timestamp(kind):
        if kind.tz is None:
            array = pc.assume_timezone(array, timezone)
        return _epoch(array.cast(pa.timestamp("us", tz="UTC")))
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        return np.zeros(len(array), dtype=np.int64), np.ones(len(array), dtype=bool)
    zoned = lambda: array.cast(pa.timestamp("us", tz="UTC"))  # noqa: E731
    local = lambda: pc.assume_timezone(array.cast(pa.timestamp("us")), timezone)  # noqa: E731
    sample = pc.drop_null(array[:1000])
    first = sample[0].as_py().strip() if len(sample) else ""
    for fast in ((zoned, local) if _OFFSET.search(first) else (local, zoned)):
        try:
            return _epoch(fast())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
    # Mixed or bad values: parse row by row (only for such chunks).
    text = pd.Series(array.to_pandas(), dtype=object).str.strip()
    aware = text.str.contains(_OFFSET, na=False)
    parsed = pd.Series(pd.NaT, index=text.index, dtype="datetime64[us, UTC]")
    if aware.any():
        parsed[aware] = pd.to_datetime(text[aware], format="ISO8601", utc=True,
                                       errors="coerce")
    naive = ~aware & text.notna()
    if naive.any():
        local = pd.to_datetime(text[naive], format="ISO8601", errors="coerce")
        parsed[naive] = local.dt.tz_localize(timezone, nonexistent="NaT",
                                             ambiguous="NaT").dt.tz_convert("UTC")
    bad = parsed.isna().to_numpy()
    values = parsed.dt.tz_convert("UTC").astype("datetime64[us, UTC]")
    micro = values.to_numpy(dtype="datetime64[us]", na_value=np.datetime64(0, "us"))
    return micro.astype(np.int64), bad


def _epoch(array: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    null = array.is_null().to_numpy(zero_copy_only=False)
    values = array.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
    return values.astype(np.int64, copy=False), null


def _isin_sorted(values: np.ndarray, sorted_ids: np.ndarray) -> np.ndarray:
    if not len(sorted_ids):
        return np.zeros(len(values), dtype=bool)
    at = np.clip(np.searchsorted(sorted_ids, values), 0, len(sorted_ids) - 1)
    return sorted_ids[at] == values
