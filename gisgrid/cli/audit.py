"""``gisgrid audit``: the audit log of changes (and, later, the plan's audits per area).

Only parsing and presenting: the log is written and read by :mod:`gisgrid.db.audit`.
"""

from __future__ import annotations

import json

import click

from gisgrid.cli.checklists import FORMATS, echo_rows, parse_day
from gisgrid.clock import CHINA_TZ
from gisgrid.db.audit import DEFAULT_LIMIT


@click.group("audit")
def audit() -> None:
    """Audit: who changed what, and when (审计)."""


@audit.command("log")
@click.option("--entity", help="Only events about this kind of row (e.g. grid, person, unit, "
                               "assignment, training, checklist, accepted_exception).")
@click.option("--action", help="Only events with this action (e.g. grids.import, person.add).")
@click.option("--since", help="Only events from this day on (YYYY-MM-DD, China time).")
@click.option("--limit", type=click.IntRange(min=1), default=DEFAULT_LIMIT, show_default=True,
              help="At most this many events, newest first.")
@click.option("--format", "fmt", type=FORMATS, default="text", show_default=True)
def log(entity: str | None, action: str | None, since: str | None, limit: int,
        fmt: str) -> None:
    """List the newest audit events."""
    from gisgrid.db.audit import read_events
    from gisgrid.db.engine import begin

    with begin() as conn:
        rows = read_events(conn, entity=entity, action=action,
                           since=parse_day(since, "--since"), limit=limit)
    if fmt == "text":
        for row in rows:
            row["at"] = row["at"].astimezone(CHINA_TZ).isoformat(timespec="seconds")
            row["detail"] = json.dumps(row["detail"], ensure_ascii=False, sort_keys=True) \
                if row["detail"] is not None else None
    echo_rows(rows, ["id", "at", "actor", "action", "entity", "entity_id", "detail"], fmt)
