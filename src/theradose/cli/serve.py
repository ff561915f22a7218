"""``theradose serve``: run the traceability web service."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(help="Run the traceability web service (API + OpenAPI docs at /docs).")


@app.command()
def serve(
    db: Annotated[
        str | None,
        typer.Option("--db", help="Database URL or SQLite path (default $THERADOSE_DB or ./theradose.db)."),
    ] = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.", min=1, max=65535)] = 8000,
    upgrade: Annotated[bool, typer.Option(help="Apply database migrations before starting.")] = True,
    timezone: Annotated[
        str | None,
        typer.Option(
            help="IANA time zone of the site, e.g. Europe/Berlin (default $THERADOSE_TIMEZONE or UTC)."
        ),
    ] = None,
    site_name: Annotated[
        str | None,
        typer.Option(help="Name of the site on the pages and in DICOM (default $THERADOSE_SITE_NAME)."),
    ] = None,
) -> None:
    """Serve the API and the browser pages (/ui) with uvicorn; migrations first unless --no-upgrade."""
    import uvicorn

    from theradose.service.migrate import upgrade as run_upgrade
    from theradose.service.settings import Settings
    from theradose.service.web import create_web_app

    overrides: dict[str, str] = {}
    if db is not None:
        overrides["db_url"] = db
    if timezone is not None:
        overrides["site_timezone"] = timezone
    if site_name is not None:
        overrides["site_name"] = site_name
    settings = Settings(**overrides)  # type: ignore[arg-type]
    if upgrade:
        run_upgrade(settings.db_url)
    uvicorn.run(create_web_app(settings), host=host, port=port, log_level="info")
