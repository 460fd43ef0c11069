"""``gisgrid checklists``: load the plan's patrol checklists, show them, and edit a city's own.

Only parsing and presenting: the rules live in :mod:`gisgrid.checklists`, the storage in
:mod:`gisgrid.db.checklists`.
"""

from __future__ import annotations

import json
import unicodedata
from datetime import date

import click

from gisgrid.cli import default_actor
from gisgrid.errors import InputError

FORMATS = click.Choice(["text", "json"])
KIND_LABELS = {"check": "查", "in_place": "到位", "report": "报告"}


def echo_rows(rows: list[dict], columns: list[str], fmt: str) -> None:
    """Print ``rows`` as JSON or as an aligned text table of ``columns`` (shared by the
    field-operation commands)."""
    if fmt == "json":
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2, default=str))
        return
    if not rows:
        click.echo("(none)")
        return
    cells = [[("-" if r.get(c) is None else str(r.get(c))) for c in columns] for r in rows]
    widths = [max(_width(c), *(_width(row[k]) for row in cells))
              for k, c in enumerate(columns)]
    for row in [columns, *cells]:
        click.echo("  ".join(v + " " * (w - _width(v)) for v, w in zip(row, widths)).rstrip())


def _width(text: str) -> int:
    """Columns ``text`` takes in a terminal: Chinese (wide) characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def parse_day(value: str | None, option: str) -> date | None:
    """A YYYY-MM-DD option value, or :class:`InputError` naming the option."""
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InputError(f"{option}: {value!r} is not a date (YYYY-MM-DD)") from None


def day_or_today(value: str | None, option: str) -> date:
    """:func:`parse_day` of ``value``, or today's date in China when it is None."""
    from gisgrid.clock import local_today

    return parse_day(value, option) or local_today()


@click.group("checklists")
def checklists() -> None:
    """Patrol checklists (网格员日常巡查清单): community 十一查二到位, village 九查一报告."""


@checklists.command("load")
def load() -> None:
    """Store the plan's two lists (version 1); loading again changes nothing."""
    from gisgrid.db.checklists import load_builtin_checklists
    from gisgrid.db.engine import begin

    with begin() as conn:
        ids = load_builtin_checklists(conn, actor=default_actor())
    for code, checklist_id in ids.items():
        click.echo(f"{code}: checklist {checklist_id}")


@checklists.command("show")
@click.argument("code", type=click.Choice(["community", "village"]))
@click.option("--city", help="Code of the city whose list to show (default: the plan's).")
@click.option("--day", help="The list in force on this day (YYYY-MM-DD; default: newest).")
@click.option("--versions", is_flag=True, help="List the stored versions instead.")
@click.option("--format", "fmt", type=FORMATS, default="text", show_default=True)
def show(code: str, city: str | None, day: str | None, versions: bool, fmt: str) -> None:
    """Show the checklist CODE (community or village) with Chinese and English text."""
    from gisgrid.db.checklists import find_checklist, read_checklist, read_checklist_versions
    from gisgrid.db.engine import begin
    from gisgrid.db.grids import read_city

    with begin() as conn:
        if versions:
            echo_rows(read_checklist_versions(conn, code),
                      ["id", "code", "version", "owner", "valid_from", "items"], fmt)
            return
        city_id = read_city(conn, city, field_name="--city").id if city else None
        checklist_id = find_checklist(conn, code, city_id=city_id,
                                      day=parse_day(day, "--day"))
        checklist, _ = read_checklist(conn, checklist_id)
    if fmt == "json":
        click.echo(json.dumps({"id": checklist_id, **checklist.to_dict()}, ensure_ascii=False,
                              indent=2))
        return
    click.echo(f"{checklist.title_zh}  {checklist.title_en}  (v{checklist.version})")
    for item in checklist.items:
        click.echo(f"{item.code} [{KIND_LABELS[item.item_kind]} {item.item_kind}] "
                   f"{item.text_zh}")
        click.echo(f"     {item.text_en}  (due {item.due_workdays} workday(s))")


@checklists.command("edit")
@click.argument("code", type=click.Choice(["community", "village"]))
@click.option("--city", required=True, help="Code of the city (level 1) that owns the edit.")
@click.option("--set", "sets", multiple=True, metavar="ITEM.FIELD=VALUE",
              help="Change a field of an item, e.g. C05.due_workdays=2 (repeatable).")
@click.option("--remove", multiple=True, metavar="ITEM", help="Drop an item (repeatable).")
@click.option("--add", "add_file", type=click.File("r", encoding="utf-8"),
              help="A JSON file with a list of new items.")
@click.option("--from-day",
              help="First day the new version is in force (default: today, China time).")
def edit(code: str, city: str, sets: tuple[str, ...], remove: tuple[str, ...], add_file,
         from_day: str | None) -> None:
    """Edit the city's CODE list: the result is a new version, the old one is kept."""
    from gisgrid.db.checklists import record_checklist_edit
    from gisgrid.db.engine import begin

    changes = parse_sets(sets)
    add = []
    if add_file is not None:
        try:
            add = json.load(add_file)
        except json.JSONDecodeError as exc:
            raise InputError(f"--add: not JSON ({exc})") from None
        if not isinstance(add, list):
            raise InputError("--add: the file must hold a JSON list of items")
    with begin() as conn:
        checklist_id, checklist = record_checklist_edit(
            conn, code, city_code=city, valid_from=day_or_today(from_day, "--from-day"),
            changes=changes, remove=remove, add=add, actor=default_actor())
    click.echo(f"{code} v{checklist.version} for {city}: checklist {checklist_id}, "
               f"{len(checklist.items)} items")


def parse_sets(sets) -> dict[str, dict]:
    """``["C05.due_workdays=2", ...]`` -> ``{"C05": {"due_workdays": 2}}`` (numbers as ints)."""
    changes: dict[str, dict] = {}
    problems = []
    for text in sets:
        target, sep, value = text.partition("=")
        item, dot, name = target.partition(".")
        if not sep or not dot or not item or not name:
            problems.append(f"--set {text!r}: expected ITEM.FIELD=VALUE (e.g. C05.due_workdays=2)")
            continue
        changes.setdefault(item, {})[name] = (int(value) if name in ("due_workdays", "position")
                                              and value.strip().lstrip("-").isdigit()
                                              else value)
    if problems:
        raise InputError("checklist edit refused", problems)
    return changes
