"""One JSON error shape for every 4xx/5xx: ``{"error": {"code": str, "message": str, "field": str|null}}``."""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from theradose.errors import TheradoseError

log = logging.getLogger("theradose.service")

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "request_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_attempts",
    500: "internal_error",
    503: "busy",
}
_FIELD = re.compile(r"^([A-Za-z_][A-Za-z0-9_\.\[\]]*) ")


class ErrorBody(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorResponse(BaseModel):
    """The error shape of every failed request."""

    error: ErrorBody


class ApiError(Exception):
    """An error with an HTTP status, a machine code, a one-line message and the field concerned."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers or {}


def not_found(what: str, key: object) -> ApiError:
    return ApiError(404, "not_found", f"{what} {key} not found", None)


def conflict(code: str, message: str, field: str | None = None) -> ApiError:
    return ApiError(409, code, message, field)


def error_json(
    status: int, code: str, message: str, field: str | None = None, **headers: str
) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message, "field": field}},
        status_code=status,
        headers=headers or None,
    )


#: ``responses=`` for routers so that the OpenAPI spec documents the error shape.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": code.replace("_", " ")}
    for status, code in _STATUS_CODES.items()
    if status in (401, 403, 404, 409, 422)
}


def install(app: FastAPI) -> None:
    """Register the exception handlers on ``app``."""

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return error_json(exc.status, exc.code, exc.message, exc.field, **exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "http_error")
        headers = dict(exc.headers or {})
        return error_json(exc.status_code, code, str(exc.detail), None, **headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
        loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path", "header")]
        field = ".".join(loc) or None
        message = str(first.get("msg", "invalid request"))
        if len(errors) > 1:
            message += f" (and {len(errors) - 1} more)"
        return error_json(422, "validation_error", f"{field or 'request'}: {message}", field)

    @app.exception_handler(TheradoseError)
    async def _domain_error(_request: Request, exc: TheradoseError) -> JSONResponse:
        text = str(exc)
        match = _FIELD.match(text)
        return error_json(422, "invalid_input", text, match.group(1) if match else None)

    app.add_middleware(CatchUnhandled)


def loggable(exc: BaseException) -> str:
    """What the server log says about an unhandled error: its class, where it happened, and for a
    database error the statement and SQLSTATE, never the values (bound parameters, or a row echoed in
    the driver's message, e.g. PostgreSQL's ``DETAIL: Key (mrn)=(...)``): they may identify a patient."""
    import traceback

    from sqlalchemy.exc import StatementError

    frames = "".join(traceback.format_tb(exc.__traceback__))
    if isinstance(exc, StatementError):
        orig = exc.orig
        sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "sqlite_errorname", None)
        what = f"{type(exc).__name__} ({type(orig).__name__}, SQLSTATE {sqlstate}) in: {exc.statement}"
    else:
        what = f"{type(exc).__name__}: {exc}"
    return f"unhandled error {what}\n{frames}"


class CatchUnhandled:
    """ASGI middleware: an unexpected exception becomes the JSON 500 answer and one sanitized log record
    (:func:`loggable`); it is not passed on to the server, whose own log would print the driver's message
    with the values in it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            log.error(loggable(exc))
            if not started:
                response = error_json(
                    500, "internal_error", "internal server error; see the server log", None
                )
                await response(scope, receive, send)
