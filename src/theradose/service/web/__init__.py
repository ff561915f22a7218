"""Browser UI of the traceability service: server-rendered pages under ``/ui`` on the same app.

``create_web_app(settings)`` builds the service app with the pages included; the pages log in with
the service's users, check the service's roles and do their writes through the API's endpoint
functions, so every page action is validated, audited and permission-checked like the JSON API.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

    from theradose.service.settings import Settings

#: Environment variable: folder where the pages keep dosimetry reviews.
DATA_ENV = "THERADOSE_DATA_DIR"
#: Environment variable: ``os.pathsep``-separated folders whose pipeline outputs may be imported by path.
PIPELINE_ROOTS_ENV = "THERADOSE_PIPELINE_ROOTS"


def default_data_dir(settings: Settings) -> Path:
    """``$THERADOSE_DATA_DIR``, else ``<sqlite file>.files`` beside the database, else ``theradose-files``."""
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV])
    if settings.db_url.startswith("sqlite:///"):
        return Path(settings.db_url.removeprefix("sqlite:///") + ".files")
    return Path("theradose-files")


def create_web_app(
    settings: Settings | None = None,
    *,
    data_dir: Path | None = None,
    pipeline_roots: Sequence[Path] | None = None,
) -> FastAPI:
    """The service app (:func:`theradose.service.app.create_app`) with the pages under ``/ui``.

    Parameters
    ----------
    settings : Settings, optional
        Service settings (database, site time zone, ...).
    data_dir : Path, optional
        Where dosimetry reviews are kept (default :func:`default_data_dir`).
    pipeline_roots : sequence of Path, optional
        Folders under which a pipeline output folder may be imported by its path
        (default ``$THERADOSE_PIPELINE_ROOTS``; none: only zip uploads).
    """
    from fastapi.responses import RedirectResponse

    from theradose.service.app import create_app
    from theradose.service.settings import Settings
    from theradose.service.web.pages import build_router
    from theradose.service.web.store import Store

    settings = settings or Settings()
    if pipeline_roots is None:
        env = os.environ.get(PIPELINE_ROOTS_ENV, "")
        pipeline_roots = [Path(p) for p in env.split(os.pathsep) if p]
    store = Store(data_dir or default_data_dir(settings), pipeline_roots=pipeline_roots)
    app = create_app(settings, routers=[build_router(store)])

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/ui/worklist", status_code=303)

    return app


__all__ = ["create_web_app", "default_data_dir"]
