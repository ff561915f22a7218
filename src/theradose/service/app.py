"""The FastAPI application factory.

``create_app(settings)`` builds one app bound to one database. All API routes live under the root path
and are described by the OpenAPI spec at ``/openapi.json`` (docs at ``/docs``). Pages for a browser UI
can be added later by including more routers on the returned app (``app.include_router``) and mounting
templates/static files; :data:`app.state` carries ``settings``, ``db``, ``hasher``, ``auth`` (the
:class:`theradose.service.auth.Authenticator`), ``keys`` (the key ring, kept outside the database),
``secret`` (the e-signature sub-key of the active key) and ``reviews`` (the dosimetry review files,
:class:`theradose.service.review_store.Store`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, FastAPI
from sqlalchemy import select

from theradose.service import errors
from theradose.service.auth import Principal, require
from theradose.service.settings import Settings

if TYPE_CHECKING:
    from theradose.service.audit_store import Checkpointer
    from theradose.service.db import Database


def create_app(settings: Settings | None = None, *, routers: Sequence[APIRouter] = ()) -> FastAPI:
    """Create the traceability service app.

    Parameters
    ----------
    settings : Settings, optional
        Database URL, secret key, site time zone...; defaults read the environment.
    routers : sequence of APIRouter
        Extra routers (e.g. HTML pages of a browser UI) included after the API; they can use
        :func:`theradose.service.auth.require` and ``request.app.state`` like the API routers.

    Returns
    -------
    fastapi.FastAPI
        The app; its database must already be migrated (``theradose db upgrade``).
    """
    from theradose import __version__
    from theradose.service.api import auth, clinical, dosimetry, pharmacy, qa, records, safety
    from theradose.service.auth import Authenticator, hasher
    from theradose.service.db import Database
    from theradose.service.review_store import Store

    settings = settings or Settings()
    ring = settings.keyring()
    db = Database(settings.db_url, keyring=ring)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        import asyncio

        from starlette.concurrency import run_in_threadpool

        from theradose.pharmacy.decay import canonical_nuclide

        canonical_nuclide("Lu-177")  # load the decay data now, not on the first request
        checkpointer = _app.state.checkpointer
        task = None
        if checkpointer is not None:
            task = asyncio.create_task(_checkpoints(db, checkpointer))
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                await run_in_threadpool(_checkpoint_once, db, checkpointer)
            db.dispose()

    app = FastAPI(
        title="theradose traceability service",
        version=str(__version__),
        description=(
            "Radiopharmaceutical lifecycle (referral → prescription → batch → QC release → dispensing → "
            "administration → RRDSR), dose-calibrator and camera QA, SHA-256 audit chain and e-signatures. "
            "Authenticate with POST /auth/login and send `Authorization: Bearer <token>`. Errors have the "
            'shape {"error": {"code", "message", "field"}}.'
        ),
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.db = db
    app.state.keys = ring
    app.state.hasher = hasher(settings.argon2_time_cost, settings.argon2_memory_cost_kib)
    app.state.reviews = Store(settings.files_dir, pipeline_roots=settings.pipeline_roots)
    app.state.secret = ring.sub_key("e-signature")
    _check_initialised(db, settings)
    _seed(db)
    app.state.auth = Authenticator(settings, app.state.hasher, db)
    app.state.checkpointer = None
    if settings.checkpoint_path is not None:
        from theradose.service.audit_store import Checkpointer

        app.state.checkpointer = Checkpointer(settings.checkpoint_path, settings.checkpoint_interval_s)
    errors.install(app)
    from theradose.service.limits import BodyLimit

    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)

    @app.get("/health", tags=["meta"], summary="Liveness check (no authentication)")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/site", tags=["meta"], summary="Site name and time zone")
    def site(_me: Annotated[Principal, require("self")]) -> dict[str, str]:
        return {"site_name": settings.site_name, "site_timezone": settings.site_timezone}

    install_docs(app)
    for module in (auth, clinical, pharmacy, qa, records, safety, dosimetry):
        app.include_router(module.router)
    for router in routers:
        app.include_router(router)
    return app


def _seed(db: Database) -> None:
    """Reference records the service needs, written through the audit chain (the release specifications of
    ``data/products/specifications.toml`` missing from the database)."""
    from theradose.service.operations.specifications import seed_specifications

    with db.write() as session:
        seed_specifications(session)


def _check_initialised(db: Database, settings: Settings) -> None:
    from sqlalchemy.exc import SQLAlchemyError

    from theradose.errors import ServiceError
    from theradose.service.models import AuditHead, User

    try:
        with db.read() as session:
            session.execute(select(AuditHead.seq, AuditHead.key_id).where(AuditHead.id == 1)).one()
            session.execute(select(User.username_key).limit(1)).all()
    except SQLAlchemyError as exc:
        db.dispose()
        raise ServiceError(
            f"database {settings.db_url} is not initialised or not upgraded: "
            "run `theradose db upgrade --db ...`"
        ) from exc


def _checkpoint_once(db: Database, checkpointer: Checkpointer) -> None:
    assert db.keyring is not None
    with db.read() as session:
        checkpointer.run_once(session, db.keyring)


async def _checkpoints(db: Database, checkpointer: Checkpointer) -> None:
    """Background task of the running service: a signed checkpoint whenever the chain has grown."""
    import asyncio

    from starlette.concurrency import run_in_threadpool

    while True:
        await run_in_threadpool(_checkpoint_once, db, checkpointer)
        await asyncio.sleep(checkpointer.interval_s)


#: Files of the Swagger UI served from the ``swagger-ui-bundle`` package (nothing is fetched from a CDN).
DOCS_ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
}


def install_docs(app: FastAPI) -> None:
    """Serve the API docs at ``/docs`` from local files (Swagger UI of the ``swagger-ui-bundle`` package)."""
    from pathlib import Path

    from fastapi.openapi.docs import get_swagger_ui_html
    from starlette.requests import Request
    from starlette.responses import Response

    def docs(_request: Request) -> Response:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{app.title} - API docs",
            swagger_js_url="/docs/assets/swagger-ui-bundle.js",
            swagger_css_url="/docs/assets/swagger-ui.css",
            swagger_favicon_url="/docs/assets/favicon-32x32.png",
        )

    def asset(request: Request) -> Response:
        import swagger_ui_bundle

        name = request.path_params["name"]
        if name not in DOCS_ASSETS:
            return Response("not found", status_code=404, media_type="text/plain")
        content = (Path(swagger_ui_bundle.swagger_ui_path) / name).read_bytes()
        return Response(
            content, media_type=DOCS_ASSETS[name], headers={"Cache-Control": "public, max-age=3600"}
        )

    app.add_route("/docs", docs, include_in_schema=False)
    app.add_route("/docs/assets/{name}", asset, include_in_schema=False)
