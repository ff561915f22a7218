"""``theradose audit``: verify the keyed audit chain and the records, write checkpoints, manage keys."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from theradose.cli._output import print_json, print_mapping

app = typer.Typer(help="Audit trail of the traceability service.", no_args_is_help=True)

_DB = typer.Option("--db", help="Database URL or SQLite path (default $THERADOSE_DB or ./theradose.db).")
_KEY_FILE = typer.Option(
    "--key-file", help="Key file (default $THERADOSE_KEY_FILE; or give the key in $THERADOSE_SECRET_KEY)."
)


@app.callback()
def _group() -> None:
    """Audit trail."""


def _settings(db: str | None, key_file: Path | None) -> object:
    from theradose.service.settings import Settings

    kwargs: dict[str, object] = {}
    if db is not None:
        kwargs["db_url"] = db
    if key_file is not None:
        kwargs["key_file"] = key_file
        kwargs["secret_key"] = None
    return Settings(**kwargs)  # type: ignore[arg-type]


@app.command()
def verify(
    db: Annotated[str | None, _DB] = None,
    key_file: Annotated[Path | None, _KEY_FILE] = None,
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            "--checkpoint",
            help="Checkpoint file or folder to compare the chain with (default $THERADOSE_CHECKPOINT).",
        ),
    ] = None,
    json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """Check every entry's keyed hash and link, the sealed head, every record against its newest audit
    entry (table, id, field), and the checkpoints; exit code 1 when anything is wrong."""
    from sqlalchemy.exc import SQLAlchemyError

    from theradose.errors import ServiceError
    from theradose.service import audit_store
    from theradose.service.db import Database
    from theradose.service.settings import Settings

    settings = _settings(db, key_file)
    assert isinstance(settings, Settings)
    ring = settings.keyring()
    checkpoint = checkpoint if checkpoint is not None else settings.checkpoint_path
    database = Database(settings.db_url, keyring=ring)
    try:
        with database.read() as session:
            result = audit_store.verify(session, ring, checkpoint=checkpoint)
    except SQLAlchemyError as exc:
        raise ServiceError(
            f"database {database.url} not usable ({type(exc).__name__}): run `theradose db upgrade` first"
        ) from exc
    finally:
        database.dispose()
    data = result.as_dict()
    if json:
        print_json(data)
    else:
        shown = {k: v for k, v in data.items() if k not in ("state_mismatches", "checkpoint")}
        shown["state_mismatches"] = len(result.state_mismatches)
        if result.checkpoint is not None:
            shown["checkpoint"] = result.checkpoint.problem or f"ok ({result.checkpoint.checkpoints} lines)"
        print_mapping("audit chain", shown)
        for mismatch in result.state_mismatches[:50]:
            typer.echo("  " + mismatch.text())
    if not result.ok:
        raise typer.Exit(code=1)


@app.command()
def checkpoint(
    to: Annotated[
        Path | None,
        typer.Option("--to", help="Checkpoint file or folder (default $THERADOSE_CHECKPOINT)."),
    ] = None,
    db: Annotated[str | None, _DB] = None,
    key_file: Annotated[Path | None, _KEY_FILE] = None,
    json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """Append a signed checkpoint of the audit head to a file outside the database (run it from a
    scheduler; the service also writes them when $THERADOSE_CHECKPOINT is set)."""
    from theradose.errors import InputError
    from theradose.service import audit_store
    from theradose.service.db import Database
    from theradose.service.settings import Settings

    settings = _settings(db, key_file)
    assert isinstance(settings, Settings)
    target = to if to is not None else settings.checkpoint_path
    if target is None:
        raise InputError("--to is missing: name the checkpoint file or folder (or set $THERADOSE_CHECKPOINT)")
    ring = settings.keyring()
    database = Database(settings.db_url, keyring=ring)
    try:
        with database.read() as session:
            record = audit_store.write_checkpoint(session, ring, target)
    finally:
        database.dispose()
    data = {
        "written": record is not None,
        "file": str(audit_store.checkpoint_file(target)),
        "seq": None if record is None else record["seq"],
        "hash": None if record is None else record["hash"],
    }
    if json:
        print_json(data)
    else:
        print_mapping("audit checkpoint", data)


@app.command()
def keygen(
    key_file: Annotated[Path, typer.Option("--key-file", help="Key file to create (mode 600) or extend.")],
    key_id: Annotated[
        str | None, typer.Option("--key-id", help="Id of the new key (default: k + 8 random hex digits).")
    ] = None,
    json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """Create a key file with a new random key, or append a new active key to it (rotation: older keys
    stay in the file so that what they sealed still verifies)."""
    from theradose.service.keys import add_key_to_file

    new_id, created = add_key_to_file(key_file, key_id)
    data = {"key_file": str(key_file), "key_id": new_id, "created": created}
    if json:
        print_json(data)
    else:
        print_mapping("key file created" if created else "key added (now active)", data)
