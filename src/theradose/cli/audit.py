"""``theradose audit``: verify the SHA-256 audit chain of the traceability database."""

from __future__ import annotations

from typing import Annotated

import typer

from theradose.cli._output import print_json, print_mapping

app = typer.Typer(help="Audit trail of the traceability service.", no_args_is_help=True)


@app.callback()
def _group() -> None:
    """Audit trail."""


@app.command()
def verify(
    db: Annotated[
        str | None,
        typer.Option("--db", help="Database URL or SQLite path (default $THERADOSE_DB or ./theradose.db)."),
    ] = None,
    json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """Check every entry's hash and link and the stored head; exit code 1 when the chain is broken."""
    from sqlalchemy.exc import SQLAlchemyError

    from theradose.errors import ServiceError
    from theradose.service import audit_store
    from theradose.service.db import Database
    from theradose.service.settings import normalize_db_url

    database = Database(normalize_db_url(db))
    try:
        with database.read() as session:
            result = audit_store.verify(session)
    except SQLAlchemyError as exc:
        raise ServiceError(
            f"database {database.url} not usable ({type(exc).__name__}): run `theradose db upgrade` first"
        ) from exc
    finally:
        database.dispose()
    data = {
        "ok": result.ok,
        "entries": result.entries,
        "first_bad_entry": result.first_bad_entry,
        "problem": result.problem,
    }
    if json:
        print_json(data)
    else:
        print_mapping("audit chain", data)
    if not result.ok:
        raise typer.Exit(code=1)
