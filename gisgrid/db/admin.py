"""Whole-database chores: what the demo needs to reload itself safely. Only SQL here."""

from __future__ import annotations

import sqlalchemy as sa

from gisgrid.db.models import Base

# Tables that describe the database itself rather than its data.
_KEPT = {"setting"}


def read_city_codes(conn: sa.Connection) -> list[str]:
    """Codes of the current level-1 grids (the cities held by the database)."""
    rows = conn.execute(sa.text(
        "SELECT code FROM grid WHERE level = 1 AND valid_to IS NULL ORDER BY code"))
    return [r.code for r in rows]


def clear_data(conn: sa.Connection) -> None:
    """Empty every gisgrid table (grids, people, units, patrols, hazards, findings, users...)."""
    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables if t.name not in _KEPT)
    conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
