"""Coverage validation and repair of the grid hierarchy (全覆盖、无缝对接、不留盲区).

Pure: grid frames in, :class:`CoverageReport` or :class:`RepairProposal` out; no I/O, no SQL.
"""

from gisgrid.coverage.hierarchy import validate_hierarchy, validate_level
from gisgrid.coverage.report import FINDING_KINDS, CoverageReport, Finding

__all__ = ["CoverageReport", "Finding", "FINDING_KINDS", "validate_hierarchy", "validate_level"]
