"""The ``gisgrid`` command: one sub-command group per noun.

The CLI only parses input, calls the core and presents the result. Every
:class:`~gisgrid.errors.GisgridError` is printed to stderr and turned into its exit status.
"""

from __future__ import annotations

import getpass
import importlib
import os
import sys

import click

from gisgrid import __version__
from gisgrid.errors import Conflict, DatabaseUnavailable, GisgridError

# name of the module under gisgrid.cli -> attribute holding its click command or group
COMMANDS: dict[str, str] = {
    # "module": "attribute",  one line per command group, added by the module's author
    "db": "db",
    "validate": "validate",
    "importing": "import_group",
    "exporting": "export_group",
    "repair": "repair",
    "hazards": "hazards",
    "checklists": "checklists",
    "units": "units",
    "people": "people",
    "patrols": "patrols",
    "ingest": "ingest",
    "demo": "demo",
    "serve": "serve",
    "audit": "audit",
}


@click.group()
@click.version_option(__version__, prog_name="gisgrid")
def cli() -> None:
    """gisgrid: safety-production grid management (安全生产网格化管理)."""


def _register() -> None:
    for module_name, attr in COMMANDS.items():
        module = importlib.import_module(f"gisgrid.cli.{module_name}")
        cli.add_command(getattr(module, attr))


def default_actor() -> str:
    """Who is acting, for history rows and logs: ``$GISGRID_ACTOR``, else the OS login name."""
    return os.environ.get("GISGRID_ACTOR") or getpass.getuser()


def database_error(exc: Exception) -> GisgridError | None:
    """The :class:`GisgridError` a user should see for a database driver error, if any.

    A lost or refused connection is :class:`DatabaseUnavailable` (exit 3); a constraint
    violation or a lock/serialisation failure (a concurrent change won) is :class:`Conflict`
    (exit 2). Anything else (a programming error) is None: it stays a traceback.
    """
    import sqlalchemy.exc

    if not isinstance(exc, sqlalchemy.exc.DBAPIError):
        return None
    reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
    sqlstate = getattr(exc.orig, "sqlstate", None) or ""
    if exc.connection_invalidated or (
            isinstance(exc, (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError))
            and (not sqlstate or sqlstate.startswith(("08", "57P")))):
        return DatabaseUnavailable(f"the database is unavailable: {reason}")
    if isinstance(exc, sqlalchemy.exc.IntegrityError) or sqlstate.startswith("40") \
            or sqlstate == "55P03":
        return Conflict(f"the change collides with the stored data, nothing was written: "
                        f"{reason}")
    return None


def main(argv=None) -> int:
    """Console-script entry point."""
    _register()
    try:
        result = cli.main(args=argv, prog_name="gisgrid", standalone_mode=False)
    except GisgridError as exc:
        click.echo(f"gisgrid: {exc}", err=True)
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return 2
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 1
    except Exception as exc:  # a driver error reaching the user: no traceback
        error = database_error(exc)
        if error is None:
            raise
        click.echo(f"gisgrid: {error}", err=True)
        return error.exit_code
    # ``ctx.exit(n)`` inside a command comes back as the return value (standalone_mode=False)
    return result if isinstance(result, int) else 0


def run() -> None:  # pragma: no cover - thin wrapper for python -m
    sys.exit(main())
