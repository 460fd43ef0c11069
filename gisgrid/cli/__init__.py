"""The ``gisgrid`` command: one sub-command group per noun.

The CLI only parses input, calls the core and presents the result. Every
:class:`~gisgrid.errors.GisgridError` is printed to stderr and turned into its exit status.
"""

from __future__ import annotations

import importlib
import sys

import click

from gisgrid import __version__
from gisgrid.errors import GisgridError

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
}


@click.group()
@click.version_option(__version__, prog_name="gisgrid")
def cli() -> None:
    """gisgrid: safety-production grid management (安全生产网格化管理)."""


def _register() -> None:
    for module_name, attr in COMMANDS.items():
        module = importlib.import_module(f"gisgrid.cli.{module_name}")
        cli.add_command(getattr(module, attr))


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
    # ``ctx.exit(n)`` inside a command comes back as the return value (standalone_mode=False)
    return result if isinstance(result, int) else 0


def run() -> None:  # pragma: no cover - thin wrapper for python -m
    sys.exit(main())
