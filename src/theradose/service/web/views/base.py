"""What every view shares: rendering with the site's settings, the logged-in user, posted forms, times
in the site's zone, one-time messages, and turning refusals of the operations into field errors.

Every form is handled the same way: the posted fields are turned into the operation's input model (the
JSON API's request model, so the same validation), the operation does the work in one transaction (the
same domain checks, audit entries and role names as the API), and any refusal is shown next to the
field it concerns, with nothing written.
"""

from __future__ import annotations

import base64
import functools
import inspect
import json
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile

from theradose.errors import TheradoseError
from theradose.pharmacy.ranges import EARLIEST_TIME, LATEST_TIME
from theradose.service.auth import Principal
from theradose.service.errors import ApiError
from theradose.service.operations.common import MAX_ID
from theradose.service.permissions import SIGNATURE_MEANING_ROLES, allowed
from theradose.service.review_store import Store
from theradose.service.web import session as web_session
from theradose.service.web.navigation import NAV

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates"
#: Content security policy of the pages: own scripts and styles only, no inline script, frames same-origin.
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-src 'self'; frame-ancestors 'self'; form-action 'self'; base-uri 'none'; object-src 'none'"
)
FLASH_COOKIE = "theradose_flash"
_FIELD = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)[ :]")
_LOCAL_PATH = re.compile(r"^/ui/[A-Za-z0-9_/?=&.%-]*$")


class Refused(Exception):
    """Raised inside a view to answer with ``response`` (redirect to login, 403 page)."""

    def __init__(self, response: Response) -> None:
        self.response = response


@dataclass(frozen=True)
class WebState:
    """What the views share, kept on ``app.state.web``: the templates and the review file store."""

    templates: Environment
    store: Store


@pass_context
def _local_filter(context: Any, value: datetime | str | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if value is None:
        return "–"
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value.astimezone(ZoneInfo(context["site_timezone"])).strftime(fmt + " %Z")


def make_templates() -> Environment:
    """The Jinja environment of the pages (autoescaped HTML, the pages' filters)."""
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATE_DIR)),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["local"] = _local_filter
    env.filters["mbq"] = lambda v: "–" if v is None else f"{v:,.1f}"
    env.filters["num"] = lambda v, d=3: "–" if v is None else f"{v:.{d}g}"
    env.filters["pct"] = lambda v: "–" if v is None else f"{v * 100:+.1f} %"
    env.globals["zip"] = zip
    return env


def state(request: Request) -> WebState:
    """The shared state of the pages."""
    web: WebState = request.app.state.web
    return web


def site_tz(request: Request) -> ZoneInfo:
    """The site's time zone (``Settings.site_timezone``)."""
    return ZoneInfo(request.app.state.settings.site_timezone)


def render(
    request: Request, template: str, user: Principal | None, status: int = 200, **ctx: Any
) -> HTMLResponse:
    """Render ``template`` for ``user`` with the site's name and zone, the navigation and any message."""
    flash = request.cookies.get(FLASH_COOKIE)
    body = _render_body(request, template, user, flash, ctx)
    errors = ctx.get("errors") or {}
    unshown = {k: v for k, v in errors.items() if k != "_form" and f'id="e-{k}"' not in body}
    if unshown:  # an error about a field this form does not have: show it at the top of the form
        shown = {k: v for k, v in errors.items() if k not in unshown}
        shown["_form"] = "; ".join([*([errors["_form"]] if "_form" in errors else []), *unshown.values()])
        body = _render_body(request, template, user, flash, {**ctx, "errors": shown})
    response = HTMLResponse(body, status_code=status)
    if flash:
        response.delete_cookie(FLASH_COOKIE, path=web_session.COOKIE_PATH)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    response.headers["Content-Security-Policy"] = PAGE_CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def _render_body(
    request: Request, template: str, user: Principal | None, flash: str | None, ctx: dict[str, Any]
) -> str:
    settings = request.app.state.settings
    return (
        state(request)
        .templates.get_template(template)
        .render(
            request=request,
            user=user,
            csrf=web_session.csrf_token(request),
            nav=[(p, label) for p, label, perm in NAV if user and allowed(user.role, perm)],
            can=(lambda perm: user is not None and allowed(user.role, perm)),
            can_sign=(lambda meaning: user is not None and user.role in SIGNATURE_MEANING_ROLES[meaning]),
            flash=_decode_flash(flash),
            site_name=settings.site_name,
            site_timezone=settings.site_timezone,
            path=request.url.path,
            form_token=new_form_token(),
            **ctx,
        )
    )


