"""``gisgrid repair``: propose a repair of grid coverage; apply it only when asked.

    gisgrid repair FILE [--parents FILE] -o DIFF.geojson [--write-fixed FIXED.gpkg]
    gisgrid repair --db [--level N] [--apply] [-o DIFF.geojson]

The proposal never changes anything by itself: on files it writes the diff (and, with
``--write-fixed``, the repaired grids to a new file); on the database it is written only with
``--apply``, in one transaction with history rows.
"""

from __future__ import annotations

import json

import click

from gisgrid.cli import default_actor
from gisgrid.coverage.repair import DEFAULT_MAX_GAP_WIDTH, RepairProposal, propose_repair
from gisgrid.errors import InputError


def _summary_text(summary: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in summary.items())


@click.command("repair")
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@click.option("--parents", "parents_file", type=click.Path(dir_okay=False),
              help="Parent-level grid file; its boundaries are frozen (children are clipped).")
@click.option("--code-field", default="code", show_default=True)
@click.option("--parent-field", default="parent_code", show_default=True)
@click.option("--max-gap-width", type=float, default=DEFAULT_MAX_GAP_WIDTH, show_default=True,
              help="Gaps narrower than this (m) are merged into neighbours.")
@click.option("--priority-field", default=None,
              help="Numeric field: the grid with the higher value keeps an overlap.")
@click.option("--split-gaps", is_flag=True, help="Split gaps among neighbours, face by face.")
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Write the diff (GeoJSON FeatureCollection) here.")
@click.option("--write-fixed", type=click.Path(dir_okay=False),
              help="Write the repaired grids to this new file (files only).")
@click.option("--db", "use_db", is_flag=True, help="Repair the stored hierarchy.")
@click.option("--level", type=click.IntRange(2, 4), default=None,
              help="With --db: repair only this level (default: every level, top-down).")
@click.option("--apply", "apply_", is_flag=True, help="With --db: write the proposal.")
def repair(file, parents_file, code_field, parent_field, max_gap_width, priority_field,
           split_gaps, output, write_fixed, use_db, level, apply_) -> None:
    """Propose a repair of FILE (or of the stored hierarchy with --db) and write its diff."""
    if use_db == bool(file):
        raise InputError("give either a grid FILE or --db (not both, not neither)")
    problems = []
    if apply_ and not use_db:
        problems.append("--apply works only with --db; on files use --write-fixed")
    if write_fixed and use_db:
        problems.append("--write-fixed works only on files; with --db use --apply")
    if level is not None and not use_db:
        problems.append("--level works only with --db")
    if problems:
        raise InputError("these options do not go together", problems)
    options = dict(max_gap_width=max_gap_width, priority=priority_field, split_gaps=split_gaps)
    if use_db:
        proposals = _repair_db(level=level, apply=apply_, **options)
        diff = {"type": "FeatureCollection", "features": [], "levels": {}}
        for lvl, proposal in proposals.items():
            part = proposal.to_geojson()
            diff["features"] += part["features"]
            diff["levels"][str(lvl)] = part["summary"]
            click.echo(f"level {lvl}: {_summary_text(part['summary'])}", err=True)
    else:
        from gisgrid.cli.validate import align_parents_crs, read_grid_file

        children = read_grid_file(file)
        parents = align_parents_crs(children, read_grid_file(parents_file)) if parents_file else None
        proposal: RepairProposal = propose_repair(
            children, parents, code_field=code_field, parent_field=parent_field, **options)
        diff = proposal.to_geojson()
        click.echo(_summary_text(proposal.summary()), err=True)
        if write_fixed:
            from gisgrid.io import write_layer

            write_layer(proposal.children, write_fixed)
    text = json.dumps(diff, ensure_ascii=False)
    if output:
        from gisgrid.io import write_text

        write_text(output, text + "\n")
    elif not use_db:
        click.echo(text)


def _repair_db(*, level, apply, **options):
    from gisgrid.config import Settings
    from gisgrid.db.engine import get_engine
    from gisgrid.db.findings import repair_stored

    engine = get_engine(Settings.from_env())
    with engine.begin() as conn:
        return repair_stored(conn, level=level, apply=apply, actor=default_actor(), **options)
