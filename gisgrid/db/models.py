"""GeoAlchemy2 models of the whole gisgrid domain (filled in by the initial migration's author)."""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    """Declarative base of every gisgrid table."""
