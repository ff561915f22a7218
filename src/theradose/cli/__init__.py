"""Command-line interface: ``theradose <group> <command>``.

The top-level command loads each group's module only when that group is used, so ``theradose --help``
stays fast. Each module in :data:`COMMANDS` defines ``app``, a :class:`typer.Typer`. A Typer with a single
command and no callback becomes a top-level command (``theradose run``); otherwise it is a group.

Bad input never produces a traceback: a :class:`~theradose.errors.TheradoseError` is printed as one line
on standard error and the process exits with code 2.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

#: name → (module, one-line help). Add a line here to register a new command group.
# fmt: off
COMMANDS: dict[str, tuple[str, str]] = {
    "nuclide": ("theradose.cli.nuclide", "Nuclear decay data (ICRP-107): half-life, energies, decay."),
    "kinetics": ("theradose.cli.kinetics", "Time-activity curves: fit, integrate, single time point."),
    "dose": ("theradose.cli.dose", "Absorbed dose: organ MIRD, sphere model, voxel engines, DVH."),
    "radiobiology": ("theradose.cli.radiobiology", "BED and EQD2 for radiopharmaceutical therapy."),
    "serve": ("theradose.cli.serve", "Run the traceability web service (API, OpenAPI docs)."),
    "db": ("theradose.cli.db", "Traceability database migrations (Alembic)."),
    "users": ("theradose.cli.users", "User accounts of the traceability service."),
    "audit": ("theradose.cli.audit", "Verify the SHA-256 audit chain of the traceability database."),
    "dicom": ("theradose.cli.dicom", "DICOM: inspect folders, convert series (CT, SPECT, PET, RT Dose)."),
    "image": ("theradose.cli.image", "Images: register CT time points, segment body/organs/uptake."),
    "qa": ("theradose.cli.qa", "Calibration and QA: dose calibrator, SPECT, recovery, harmonisation."),
    "phantom": ("theradose.cli.phantom", "Digital phantoms with known truth: virtual patients, NEMA IEC."),
    "safety": ("theradose.cli.safety", "Side effects: CTCAE grading, pre-cycle checks, PSA response."),
    "read": ("theradose.cli.read", "PET reading: SUV, RADS/Krenning/miPSMA scores, eligibility, response."),
    "pacs": ("theradose.cli.pacs", "PACS exchange: echo, find (C-FIND), get (C-GET/C-MOVE), send (C-STORE)."),
    "plan": ("theradose.cli.plan", "Planning: next-cycle activity, dosage check, patient release."),
    "batch": ("theradose.cli.batch", "Run many studies as Dask tasks (local or cluster), resumable."),
    "registry": ("theradose.cli.registry", "Dose registry: doses and outcomes to Parquet, de-identified."),
    "analyse": ("theradose.cli.analyse", "Population analytics: dose–effect, NTCP, survival by dose."),
    "run": ("theradose.cli.run", "Run a dosimetry study file: doses, dose maps, report, provenance."),
    "demo": ("theradose.cli.demo", "Virtual 177Lu-PSMA patient through the whole pipeline, doses vs truth."),
    "benchmark": ("theradose.cli.benchmark", "Dosimetry methods on virtual patients vs truth."),
    "schema": ("theradose.cli.schema", "Published JSON Schemas (doses.json) and record checks."),
}
# fmt: on

EXIT_BAD_INPUT = 2


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        import typer.main

        module = importlib.import_module(COMMANDS[cmd_name][0])
        command = typer.main.get_command(module.app)
        command.name = cmd_name
        if command.help is None:
            command.help = COMMANDS[cmd_name][1]
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="theradose", prog_name="theradose")
def cli() -> None:
    """theradose: open software for theranostics (PET reading, dosimetry, planning, QA, traceability)."""


def main(argv: list[str] | None = None) -> Any:
    """Entry point of the ``theradose`` script; returns the process exit code."""
    import typer

    from theradose.errors import TheradoseError

    try:
        return cli.main(args=argv, prog_name="theradose", standalone_mode=False)
    except TheradoseError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    # typer >= 0.20 vendors its own click: subcommand usage errors, --help and aborts arrive as these.
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        click.echo("aborted", err=True)
        sys.exit(1)
    except typer.TyperException as exc:
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            click.echo(f"error: {exc}", err=True)
        sys.exit(getattr(exc, "exit_code", EXIT_BAD_INPUT))
