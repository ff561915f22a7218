"""``theradose batch``: run the study pipeline over many study files on Dask."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from theradose.cli._output import print_json, print_table

app = typer.Typer(help="Run many studies as Dask tasks (LocalCluster or a scheduler), resumable.")


@app.command()
def batch(
    studies: Annotated[
        list[str], typer.Argument(help="Study files: globs (quoted), paths, or a .txt list of paths.")
    ],
    out: Annotated[Path, typer.Option("--out", help="Batch output folder: <out>/<study_id>/, batch.json.")],
    scheduler: Annotated[
        str, typer.Option("--scheduler", help="local (start a LocalCluster) or tcp://HOST:PORT.")
    ] = "local",
    workers: Annotated[
        int | None, typer.Option("--workers", help="LocalCluster worker processes (default: CPUs).")
    ] = None,
    memory_limit: Annotated[
        str, typer.Option("--memory-limit", help="Memory limit per LocalCluster worker, e.g. 4GiB.")
    ] = "4GiB",
    force: Annotated[
        bool, typer.Option("--force", help="Re-run studies whose inputs are unchanged.")
    ] = False,
    json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """Run every study; a failing study is recorded and the batch goes on (exit code 1 if any failed).

    A progress bar is drawn on standard error when it is a terminal.
    """
    from theradose.population.batch import expand_studies, run_batch

    paths = expand_studies(studies)
    result = run_batch(
        paths,
        out,
        scheduler=scheduler,
        workers=workers,
        memory_limit=memory_limit,
        force=force,
        progress=sys.stderr.isatty(),
    )
    summary = result.summary()
    if json:
        print_json(summary)
    else:
        rows = [
            (r.study_id, r.status, f"{r.elapsed_s:.1f}", f"{r.error_type}: {r.error}" if r.error else "")
            for r in result.records
        ]
        print_table(
            f"batch: {len(result.done)} done, {len(result.failed)} failed, {len(result.skipped)} skipped "
            f"in {result.elapsed_s:.1f} s",
            ["study", "status", "s", "error"],
            rows,
        )
    if result.failed:
        raise typer.Exit(1)
