"""Validation runs, findings and accepted exceptions: the only SQL of the coverage stage.

Tables ``validation_run``, ``finding`` and ``accepted_exception`` (see
:mod:`gisgrid.db.models`). Grids are read and written through the grid store
(:mod:`gisgrid.db.grids`). Every function takes a ``Connection``: the caller owns the
transaction.

An accepted exception holds the fingerprint of a finding and the versions of the grids it
involves (``{code: version}``); it applies while every one of those grids is still at that
version, so a change to any geometry it involves voids it.
"""

from __future__ import annotations

import getpass
import json

import numpy as np
import shapely
import sqlalchemy as sa

from gisgrid.coverage import checks
from gisgrid.coverage.hierarchy import validate_hierarchy
from gisgrid.coverage.repair import (RepairProposal, propose_hierarchy_repair, propose_repair,
                                     same_vertices_key)
from gisgrid.coverage.report import CoverageReport, Finding
from gisgrid.db.audit import FindingAccepted, record_audit
from gisgrid.db.engine import storage_srid
from gisgrid.db.grids import read_grids, write_grids
from gisgrid.errors import InputError, NotFound
from gisgrid.grids import prepare_grids


def read_hierarchy(conn: sa.Connection, *, level: int | None = None, code: str | None = None):
    """Current grids to validate: ``{level: frame}``.

    ``level`` alone: that level and the one above; ``code``: the grid and everything below it
    (with ``level``: only that level below the grid plus its parents).
    """
    frames = read_grids(conn, under=code) if code else read_grids(conn)
    if frames.empty:
        if code:
            raise NotFound(f"no grid with code {code!r}")
        raise InputError("the database holds no grids to validate")
    by_level = {int(lvl): part for lvl, part in frames.groupby("level")}
    if level is not None:
        by_level = {lvl: f for lvl, f in by_level.items() if lvl in (level, level - 1)}
        if level not in by_level:
            raise NotFound(f"no current grids of level {level}"
                           + (f" under {code!r}" if code else ""))
    return by_level


def current_versions(conn: sa.Connection, codes) -> dict[str, int]:
    """``{code: version}`` of the current grids with these codes."""
    codes = sorted(set(codes))
    if not codes:
        return {}
    rows = conn.execute(sa.text(
        "SELECT code, version FROM grid WHERE valid_to IS NULL AND code = ANY(:codes)"),
        {"codes": codes}).all()
    return {code: int(version) for code, version in rows}


def standing_exceptions(conn: sa.Connection) -> set[str]:
    """Fingerprints of accepted exceptions whose grids are all still at the accepted version."""
    rows = conn.execute(sa.text(
        "SELECT fingerprint, grid_versions FROM accepted_exception")).all()
    involved = {code for _, versions in rows for code in versions}
    now = current_versions(conn, involved)
    return {fp for fp, versions in rows
            if all(now.get(code) == int(v) for code, v in versions.items())}


def validate_stored(conn: sa.Connection, *, level: int | None = None, code: str | None = None,
                    min_area: float = checks.DEFAULT_MIN_AREA,
                    sliver_width: float = checks.DEFAULT_SLIVER_WIDTH,
                    actor: str | None = None) -> tuple[int, CoverageReport]:
    """Validate the stored hierarchy (or part of it) and store the run and its findings.

    Returns the run id and the report; each finding's ``id`` becomes its row id.
    """
    frames = read_hierarchy(conn, level=level, code=code)
    report = validate_hierarchy(frames, min_area=min_area, sliver_width=sliver_width,
                                accepted=standing_exceptions(conn))
    if level is not None:   # the level above was read only as parents
        report.findings = [f for f in report.findings
                           if f.level in (level, None) or f.kind == "childless_parent"]
        report.features_by_level = {k: v for k, v in report.features_by_level.items()
                                    if k == level}
        report.features_by_parent = {k: v for k, v in report.features_by_parent.items()
                                     if k[0] == level}
    run_id = record_run(conn, report, scope_level=level, scope_code=code,
                        params={"min_area": min_area, "sliver_width": sliver_width},
                        actor=actor or getpass.getuser())
    return run_id, report


def record_run(conn: sa.Connection, report: CoverageReport, *, scope_level=None, scope_code=None,
               params=None, actor=None, source: str = "db") -> int:
    """Insert a validation run and its findings; set each finding's ``id`` to its row id."""
    run_id = conn.execute(sa.text("""
        INSERT INTO validation_run (source, scope_level, scope_code, params, summary, actor,
                                    finished_at)
        VALUES (:source, :level, :code, CAST(:params AS jsonb), CAST(:summary AS jsonb), :actor,
                clock_timestamp())
        RETURNING id"""), {"source": source, "level": scope_level, "code": scope_code,
                           "params": json.dumps(params or {}),
                           "summary": json.dumps(report.summary()), "actor": actor}).scalar_one()
    srid = storage_srid(conn)
    for finding in report.findings:
        finding.id = str(conn.execute(sa.text("""
            INSERT INTO finding (run_id, fingerprint, kind, level, codes, parent_code, area_m2,
                                 width_m, geom, detail, status)
            VALUES (:run, :fp, :kind, :level, :codes, :parent, :area, :width,
                    ST_SetSRID(ST_GeomFromWKB(:wkb), :srid), CAST(:detail AS jsonb), :status)
            RETURNING id"""), _finding_row(finding, run_id, srid)).scalar_one())
    return int(run_id)


