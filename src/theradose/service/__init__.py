"""Traceability web service: FastAPI app factory, database (SQLAlchemy 2 + Alembic), auth, audit.

Use :func:`theradose.service.app.create_app` with a :class:`theradose.service.settings.Settings`.
Nothing heavy is imported by importing this package.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Settings", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from theradose.service.app import create_app

        return create_app
    if name == "Settings":
        from theradose.service.settings import Settings

        return Settings
    raise AttributeError(name)
