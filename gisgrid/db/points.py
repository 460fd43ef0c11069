"""Storage of GPS points (``gps_point``): the grid chain read for assignment, and binary COPY.

The only SQL of the bulk ingest. Rows are encoded straight from numpy arrays into
PostgreSQL's binary COPY format (one structured-array pass per null pattern, no Python loop
per row) and streamed through psycopg 3, inside the caller's transaction.

``gps_point`` is partitioned by month (China Standard Time). A load creates the table of a
month it is the first to reach in its own transaction and fills it before it has any index
(maintaining the primary key alone during the COPY cost 40 % of its rate); the primary key
and indexes are then built once (PostGIS's sorted GiST build) before the table is attached
as the month's partition. On a server with ``wal_level = minimal`` such a table's rows also
skip the WAL; that measured within noise here, so the embedded server keeps the default. See :func:`load_points`; the server's costs are measured
by ``bench/bench_copy_server.py``. Only this module writes ``gps_point`` (an INSERT into a
month without a partition fails).

Binary COPY layout (PostgreSQL docs, "COPY", binary format): a signature and two int32
header words, then per row an int16 field count and per field an int32 byte length (-1 for
NULL) followed by the value in network byte order; a trailing int16 -1. The geometry value is
EWKB (little-endian, with the SRID), which PostGIS's binary input accepts.
"""

from __future__ import annotations

import queue
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import shapely
import sqlalchemy as sa

from gisgrid.assign import AssignedChain
from gisgrid.db.engine import storage_srid

#: Columns of the binary COPY rows of :func:`encode_rows` (``patrol_id`` stays NULL).
COPY_COLUMNS = ("person_id", "recorded_at", "accuracy_m", "geom", "city_grid_id",
                "township_grid_id", "village_grid_id", "base_grid_id", "outside_grids")
#: The same with a leading ``id`` (ids chosen by the writer, see :func:`encode_rows`).
COPY_COLUMNS_WITH_ID = ("id", *COPY_COLUMNS)

_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
_TRAILER = b"\xff\xff"
_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
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
_ID_FIELD = ("id", ">i8", False)


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

    def take(self, order) -> "PointRows":
        """The rows at positions ``order`` (an index array or a slice)."""
        return PointRows(self.person_id[order], self.recorded_at_us[order], self.lon[order],
                         self.lat[order], self.accuracy_m[order], self.chain.take(order))

    def grouped_by_grid(self) -> "PointRows":
        """The rows ordered by base grid, then time: neighbours in the table's indexes are
        then written together, which makes maintaining them several times cheaper."""
        return self.take(np.lexsort((self.recorded_at_us, self.chain.base_grid_id)))


def read_base_chain(conn: sa.Connection, *, at: datetime | None = None) -> gpd.GeoDataFrame:
    """Base grids with the ids of their village, township and city ancestors: the current
    ones, or those valid at ``at`` (from ``grid_history``).

    Returns a frame ready for :meth:`gisgrid.assign.GridIndex.build` (columns ``id``,
    ``village_grid_id``, ``township_grid_id``, ``city_grid_id``; polygons in the storage CRS).
    """
    srid = storage_srid(conn)
    if at is None:
        rows = conn.execute(sa.text("""
            SELECT b.id, v.id AS village_grid_id, t.id AS township_grid_id,
                   c.id AS city_grid_id, ST_AsBinary(b.geom) AS wkb
            FROM grid b
            LEFT JOIN grid v ON v.id = b.parent_id AND v.level = 3
            LEFT JOIN grid t ON t.id = v.parent_id AND t.level = 2
            LEFT JOIN grid c ON c.id = t.parent_id AND c.level = 1
            WHERE b.level = 4 AND b.valid_to IS NULL
            ORDER BY b.id
        """)).all()
    else:
        valid = "{0}.valid_from <= :at AND ({0}.valid_to IS NULL OR {0}.valid_to > :at)"
        rows = conn.execute(sa.text(f"""
            SELECT b.grid_id, v.grid_id AS village_grid_id, t.grid_id AS township_grid_id,
                   c.grid_id AS city_grid_id, ST_AsBinary(b.geom) AS wkb
            FROM grid_history b
            LEFT JOIN grid_history v ON v.grid_id = b.parent_id AND v.level = 3
                 AND {valid.format("v")}
            LEFT JOIN grid_history t ON t.grid_id = v.parent_id AND t.level = 2
                 AND {valid.format("t")}
            LEFT JOIN grid_history c ON c.grid_id = t.parent_id AND c.level = 1
                 AND {valid.format("c")}
            WHERE b.level = 4 AND {valid.format("b")}
            ORDER BY b.grid_id
        """), {"at": at}).all()
    frame = pd.DataFrame(rows, columns=["id", "village_grid_id", "township_grid_id",
                                        "city_grid_id", "wkb"])
    geoms = shapely.from_wkb(frame.pop("wkb").map(bytes).to_numpy()) if len(frame) else []
    for column in ("village_grid_id", "township_grid_id", "city_grid_id"):
        frame[column] = frame[column].astype("Int64")
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, crs=srid).values, crs=srid)