def not_found(request: Request, me: Principal, what: str) -> HTMLResponse:
    """The 404 page for ``what``."""
    return render(request, "notfound.html", me, status=404, what=what)


def require_user(request: Request, permission: str | None) -> Principal:
    """The logged-in user holding ``permission``; else a redirect to the login page or the 403 page."""
    me = web_session.current_user(request)
    if me is None:
        target = quote(str(request.url.path) + (f"?{request.url.query}" if request.url.query else ""))
        if getattr(request.state, "session_expired", False):
            minutes = request.app.state.settings.idle_timeout_min
            saved = " What you entered was NOT saved: enter it again." if request.method == "POST" else ""
            raise Refused(
                redirect(
                    f"/ui/login?next={target}",
                    f"Your session ended after {minutes:g} minutes without activity.{saved}",
                    kind="error",
                )
            )
        raise Refused(RedirectResponse(f"/ui/login?next={target}", status_code=303))
    # an administrator-set password must be changed (the password page) before any page action
    if permission is not None and me.must_change_password:
        raise Refused(redirect("/ui/password", "choose your own password first", kind="error"))
    if permission is not None and not allowed(me.role, permission):
        raise Refused(render(request, "forbidden.html", me, status=403, permission=permission))
    return me


@dataclass(frozen=True)
class Upload:
    """An uploaded file, read into memory."""

    filename: str
    data: bytes


async def read_form(request: Request) -> dict[str, Any]:
    """The posted fields as a dict (last value wins); files become :class:`Upload`; temp files closed."""
    out: dict[str, Any] = {}
    async with request.form() as form:
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                out[key] = Upload(value.filename or "", await value.read()) if value.filename else None
            else:
                out[key] = value
    return out


async def checked_form(request: Request, me: Principal) -> dict[str, Any]:
    """The posted fields after the CSRF check (a form without a valid token gets the 403 page)."""
    form = await read_form(request)
    if not web_session.csrf_ok(request, form.get("csrf")):
        raise Refused(render(request, "forbidden.html", me, status=403, permission="csrf"))
    return form


def parse_local(request: Request, value: Any) -> str | None:
    """``YYYY-MM-DDTHH:MM`` in the site's zone → ISO text in UTC (None when not a valid time)."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        naive = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if not EARLIEST_TIME.year <= naive.year < LATEST_TIME.year:
        return None  # year 1 or 9999: a typing error (and outside what a time zone can convert)
    if naive.tzinfo is not None:
        return naive.astimezone(UTC).isoformat()
    return naive.replace(tzinfo=site_tz(request)).astimezone(UTC).isoformat()


def local_input(request: Request, value: datetime) -> str:
    """``value`` as the text of a ``datetime-local`` input in the site's zone."""
    return value.astimezone(site_tz(request)).strftime("%Y-%m-%dT%H:%M")


def now_input(request: Request) -> str:
    """Now, as the text of a ``datetime-local`` input in the site's zone."""
    return datetime.now(site_tz(request)).strftime("%Y-%m-%dT%H:%M")


def _decode_flash(value: str | None) -> dict[str, str] | None:
    if not value:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(value.encode("ascii")).decode("utf-8"))
    except (ValueError, UnicodeError):
        return None
    if isinstance(data, dict) and isinstance(data.get("text"), str):
        return {"kind": "error" if data.get("kind") == "error" else "ok", "text": data["text"][:500]}
    return None


def redirect(url: str, message: str | None = None, *, kind: str = "ok") -> RedirectResponse:
    """A 303 redirect with a one-time message shown on the next page."""
    response = RedirectResponse(url, status_code=303)
    if message:
        response.set_cookie(
            FLASH_COOKIE,
            base64.urlsafe_b64encode(json.dumps({"kind": kind, "text": message}).encode("utf-8")).decode(
                "ascii"
            ),
            path=web_session.COOKIE_PATH,
            httponly=True,
            samesite="strict",
        )
    return response


