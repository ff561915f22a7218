"""Bedside administration: the patient's identity and two identifiers confirmed, the syringe assay
against the directive before injection, then the injection and residual (net activity compared again);
a deviation is recorded with its reason as a possible medical event, never refused."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from sqlalchemy.orm import Session

from theradose.pharmacy.administration import ROUTES
from theradose.service.auth import Principal
from theradose.service.keys import KeyRing
from theradose.service.operations import (
    administration,
    calibrators,
    idempotency,
    patients,
    precycle,
    signatures,
)
from theradose.service.permissions import allowed
from theradose.service.web.views import base

_TIME_FIELDS = ("syringe_measured_at", "residual_measured_at", "injection_time")
_FIELDS = (
    "syringe_activity_mbq",
    "residual_activity_mbq",
    "route",
    "calibrator_id",
    "confirm_mrn",
    "confirm_birth_date",
    "deviation_reason",
    "no_residual_measured",
    *_TIME_FIELDS,
)


def _context(
    session: Session, me: Principal, dispensing_id: int, *, keys: KeyRing, with_identity: bool
) -> dict[str, Any] | None:
    ctx = administration.administration_context(session, me, dispensing_id)
    if ctx is None:
        return None
    adm = ctx["adm"]
    ctx["signatures"] = (
        signatures.list_signatures(session, me, "administration", adm.id, keys=keys)
        if adm is not None and allowed(me.role, "signatures:read")
        else []
    )
    ctx["adm_out"] = (
        administration.administration_out(adm, ctx["patient"].pseudonym, ctx["rx"].prescribed_activity_mbq)
        if adm is not None
        else None
    )
    decision = precycle.current_decision(session, ctx["rx"].patient_id, ctx["rx"].cycle)
    ctx["decision"] = None if decision is None else precycle.decision_out(decision, ctx["patient"].pseudonym)
    ctx["calibrators"] = calibrators.list_calibrators(session, me)
    pseudonym = ctx["patient"].pseudonym
    names = patients.identities(session, me, [pseudonym], view="administer", audit=with_identity)
    ctx["identity"] = names.get(ctx["patient"].pseudonym)
    return ctx


def _page(
    request: Request,
    me: Principal,
    dispensing_id: int,
    *,
    errors: dict[str, str],
    values: Mapping[str, str],
    status: int = 200,
    assay: Any = None,
) -> Response:
    with request.app.state.db.write() as session:
        ctx = _context(
            session, me, dispensing_id, keys=request.app.state.keys, with_identity=request.method == "GET"
        )
        session.expunge_all()
    if ctx is None:
        return base.not_found(request, me, f"dispensing {dispensing_id}")
    now_local = base.now_input(request)
    defaults = {k: now_local for k in _TIME_FIELDS}
    defaults["route"] = ctx["rx"].route if ctx["rx"] else "intravenous"
    usable = [c for c in ctx["calibrators"] if not c.blocked]
    if len(usable) == 1:
        defaults["calibrator_id"] = str(usable[0].id)
    return base.render(
        request,
        "administer.html",
        me,
        status=status,
        errors=errors,
        values={**defaults, **{k: v for k, v in values.items() if v}},
        assay=assay,
        routes=ROUTES,
        **ctx,
    )


def administer_page(request: Request, dispensing_id: int) -> Response:
    """``GET /ui/administer/{dispensing_id}``."""
    me = base.require_user(request, "administrations:read")
    return _page(request, me, dispensing_id, errors={}, values={})


async def administer_submit(request: Request, dispensing_id: int) -> Response:
    """``POST /ui/administer/{dispensing_id}``: ``step=assay`` checks the syringe against the directive
    (nothing written); ``step=record`` records the administration."""
    me = base.require_user(request, "administer")
    form = await base.checked_form(request, me)
    values = {k: base.form_text(form, k) for k in _FIELDS}
    step = base.form_text(form, "step") or "record"
    times = {k: base.parse_local(request, values[k]) for k in _TIME_FIELDS}
    needed = (
        ("syringe_measured_at", "injection_time")
        if step == "assay" or values["no_residual_measured"]
        else _TIME_FIELDS
    )
    errors = {k: "enter a date and time" for k in needed if times[k] is None}
    if errors:
        return _page(request, me, dispensing_id, errors=errors, values=values, status=422)
    keys = request.app.state.keys
    if step == "assay":
        assay, errors = await run_in_threadpool(
            base.run_form,
            lambda: administration.AssayIn.model_validate(
                {
                    "syringe_activity_mbq": values["syringe_activity_mbq"] or None,
                    "syringe_measured_at": times["syringe_measured_at"],
                    "injection_time": times["injection_time"],
                }
            ),
            lambda body: base.read(request, administration.assay_preview, me, dispensing_id, body, keys=keys),
        )
        return _page(
            request,
            me,
            dispensing_id,
            errors=errors,
            values=values,
            status=422 if errors else 200,
            assay=assay,
        )
    key = base.form_key(form)

    def work(body: administration.AdministrationIn) -> tuple[administration.AdministrationOut, bool]:
        with request.app.state.db.write() as session:
            return idempotency.run_once(
                session,
                me,
                key,
                "create_administration",
                idempotency.request_hash("create_administration", dispensing_id, body),
                administration.AdministrationOut,
                lambda: administration.create_administration(session, me, dispensing_id, body, keys=keys),
            )

    no_residual = bool(values["no_residual_measured"])
    result, errors = await run_in_threadpool(
        base.run_form,
        lambda: administration.AdministrationIn.model_validate(
            {
                "syringe_activity_mbq": values["syringe_activity_mbq"] or None,
                "syringe_measured_at": times["syringe_measured_at"],
                "residual_activity_mbq": values["residual_activity_mbq"] or None,
                "residual_measured_at": None if no_residual else times["residual_measured_at"],
                "no_residual_measured": no_residual,
                "injection_time": times["injection_time"],
                "route": values["route"] or "intravenous",
                "calibrator_id": values["calibrator_id"] or None,
                "confirm_mrn": values["confirm_mrn"] or None,
                "confirm_birth_date": values["confirm_birth_date"] or None,
                "deviation_reason": values["deviation_reason"] or None,
            }
        ),
        work,
    )
    if errors:
        status = 409 if any(k.startswith("confirm_") for k in errors) else 422
        return _page(request, me, dispensing_id, errors=errors, values=values, status=status)
    row, replayed = result
    if replayed:
        return base.redirect(
            f"/ui/administer/{dispensing_id}", "this form was sent before: nothing new recorded"
        )
    if row.medical_event_possible:
        return base.redirect(
            f"/ui/administer/{dispensing_id}",
            f"administration recorded: net {row.net_activity_mbq:,.0f} MBq ({row.deviation_fraction:+.1%}) — "
            "POSSIBLE MEDICAL EVENT recorded with your reason: follow the notification steps",
            kind="error",
        )
    return base.redirect(
        f"/ui/administer/{dispensing_id}",
        f"administration recorded: net {row.net_activity_mbq:,.0f} MBq "
        f"({row.deviation_fraction * 100:+.1f} % from the prescription) — sign it as administered",
    )