def read_grid_epochs(conn: sa.Connection) -> np.ndarray:
    """The instants at which any grid version started or ended (``grid_history``), sorted,
    as int64 microseconds since 1970-01-01 UTC (the unit of ``recorded_at_us``)."""
    values = conn.execute(sa.text("""
        SELECT DISTINCT floor(extract(epoch FROM t) * 1000000)::bigint AS us
        FROM (SELECT valid_from AS t FROM grid_history
              UNION ALL SELECT valid_to FROM grid_history WHERE valid_to IS NOT NULL) e
        ORDER BY us""")).scalars().all()
    return np.asarray(values, dtype=np.int64)


def instant_of(us: int) -> datetime:
    """The UTC ``datetime`` of ``us`` microseconds since 1970 (exact)."""
    return _UNIX_EPOCH + timedelta(microseconds=int(us))


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


# ------------------------------------------------------------------------------ partitions
#: Months start at 00:00 China Standard Time (UTC+8), so a local month is one partition.
PARTITION_UTC_OFFSET_US = 8 * 3600 * 1_000_000
_PARTITION_NAME = "gps_point_y{:04d}m{:02d}"


def month_of(recorded_at_us: np.ndarray) -> np.ndarray:
    """The partition month of each time (microseconds since 1970 UTC), as months since
    1970-01 (int64)."""
    local = (np.asarray(recorded_at_us, dtype=np.int64) + PARTITION_UTC_OFFSET_US)
    return local.astype("datetime64[us]").astype("datetime64[M]").astype(np.int64)


def partition_name(month: int) -> str:
    """``gps_point_yYYYYmMM``: the table holding the points of ``month`` (months since 1970-01)."""
    year, index = divmod(int(month), 12)
    return _PARTITION_NAME.format(1970 + year, index + 1)


def partition_bounds(month: int) -> tuple[str, str]:
    """The ``FROM`` and ``TO`` literals of ``month``'s partition (local month starts)."""
    def start(m: int) -> str:
        year, index = divmod(int(m), 12)
        return f"{1970 + year:04d}-{index + 1:02d}-01 00:00:00+08"
    return start(month), start(month + 1)


def read_partitions(conn: sa.Connection) -> list[str]:
    """Names of ``gps_point``'s partitions, sorted."""
    return sorted(conn.execute(sa.text("""
        SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'gps_point'::regclass""")).scalars())


# ------------------------------------------------------------------------------ loading
class _Table:
    """How one month's rows are stored during a load."""

    def __init__(self, name: str, month: int, *, finish: bool, fresh: bool = False):
        self.name, self.month = name, month
        self.finish = finish  # indexes to build and ATTACH after the COPY
        # created or truncated by this load: COPY FREEZE writes the rows frozen and
        # all-visible (no later anti-wraparound vacuum pass over them; index-only scans)
        self.fresh = fresh


