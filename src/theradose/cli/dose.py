"""``theradose dose``: absorbed dose (organ-level MIRD, sphere model, voxel engines, DVH)."""

from __future__ import annotations

import typer

from theradose.cli import dose_organ
from theradose.cli.dose_voxel import register as register_voxel

app = typer.Typer(help="Absorbed dose: organ MIRD, sphere model, voxel engines, DVH.", no_args_is_help=True)

dose_organ.register(app)
register_voxel(app)
