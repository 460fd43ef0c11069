"""``gisgrid validate``: check grid coverage on plain files or on the stored hierarchy.

Exit status: 0 clean, 1 findings, 2 unusable input (the reason on stderr).

    gisgrid validate FILE [--parents FILE] [--format text|json|geojson|html] [-o OUT]
    gisgrid validate --db [--level N] [--code CODE]
    gisgrid validate accept FINDING_ID --reason TEXT [--reviewer NAME]
"""

from __future__ import annotations

import json

import click

from gisgrid.cli import default_actor
from gisgrid.coverage import checks
from gisgrid.coverage.hierarchy import validate_level
from gisgrid.coverage.report import CoverageReport
from gisgrid.errors import InputError
from gisgrid.i18n import LANGS

FORMATS = ("text", "json", "geojson", "html")


class _DefaultToRun(click.Group):
    """A group whose arguments go to its hidden ``run`` command unless they name a sub-command."""

    def parse_args(self, ctx, args):
        if not args or args[0] not in self.commands:
            args = ["run", *args]
        return super().parse_args(ctx, args)


class _AsGroupContext(click.Context):
    """Context of the default command: its usage and hints read ``gisgrid validate ...``."""

    @property
    def command_path(self) -> str:
        return self.parent.command_path if self.parent is not None else super().command_path


class _DefaultCommand(click.Command):
    context_class = _AsGroupContext


@click.group("validate", cls=_DefaultToRun)
def validate() -> None:
    """Check grid coverage: gaps, overlaps, parts outside the parent and more."""


def read_grid_file(path: str):
    """Read a grid file through gisgrid.io (the only module touching files)."""
    from gisgrid.io import read_layer

    return read_layer(path)


def render_report(report: CoverageReport, fmt: str, lang: str, *, context=None) -> str:
    """The report as text in ``fmt``; ``context`` (a grid frame) is drawn under an HTML map."""
    if fmt == "json":
        return report.to_json(indent=1) + "\n"
    if fmt == "geojson":
        return json.dumps(report.to_geojson(), ensure_ascii=False) + "\n"
    if fmt == "html":
        from gisgrid.coverage.render import render_html

        return render_html(report, lang, context=context)
    return report.to_text(lang)


def context_frame(children, parents, report: CoverageReport, *, code_field: str,
                  parent_field: str):
    """The checked files as one grid frame to draw under the findings of an HTML report.

    Codes and parent codes come from the fields the check used, names from a ``name`` field
    (else the code), levels from the report; None when the report knows no level.
    """
    import pandas as pd

    levels = [lvl for lvl in report.features_by_level if lvl is not None]
    if not levels:
        return None
    child_level = max(levels)
    frames = []
    for frame, level in ((parents, child_level - 1), (children, child_level)):
        if frame is None or level < 1:
            continue
        codes = frame[code_field].astype(str)
        names = frame["name"].astype(str) if "name" in frame.columns else codes
        parent_codes = (frame[parent_field] if parent_field in frame.columns
                        else pd.Series(None, index=frame.index, dtype=object))
        frames.append(frame[[frame.geometry.name]].assign(
            code=codes, name=names, level=level, parent_code=parent_codes))
    return pd.concat(frames) if frames else None


def emit(text: str, output: str | None) -> None:
    """Write ``text`` to ``output`` or stdout."""
    if output:
        from gisgrid.io import write_text

        write_text(output, text)
    else:
        click.echo(text, nl=False)


def align_parents_crs(children, parents):
    """Parents reprojected to the children's CRS when the two files differ (explicit, logged)."""
    from gisgrid.crs import require_crs

    child_crs = require_crs(children, "the grid file")
    parent_crs = require_crs(parents, "the parent file")
    if child_crs.equals(parent_crs):
        return parents
    click.echo(f"note: parents reprojected from {parent_crs.to_string()} to "
               f"{child_crs.to_string()}", err=True)
    return parents.to_crs(child_crs)


@validate.command("run", hidden=True, cls=_DefaultCommand)
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@click.option("--parents", "parents_file", type=click.Path(dir_okay=False),
              help="Parent-level grid file (gaps and outside parts are measured against it).")