class _Sender(threading.Thread):
    """Owns the database connection during a load: prepares each month's table (DDL) and
    streams the encoded rows to it with binary COPY, while the main thread reads, assigns
    and encodes the next chunk. At most ``depth`` encoded pieces wait in memory."""

    _END, _ABORT = object(), object()

    def __init__(self, cursor, prepare: Callable[[int], _Table], *, depth: int = 3):
        super().__init__(name="gps-copy", daemon=True)
        self._cursor = cursor
        self._prepare = prepare
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self.failure: BaseException | None = None

    def put(self, month: int, data: bytes) -> None:
        if self.failure is not None:
            raise self.failure
        self._queue.put((month, data))

    def close(self, *, abort: bool) -> None:
        self._queue.put(self._ABORT if abort else self._END)
        self.join()

    def call(self, fn: Callable[[], object]) -> object:
        """Run ``fn`` on this thread between two COPYs (the connection is free then) and
        return its result; the rows queued before it are sent first."""
        if self.failure is not None:
            raise self.failure
        call = _Call(fn)
        self._queue.put(call)
        call.done.wait()
        if self.failure is not None:
            raise self.failure
        if call.error is not None:
            raise call.error
        return call.result

    def run(self) -> None:
        item = None
        try:
            item = self._queue.get()
            while isinstance(item, (tuple, _Call)):
                if isinstance(item, _Call):
                    item.run()
                    item = self._queue.get()
                    continue
                month = item[0]
                table = self._prepare(month)
                columns = ", ".join(COPY_COLUMNS_WITH_ID)
                freeze = ", FREEZE" if table.fresh else ""
                with self._cursor.copy(f'COPY "{table.name}" ({columns}) FROM STDIN '
                                       f"(FORMAT BINARY{freeze})") as copy:
                    copy.write(_SIGNATURE)
                    while isinstance(item, tuple) and item[0] == month:
                        copy.write(memoryview(item[1]))
                        item = self._queue.get()
                    if item is self._ABORT:
                        raise _Aborted()
                    copy.write(_TRAILER)
        except BaseException as exc:  # handed to the main thread
            self.failure = exc
            while item is not self._END and item is not self._ABORT:
                if isinstance(item, _Call):
                    item.done.set()  # not run: the caller sees ``failure``
                item = self._queue.get()


class _Call:
    """A function for the sender thread to run, and its outcome."""

    def __init__(self, fn: Callable[[], object]):
        self.fn = fn
        self.done = threading.Event()
        self.result: object = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self.fn()
        except BaseException as exc:  # handed to the caller
            self.error = exc
        finally:
            self.done.set()


class _Aborted(Exception):
    """The main thread gave up the load (its own exception is the one reported)."""


