"""Options every ``sluice`` command that touches a data dir takes (shared by the command modules)."""

from __future__ import annotations

import typer

ConfigOpt = typer.Option(None, "--config", "-c", help="YAML configuration file.", exists=False)
DataDirOpt = typer.Option(None, "--data-dir", help="Data directory (default ./sluice-data).")
