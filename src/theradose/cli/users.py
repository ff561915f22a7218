"""``theradose users``: user accounts of the traceability service."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from theradose.cli._output import print_json, print_mapping

app = typer.Typer(help="User accounts of the traceability service.", no_args_is_help=True)

PASSWORD_ENV = "THERADOSE_PASSWORD"


@app.callback()
def _group() -> None:
    """User accounts."""


@app.command()
def add(
    name: Annotated[str, typer.Argument(help="User name (letters, digits, _ . @ -).")],
    role: Annotated[str, typer.Option(help="admin, physicist, physician, pharmacist or technologist.")],
    full_name: Annotated[str, typer.Option(help="Printed name shown with e-signatures.")] = "",
    db: Annotated[
        str | None,
        typer.Option("--db", help="Database URL or SQLite path (default $THERADOSE_DB or ./theradose.db)."),
    ] = None,
    json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """Add a user; the password comes from $THERADOSE_PASSWORD or a prompt."""
    import re

    from sqlalchemy.exc import SQLAlchemyError

    from theradose.errors import InputError, ServiceError
    from theradose.service.auth import MIN_PASSWORD_LENGTH, create_user, hasher
    from theradose.service.db import Database
    from theradose.service.errors import ApiError
    from theradose.service.permissions import ROLES
    from theradose.service.settings import Settings

    if role not in ROLES:
        raise InputError(f"--role must be one of {', '.join(ROLES)}; got {role!r}")
    if not re.fullmatch(r"[A-Za-z0-9_.@-]{1,64}", name):
        raise InputError(
            f"NAME {name!r} has characters other than letters, digits, _ . @ -: choose another name"
        )
    password = os.environ.get(PASSWORD_ENV) or typer.prompt(
        "password", hide_input=True, confirmation_prompt=True
    )
    settings = Settings() if db is None else Settings(db_url=db)
    ring = settings.keyring()
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InputError(f"password must have at least {MIN_PASSWORD_LENGTH} characters")
    password_hash = hasher(settings.argon2_time_cost, settings.argon2_memory_cost_kib).hash(password)
    database = Database(settings.db_url, keyring=ring)
    try:
        with database.write() as session:
            user = create_user(
                session,
                None,
                username=name,
                role=role,
                password_hash=password_hash,
                full_name=full_name,
                actor="cli",
                reason="theradose users add",
            )
            result = {"username": user.username, "role": user.role, "full_name": user.full_name}
    except ApiError as exc:
        raise InputError(f"{exc.field or 'user'}: {exc.message}") from exc
    except SQLAlchemyError as exc:
        raise ServiceError(
            f"database {settings.db_url} not usable ({type(exc).__name__}): run `theradose db upgrade` first"
        ) from exc
    finally:
        database.dispose()
    if json:
        print_json(result)
    else:
        print_mapping("user added", result)


def _database(db: str | None) -> tuple[object, object]:
    from theradose.service.db import Database
    from theradose.service.settings import Settings

    settings = Settings() if db is None else Settings(db_url=db)
    return settings, Database(settings.db_url, keyring=settings.keyring())


DbOption = Annotated[
    str | None,
    typer.Option("--db", help="Database URL or SQLite path (default $THERADOSE_DB or ./theradose.db)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON only.")]


@app.command("list")
def list_(db: DbOption = None, json: JsonOption = False) -> None:
    """List the user accounts (name, role, active, password change due)."""
    from sqlalchemy import select
    from sqlalchemy.exc import SQLAlchemyError

    from theradose.errors import ServiceError
    from theradose.service.models import User

    settings, database = _database(db)
    try:
        with database.read() as session:  # type: ignore[attr-defined]
            rows = [
                {
                    "username": u.username,
                    "role": u.role,
                    "full_name": u.full_name,
                    "active": u.active,
                    "must_change_password": u.must_change_password,
                }
                for u in session.execute(select(User).order_by(User.username)).scalars()
            ]
    except SQLAlchemyError as exc:
        raise ServiceError(
            f"database {settings.db_url} not usable ({type(exc).__name__}): run `theradose db upgrade` first"  # type: ignore[attr-defined]
        ) from exc
    finally:
        database.dispose()  # type: ignore[attr-defined]
    if json:
        print_json(rows)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("user", "role", "name", "active", "must change password")
    for r in rows:
        table.add_row(
            r["username"], r["role"], r["full_name"], str(r["active"]), str(r["must_change_password"])
        )
    Console().print(table)


def _change(db: str | None, action: str, name: str, reason: str, json: bool) -> None:
    from sqlalchemy.exc import SQLAlchemyError

    from theradose.errors import InputError, ServiceError
    from theradose.service.auth import hasher
    from theradose.service.errors import ApiError
    from theradose.service.operations import users

    settings, database = _database(db)
    try:
        with database.write() as session:  # type: ignore[attr-defined]
            if action == "deactivate":
                out = users.set_active(session, "cli", name, False, reason=reason)
            else:
                password = os.environ.get(PASSWORD_ENV) or typer.prompt(
                    "temporary password", hide_input=True, confirmation_prompt=True
                )
                out = users.reset_password(
                    session,
                    "cli",
                    name,
                    password,
                    hasher=hasher(settings.argon2_time_cost, settings.argon2_memory_cost_kib),  # type: ignore[attr-defined]
                    reason=reason,
                )
    except ApiError as exc:
        raise InputError(f"{exc.field or 'NAME'}: {exc.message}") from exc
    except SQLAlchemyError as exc:
        raise ServiceError(
            f"database {settings.db_url} not usable ({type(exc).__name__}): run `theradose db upgrade` first"  # type: ignore[attr-defined]
        ) from exc
    finally:
        database.dispose()  # type: ignore[attr-defined]
    result = {**out.model_dump(), "action": action}
    if action == "reset-password":
        result["must_change_password"] = True
    if json:
        print_json(result)
    else:
        print_mapping(f"user {action}", result)


@app.command()
def deactivate(
    name: Annotated[str, typer.Argument(help="User name.")],
    reason: Annotated[
        str, typer.Option(help="Why (kept in the audit trail).")
    ] = "deactivated by an administrator",
    db: DbOption = None,
    json: JsonOption = False,
) -> None:
    """Deactivate a user: they can no longer log in and their sessions end."""
    _change(db, "deactivate", name, reason, json)


@app.command("reset-password")
def reset_password(
    name: Annotated[str, typer.Argument(help="User name.")],
    reason: Annotated[
        str, typer.Option(help="Why (kept in the audit trail).")
    ] = "password reset by an administrator",
    db: DbOption = None,
    json: JsonOption = False,
) -> None:
    """Set a temporary password ($THERADOSE_PASSWORD or a prompt) that must be changed at the next login."""
    _change(db, "reset-password", name, reason, json)