class PointLoad:
    """An open load into ``gps_point`` (see :func:`load_points`)."""

    def __init__(self, conn: sa.Connection, *, expected_rows: int,
                 rebuild_indexes: bool | None, rebuild_min_rows: int):
        self._conn = conn
        self._raw = conn.connection.driver_connection
        self._srid = storage_srid(conn)
        self._expected_rows = expected_rows
        self._rebuild = rebuild_indexes
        self._rebuild_min_rows = rebuild_min_rows
        self._existing = set(read_partitions(conn))
        self._tables: dict[int, _Table] = {}
        self._sequence = conn.execute(sa.text(
            "SELECT pg_get_serial_sequence('gps_point', 'id')")).scalar_one()
        self._next_id = int(conn.execute(sa.text("SELECT nextval(:s)"),
                                         {"s": self._sequence}).scalar_one())
        self.rows = 0
        #: Seconds spent building indexes and attaching partitions after the COPY.
        self.index_seconds = 0.0
        self._sender: _Sender | None = None

    def write(self, rows: PointRows) -> None:
        """Give the rows their ids, encode them (by month, then grid and time) and queue
        them to the server."""
        if not len(rows):
            return
        month = month_of(rows.recorded_at_us)
        order = np.lexsort((rows.recorded_at_us, rows.chain.base_grid_id, month))
        rows, month = rows.take(order), month[order]
        cuts = [0, *(np.flatnonzero(np.diff(month)) + 1).tolist(), len(rows)]
        if self._sender is None:
            self._sender = _Sender(self._raw.cursor(), self._prepare)
            self._sender.start()
        for start, stop in zip(cuts[:-1], cuts[1:]):
            piece = rows.take(slice(start, stop))
            data = encode_rows(piece, self._srid, first_id=self._next_id)
            self._next_id += len(piece)
            self._sender.put(int(month[start]), data)
        self.rows += len(rows)

    def read(self, fn: Callable[[sa.Connection], object]) -> object:
        """``fn(conn)`` run while no COPY is open (on the thread that owns the connection),
        for a read needed in the middle of a load; its result is returned."""
        if self._sender is None:
            return fn(self._conn)
        return self._sender.call(lambda: fn(self._conn))

    # -------------------------------------------------------------- sender thread side
    def _prepare(self, month: int) -> _Table:
        """The table to COPY ``month``'s rows into, created or detached on first use."""
        table = self._tables.get(month)
        if table is not None:
            return table
        name = partition_name(month)
        cur = self._raw.cursor()
        if name not in self._existing:
            # New in this transaction (so under wal_level=minimal its rows skip the WAL).
            cur.execute(f'CREATE TABLE "{name}" (LIKE gps_point INCLUDING DEFAULTS '
                        'INCLUDING CONSTRAINTS)')
            table = _Table(name, month, finish=True, fresh=True)
        elif self._rebuild_partition(cur, name):
            cur.execute(f'ALTER TABLE gps_point DETACH PARTITION "{name}"')
            for sql in _drop_index_statements(cur, name):
                cur.execute(sql)
            cur.execute(f'SELECT NOT EXISTS (SELECT FROM "{name}")')
            empty = cur.fetchone()[0]
            if empty:
                cur.execute(f'TRUNCATE "{name}"')  # a new file, as for a new month
            table = _Table(name, month, finish=True, fresh=empty)
        else:
            table = _Table(name, month, finish=False)
        self._tables[month] = table
        return table

    def _rebuild_partition(self, cur, name: str) -> bool:
        if self._rebuild is not None:
            return self._rebuild
        cur.execute(f'SELECT NOT EXISTS (SELECT FROM "{name}"), '
                    "(SELECT reltuples FROM pg_class WHERE oid = %s::regclass)", (name,))
        empty, estimate = cur.fetchone()
        return empty or (self._expected_rows >= self._rebuild_min_rows
                         and self._expected_rows >= max(estimate, 0) / 4)

    # -------------------------------------------------------------- end of the load
    def _close(self, *, abort: bool) -> None:
        if self._sender is None:
            return
        self._sender.close(abort=abort)
        failure = self._sender.failure
        if failure is not None and not isinstance(failure, _Aborted):
            raise failure

    def _finish(self) -> None:
        if self.rows:
            self._conn.execute(sa.text("SELECT setval(:s, :v)"),
                               {"s": self._sequence, "v": self._next_id - 1})
        pending = [t for t in self._tables.values() if t.finish]
        if not pending:
            return
        started = time.perf_counter()
        primary_key, indexes = _parent_index_definitions(self._conn)
        self._conn.execute(sa.text("SET LOCAL maintenance_work_mem = '512MB'"))
        for table in pending:
            quoted = f'"{table.name}"'
            self._conn.execute(sa.text(f"ALTER TABLE {quoted} ADD {primary_key}"))
            for definition in indexes:
                self._conn.execute(sa.text(definition.format(table=quoted)))
            low, high = partition_bounds(table.month)
            # The indexes built above are attached to the parent's, not built again.
            self._conn.execute(sa.text(
                f"ALTER TABLE gps_point ATTACH PARTITION {quoted} "
                f"FOR VALUES FROM ('{low}') TO ('{high}')"))
        self.index_seconds = time.perf_counter() - started


