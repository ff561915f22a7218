"""``theradose db``: database migrations."""

from __future__ import annotations

from typing import Annotated

import typer

from theradose.cli._output import print_json, print_mapping

app = typer.Typer(
    help="Database schema migrations (Alembic, shipped with the package).", no_args_is_help=True
)


@app.callback()
def _group() -> None:
    """Database schema migrations."""


@app.command()
def upgrade(
    db: Annotated[
        str | None,
        typer.Option("--db", help="Database URL or SQLite path (default $THERADOSE_DB or ./theradose.db)."),
    ] = None,
    json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """Create or upgrade the database schema to the newest revision."""
    from theradose.service.migrate import upgrade as run_upgrade
    from theradose.service.settings import normalize_db_url

    url = normalize_db_url(db)
    revision = run_upgrade(url)
    shown = url.split("@")[-1] if "@" in url else url
    result = {"database": shown, "revision": revision}
    if json:
        print_json(result)
    else:
        print_mapping("database upgraded", result)
