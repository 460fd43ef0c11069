"""``gisgrid people``: grid workers, officers and cadres; assignments to grids; training.

Only parsing and presenting: the rules live in :mod:`gisgrid.people`, the storage in
:mod:`gisgrid.db.people`.
"""

from __future__ import annotations

import click

from gisgrid.cli import default_actor
from gisgrid.cli.checklists import FORMATS, day_or_today, echo_rows, parse_day
from gisgrid.people import ASSIGNMENT_ROLES, EMPLOYMENTS, PERSON_KINDS


@click.group("people")
def people() -> None:
    """Grid workers (网格员), officers and cadres."""


@people.command("add")
@click.option("--name", required=True)
@click.option("--kind", type=click.Choice(PERSON_KINDS), default="grid_worker",
              show_default=True)
@click.option("--employment", type=click.Choice(EMPLOYMENTS),
              help="full_time (专职) or part_time (兼职); required for a grid worker.")
@click.option("--phone")
@click.option("--id-number", help="18-character resident ID number.")
def add(name: str, kind: str, employment: str | None, phone: str | None,
        id_number: str | None) -> None:
    """Add a person; prints the new id."""
    from gisgrid.db.engine import begin
    from gisgrid.db.people import write_person
    from gisgrid.people import validate_person

    person = validate_person({"name": name, "kind": kind, "employment": employment,
                              "phone": phone, "id_number": id_number})
    with begin() as conn:
        person_id = write_person(conn, person, actor=default_actor())
    click.echo(f"person {person_id}: {person.name} ({person.kind})")


@people.command("assign")
@click.argument("person_id", type=int)
@click.argument("grid_code")
@click.option("--role", type=click.Choice(ASSIGNMENT_ROLES), default="grid_worker",
              show_default=True)
@click.option("--from", "valid_from", help="First day (YYYY-MM-DD; default: today, China time).")
@click.option("--to", "valid_to", help="Last day, inclusive (default: open-ended).")
def assign(person_id: int, grid_code: str, role: str, valid_from: str | None,
           valid_to: str | None) -> None:
    """Assign PERSON_ID to GRID_CODE in a role over a period of days."""
    from gisgrid.db.engine import begin
    from gisgrid.db.people import record_assignment

    start = day_or_today(valid_from, "--from")
    with begin() as conn:
        assignment_id, warnings = record_assignment(
            conn, person_id, grid_code, role, start, parse_day(valid_to, "--to"),
            actor=default_actor())
    click.echo(f"assignment {assignment_id}: person {person_id} is {role} of {grid_code} "
               f"from {start}")
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)


@people.command("train")
@click.argument("person_id", type=int)
@click.option("--course", required=True)
@click.option("--held-on", required=True, help="Day of the course (YYYY-MM-DD).")
@click.option("--hours", help="Length in hours.")
def train(person_id: int, course: str, held_on: str, hours: str | None) -> None:
    """Record a training course PERSON_ID attended."""
    from gisgrid.db.engine import begin
    from gisgrid.db.people import record_training

    with begin() as conn:
        training_id = record_training(conn, person_id, course, held_on, hours,
                                      actor=default_actor())
    click.echo(f"training {training_id}: person {person_id}, {course}, {held_on}")


@people.command("list")
@click.option("--under", help="Only people assigned to grids under this grid code.")
@click.option("--day", help="Assignments in force on this day (YYYY-MM-DD; default all).")
@click.option("--format", "fmt", type=FORMATS, default="text", show_default=True)
def list_people(under: str | None, day: str | None, fmt: str) -> None:
    """List people with their grids and training hours."""
    from gisgrid.db.engine import begin
    from gisgrid.db.people import read_people

    with begin() as conn:
        rows = read_people(conn, day=parse_day(day, "--day"), under=under)
    echo_rows(rows, ["id", "name", "kind", "employment", "phone", "grids", "training_hours"],
              fmt)


@people.command("check")
@click.option("--day", help="Day to check (YYYY-MM-DD; default: today, China time).")
@click.option("--under", help="Only base grids under this grid code.")
@click.option("--format", "fmt", type=FORMATS, default="text", show_default=True)
@click.pass_context
def check(ctx: click.Context, day: str | None, under: str | None, fmt: str) -> None:
    """Base grids without exactly one grid worker; exits 1 when there are any."""
    from gisgrid.db.engine import begin
    from gisgrid.db.grids import read_base_grids
    from gisgrid.db.people import check_staffing

    the_day = day_or_today(day, "--day")
    with begin() as conn:
        findings = check_staffing(conn, the_day, under=under)
        codes = {g["id"]: g["code"] for g in read_base_grids(conn, under=under)}
    rows = [{"grid_code": codes[f.grid_id], "problem": f.problem,
             "person_ids": " ".join(map(str, f.person_ids))} for f in findings]
    echo_rows(rows, ["grid_code", "problem", "person_ids"], fmt)
    if findings:
        ctx.exit(1)