def safe_next(value: Any, default: str) -> str:
    """``value`` when it is a path of the pages (never another site), else ``default``."""
    if isinstance(value, str) and _LOCAL_PATH.match(value) and "//" not in value:
        return value
    return default


def form_text(form: Mapping[str, Any], name: str) -> str:
    """A posted text field, stripped ('' when absent)."""
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def form_opt(form: Mapping[str, Any], name: str) -> str | None:
    """A posted text field, stripped, or None when blank."""
    return form_text(form, name) or None


def errors_from_validation(exc: ValidationError) -> dict[str, str]:
    """Field → message of a validation error of an input model."""
    out: dict[str, str] = {}
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        name = loc[0] if loc else "_form"
        out.setdefault(name, str(err.get("msg", "invalid value")).replace("Value error, ", ""))
    return out


def errors_from_exception(exc: Exception, default_field: str = "_form") -> dict[str, str]:
    """Field → message of a refusal of an operation (the field named by the error or its message)."""
    if isinstance(exc, ApiError):
        return {exc.field or default_field: exc.message}
    text = str(exc)
    match = _FIELD.match(text)
    return {match.group(1) if match else default_field: text}


def run_form(body_factory: Callable[[], Any], action: Callable[[Any], Any]) -> tuple[Any, dict[str, str]]:
    """Build the input model and run the operation; returns (result, errors)."""
    try:
        body = body_factory()
    except ValidationError as exc:
        return None, errors_from_validation(exc)
    except (TheradoseError, ApiError) as exc:
        return None, errors_from_exception(exc)
    try:
        return action(body), {}
    except (TheradoseError, ApiError) as exc:
        return None, errors_from_exception(exc)


@contextmanager
def read_session(request: Request) -> Iterator[Session]:
    """A read session whose loaded rows stay usable after it ends (they are detached, not expired)."""
    with request.app.state.db.read() as session:
        try:
            yield session
        finally:
            session.expunge_all()


def new_form_token() -> str:
    """A random token for a form: submitting the same form twice writes once (see ``idempotency``)."""
    import secrets

    return secrets.token_hex(16)


def form_key(form: Mapping[str, Any]) -> str | None:
    """The idempotency key of a posted form (None when it has no token)."""
    token = form_text(form, "form_token")
    return f"form:{token}" if re.fullmatch(r"[0-9a-f]{32}", token) else None


def write(request: Request, operation: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run ``operation(session, *args, **kwargs)`` in one write transaction (rolled back if it refuses)."""
    with request.app.state.db.write() as session:
        return operation(session, *args, **kwargs)


def read(request: Request, operation: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run ``operation(session, *args, **kwargs)`` in a read session; loaded rows stay usable."""
    with read_session(request) as session:
        return operation(session, *args, **kwargs)


def _impossible_id(kwargs: dict[str, Any]) -> str | None:
    """The first ``*_id`` path parameter that no row can have (e.g. 99999999999999999999), if any."""
    for name, value in kwargs.items():
        if name.endswith("_id") and isinstance(value, int) and not 1 <= value <= MAX_ID:
            return f"{name.removesuffix('_id').replace('_', ' ')} {value}"
    return None


def guarded(handler: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a view so that a :class:`Refused` raised inside it becomes its response, and a record id
    that no row can have is answered with the 404 page before the view runs."""
    if inspect.iscoroutinefunction(handler):

        @functools.wraps(handler)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                impossible = _impossible_id(kwargs)
                if impossible is not None:
                    return not_found(kwargs["request"], require_user(kwargs["request"], None), impossible)
                return await handler(*args, **kwargs)
            except Refused as refused:
                return refused.response

        return async_wrapper

    @functools.wraps(handler)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            impossible = _impossible_id(kwargs)
            if impossible is not None:
                return not_found(kwargs["request"], require_user(kwargs["request"], None), impossible)
            return handler(*args, **kwargs)
        except Refused as refused:
            return refused.response

    return wrapper