@contextmanager
def load_points(conn: sa.Connection, *, expected_rows: int = 0,
                rebuild_indexes: bool | None = None,
                rebuild_min_rows: int = 200_000) -> Iterator[PointLoad]:
    """Load GPS points into ``gps_point`` inside ``conn``'s transaction.

    ``gps_point`` is partitioned by month (:func:`partition_name`). Each month met in the
    rows is loaded by one of three routes:

    - no partition yet: a table is created in this transaction, loaded by binary COPY
      without indexes (under ``wal_level = minimal``, without WAL too), its primary key
      and indexes are built (GiST's sorted build) and it is attached as the month's
      partition;
    - an existing partition that is empty, or small next to the load (``rebuild_indexes``
      ``None``: ``expected_rows`` at least ``rebuild_min_rows`` and a quarter of its rows;
      ``True``: always): it is detached, its indexes dropped, loaded, indexed again and
      attached again; readers of ``gps_point`` wait until the transaction ends;
    - otherwise the rows are copied into the partition and its indexes are kept up to date
      row by row.

    Ids come from ``gps_point``'s identity sequence, taken as one block: the table is
    locked against other writers (readers go on) until the transaction ends. A background
    thread owns the connection while the block runs (do not use ``conn`` inside it). An
    exception inside the block aborts the COPY; the caller's transaction must roll back.
    """
    conn.execute(sa.text("LOCK TABLE gps_point IN SHARE ROW EXCLUSIVE MODE"))
    load = PointLoad(conn, expected_rows=expected_rows, rebuild_indexes=rebuild_indexes,
                     rebuild_min_rows=rebuild_min_rows)
    try:
        yield load
    except BaseException:
        load._close(abort=True)
        raise
    load._close(abort=False)
    load._finish()


def _parent_index_definitions(conn: sa.Connection) -> tuple[str, list[str]]:
    """``gps_point``'s primary key (``PRIMARY KEY (...)``) and its other indexes as
    ``CREATE INDEX ... ON {table} ...`` templates for one partition."""
    primary_key = conn.execute(sa.text("""
        SELECT pg_get_constraintdef(oid) FROM pg_constraint
        WHERE conrelid = 'gps_point'::regclass AND contype = 'p'""")).scalar_one()
    definitions = conn.execute(sa.text("""
        SELECT pg_get_indexdef(x.indexrelid) FROM pg_index x
        WHERE x.indrelid = 'gps_point'::regclass AND NOT x.indisprimary
        ORDER BY x.indexrelid""")).scalars().all()
    templates = [re.sub(r"^CREATE (UNIQUE )?INDEX \S+ ON (ONLY )?\S+ ",
                        lambda m: f"CREATE {m.group(1) or ''}INDEX ON {{table}} ",
                        d.replace("{", "{{").replace("}", "}}")) for d in definitions]
    return primary_key, templates


def _drop_index_statements(cur, name: str) -> list[str]:
    """Statements dropping the primary key and the indexes of the (detached) table."""
    cur.execute("""SELECT conname FROM pg_constraint
                   WHERE conrelid = %s::regclass AND contype = 'p'""", (name,))
    statements = [f'ALTER TABLE "{name}" DROP CONSTRAINT "{row[0]}"' for row in cur.fetchall()]
    cur.execute("""SELECT i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
                   WHERE x.indrelid = %s::regclass AND NOT x.indisprimary""", (name,))
    statements += [f'DROP INDEX "{row[0]}"' for row in cur.fetchall()]
    return statements


def encode_rows(rows: PointRows, srid: int, first_id: int | None = None) -> bytes:
    """The binary COPY tuples of ``rows`` (no signature, no trailer), in input order by null
    pattern: rows sharing a pattern of NULLs are encoded together with one structured array.

    With ``first_id`` the rows carry ids ``first_id, first_id + 1, ...`` (in the order of
    ``rows``) as a leading ``id`` field (see :data:`COPY_COLUMNS_WITH_ID`).
    """
    n = len(rows)
    if n == 0:
        return b""
    chain = rows.chain
    values = {
        "id": None if first_id is None else first_id + np.arange(n, dtype=np.int64),
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
    fields = _FIELDS if values["id"] is None else (_ID_FIELD, *_FIELDS)
    layout = [("count", ">i2")]
    for name, dtype, _ in fields:
        layout.append((f"{name}_len", ">i4"))
        if name not in null_names:
            layout.append((name, dtype))
    lon = rows.lon[where]
    out = np.empty(len(lon), dtype=np.dtype(layout))
    out["count"] = len(fields)
    for name, dtype, _ in fields:
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
