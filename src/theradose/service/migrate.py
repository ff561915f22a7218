"""Run the shipped Alembic migrations (``theradose db upgrade``)."""

from __future__ import annotations

from pathlib import Path

from theradose.service.settings import normalize_db_url

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(db_url: str) -> object:
    """An Alembic config pointing at the packaged migrations and ``db_url``."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", normalize_db_url(db_url).replace("%", "%%"))
    return config


def upgrade(db_url: str, revision: str = "head") -> str:
    """Upgrade the database at ``db_url`` to ``revision``; return the revision now current."""
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    from theradose.service.db import make_engine

    config = alembic_config(db_url)
    engine = make_engine(db_url)
    try:
        with engine.connect() as connection:
            config.attributes["connection"] = connection  # type: ignore[attr-defined]
            command.upgrade(config, revision)  # type: ignore[arg-type]
            connection.commit()
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()
    return str(current)