@click.option("--code-field", default="code", show_default=True)
@click.option("--parent-field", default="parent_code", show_default=True)
@click.option("--level", type=click.IntRange(1, 4), help="Level of the grids (default: file's).")
@click.option("--code", "code", help="With --db: validate only the grids under this code.")
@click.option("--min-area", type=float, default=checks.DEFAULT_MIN_AREA, show_default=True,
              help="Ignore overlaps, gaps and outside parts at or below this area (m2).")
@click.option("--sliver-width", type=float, default=checks.DEFAULT_SLIVER_WIDTH,
              show_default=True, help="Grids or parts narrower than this (m) are slivers.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
@click.option("--lang", type=click.Choice(LANGS), default="zh", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write here, not stdout.")
@click.option("--db", "use_db", is_flag=True, help="Validate the stored hierarchy.")
def run(file, parents_file, code_field, parent_field, level, code, min_area,
        sliver_width, fmt, lang, output, use_db) -> None:
    """Validate FILE (optionally against --parents FILE), or the stored hierarchy with --db.

    Exit status 0 when clean, 1 when there are findings, 2 on unusable input.

    \b
    Examples:
      gisgrid validate villages.gpkg --parents townships.gpkg --format json -o report.json
      gisgrid validate --db --level 4 --code 421281.03
      gisgrid validate accept FINDING_ID --reason TEXT   (accept a stored finding as an
                                                          exception; see its --help)
    """
    if use_db == bool(file):
        raise InputError("give either a grid FILE or --db (not both, not neither)")
    context = None
    if use_db:
        report = _validate_db(level=level, code=code, min_area=min_area,
                              sliver_width=sliver_width)
        if fmt == "html":
            context = _stored_context(report, code)
    else:
        if code:
            raise InputError("--code works only with --db")
        children = read_grid_file(file)
        parents = None
        if parents_file:
            parents = align_parents_crs(children, read_grid_file(parents_file))
        report = validate_level(children, parents, code_field=code_field,
                                parent_field=parent_field, level=level, min_area=min_area,
                                sliver_width=sliver_width)
        if fmt == "html":
            context = context_frame(children, parents, report, code_field=code_field,
                                    parent_field=parent_field)
    emit(render_report(report, fmt, lang, context=context), output)
    if not report.valid:
        click.get_current_context().exit(1)


def _validate_db(*, level, code, min_area, sliver_width) -> CoverageReport:
    """Validate the stored hierarchy and store the run with its findings."""
    from gisgrid.config import Settings
    from gisgrid.db.engine import get_engine
    from gisgrid.db.findings import validate_stored

    with get_engine(Settings.from_env()).begin() as conn:
        run_id, report = validate_stored(conn, level=level, code=code, min_area=min_area,
                                         sliver_width=sliver_width, actor=default_actor())
    click.echo(f"validation run {run_id} stored", err=True)
    return report


def _stored_context(report: CoverageReport, code: str | None):
    """The stored grids to draw under the findings of an HTML report (see context_grids)."""
    from gisgrid.config import Settings
    from gisgrid.coverage.render import context_grids
    from gisgrid.db.engine import get_engine
    from gisgrid.db.grids import read_grids

    with get_engine(Settings.from_env()).connect() as conn:
        grids = read_grids(conn, under=code) if code else read_grids(conn)
    return context_grids(grids, report) if len(grids) else None


@validate.command("accept")
@click.argument("finding_id")
@click.option("--reason", required=True, help="Why this finding is acceptable.")
@click.option("--reviewer", default=None, help="Who accepts it (default: $GISGRID_ACTOR, else the OS user).")
def accept(finding_id, reason, reviewer) -> None:
    """Accept a stored finding as an exception: reported apart, not counted as a failure."""
    from gisgrid.config import Settings
    from gisgrid.db.engine import get_engine
    from gisgrid.db.findings import accept_finding

    if not reason.strip():
        raise InputError("--reason must not be empty")
    reviewer = reviewer or default_actor()
    engine = get_engine(Settings.from_env())
    with engine.begin() as conn:
        exception_id = accept_finding(conn, finding_id, reason=reason, reviewer=reviewer)
    click.echo(f"finding {finding_id} accepted (exception {exception_id}) by {reviewer}")
