"""Browser UI of the traceability service: server-rendered pages under ``/ui`` on the same app.

``create_web_app(settings)`` builds the service app with the pages included. The pages log in with
the service's users, check the service's roles and do their work through the same operations
(:mod:`theradose.service.operations`) as the JSON API, so every page action is validated, audited and
permission-checked like the API. URLs are mapped to views in :mod:`.routes`, one module per view in
:mod:`.views`, HTML in ``templates/``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

    from theradose.service.settings import Settings


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
        Service settings (database, site time zone, data folder, pipeline roots, ...).
    data_dir, pipeline_roots : optional
        Override ``settings.data_dir`` and ``settings.pipeline_roots``.
    """
    from fastapi.responses import RedirectResponse

    from theradose.service.app import create_app
    from theradose.service.settings import Settings
    from theradose.service.web.routes import build_router
    from theradose.service.web.views.base import WebState, make_templates

    settings = settings or Settings()
    if data_dir is not None:
        settings = dataclasses.replace(settings, data_dir=data_dir)
    if pipeline_roots is not None:
        settings = dataclasses.replace(settings, pipeline_roots=tuple(pipeline_roots))
    app = create_app(settings, routers=[build_router()])
    app.state.web = WebState(
        templates=make_templates(),
        store=app.state.reviews,
    )

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/ui/worklist", status_code=303)

    return app


__all__ = ["create_web_app"]