def _finding_row(finding: Finding, run_id: int, srid: int) -> dict:
    geom = finding.geometry
    wkb = None if geom is None or shapely.is_empty(geom) else shapely.to_wkb(geom)
    return {"run": run_id, "fp": finding.fingerprint, "kind": finding.kind,
            "level": finding.level, "codes": list(finding.codes),
            "parent": finding.parent_code, "area": finding.area_m2, "width": finding.width_m,
            "wkb": wkb, "srid": srid, "detail": json.dumps(finding.detail, ensure_ascii=False),
            "status": "accepted" if finding.accepted else "open"}


def accept_finding(conn: sa.Connection, finding_id: str, *, reason: str, reviewer: str) -> int:
    """Accept a stored finding (row id, or fingerprint / its first 16 digits) as an exception.

    The versions of the grids it involves (its codes and its parent) are stored with it, and
    the acceptance is audited (``finding.accept``, the reviewer as actor).
    Returns the id of the accepted-exception row.
    """
    if not reason or not reason.strip():
        raise InputError("an accepted exception needs a reason")
    key = str(finding_id).strip()
    if key.isdigit():
        row = conn.execute(sa.text(
            "SELECT id, fingerprint, kind, codes, parent_code FROM finding WHERE id = :id"),
            {"id": int(key)}).first()
    else:
        row = conn.execute(sa.text("""
            SELECT id, fingerprint, kind, codes, parent_code FROM finding
            WHERE fingerprint LIKE :prefix ORDER BY id DESC LIMIT 1"""),
            {"prefix": key.replace("%", "").replace("_", "") + "%"}).first()
    if row is None:
        raise NotFound(f"no finding {key!r}: give a finding id from `gisgrid validate --db`")
    codes = list(row.codes) + ([row.parent_code] if row.parent_code else [])
    versions = current_versions(conn, codes)
    exception_id = conn.execute(sa.text("""
        INSERT INTO accepted_exception (fingerprint, kind, codes, reason, reviewer, grid_versions)
        VALUES (:fp, :kind, :codes, :reason, :reviewer, CAST(:versions AS jsonb))
        ON CONFLICT (fingerprint) DO UPDATE SET reason = EXCLUDED.reason,
            reviewer = EXCLUDED.reviewer, grid_versions = EXCLUDED.grid_versions,
            accepted_at = now()
        RETURNING id"""), {"fp": row.fingerprint, "kind": row.kind, "codes": list(row.codes),
                           "reason": reason.strip(), "reviewer": reviewer,
                           "versions": json.dumps(versions)}).scalar_one()
    conn.execute(sa.text("UPDATE finding SET status = 'accepted' WHERE fingerprint = :fp"),
                 {"fp": row.fingerprint})
    record_audit(conn, FindingAccepted(
        actor=reviewer, exception_id=int(exception_id), finding_id=int(row.id),
        fingerprint=row.fingerprint, kind=row.kind, codes=list(row.codes),
        reason=reason.strip(), grid_versions=versions))
    return int(exception_id)


def repair_stored(conn: sa.Connection, *, level: int | None = None, apply: bool = False,
                  actor: str | None = None, **options) -> dict[int, RepairProposal]:
    """Propose a repair of the stored hierarchy (top-down) or of one level; write it if ``apply``.

    Applying writes every changed grid through the grid store with ``change='repair'`` (new
    versions plus history rows) in the caller's transaction. A grid the proposal empties is
    refused (nothing written): it must be retired by hand.
    """
    frames = read_hierarchy(conn, level=level)
    if level is None:
        proposals = propose_hierarchy_repair(frames, **options)
    else:
        proposals = {level: propose_repair(frames[level], frames.get(level - 1), **options)}
        if level - 1 in frames:
            proposals[level - 1] = RepairProposal(
                children=proposals[level].parents, parents=None, changes=[])
    if apply:
        srid = storage_srid(conn)
        emptied = [f"level {lvl}: grid {code}" for lvl, p in proposals.items()
                   for code, geom in zip(p.children["code"], p.children.geometry.values)
                   if geom is None or shapely.is_empty(geom)]
        if emptied:
            raise InputError("the repair would empty grids; retire them first, nothing written",
                             emptied)
        for lvl in sorted(proposals):
            frame = _changed_grids(proposals[lvl].children, frames[lvl])
            if frame.empty:
                continue
            prepared = prepare_grids(frame[["code", "name", "level", "kind", "parent_code", "org",
                                            frame.geometry.name]], lvl, storage_crs=srid)
            write_grids(conn, prepared, actor=actor or getpass.getuser(), change="repair",
                        reason="gisgrid repair --apply")
    return proposals


def _changed_grids(proposed, stored):
    """The rows of ``proposed`` whose geometry differs from the stored one, vertex for vertex
    (a node added on a shared edge counts: the neighbours must keep identical vertices). Only
    those get a new version, so a repair leaves the grids it does not touch alone."""
    before = {code: same_vertices_key(g) for code, g in zip(stored["code"], stored.geometry.values)}
    same = [before.get(code) is not None and same_vertices_key(geom) == before[code]
            for code, geom in zip(proposed["code"], proposed.geometry.values)]
    return proposed[~np.asarray(same, dtype=bool)]


__all__ = ["accept_finding", "current_versions", "read_hierarchy", "record_run",
           "repair_stored", "standing_exceptions", "validate_stored"]
