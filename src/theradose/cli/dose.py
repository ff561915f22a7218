"""``theradose dose``: absorbed dose (organ MIRD, sphere model, voxel engines, DVH)."""

from __future__ import annotations

import typer

from theradose.cli.dose_voxel import register as register_voxel

app = typer.Typer(help="Absorbed dose: organ MIRD, sphere model, voxel engines, DVH.", no_args_is_help=True)
register_voxel(app)
