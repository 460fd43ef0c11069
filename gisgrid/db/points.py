"""Storage of GPS points (``gps_point``): the grid chain read for assignment, and binary COPY.

The only SQL of the bulk ingest. Rows are encoded straight from numpy arrays into
PostgreSQL's binary COPY format (one structured-array pass per null pattern, no Python loop
per row) and streamed through psycopg 3, inside the caller's transaction.

Binary COPY layout (PostgreSQL docs, "COPY", binary format): a signature and two int32
header words, then per row an int16 field count and per field an int32 byte length (-1 for
NULL) followed by the value in network byte order; a trailing int16 -1. The geometry value is
EWKB (little-endian, with the SRID), which PostGIS's binary input accepts.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import shapely
import sqlalchemy as sa
from psycopg.copy import LibpqWriter

from gisgrid.assign import AssignedChain
from gisgrid.db.engine import storage_srid

#: Columns written by :func:`copy_points`, in COPY order (``id`` and ``patrol_id`` default).
COPY_COLUMNS = ("person_id", "recorded_at", "accuracy_m", "geom", "city_grid_id",
                "township_grid_id", "village_grid_id", "base_grid_id", "outside_grids")

_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
_TRAILER = b"\xff\xff"
_PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01T00:00:00Z in microseconds since 1970
_EWKB_POINT_WITH_SRID = 0x20000001
_EWKB_SIZE = 25

# name, dtype of the value, nullable
_FIELDS = (
    ("person_id", ">i8", False),
    ("recorded_at", ">i8", False),
    ("accuracy_m", ">f4", True),
    ("geom", [("order", "u1"), ("type", "<u4"), ("srid", "<u4"), ("x", "<f8"), ("y", "<f8")],
     False),
    ("city_grid_id", ">i8", True),
    ("township_grid_id", ">i8", True),
    ("village_grid_id", ">i8", True),
    ("base_grid_id", ">i8", True),
    ("outside_grids", "u1", False),
)
_NULLABLE = [name for name, _, nullable in _FIELDS if nullable]


@dataclass(frozen=True)
class PointRows:
    """Columns of GPS points ready to store (one chunk of a file).

    ``recorded_at_us`` is microseconds since the Unix epoch (UTC); ``accuracy_m`` NaN means
    unknown (NULL); ``chain`` holds the grid ids (``-1`` = NULL) and the outside flag.
    """

    person_id: np.ndarray
    recorded_at_us: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    accuracy_m: np.ndarray
    chain: AssignedChain

    def __len__(self) -> int:
        return len(self.person_id)

    def grouped_by_grid(self) -> "PointRows":
        """The rows ordered by base grid, then time: neighbours in the table's indexes are
        then written together, which makes maintaining them several times cheaper."""
        order = np.lexsort((self.recorded_at_us, self.chain.base_grid_id))
        return PointRows(self.person_id[order], self.recorded_at_us[order], self.lon[order],
                         self.lat[order], self.accuracy_m[order], self.chain.take(order))


def read_base_chain(conn: sa.Connection) -> gpd.GeoDataFrame:
    """Current base grids with the ids of their village, township and city ancestors.

    Returns a frame ready for :meth:`gisgrid.assign.GridIndex.build` (columns ``id``,
    ``village_grid_id``, ``township_grid_id``, ``city_grid_id``; polygons in the storage CRS).
    """
    srid = storage_srid(conn)
    rows = conn.execute(sa.text("""
        SELECT b.id, v.id AS village_grid_id, t.id AS township_grid_id, c.id AS city_grid_id,
               ST_AsBinary(b.geom) AS wkb
        FROM grid b
        LEFT JOIN grid v ON v.id = b.parent_id AND v.level = 3
        LEFT JOIN grid t ON t.id = v.parent_id AND t.level = 2
        LEFT JOIN grid c ON c.id = t.parent_id AND c.level = 1
        WHERE b.level = 4 AND b.valid_to IS NULL
        ORDER BY b.id
    """)).all()
    frame = pd.DataFrame(rows, columns=["id", "village_grid_id", "township_grid_id",
                                        "city_grid_id", "wkb"])
    geoms = shapely.from_wkb(frame.pop("wkb").map(bytes).to_numpy()) if len(frame) else []
    for column in ("village_grid_id", "township_grid_id", "city_grid_id"):
        frame[column] = frame[column].astype("Int64")
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, crs=srid).values, crs=srid)


def read_person_ids(conn: sa.Connection) -> np.ndarray:
    """Sorted ids of every person (a GPS file's ``worker`` must be one of them)."""
    ids = conn.execute(sa.text("SELECT id FROM person ORDER BY id")).scalars().all()
    return np.asarray(ids, dtype=np.int64)


def read_person_phones(conn: sa.Connection) -> tuple[np.ndarray, np.ndarray]:
    """Phone numbers of active people (digits only, as integers) and their person ids.

    A phone shared by several active people belongs to the smallest id.
    """
    rows = conn.execute(sa.text("""
        SELECT DISTINCT ON (digits) digits::bigint, id
        FROM (SELECT id, regexp_replace(phone, '[^0-9]', '', 'g') AS digits
              FROM person WHERE active AND phone IS NOT NULL) p
        WHERE digits <> '' AND length(digits) <= 18
        ORDER BY digits, id""")).all()
    phones = np.asarray([r[0] for r in rows], dtype=np.int64)
    ids = np.asarray([r[1] for r in rows], dtype=np.int64)
    order = np.argsort(phones, kind="stable")
    return phones[order], ids[order]


def count_points(conn: sa.Connection) -> int:
    """Number of rows in ``gps_point``."""
    return int(conn.execute(sa.text("SELECT count(*) FROM gps_point")).scalar_one())


def estimate_point_count(conn: sa.Connection) -> int:
    """The planner's estimate of the rows in ``gps_point`` (cheap; 0 for a new table)."""
    value = conn.execute(sa.text(
        "SELECT reltuples FROM pg_class WHERE oid = 'gps_point'::regclass")).scalar_one()
    return max(int(value), 0)


@contextmanager
def suspended_indexes(conn: sa.Connection) -> Iterator[list[str]]:
    """Drop the secondary indexes of ``gps_point`` for the block, then build them again.

    For loads that are large next to the table: building an index once is far cheaper than
    maintaining it row by row (a GiST index on randomly placed points most of all). Both
    steps run in the caller's transaction, so a failure restores the indexes; meanwhile the
    table is locked against readers (ACCESS EXCLUSIVE) until the transaction ends. Yields the
    names of the suspended indexes. The primary key stays.
    """
    rows = conn.execute(sa.text("""
        SELECT i.relname, pg_get_indexdef(x.indexrelid)
        FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
        WHERE x.indrelid = 'gps_point'::regclass AND NOT x.indisprimary
        ORDER BY i.relname""")).all()
    for name, _ in rows:
        conn.execute(sa.text(f'DROP INDEX "{name}"'))
    yield [name for name, _ in rows]
    conn.execute(sa.text("SET LOCAL maintenance_work_mem = '512MB'"))
    for _, definition in rows:
        conn.execute(sa.text(definition))


class _BackgroundWriter(LibpqWriter):
    """Sends COPY data from a worker thread, so that reading, assigning and encoding the next
    chunk overlaps the server's work; at most ``depth`` encoded chunks wait in memory
    (psycopg's own QueuedLibpqWriter queues up to 128 MB of copies)."""

    def __init__(self, cursor, *, depth: int = 2):
        super().__init__(cursor)
        self._chunks: queue.Queue = queue.Queue(maxsize=depth)
        self._failure: BaseException | None = None
        self._sender = threading.Thread(target=self._send, name="gps-copy", daemon=True)
        self._sender.start()

    def _send(self) -> None:
        try:
            while (data := self._chunks.get()) is not None:
                super().write(data)
        except BaseException as exc:  # handed to the main thread at its next call
            self._failure = exc
            while self._chunks.get() is not None:
                pass

    def write(self, data) -> None:
        if self._failure is not None:
            raise self._failure
        self._chunks.put(data)

    def finish(self, exc: BaseException | None = None) -> None:
        self._chunks.put(None)
        self._sender.join()
        if self._failure is not None and exc is None:
            raise self._failure
        super().finish(exc)


class PointWriter:
    """Writes :class:`PointRows` into an open binary COPY (see :func:`copy_points`)."""

    def __init__(self, copy: psycopg.Copy, srid: int):
        self._copy = copy
        self._srid = srid
        self.rows = 0

    def write(self, rows: PointRows) -> None:
        """Encode ``rows`` (grouped by grid, see :meth:`PointRows.grouped_by_grid`) and queue
        them to the server."""
        encoded = encode_rows(rows.grouped_by_grid(), self._srid)
        self._copy.write(memoryview(encoded))  # sliced without copies
        self.rows += len(rows)


@contextmanager
def copy_points(conn: sa.Connection) -> Iterator[PointWriter]:
    """Open one binary ``COPY gps_point FROM STDIN`` inside ``conn``'s transaction.

    A background thread streams the encoded chunks to the server while the caller reads and
    assigns the next chunk. An exception inside the block aborts the COPY (and the caller's
    transaction rolls back).
    """
    srid = storage_srid(conn)
    raw = conn.connection.driver_connection
    columns = ", ".join(COPY_COLUMNS)
    with raw.cursor() as cursor:
        with cursor.copy(f"COPY gps_point ({columns}) FROM STDIN (FORMAT BINARY)",
                         writer=_BackgroundWriter(cursor)) as copy:
            copy.write(_SIGNATURE)
            writer = PointWriter(copy, srid)
            yield writer
            copy.write(_TRAILER)


def encode_rows(rows: PointRows, srid: int) -> bytes:
    """The binary COPY tuples of ``rows`` (no signature, no trailer), in input order by null
    pattern: rows sharing a pattern of NULLs are encoded together with one structured array.
    """
    n = len(rows)
    if n == 0:
        return b""
    chain = rows.chain
    values = {
        "person_id": rows.person_id,
        "recorded_at": rows.recorded_at_us - _PG_EPOCH_US,
        "accuracy_m": rows.accuracy_m,
        "city_grid_id": chain.city_grid_id,
        "township_grid_id": chain.township_grid_id,
        "village_grid_id": chain.village_grid_id,
        "base_grid_id": chain.base_grid_id,
        "outside_grids": chain.outside,
    }
    nulls = {
        "accuracy_m": np.isnan(rows.accuracy_m),
        "city_grid_id": chain.city_grid_id < 0,
        "township_grid_id": chain.township_grid_id < 0,
        "village_grid_id": chain.village_grid_id < 0,
        "base_grid_id": chain.base_grid_id < 0,
    }
    pattern = np.zeros(n, dtype=np.int64)
    for bit, name in enumerate(_NULLABLE):
        pattern |= nulls[name].astype(np.int64) << bit
    present = np.unique(pattern)
    if len(present) == 1:
        return _encode_pattern(rows, values, int(present[0]), slice(None), srid)
    parts = []
    for code in present:
        where = np.flatnonzero(pattern == code)
        parts.append(_encode_pattern(rows, values, int(code), where, srid))
    return b"".join(parts)


def _encode_pattern(rows: PointRows, values: dict, code: int, where, srid: int) -> bytes:
    null_names = {name for bit, name in enumerate(_NULLABLE) if code >> bit & 1}
    layout = [("count", ">i2")]
    for name, dtype, _ in _FIELDS:
        layout.append((f"{name}_len", ">i4"))
        if name not in null_names:
            layout.append((name, dtype))
    lon = rows.lon[where]
    out = np.empty(len(lon), dtype=np.dtype(layout))
    out["count"] = len(_FIELDS)
    for name, dtype, _ in _FIELDS:
        if name in null_names:
            out[f"{name}_len"] = -1
        elif name == "geom":
            out["geom_len"] = _EWKB_SIZE
            geom = out["geom"]
            geom["order"] = 1
            geom["type"] = _EWKB_POINT_WITH_SRID
            geom["srid"] = srid
            geom["x"] = lon
            geom["y"] = rows.lat[where]
        else:
            out[f"{name}_len"] = np.dtype(dtype).itemsize
            out[name] = values[name][where]
    return out.tobytes()
