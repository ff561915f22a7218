"""Server-rendered pages of the browser UI, served by the traceability service app under ``/ui``.

Every form is handled the same way: the posted fields are turned into the JSON API's request model
(the same validation), the API's own endpoint function does the work in one write transaction (the
same domain checks, audit entries and role names), and any refusal is shown next to the field it
concerns, with nothing written. Roles are checked with the service's permission table.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile

from theradose.errors import TheradoseError
from theradose.service.auth import Principal, revoke_token
from theradose.service.errors import ApiError
from theradose.service.models import (
    Administration,
    AuditEntryRow,
    Batch,
    Calibrator,
    CalibratorQa,
    CameraCalibrationRow,
    Dispensing,
    Patient,
    PatientIdentity,
    Prescription,
    SignatureRow,
)
from theradose.service.permissions import CLINICAL, PERMISSIONS, SIGNATURE_MEANING_ROLES
from theradose.service.web import session as web_session
from theradose.service.web.store import Review, Store, read_result
from theradose.service.web.svg import HLine, Series, line_chart

_HERE = Path(__file__).parent
#: Permissions of the pages that the JSON API does not have.
WEB_PERMISSIONS: dict[str, frozenset[str]] = {
    "dosimetry:read": CLINICAL,
    "dosimetry:import": frozenset({"physicist"}),
}
#: Navigation: (path, label, permission).
NAV: tuple[tuple[str, str, str], ...] = (
    ("/ui/worklist", "Worklist", "prescriptions:read"),
    ("/ui/batches", "Batches", "batches:read"),
    ("/ui/dispense", "Dispense", "dispense"),
    ("/ui/qa", "Calibrator QA", "calibrators:read"),
    ("/ui/cameras", "SPECT calibration", "cameras:read"),
    ("/ui/dosimetry", "Dosimetry review", "dosimetry:read"),
    ("/ui/audit", "Audit log", "audit:read"),
)
#: Content security policy of the pages: own scripts and styles only, no inline script, frames same-origin.
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-src 'self'; frame-ancestors 'self'; form-action 'self'; base-uri 'none'; object-src 'none'"
)
_FIELD = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)[ :]")
_LOCAL_PATH = re.compile(r"^/ui/[A-Za-z0-9_/?=&.%-]*$")


def allowed(role: str, permission: str) -> bool:
    """True when ``role`` may do ``permission`` (service table, then the pages' own)."""
    roles = PERMISSIONS.get(permission) or WEB_PERMISSIONS[permission]
    return role in roles


class _Refused(Exception):
    """Raised inside a handler to answer with a response (redirect to login, 403 page)."""

    def __init__(self, response: Response) -> None:
        self.response = response


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(_HERE / "templates")),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env


def _errors_from_validation(exc: ValidationError) -> dict[str, str]:
    out: dict[str, str] = {}
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        name = loc[0] if loc else "_form"
        out.setdefault(name, str(err.get("msg", "invalid value")).replace("Value error, ", ""))
    return out


def _errors_from_exception(exc: Exception, default_field: str = "_form") -> dict[str, str]:
    if isinstance(exc, ApiError):
        return {exc.field or default_field: exc.message}
    text = str(exc)
    match = _FIELD.match(text)
    return {match.group(1) if match else default_field: text}


class Pages:
    """The page handlers; one instance per app (holds the template environment and the data store)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.env = _environment()
        self.env.filters["local"] = self._local_filter
        self.env.filters["mbq"] = lambda v: "–" if v is None else f"{v:,.1f}"
        self.env.filters["num"] = lambda v, d=3: "–" if v is None else f"{v:.{d}g}"
        self.env.globals["zip"] = zip
        self.env.filters["pct"] = lambda v: "–" if v is None else f"{v * 100:+.1f} %"
        self._tz: ZoneInfo | None = None

    # --- helpers --------------------------------------------------------------------------------------
    def tz(self, request: Request) -> ZoneInfo:
        return ZoneInfo(request.app.state.settings.site_timezone)

    def _local_filter(self, value: datetime | str | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
        if value is None:
            return "–"
        if isinstance(value, str):
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        assert self._tz is not None
        return value.astimezone(self._tz).strftime(fmt + " %Z")

    def render(
        self, request: Request, template: str, user: Principal | None, status: int = 200, **ctx: Any
    ) -> HTMLResponse:
        self._tz = self.tz(request)
        flash = request.cookies.get("theradose_flash")
        settings = request.app.state.settings
        body = self._render_body(request, template, user, flash, settings, ctx)
        errors = ctx.get("errors") or {}
        unshown = {k: v for k, v in errors.items() if k != "_form" and f'id="e-{k}"' not in body}
        if unshown:  # an error about a field this form does not have: show it at the top of the form
            shown = {k: v for k, v in errors.items() if k not in unshown}
            shown["_form"] = "; ".join([*([errors["_form"]] if "_form" in errors else []), *unshown.values()])
            body = self._render_body(request, template, user, flash, settings, {**ctx, "errors": shown})
        response = HTMLResponse(body, status_code=status)
        if flash:
            response.delete_cookie("theradose_flash", path=web_session.COOKIE_PATH)
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Frame-Options"] = "SAMEORIGIN"
        response.headers["Content-Security-Policy"] = PAGE_CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        return response

    def _render_body(
        self,
        request: Request,
        template: str,
        user: Principal | None,
        flash: str | None,
        settings: Any,
        ctx: dict[str, Any],
    ) -> str:
        return self.env.get_template(template).render(
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
            **ctx,
        )

    def user(self, request: Request, permission: str | None) -> Principal:
        me = web_session.current_user(request)
        if me is None:
            target = quote(str(request.url.path) + (f"?{request.url.query}" if request.url.query else ""))
            raise _Refused(RedirectResponse(f"/ui/login?next={target}", status_code=303))
        # an administrator-set password must be changed (POST /auth/password) before any page action
        if permission is not None and (not allowed(me.role, permission) or me.must_change_password):
            raise _Refused(self.render(request, "forbidden.html", me, status=403, permission=permission))
        return me

    async def form(self, request: Request, me: Principal) -> dict[str, Any]:
        """The posted fields (uploaded files read into :class:`Upload`), after the CSRF check."""
        form = await read_form(request)
        if not web_session.csrf_ok(request, form.get("csrf")):
            raise _Refused(self.render(request, "forbidden.html", me, status=403, permission="csrf"))
        return form

    def parse_local(self, request: Request, value: Any) -> str | None:
        """``YYYY-MM-DDTHH:MM`` in the site's zone → ISO text in UTC (None when not a valid time)."""
        if not isinstance(value, str) or not value.strip():
            return None
        try:
            naive = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
        if naive.tzinfo is not None:
            return naive.astimezone(UTC).isoformat()
        return naive.replace(tzinfo=self.tz(request)).astimezone(UTC).isoformat()


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
            "theradose_flash",
            base64.urlsafe_b64encode(json.dumps({"kind": kind, "text": message}).encode("utf-8")).decode(
                "ascii"
            ),
            path=web_session.COOKIE_PATH,
            httponly=True,
            samesite="strict",
        )
    return response


def _safe_next(value: Any, default: str) -> str:
    if isinstance(value, str) and _LOCAL_PATH.match(value) and "//" not in value:
        return value
    return default


