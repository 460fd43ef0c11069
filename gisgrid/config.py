"""Settings read from the environment when a command or the app asks for them (never at import)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from gisgrid.crs import DEFAULT_SRID


def default_home() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "gisgrid"


@dataclass(frozen=True)
class Settings:
    """Where gisgrid keeps its data and which database it talks to.

    ``database_url`` set (``GISGRID_DATABASE_URL``) points every command at an existing PostGIS
    server; unset, gisgrid uses its embedded cluster under ``home`` (``GISGRID_HOME``).
    """

    home: Path = field(default_factory=default_home)
    database_url: str | None = None
    srid: int = DEFAULT_SRID

    @classmethod
    def from_env(cls, environ=None) -> "Settings":
        env = os.environ if environ is None else environ
        home = Path(env["GISGRID_HOME"]).expanduser() if env.get("GISGRID_HOME") else default_home()
        return cls(
            home=home,
            database_url=env.get("GISGRID_DATABASE_URL") or None,
            srid=int(env.get("GISGRID_SRID", DEFAULT_SRID)),
        )

    @property
    def embedded(self) -> bool:
        return self.database_url is None
