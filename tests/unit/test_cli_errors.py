"""Driver errors that reach ``gisgrid`` become a one-line message and an exit status."""

from __future__ import annotations

import psycopg
import sqlalchemy as sa

from gisgrid.cli import database_error
from gisgrid.errors import Conflict, DatabaseUnavailable


def driver_error(kind, orig):
    return kind("SELECT 1", {}, orig)


def test_a_lost_connection_is_database_unavailable_exit_3():
    error = database_error(driver_error(
        sa.exc.OperationalError,
        psycopg.OperationalError("server closed the connection unexpectedly\nmore")))
    assert isinstance(error, DatabaseUnavailable) and error.exit_code == 3
    assert str(error) == ("the database is unavailable: server closed the connection "
                          "unexpectedly")


def test_a_concurrent_change_is_a_conflict_exit_2():
    error = database_error(driver_error(
        sa.exc.IntegrityError, psycopg.errors.UniqueViolation("duplicate key value")))
    assert isinstance(error, Conflict) and error.exit_code == 2
    assert "nothing was written: duplicate key value" in str(error)
    lock = database_error(driver_error(
        sa.exc.OperationalError, psycopg.errors.LockNotAvailable("lock timeout")))
    assert isinstance(lock, Conflict)


def test_programming_errors_stay_tracebacks():
    assert database_error(driver_error(
        sa.exc.ProgrammingError, psycopg.errors.UndefinedColumn("no column x"))) is None
    assert database_error(ValueError("x")) is None