def _text(form: Mapping[str, Any], name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _opt(form: Mapping[str, Any], name: str) -> str | None:
    value = _text(form, name)
    return value or None


def _run_form(body_factory: Callable[[], Any], action: Callable[[Any], Any]) -> tuple[Any, dict[str, str]]:
    """Build the request model and run the API action; returns (result, errors)."""
    try:
        body = body_factory()
    except ValidationError as exc:
        return None, _errors_from_validation(exc)
    except (TheradoseError, ApiError) as exc:
        return None, _errors_from_exception(exc)
    try:
        return action(body), {}
    except (TheradoseError, ApiError) as exc:
        return None, _errors_from_exception(exc)


@contextmanager
def _read(request: Request) -> Iterator[Session]:
    """A read session whose loaded rows stay usable after it ends (they are detached, not expired)."""
    with request.app.state.db.read() as session:
        try:
            yield session
        finally:
            session.expunge_all()


def _audit_count(request: Request) -> int:
    with _read(request) as session:
        return int(session.execute(select(func.count()).select_from(AuditEntryRow)).scalar_one())


def _protocol_for(radiopharmaceutical: str) -> str | None:
    name = radiopharmaceutical.upper()
    if "PSMA" in name:
        return "psma"
    if "DOTATATE" in name or "DOTATOC" in name or "DOTA-TATE" in name:
        return "dotatate"
    return None


def build_router(store: Store) -> APIRouter:
    """The pages router (include it with ``create_app(settings, routers=[...])``)."""
    from theradose.service.api import auth as auth_api
    from theradose.service.api import pharmacy as pharmacy_api
    from theradose.service.api import qa as qa_api
    from theradose.service.api import records as records_api
    from theradose.service.api import safety as safety_api

    pages = Pages(store)
    router = APIRouter(prefix="/ui", include_in_schema=False)

    def guarded(handler: Callable[..., Any]) -> Callable[..., Any]:
        import functools
        import inspect

        if inspect.iscoroutinefunction(handler):

            @functools.wraps(handler)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                try:
                    return await handler(*args, **kwargs)
                except _Refused as refused:
                    return refused.response

            return async_wrapper

        @functools.wraps(handler)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return handler(*args, **kwargs)
            except _Refused as refused:
                return refused.response

        return wrapper

    # --- static -----------------------------------------------------------------------------------------
    static_files = {"app.css": "text/css", "app.js": "text/javascript"}

    @router.get("/static/{name}")
    def static(name: str) -> Response:
        if name not in static_files:
            return Response("not found", status_code=404, media_type="text/plain")
        content = (_HERE / "static" / name).read_bytes()
        return Response(
            content, media_type=static_files[name], headers={"Cache-Control": "public, max-age=300"}
        )

    # --- login / logout -----------------------------------------------------------------------------------
    @router.get("", response_class=HTMLResponse)
    @router.get("/", response_class=HTMLResponse)
    def home(request: Request) -> Response:
        me = web_session.current_user(request)
        if me is None:
            return RedirectResponse("/ui/login", status_code=303)
        first = next((p for p, _label, perm in NAV if allowed(me.role, perm)), "/ui/worklist")
        return RedirectResponse(first, status_code=303)

    @router.get("/login", response_class=HTMLResponse)
    def login_page(request: Request, next: str = "/ui/") -> Response:
        value = web_session.new_login_csrf()
        response = pages.render(
            request, "login.html", None, login_csrf=value, next=_safe_next(next, "/ui/"), errors={}
        )
        response.set_cookie(
            web_session.LOGIN_CSRF_COOKIE,
            value,
            path=web_session.COOKIE_PATH,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    @router.post("/login", response_class=HTMLResponse)
    async def login_submit(request: Request) -> Response:
        form = await read_form(request)
        target = _safe_next(form.get("next"), "/ui/")
        if not web_session.login_csrf_ok(request, form.get("login_csrf")):
            return pages.render(
                request,
                "login.html",
                None,
                status=403,
                login_csrf=request.cookies.get(web_session.LOGIN_CSRF_COOKIE, ""),
                next=target,
                errors={"_form": "the form expired: reload the page and log in again"},
                username=_text(form, "username"),
            )
        username, password = _text(form, "username"), form.get("password")
        errors: dict[str, str] = {}
        if not username:
            errors["username"] = "enter your user name"
        if not isinstance(password, str) or not password:
            errors["password"] = "enter your password"
        result = None
        if not errors:
            result, errors = await run_in_threadpool(
                _run_form,
                lambda: auth_api.LoginIn.model_validate(dict(username=username, password=password)),
                lambda body: auth_api.login(body, request),
            )
            if errors:
                errors = {"password": "wrong user name or password"}
        if errors:
            return pages.render(
                request,
                "login.html",
                None,
                status=401 if "password" in errors and len(errors) == 1 and username else 422,
                login_csrf=request.cookies.get(web_session.LOGIN_CSRF_COOKIE, ""),
                next=target,
                errors=errors,
                username=username,
            )
        assert result is not None
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            web_session.SESSION_COOKIE,
            result.token,
            path=web_session.COOKIE_PATH,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            max_age=int(request.app.state.settings.session_ttl_h * 3600),
        )
        response.delete_cookie(web_session.LOGIN_CSRF_COOKIE, path=web_session.COOKIE_PATH)
        return response

    @router.post("/logout")
    @guarded
    async def logout(request: Request) -> Response:
        me = pages.user(request, None)
        await pages.form(request, me)
        token = web_session.session_token(request) or ""

        def revoke() -> None:
            from theradose.service import audit_store
            from theradose.service.api._common import utcnow

            with request.app.state.db.write() as session:
                revoke_token(session, token)
                audit_store.append(
                    session,
                    actor=me.username,
                    at=utcnow(),
                    action="logout",
                    entity="user",
                    entity_id=me.user_id,
                )

        await run_in_threadpool(revoke)
        response = redirect("/ui/login", "logged out")
        response.delete_cookie(web_session.SESSION_COOKIE, path=web_session.COOKIE_PATH)
        return response

    # --- worklist -----------------------------------------------------------------------------------------
    @router.get("/worklist", response_class=HTMLResponse)
    @guarded
    def worklist(request: Request, day: str | None = None) -> Response:
        me = pages.user(request, "prescriptions:read")
        tz = pages.tz(request)
        try:
            the_day = date.fromisoformat(day) if day else datetime.now(tz).date()
        except ValueError:
            the_day = datetime.now(tz).date()
        start = datetime.combine(the_day, time(0), tzinfo=tz).astimezone(UTC)
        end = datetime.combine(the_day + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
        rows: list[dict[str, Any]] = []
        with _read(request) as session:
            prescriptions = session.execute(
                select(Prescription, Patient.pseudonym)
                .join(Patient, Patient.id == Prescription.patient_id)
                .where(Prescription.status == "active")
                .order_by(Prescription.id)
            ).all()
            for rx, pseudonym in prescriptions:
                dispensings = list(
                    session.execute(
                        select(Dispensing).where(Dispensing.prescription_id == rx.id).order_by(Dispensing.id)
                    ).scalars()
                )
                today = [d for d in dispensings if start <= d.planned_time < end]
                if dispensings and not today:
                    continue  # dispensed for another day
                if not today:
                    rows.append({"rx": rx, "patient": pseudonym, "disp": None, "adm": None})
                for d in today:
                    adm = session.execute(
                        select(Administration).where(Administration.dispensing_id == d.id)
                    ).scalar_one_or_none()
                    rows.append({"rx": rx, "patient": pseudonym, "disp": d, "adm": adm})
        rows.sort(
            key=lambda r: (r["disp"] is None, r["disp"].planned_time if r["disp"] else start, r["rx"].id)
        )
        return pages.render(request, "worklist.html", me, rows=rows, day=the_day)

    # --- batches ------------------------------------------------------------------------------------------
    def _batches_page(
        request: Request,
        me: Principal,
        *,
        errors: dict[str, str],
        values: Mapping[str, str],
        status: int = 200,
    ) -> Response:
        with _read(request) as session:
            rows = list(session.execute(select(Batch).order_by(Batch.id.desc()).limit(100)).scalars())
            batches = [pharmacy_api._batch_out(r, []) for r in rows]
        now = datetime.now(pages.tz(request))
        defaults = {
            "reference_time": now.strftime("%Y-%m-%dT%H:%M"),
            "expiry_time": (now + timedelta(hours=72)).strftime("%Y-%m-%dT%H:%M"),
            "nuclide": "Lu-177",
        }
        return pages.render(
            request,
            "batches.html",
            me,
            status=status,
            batches=batches,
            errors=errors,
            values={**defaults, **values},
        )

    @router.get("/batches", response_class=HTMLResponse)
    @guarded
    def batches(request: Request) -> Response:
        me = pages.user(request, "batches:read")
        return _batches_page(request, me, errors={}, values={})

    @router.post("/batches", response_class=HTMLResponse)
    @guarded
    async def receive_batch(request: Request) -> Response:
        me = pages.user(request, "batches:write")
        form = await pages.form(request, me)
        values = {
            k: _text(form, k)
            for k in (
                "product",
                "nuclide",
                "lot",
                "activity_mbq",
                "volume_ml",
                "reference_time",
                "expiry_time",
            )
        }
        time_errors = {
            k: "enter a date and time"
            for k in ("reference_time", "expiry_time")
            if pages.parse_local(request, values[k]) is None
        }
        if time_errors:
            return _batches_page(request, me, errors=time_errors, values=values, status=422)
        row, errors = await run_in_threadpool(
            _run_form,
            lambda: pharmacy_api.BatchIn.model_validate(
                dict(
                    product=values["product"],
                    nuclide=values["nuclide"],
                    lot=values["lot"],
                    activity_mbq=values["activity_mbq"] or None,
                    volume_ml=values["volume_ml"] or None,
                    reference_time=pages.parse_local(request, values["reference_time"]),
                    expiry_time=pages.parse_local(request, values["expiry_time"]),
                )
            ),
            lambda body: pharmacy_api.create_batch(body, request, me),
        )
        if errors:
            return _batches_page(request, me, errors=errors, values=values, status=422)
        return redirect(f"/ui/batches/{row.id}", f"batch {row.lot} received (quarantine): record QC next")

    def _batch_page(
        request: Request,
        me: Principal,
        batch_id: int,
        *,
        errors: dict[str, str],
        values: Mapping[str, str],
        status: int = 200,
    ) -> Response:
        with _read(request) as session:
            row = session.get(Batch, batch_id)
            if row is None:
                return pages.render(request, "notfound.html", me, status=404, what=f"batch {batch_id}")
            batch = pharmacy_api._batch_out(row, pharmacy_api._qc_rows(session, row.id))
            signatures = (
                records_api.list_signatures("batch", batch_id, request, me)
                if allowed(me.role, "signatures:read")
                else []
            )
        return pages.render(
            request,
            "batch.html",
            me,
            status=status,
            batch=batch,
            errors=errors,
            values=values,
            signatures=signatures,
            required_qc=request.app.state.required_qc,
        )

    @router.get("/batches/{batch_id}", response_class=HTMLResponse)
    @guarded
    def batch_detail(request: Request, batch_id: int) -> Response:
        me = pages.user(request, "batches:read")
        return _batch_page(request, me, batch_id, errors={}, values={})

    @router.post("/batches/{batch_id}/qc", response_class=HTMLResponse)
    @guarded
    async def batch_qc(request: Request, batch_id: int) -> Response:
        me = pages.user(request, "batches:write")
        form = await pages.form(request, me)
        values = {
            k: _text(form, k) for k in ("test", "value", "unit", "lower_limit", "upper_limit", "reason")
        }
        _, errors = await run_in_threadpool(
            _run_form,
            lambda: pharmacy_api.QcIn.model_validate(
                dict(
                    test=values["test"],
                    value=values["value"] or None,
                    unit=values["unit"],
                    lower_limit=values["lower_limit"] or None,
                    upper_limit=values["upper_limit"] or None,
                    reason=values["reason"] or None,
                )
            ),
            lambda body: pharmacy_api.add_qc(batch_id, body, request, me),
        )
        if errors:
            if "test" not in errors and "_form" in errors and "not found" in errors["_form"]:
                return pages.render(request, "notfound.html", me, status=404, what=f"batch {batch_id}")
            return _batch_page(request, me, batch_id, errors=errors, values=values, status=422)
        return redirect(f"/ui/batches/{batch_id}", f"QC result {values['test']} recorded")

    @router.post("/batches/{batch_id}/release", response_class=HTMLResponse)
    @guarded
    async def batch_release(request: Request, batch_id: int) -> Response:
        me = pages.user(request, "batches:write")
        form = await pages.form(request, me)
        reason = _opt(form, "release_reason")
        _, errors = await run_in_threadpool(
            _run_form,
            lambda: pharmacy_api.ReleaseIn.model_validate(dict(reason=reason)),
            lambda body: pharmacy_api.release_batch(batch_id, body, request, me),
        )
        if errors:
            errors = {"release": next(iter(errors.values()))}
            return _batch_page(request, me, batch_id, errors=errors, values={}, status=409)
        return redirect(f"/ui/batches/{batch_id}", "batch released")

    # --- dispensing ---------------------------------------------------------------------------------------
    def _dispense_page(
        request: Request,
        me: Principal,
        *,
        errors: dict[str, str],
        values: Mapping[str, str],
        status: int = 200,
    ) -> Response:
        from theradose.pharmacy.decay import half_life_h

        now = datetime.now(UTC)
        with _read(request) as session:
            released = list(
                session.execute(
                    select(Batch)
                    .where(Batch.status == "released", Batch.expiry_time > now)
                    .order_by(Batch.id)
                ).scalars()
            )
            rxs = session.execute(
                select(Prescription, Patient.pseudonym)
                .join(Patient, Patient.id == Prescription.patient_id)
                .where(Prescription.status == "active")
                .order_by(Prescription.id)
            ).all()
        batches = [
            {
                "row": b,
                "half_life_h": half_life_h(b.nuclide),
                "reference_time": b.reference_time.isoformat(),
                "concentration_ref": b.activity_mbq / b.volume_ml,
            }
            for b in released
        ]
        defaults = {
            "planned_time": (datetime.now(pages.tz(request)) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
        }
        offset = datetime.now(pages.tz(request)).utcoffset()
        utc_offset_min = 0.0 if offset is None else offset.total_seconds() / 60
        rx_param = request.query_params.get("prescription")
        if rx_param:
            defaults["prescription_id"] = rx_param
            for rx, _p in rxs:
                if str(rx.id) == rx_param:
                    defaults["activity_mbq"] = f"{rx.prescribed_activity_mbq:g}"
        return pages.render(
            request,
            "dispense.html",
            me,
            utc_offset_min=utc_offset_min,
            status=status,
            batches=batches,
            prescriptions=rxs,
            errors=errors,
            values={**defaults, **values},
        )

    @router.get("/dispense", response_class=HTMLResponse)
    @guarded
    def dispense_page(request: Request) -> Response:
        me = pages.user(request, "dispense")
        return _dispense_page(request, me, errors={}, values={})

    @router.post("/dispense", response_class=HTMLResponse)
    @guarded
    async def dispense_submit(request: Request) -> Response:
        me = pages.user(request, "dispense")
        form = await pages.form(request, me)
        values = {
            k: _text(form, k)
            for k in ("batch_id", "prescription_id", "activity_mbq", "planned_time", "override_reason")
        }
        errors: dict[str, str] = {}
        if not values["batch_id"].isdigit():
            errors["batch_id"] = "choose a released batch"
        if not values["prescription_id"].isdigit():
            errors["prescription_id"] = "choose the patient's prescription"
        planned = pages.parse_local(request, values["planned_time"])
        if planned is None:
            errors["planned_time"] = "enter the planned administration time"
        if errors:
            return _dispense_page(request, me, errors=errors, values=values, status=422)
        row, errors = await run_in_threadpool(
            _run_form,
            lambda: pharmacy_api.DispenseIn.model_validate(
                dict(
                    prescription_id=int(values["prescription_id"]),
                    activity_mbq=values["activity_mbq"] or None,
                    planned_time=planned,
                    override_reason=values["override_reason"] or None,
                )
            ),
            lambda body: pharmacy_api.create_dispensing(int(values["batch_id"]), body, request, me),
        )
        if errors:
            if "_form" in errors and "batch" in errors["_form"] and "not found" in errors["_form"]:
                errors = {"batch_id": errors.pop("_form")}
            if "_form" in errors and "prescription" in errors["_form"]:
                errors = {"prescription_id": errors.pop("_form")}
            return _dispense_page(request, me, errors=errors, values=values, status=422)
        return redirect(
            "/ui/worklist",
            f"dispensed {row.volume_ml:.3f} mL = {row.activity_at_planned_mbq:,.0f} MBq at the planned time "
            f"for {row.patient}",
        )

    # --- administration -----------------------------------------------------------------------------------
    def _administer_page(
        request: Request,
        me: Principal,
        dispensing_id: int,
        *,
        errors: dict[str, str],
        values: Mapping[str, str],
        status: int = 200,
        check: Any = None,
        net_mbq: float | None = None,
    ) -> Response:
        with _read(request) as session:
            disp = session.get(Dispensing, dispensing_id)
            if disp is None:
                return pages.render(
                    request, "notfound.html", me, status=404, what=f"dispensing {dispensing_id}"
                )
            rx = session.get(Prescription, disp.prescription_id)
            batch = session.get(Batch, disp.batch_id)
            patient = session.get(Patient, disp.patient_id)
            adm = session.execute(
                select(Administration).where(Administration.dispensing_id == disp.id)
            ).scalar_one_or_none()
            signatures = (
                records_api.list_signatures("administration", adm.id, request, me)
                if adm is not None and allowed(me.role, "signatures:read")
                else []
            )
        now_local = datetime.now(pages.tz(request)).strftime("%Y-%m-%dT%H:%M")
        defaults = {k: now_local for k in ("syringe_measured_at", "residual_measured_at", "injection_time")}
        defaults["route"] = rx.route if rx else "intravenous"
        from theradose.pharmacy.administration import ROUTES

        return pages.render(
            request,
            "administer.html",
            me,
            status=status,
            disp=disp,
            rx=rx,
            batch=batch,
            patient=patient,
            adm=adm,
            errors=errors,
            values={**defaults, **values},
            check=check,
            net_mbq=net_mbq,
            routes=ROUTES,
            signatures=signatures,
        )

    @router.get("/administer/{dispensing_id}", response_class=HTMLResponse)
    @guarded
    def administer_page(request: Request, dispensing_id: int) -> Response:
        me = pages.user(request, "administrations:read")
        return _administer_page(request, me, dispensing_id, errors={}, values={})

    @router.post("/administer/{dispensing_id}", response_class=HTMLResponse)
    @guarded
    async def administer_submit(request: Request, dispensing_id: int) -> Response:
        me = pages.user(request, "administer")
        form = await pages.form(request, me)
        keys = (
            "syringe_activity_mbq",
            "syringe_measured_at",
            "residual_activity_mbq",
            "residual_measured_at",
            "injection_time",
            "route",
        )
        values = {k: _text(form, k) for k in keys}
        times = {
            k: pages.parse_local(request, values[k])
            for k in ("syringe_measured_at", "residual_measured_at", "injection_time")
        }
        errors = {k: "enter a date and time" for k, v in times.items() if v is None}
        if errors:
            return _administer_page(request, me, dispensing_id, errors=errors, values=values, status=422)

        def work() -> tuple[Any, dict[str, str], Any, float | None]:
            from theradose.pharmacy.administration import net_administered_activity
            from theradose.planning.regulatory import check_dosage

            try:
                body = pharmacy_api.AdministrationIn.model_validate(
                    dict(
                        syringe_activity_mbq=values["syringe_activity_mbq"] or None,
                        residual_activity_mbq=values["residual_activity_mbq"] or "0",
                        route=values["route"] or "intravenous",
                        **times,
                    )
                )
            except ValidationError as exc:
                return None, _errors_from_validation(exc), None, None
            with _read(request) as session:
                disp = session.get(Dispensing, dispensing_id)
                if disp is None:
                    return None, {"_form": f"dispensing {dispensing_id} not found"}, None, None
                batch = session.get(Batch, disp.batch_id)
                rx = session.get(Prescription, disp.prescription_id)
                assert batch is not None and rx is not None
            try:
                result = net_administered_activity(
                    batch.nuclide,
                    syringe_activity_mbq=body.syringe_activity_mbq,
                    syringe_measured_at=body.syringe_measured_at,
                    residual_activity_mbq=body.residual_activity_mbq,
                    residual_measured_at=body.residual_measured_at,
                    injection_time=body.injection_time,
                    route=body.route,
                )
                check = check_dosage(rx.prescribed_activity_mbq, max(result.net_activity_mbq, 0.0))
            except TheradoseError as exc:
                return None, _errors_from_exception(exc, "syringe_activity_mbq"), None, None
            if not check.ok:
                return (
                    None,
                    {"syringe_activity_mbq": "STOP: " + check.message},
                    check,
                    result.net_activity_mbq,
                )
            try:
                row = pharmacy_api.create_administration(dispensing_id, body, request, me)
            except (TheradoseError, ApiError) as exc:
                return None, _errors_from_exception(exc), check, result.net_activity_mbq
            return row, {}, check, result.net_activity_mbq

        row, errors, check, net = await run_in_threadpool(work)
        if errors:
            status = 409 if check is not None and not check.ok else 422
            return _administer_page(
                request,
                me,
                dispensing_id,
                errors=errors,
                values=values,
                status=status,
                check=check,
                net_mbq=net,
            )
        return redirect(
            f"/ui/administer/{dispensing_id}",
            f"administration recorded: net {row.net_activity_mbq:,.0f} MBq ({check.deviation_percent:+.1f} % "
            "from the prescription) — sign it as administered",
        )

    # --- calibrator QA ------------------------------------------------------------------------------------
    def _qa_page(
        request: Request,
        me: Principal,
        *,
        calibrator_id: int | None,
        errors: dict[str, str],
        values: Mapping[str, str],
        status: int = 200,
    ) -> Response:
        with _read(request) as session:
            calibrators = list(session.execute(select(Calibrator).order_by(Calibrator.id)).scalars())
            if calibrator_id is None and calibrators:
                calibrator_id = calibrators[0].id
            current = next((c for c in calibrators if c.id == calibrator_id), None)
            history = (
                list(
                    session.execute(
                        select(CalibratorQa)
                        .where(CalibratorQa.calibrator_id == calibrator_id)
                        .order_by(CalibratorQa.performed_at, CalibratorQa.id)
                    ).scalars()
                )
                if current
                else []
            )
        chart = None
        rows = [qa_api._qa_out(h) for h in history]
        source = [r for r in rows if r.test in ("constancy", "accuracy")]
        if source:
            tol = current.tolerance_fraction if current else source[-1].tolerance_fraction
            series = []
            for test in ("constancy", "accuracy"):
                pts = [(i, r) for i, r in enumerate(source) if r.test == test]
                if pts:
                    series.append(
                        Series(
                            test,
                            [i + 1 for i, _ in pts],
                            [r.deviations[0] * 100 for _, r in pts],
                            [not r.passed for _, r in pts],
                        )
                    )
            chart = line_chart(
                series,
                title="Dose-calibrator source checks: deviation from the decay-corrected reference",
                x_label="check number (oldest first)",
                x_tick_labels={float(i): str(i) for i in range(1, len(source) + 1)},
                y_label="deviation (%)",
                hlines=[HLine(tol * 100, f"+{tol * 100:g} %"), HLine(-tol * 100, f"-{tol * 100:g} %")],
            )
        now_local = datetime.now(pages.tz(request)).strftime("%Y-%m-%dT%H:%M")
        defaults = {"test": "constancy", "nuclide": "Cs-137", "measured_at": now_local}
        return pages.render(
            request,
            "qa.html",
            me,
            status=status,
            calibrators=calibrators,
            current=current,
            rows=list(reversed(rows)),
            chart=chart,
            errors=errors,
            values={**defaults, **values},
        )

    @router.get("/qa", response_class=HTMLResponse)
    @guarded
    def qa_page(request: Request, calibrator: int | None = None) -> Response:
        me = pages.user(request, "calibrators:read")
        return _qa_page(request, me, calibrator_id=calibrator, errors={}, values={})

    @router.post("/qa", response_class=HTMLResponse)
    @guarded
    async def calibrator_register(request: Request) -> Response:
        me = pages.user(request, "calibrators:write")
        form = await pages.form(request, me)
        values = {k: _text(form, k) for k in ("name", "manufacturer", "model", "serial", "tolerance_percent")}
        tolerance: Any = None
        if values["tolerance_percent"]:
            try:
                tolerance = float(values["tolerance_percent"]) / 100  # percent → fraction
            except ValueError:
                tolerance = values["tolerance_percent"]
        row, errors = await run_in_threadpool(
            _run_form,
            lambda: qa_api.CalibratorIn.model_validate(
                {
                    "name": values["name"],
                    "manufacturer": values["manufacturer"],
                    "model": values["model"],
                    "serial": values["serial"],
                    **({"tolerance_fraction": tolerance} if tolerance is not None else {}),
                }
            ),
            lambda body: qa_api.create_calibrator(body, request, me),
        )
        if errors:
            if "tolerance_fraction" in errors:
                errors["tolerance_percent"] = errors.pop("tolerance_fraction")
            return _qa_page(request, me, calibrator_id=None, errors=errors, values=values, status=422)
        return redirect(f"/ui/qa?calibrator={row.id}", f"calibrator {row.name} registered")

    @router.post("/qa/{calibrator_id}", response_class=HTMLResponse)
    @guarded
    async def qa_submit(request: Request, calibrator_id: int) -> Response:
        me = pages.user(request, "calibrator_qa:write")
        form = await pages.form(request, me)
        values = {
            k: _text(form, k)
            for k in (
                "test",
                "nuclide",
                "certified_activity_mbq",
                "certified_at",
                "measured_at",
                "measured_mbq",
            )
        }
        times = {k: pages.parse_local(request, values[k]) for k in ("certified_at", "measured_at")}
        errors = {k: "enter a date and time" for k, v in times.items() if v is None}
        if errors:
            return _qa_page(
                request, me, calibrator_id=calibrator_id, errors=errors, values=values, status=422
            )
        row, errors = await run_in_threadpool(
            _run_form,
            lambda: qa_api.SourceCheckIn.model_validate(
                dict(
                    test=values["test"],
                    nuclide=values["nuclide"],
                    measured_mbq=values["measured_mbq"] or None,
                    certified_activity_mbq=values["certified_activity_mbq"] or None,
                    **times,
                )
            ),
            lambda body: qa_api.add_calibrator_qa(calibrator_id, body, request, me),
        )
        if errors:
            if "nuclide" not in errors and any("Nuclide" in v or "nuclide" in v for v in errors.values()):
                errors = {"nuclide": next(iter(errors.values()))}
            return _qa_page(
                request, me, calibrator_id=calibrator_id, errors=errors, values=values, status=422
            )
        verdict = "PASS" if row.passed else "FAIL"
        return redirect(
            f"/ui/qa?calibrator={calibrator_id}",
            f"{verdict}: {row.test} deviation {row.deviations[0] * 100:+.2f} % "
            f"(tolerance ±{row.tolerance_fraction * 100:g} %)",
            kind="ok" if row.passed else "error",
        )

    # --- SPECT calibration --------------------------------------------------------------------------------
    def _cameras_page(
        request: Request,
        me: Principal,
        *,
        camera: str | None,
        errors: dict[str, str],
        values: Mapping[str, str],
        status: int = 200,
    ) -> Response:
        with _read(request) as session:
            names = [
                n
                for (n,) in session.execute(
                    select(CameraCalibrationRow.camera).distinct().order_by(CameraCalibrationRow.camera)
                )
            ]
            if camera is None and names:
                camera = names[0]
            history = qa_api._history(session, camera) if camera else []
        chart = None
        if history:
            chart = line_chart(
                [
                    Series(
                        camera or "",
                        list(range(1, len(history) + 1)),
                        [h.sensitivity_cps_per_mbq for h in history],
                        [h.flagged for h in history],
                    )
                ],
                title=f"Sensitivity of {camera} over time",
                x_tick_labels={float(i): str(i) for i in range(1, len(history) + 1)},
                x_label="calibration number (oldest first)",
                y_label="sensitivity (cps/MBq)",
            )
        now_local = datetime.now(pages.tz(request)).strftime("%Y-%m-%dT%H:%M")
        defaults = {"camera": camera or "", "nuclide": "Lu-177", "performed_at": now_local}
        return pages.render(
            request,
            "cameras.html",
            me,
            status=status,
            names=names,
            camera=camera,
            history=list(reversed(history)),
            chart=chart,
            errors=errors,
            values={**defaults, **values},
        )

    @router.get("/cameras", response_class=HTMLResponse)
    @guarded
    def cameras_page(request: Request, camera: str | None = None) -> Response:
        me = pages.user(request, "cameras:read")
        return _cameras_page(request, me, camera=camera, errors={}, values={})

    @router.post("/cameras", response_class=HTMLResponse)
    @guarded
    async def cameras_submit(request: Request) -> Response:
        me = pages.user(request, "cameras:write")
        form = await pages.form(request, me)
        values = {
            k: _text(form, k)
            for k in ("camera", "nuclide", "sensitivity_cps_per_mbq", "performed_at", "recovery")
        }
        errors: dict[str, str] = {}
        if not re.match(r"^[A-Za-z0-9_.-]{1,100}$", values["camera"]):
            errors["camera"] = "camera name: letters, digits, '.', '_' or '-' (1 to 100)"
        performed = pages.parse_local(request, values["performed_at"])
        if performed is None:
            errors["performed_at"] = "enter a date and time"
        recovery: list[dict[str, str]] = []
        for number, line in enumerate(values["recovery"].splitlines(), start=1):
            if not line.strip():
                continue
            parts = [p.strip() for p in re.split(r"[,;\s]+", line.strip()) if p.strip()]
            if len(parts) != 2:
                errors["recovery"] = f"line {number}: write 'volume_mL, recovery' (e.g. 16, 0.82)"
                break
            recovery.append({"volume_ml": parts[0], "recovery_coefficient": parts[1]})
        if errors:
            return _cameras_page(request, me, camera=None, errors=errors, values=values, status=422)
        row, errors = await run_in_threadpool(
            _run_form,
            lambda: qa_api.CameraCalibrationIn.model_validate(
                dict(
                    nuclide=values["nuclide"],
                    sensitivity_cps_per_mbq=values["sensitivity_cps_per_mbq"] or None,
                    performed_at=performed,
                    recovery=recovery,
                )
            ),
            lambda body: qa_api.add_camera_calibration(values["camera"], body, request, me),
        )
        if errors:
            if "recovery" in errors or any(k.startswith("recovery") for k in errors):
                errors = {"recovery": next(iter(errors.values()))}
            return _cameras_page(request, me, camera=None, errors=errors, values=values, status=422)
        note = " — FLAGGED: sensitivity changed beyond the trend limit" if row.flagged else ""
        return redirect(
            f"/ui/cameras?camera={quote(values['camera'])}",
            f"calibration recorded{note}",
            kind="error" if row.flagged else "ok",
        )

    # --- patient treatment view ---------------------------------------------------------------------------
    def _patient_page(
        request: Request,
        me: Principal,
        pseudonym: str,
        *,
        errors: dict[str, str],
        values: Mapping[str, str] | None = None,
        status: int = 200,
    ) -> Response:
        with _read(request) as session:
            patient = session.execute(
                select(Patient).where(Patient.pseudonym == pseudonym)
            ).scalar_one_or_none()
            if patient is None:
                return pages.render(request, "notfound.html", me, status=404, what=f"patient {pseudonym}")
            rxs = list(
                session.execute(
                    select(Prescription)
                    .where(Prescription.patient_id == patient.id)
                    .order_by(Prescription.cycle, Prescription.id)
                ).scalars()
            )
            cycles = []
            for rx in rxs:
                disps = list(
                    session.execute(
                        select(Dispensing).where(Dispensing.prescription_id == rx.id).order_by(Dispensing.id)
                    ).scalars()
                )
                adms = [
                    session.execute(
                        select(Administration).where(Administration.dispensing_id == d.id)
                    ).scalar_one_or_none()
                    for d in disps
                ]
                sigs = list(
                    session.execute(
                        select(SignatureRow)
                        .where(
                            SignatureRow.record_type == "prescription", SignatureRow.record_id == str(rx.id)
                        )
                        .order_by(SignatureRow.id)
                    ).scalars()
                )
                cycles.append(
                    {"rx": rx, "dispensings": list(zip(disps, adms, strict=True)), "signatures": sigs}
                )
        protocol_name = next((p for p in (_protocol_for(rx.radiopharmaceutical) for rx in rxs) if p), None)
        reviews = store.reviews(patient=pseudonym)
        review_rows = [{"review": r, "approved": _review_approved(request, r)} for r in reviews]
        dose_table: dict[str, dict[str, float | None]] = {}  # region -> review id -> dose (Gy)
        for review in reviews:
            try:
                result = read_result(review.folder)
            except TheradoseError:
                continue
            for region in result.regions:
                dose_table.setdefault(region.name, {})[review.review_id] = region.dose_gy
        planning = _planning(protocol_name, [r for r in review_rows if r["approved"]])
        labs = _labs(request, me, pseudonym, protocol_name)
        return pages.render(
            request,
            "patient.html",
            me,
            status=status,
            pseudonym=pseudonym,
            cycles=cycles,
            reviews=review_rows,
            dose_table=dose_table,
            planning=planning,
            labs=labs,
            protocol=protocol_name,
            errors=errors,
            values={"taken_on": datetime.now(pages.tz(request)).date().isoformat(), **(values or {})},
        )

    def _review_signatures(request: Request, review: Review) -> list[dict[str, Any]]:
        from theradose.pharmacy import signatures as sig_logic

        with _read(request) as session:
            rows = list(
                session.execute(
                    select(AuditEntryRow)
                    .where(
                        AuditEntryRow.entity == "dosimetry_review",
                        AuditEntryRow.entity_id == review.review_id,
                        AuditEntryRow.action == "sign",
                    )
                    .order_by(AuditEntryRow.seq)
                ).scalars()
            )
        out = []
        for row in rows:
            data = json.loads(row.after_json or "{}")
            sig = sig_logic.Signature(
                signer=data["signer"],
                meaning=data["meaning"],
                signed_at=datetime.fromisoformat(data["signed_at"].replace("Z", "+00:00")),
                record_type="dosimetry_review",
                record_id=review.review_id,
                record_hash=data["record_hash"],
                seal=data["seal"],
            )
            check = sig_logic.verify(sig, review.record(), secret=request.app.state.secret)
            out.append({**data, "valid": check.valid, "seq": row.seq})
        return out

    def _review_approved(request: Request, review: Review) -> bool:
        return any(s["meaning"] == "approved" and s["valid"] for s in _review_signatures(request, review))

    def _planning(protocol_name: str | None, approved: list[dict[str, Any]]) -> dict[str, Any]:
        from theradose.planning import Cycle, RegionDose, TreatmentPlan, load_protocol, plan_next_cycle
        from theradose.planning.nextcycle import organ_history_gy

        if protocol_name is None:
            return {"error": "no protocol known for this patient's radiopharmaceutical"}
        if not approved:
            return {"error": "no approved dosimetry yet: approve a dosimetry review to plan the next cycle"}
        try:
            cycles = []
            for item in sorted(approved, key=lambda r: r["review"].cycle):
                review = item["review"]
                result = read_result(review.folder)
                if result.administered_activity_mbq is None:
                    raise TheradoseError(f"cycle {review.cycle}: doses.json gives no administered activity")
                regions = tuple(
                    RegionDose(
                        name=r.name,
                        dose_gy_per_gbq=r.dose_gy_per_gbq,
                        dose_sigma_gy_per_gbq=r.dose_sigma_gy_per_gbq or 0.0,
                        effective_half_life_h=r.effective_half_life_h,
                        kind="tumour" if r.kind == "tumour" else "organ",
                    )
                    for r in result.regions
                    if r.dose_gy_per_gbq is not None
                )
                cycles.append(Cycle(result.administered_activity_mbq, regions, label=f"cycle {review.cycle}"))
            protocol = load_protocol(protocol_name)
            plan = TreatmentPlan(protocol=protocol, cycles=tuple(cycles))
            result_next = plan_next_cycle(plan)
            charts = []
            for organ in protocol.organs:
                try:
                    history = organ_history_gy(plan, organ)
                except TheradoseError:
                    continue
                charts.append((organ, history))
        except TheradoseError as exc:
            return {"error": str(exc)}
        series = []
        hlines = []
        table = []
        for projection in result_next.organs:
            table.append(projection)
        for organ, history in charts:
            if history is None or history[1] is None:
                continue
            beds = history[1]
            series.append(Series(organ.name, list(range(1, len(beds) + 1)), [float(b) for b in beds]))
            if organ.bed_limit_gy is not None:
                hlines.append(HLine(float(organ.bed_limit_gy.value), f"{organ.name} BED limit"))
        chart = None
        if series:
            chart = line_chart(
                series,
                title="Cumulative BED per organ against its limit",
                x_label="cycle",
                y_label="cumulative BED (Gy)",
                include_zero=True,
                hlines=hlines,
                x_tick_labels={float(i): str(i) for i in range(1, len(cycles) + 1)},
            )
        return {"result": result_next, "organs": table, "chart": chart}

    def _labs(request: Request, me: Principal, pseudonym: str, protocol_name: str | None) -> dict[str, Any]:
        if not allowed(me.role, "labs:read"):
            return {"hidden": True}
        rows = safety_api.list_labs(pseudonym, request, me)
        decision = None
        if rows and protocol_name in ("psma", "dotatate"):
            try:
                decision = safety_api.precycle(
                    pseudonym,
                    request,
                    me,
                    protocol="psma" if protocol_name == "psma" else "dotatate",
                    sex=None,
                    age_y=None,
                    weight_kg=None,
                    previously_reduced_for=None,
                )
            except TheradoseError as exc:
                return {"rows": rows, "error": str(exc)}
        return {"rows": rows, "decision": decision}

    @router.get("/patients/{pseudonym}", response_class=HTMLResponse)
    @guarded
    def patient_page(request: Request, pseudonym: str) -> Response:
        me = pages.user(request, "patients:read")
        return _patient_page(request, me, pseudonym, errors={})

    @router.post("/patients/{pseudonym}/labs", response_class=HTMLResponse)
    @guarded
    async def patient_labs(request: Request, pseudonym: str) -> Response:
        me = pages.user(request, "labs:write")
        form = await pages.form(request, me)
        values = {k: _text(form, k) for k in ("taken_on", "test", "value", "unit", "cycle")}
        if not re.match(r"^PT-[0-9A-HJKMNP-TV-Z]{10}$", pseudonym):
            return pages.render(request, "notfound.html", me, status=404, what=f"patient {pseudonym}")
        row, errors = await run_in_threadpool(
            _run_form,
            lambda: safety_api.LabIn.model_validate(
                {
                    "taken_on": values["taken_on"] or None,
                    "test": values["test"],
                    "value": values["value"] or None,
                    "unit": values["unit"],
                    "cycle": values["cycle"] or None,
                }
            ),
            lambda body: safety_api.record_lab(pseudonym, body, request, me, sex=None),
        )
        if errors:
            if any("not found" in v for v in errors.values()):
                return pages.render(request, "notfound.html", me, status=404, what=f"patient {pseudonym}")
            return _patient_page(request, me, pseudonym, errors=errors, values=values, status=422)
        return redirect(
            f"/ui/patients/{pseudonym}",
            f"{row.test} {row.value:g} {row.unit} recorded: CTCAE grade {row.grade}",
        )

    # --- signatures ---------------------------------------------------------------------------------------
    @router.post("/sign", response_class=HTMLResponse)
    @guarded
    async def sign(request: Request) -> Response:
        me = pages.user(request, "sign")
        form = await pages.form(request, me)
        back = _safe_next(form.get("next"), "/ui/worklist")
        record_type, record_id = _text(form, "record_type"), _text(form, "record_id")
        meaning, password = _text(form, "meaning"), form.get("password")
        key = re.sub(r"[^A-Za-z0-9_-]", "", f"{record_type}-{record_id}-{meaning}")[:120]
        failed = back + ("&" if "?" in back else "?") + "sign_failed=" + key
        if record_type == "dosimetry_review":
            message = await run_in_threadpool(_sign_review, request, me, record_id, meaning, password)
            if message:
                return redirect(failed, f"not signed: {message}", kind="error")
            return redirect(back, f"signed as {meaning}")
        if not record_id.isdigit():
            return redirect(failed, "not signed: unknown record", kind="error")
        _, errors = await run_in_threadpool(
            _run_form,
            lambda: records_api.SignIn.model_validate(
                dict(
                    record_type=record_type,
                    record_id=int(record_id),
                    meaning=meaning,
                    password=password if isinstance(password, str) else "",
                )
            ),
            lambda body: records_api.sign_record(body, request, me),
        )
        if errors:
            return redirect(failed, "not signed: " + next(iter(errors.values())), kind="error")
        return redirect(back, f"signed as {meaning}")

    def _sign_review(request: Request, me: Principal, review_id: str, meaning: str, password: Any) -> str:
        from theradose.pharmacy import signatures as sig_logic
        from theradose.pharmacy.audit import format_time
        from theradose.service import audit_store
        from theradose.service.api._common import utcnow
        from theradose.service.auth import check_password

        review = store.review(review_id)
        if review is None:
            return f"dosimetry review {review_id} not found"
        if meaning not in ("checked", "approved"):
            return "a dosimetry review is signed as checked or approved"
        if me.role not in SIGNATURE_MEANING_ROLES[meaning] or me.role == "pharmacist":
            return f"role {me.role!r} may not sign a dosimetry review as {meaning!r}"
        if not isinstance(password, str) or not check_password(
            request.app.state.hasher, me.password_hash, password
        ):
            return "password does not match: signing needs your own password"
        if any(
            s["signer"] == me.username and s["meaning"] == meaning
            for s in _review_signatures(request, review)
        ):
            return f"{me.username} already signed this review as {meaning}"
        sig = sig_logic.sign(
            review.record(),
            secret=request.app.state.secret,
            signer=me.username,
            meaning=meaning,
            signed_at=utcnow(),
            record_type="dosimetry_review",
            record_id=review.review_id,
        )
        with request.app.state.db.write() as session:
            # checked again inside the write transaction (writers are serialised): no double signature
            for (after,) in session.execute(
                select(AuditEntryRow.after_json).where(
                    AuditEntryRow.entity == "dosimetry_review",
                    AuditEntryRow.entity_id == review.review_id,
                    AuditEntryRow.action == "sign",
                )
            ):
                data = json.loads(after or "{}")
                if data.get("signer") == me.username and data.get("meaning") == meaning:
                    return f"{me.username} already signed this review as {meaning}"
            audit_store.append(
                session,
                actor=me.username,
                at=sig.signed_at,
                action="sign",
                entity="dosimetry_review",
                entity_id=review.review_id,
                after={
                    "signer": sig.signer,
                    "signer_name": me.full_name or me.username,
                    "meaning": sig.meaning,
                    "signed_at": format_time(sig.signed_at),
                    "record_hash": sig.record_hash,
                    "seal": sig.seal,
                },
            )
        return ""

    # --- dosimetry review ---------------------------------------------------------------------------------
    def _dosimetry_page(
        request: Request,
        me: Principal,
        *,
        errors: dict[str, str],
        values: Mapping[str, str],
        status: int = 200,
    ) -> Response:
        rows = [{"review": r, "approved": _review_approved(request, r)} for r in store.reviews()]
        with _read(request) as session:
            patients = [p for (p,) in session.execute(select(Patient.pseudonym).order_by(Patient.id))]
        return pages.render(
            request,
            "dosimetry.html",
            me,
            status=status,
            rows=rows,
            errors=errors,
            values=values,
            patients=patients,
            can_point=bool(store.pipeline_roots),
        )

    @router.get("/dosimetry", response_class=HTMLResponse)
    @guarded
    def dosimetry_page(request: Request) -> Response:
        me = pages.user(request, "dosimetry:read")
        return _dosimetry_page(request, me, errors={}, values={})

    @router.post("/dosimetry", response_class=HTMLResponse)
    @guarded
    async def dosimetry_import(request: Request) -> Response:
        me = pages.user(request, "dosimetry:import")
        form = await pages.form(request, me)
        values = {k: _text(form, k) for k in ("patient", "cycle", "folder")}
        upload = form.get("file")
        zip_bytes = upload.data if isinstance(upload, Upload) else None
        errors: dict[str, str] = {}
        cycle: int | None = None
        if values["cycle"]:
            if values["cycle"].isdigit() and 1 <= int(values["cycle"]) <= 100:
                cycle = int(values["cycle"])
            else:
                errors["cycle"] = "cycle: a whole number from 1 to 100"
        if zip_bytes is None and not values["folder"]:
            errors["file"] = "choose a zip of the output folder, or give the folder"
        if zip_bytes is not None and values["folder"]:
            errors["file"] = "give either a zip or a folder, not both"
        if errors:
            return _dosimetry_page(request, me, errors=errors, values=values, status=422)

        def work() -> tuple[Review | None, dict[str, str]]:
            from theradose.service import audit_store
            from theradose.service.api._common import utcnow

            with _read(request) as session:
                patient = session.execute(
                    select(Patient).where(Patient.pseudonym == values["patient"])
                ).scalar_one_or_none()
                if patient is None:
                    return None, {"patient": f"patient {values['patient'] or '(none)'} not found"}
                # images may carry the record number as Patient ID: compared here, never shown
                mrns = [
                    mrn
                    for (mrn,) in session.execute(
                        select(PatientIdentity.mrn).where(PatientIdentity.patient_id == patient.id)
                    )
                ]
            try:
                files, _result, chosen = store.check_import(
                    zip_bytes=zip_bytes,
                    folder=values["folder"] or None,
                    patient=values["patient"],
                    other_patient_ids=mrns,
                    cycle=cycle,
                )
            except TheradoseError as exc:
                return None, _errors_from_exception(exc, "file")
            now = utcnow()
            try:
                review = store.save_review(
                    files,
                    patient=values["patient"],
                    cycle=chosen,
                    source=("upload" if zip_bytes is not None else values["folder"]),
                    imported_by=me.username,
                    imported_at=now,
                )
            except TheradoseError as exc:
                return None, _errors_from_exception(exc, "file")
            try:
                with request.app.state.db.write() as session:
                    audit_store.append(
                        session,
                        actor=me.username,
                        at=now,
                        action="create",
                        entity="dosimetry_review",
                        entity_id=review.review_id,
                        after=review.record() | {"source": review.source},
                    )
            except Exception:
                store.discard_review(review.review_id)
                raise
            return review, {}

        review, errors = await run_in_threadpool(work)
        if errors or review is None:
            return _dosimetry_page(request, me, errors=errors, values=values, status=422)
        return redirect(f"/ui/dosimetry/{review.review_id}", "output imported: review the doses, then sign")

    @router.get("/dosimetry/{review_id}", response_class=HTMLResponse)
    @guarded
    def dosimetry_review(request: Request, review_id: str) -> Response:
        me = pages.user(request, "dosimetry:read")
        review = store.review(review_id)
        if review is None:
            return pages.render(
                request, "notfound.html", me, status=404, what=f"dosimetry review {review_id}"
            )
        try:
            result = read_result(review.folder)
            error = None
        except TheradoseError as exc:
            result, error = None, str(exc)
        chart = None
        if result and result.dvhs:
            chart = line_chart(
                [
                    Series(
                        d.region,
                        [float(x) for x in d.dose_gy],
                        [100 * f for f in d.cumulative_fraction],
                        markers=False,
                    )
                    for d in result.dvhs
                ],
                title="Cumulative dose-volume histograms",
                x_label="absorbed dose (Gy)",
                y_label="volume receiving at least this dose (%)",
            )
        signatures = _review_signatures(request, review)
        return pages.render(
            request,
            "review.html",
            me,
            review=review,
            result=result,
            error=error,
            chart=chart,
            signatures=signatures,
            has_report=(review.folder / "report.html").is_file(),
            approved=any(s["meaning"] == "approved" and s["valid"] for s in signatures),
        )

    @router.get("/dosimetry/{review_id}/report")
    @guarded
    def dosimetry_report(request: Request, review_id: str) -> Response:
        me = pages.user(request, "dosimetry:read")
        review = store.review(review_id)
        if review is None or not (review.folder / "report.html").is_file():
            return pages.render(request, "notfound.html", me, status=404, what="report")
        return Response(
            (review.folder / "report.html").read_bytes(),
            media_type="text/html",
            headers={
                # the pipeline's report is shown as a document without scripts or network access
                "Content-Security-Policy": (
                    "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'"
                ),
                "X-Frame-Options": "SAMEORIGIN",
            },
        )

    # --- audit --------------------------------------------------------------------------------------------
    def _audit_page(request: Request, me: Principal, *, verification: Any = None) -> Response:
        entity = request.query_params.get("entity") or None
        if entity is not None and not re.match(r"^[a-z_]{1,40}$", entity):
            entity = None
        entries = records_api.list_audit(request, me, entity=entity, entity_id=None, limit=200, offset=0)
        return pages.render(
            request,
            "audit.html",
            me,
            entries=entries,
            entity=entity,
            verification=verification,
            total=_audit_count(request),
        )

    @router.get("/audit", response_class=HTMLResponse)
    @guarded
    def audit_page(request: Request) -> Response:
        me = pages.user(request, "audit:read")
        return _audit_page(request, me)

    @router.post("/audit/verify", response_class=HTMLResponse)
    @guarded
    async def audit_verify(request: Request) -> Response:
        me = pages.user(request, "audit:read")
        await pages.form(request, me)
        verification = await run_in_threadpool(records_api.verify_audit, request, me)
        return _audit_page(request, me, verification=verification)

    return router
