"""The one exception hierarchy of gisgrid.

Every error a user can meet is a :class:`GisgridError`. Each class knows the exit status the
CLI uses and the HTTP status the web layer answers with, and carries ``details``: one line per
offending feature, row or field, so that a refusal lists every problem at once.
"""

from __future__ import annotations

from collections.abc import Iterable


class GisgridError(Exception):
    """Base of every error gisgrid raises on purpose."""

    exit_code = 1
    http_status = 500

    def __init__(self, message: str, details: Iterable[str] = ()):
        super().__init__(message)
        self.message = message
        self.details = list(details)

    def __str__(self) -> str:
        if not self.details:
            return self.message
        lines = "\n".join(f"  - {d}" for d in self.details)
        return f"{self.message}\n{lines}"

    def to_dict(self) -> dict:
        """The JSON error shape shared by the API and ``--format json``."""
        return {"error": self.message, "details": list(self.details)}


class InputError(GisgridError, ValueError):
    """The input (file, option, request body) is unusable; nothing was written."""

    exit_code = 2
    http_status = 400


class CRSError(InputError):
    """A coordinate reference system is missing, unknown or does not match."""


class ImportRefused(InputError):
    """An import found bad features; the whole import was refused and nothing was written."""


class NotFound(GisgridError, LookupError):
    """A grid, person, unit, hazard or finding that was asked for does not exist."""

    exit_code = 2
    http_status = 404


class Conflict(GisgridError):
    """The change collides with the current state (stale row version, duplicate, lock)."""

    exit_code = 2
    http_status = 409


class IllegalTransition(Conflict):
    """A hazard or task cannot move from its current state to the requested one."""


class CoverageBroken(Conflict):
    """An edit would leave gaps, overlaps or parts outside the parent; it was refused."""


class DatabaseUnavailable(GisgridError):
    """The PostGIS server could not be started, reached or upgraded."""

    exit_code = 3
    http_status = 503
