"""Bedside administration: syringe before and after injection, net activity and the dosage check."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from theradose.errors import TheradoseError
from theradose.pharmacy.administration import ROUTES
from theradose.service.auth import Principal
from theradose.service.errors import ApiError
from theradose.service.keys import KeyRing
from theradose.service.operations import administration, signatures
from theradose.service.permissions import allowed
from theradose.service.web.views import base

_TIME_FIELDS = ("syringe_measured_at", "residual_measured_at", "injection_time")


def _context(session: Session, me: Principal, dispensing_id: int, *, keys: KeyRing) -> dict[str, Any] | None:
    ctx = administration.administration_context(session, me, dispensing_id)
    if ctx is None:
        return None
    adm = ctx["adm"]
    ctx["signatures"] = (
        signatures.list_signatures(session, me, "administration", adm.id, keys=keys)
        if adm is not None and allowed(me.role, "signatures:read")
        else []
    )
    return ctx


def _page(
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
    ctx = base.read(request, _context, me, dispensing_id, keys=request.app.state.keys)
    if ctx is None:
        return base.not_found(request, me, f"dispensing {dispensing_id}")
    now_local = base.now_input(request)
    defaults = {k: now_local for k in _TIME_FIELDS}
    defaults["route"] = ctx["rx"].route if ctx["rx"] else "intravenous"
    return base.render(
        request,
        "administer.html",
        me,
        status=status,
        errors=errors,
        values={**defaults, **values},
        check=check,
        net_mbq=net_mbq,
        routes=ROUTES,
        **ctx,
    )


def administer_page(request: Request, dispensing_id: int) -> Response:
    """``GET /ui/administer/{dispensing_id}``."""
    me = base.require_user(request, "administrations:read")
    return _page(request, me, dispensing_id, errors={}, values={})


async def administer_submit(request: Request, dispensing_id: int) -> Response:
    """``POST /ui/administer/{dispensing_id}``: check the dosage, then record."""
    me = base.require_user(request, "administer")
    form = await base.checked_form(request, me)
    keys = ("syringe_activity_mbq", "residual_activity_mbq", "route", *_TIME_FIELDS)
    values = {k: base.form_text(form, k) for k in keys}
    times = {k: base.parse_local(request, values[k]) for k in _TIME_FIELDS}
    errors = {k: "enter a date and time" for k, v in times.items() if v is None}
    if errors:
        return _page(request, me, dispensing_id, errors=errors, values=values, status=422)

    def work() -> tuple[Any, dict[str, str], Any, float | None]:
        try:
            body = administration.AdministrationIn.model_validate(
                {
                    "syringe_activity_mbq": values["syringe_activity_mbq"] or None,
                    "residual_activity_mbq": values["residual_activity_mbq"] or "0",
                    "route": values["route"] or "intravenous",
                    **times,
                }
            )
        except ValidationError as exc:
            return None, base.errors_from_validation(exc), None, None
        try:
            net, check = base.read(request, administration.dosage_preview, me, dispensing_id, body)
        except ApiError as exc:
            return None, base.errors_from_exception(exc), None, None
        except TheradoseError as exc:
            return None, base.errors_from_exception(exc, "syringe_activity_mbq"), None, None
        if not check.ok:
            return None, {"syringe_activity_mbq": "STOP: " + check.message}, check, net
        try:
            row = base.write(request, administration.create_administration, me, dispensing_id, body)
        except (TheradoseError, ApiError) as exc:
            return None, base.errors_from_exception(exc), check, net
        return row, {}, check, net

    row, errors, check, net = await run_in_threadpool(work)
    if errors:
        status = 409 if check is not None and not check.ok else 422
        return _page(
            request, me, dispensing_id, errors=errors, values=values, status=status, check=check, net_mbq=net
        )
    return base.redirect(
        f"/ui/administer/{dispensing_id}",
        f"administration recorded: net {row.net_activity_mbq:,.0f} MBq ({check.deviation_percent:+.1f} % "
        "from the prescription) — sign it as administered",
    )
