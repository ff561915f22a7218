"""Written directives on the patient page: write (draft), edit, cancel; signing is the e-signature
dialog (meaning approved). Pre-cycle DELAY/STOP override by a physician (reason and e-signature)."""

from __future__ import annotations

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from theradose.service.auth import client_address
from theradose.service.operations import directive_plans, idempotency, precycle, prescriptions, signatures
from theradose.service.web.views import base

_FIELDS = ("radiopharmaceutical", "prescribed_activity_mbq", "route", "cycle", "planned_date", "range_reason")


async def write_directive(request: Request, pseudonym: str) -> Response:
    """``POST /ui/patients/{pseudonym}/directives``: a draft directive for the next cycle."""
    me = base.require_user(request, "prescriptions:write")
    form = await base.checked_form(request, me)
    values = {k: base.form_text(form, k) for k in _FIELDS}
    key = base.form_key(form)
    back = f"/ui/patients/{pseudonym}"

    def work(body: prescriptions.PrescriptionIn) -> tuple[prescriptions.PrescriptionOut, bool]:
        with request.app.state.db.write() as session:
            return idempotency.run_once(
                session,
                me,
                key,
                "create_prescription",
                idempotency.request_hash("create_prescription", body),
                prescriptions.PrescriptionOut,
                lambda: prescriptions.create_prescription(session, me, body),
            )

    result, errors = await run_in_threadpool(
        base.run_form,
        lambda: prescriptions.PrescriptionIn.model_validate(
            {
                "patient": pseudonym,
                "radiopharmaceutical": values["radiopharmaceutical"],
                "prescribed_activity_mbq": values["prescribed_activity_mbq"] or None,
                "route": values["route"] or "intravenous",
                "cycle": values["cycle"] or None,
                "planned_date": values["planned_date"] or None,
                "range_reason": values["range_reason"] or None,
            }
        ),
        work,
    )
    if errors:
        return base.redirect(
            back + "#directive", "directive not written: " + "; ".join(errors.values()), kind="error"
        )
    row, _ = result
    return base.redirect(
        back, f"directive for cycle {row.cycle} written as a draft: sign it to release it for dispensing"
    )


async def cancel_directive(request: Request, prescription_id: int) -> Response:
    """``POST /ui/directives/{id}/cancel``: with a reason."""
    me = base.require_user(request, "prescriptions:write")
    form = await base.checked_form(request, me)
    back = base.safe_next(form.get("next"), "/ui/worklist")
    reason = base.form_text(form, "reason")
    _, errors = await run_in_threadpool(
        base.run_form,
        lambda: prescriptions.CancelIn.model_validate({"reason": reason}),
        lambda body: base.write(request, prescriptions.cancel_prescription, me, prescription_id, body),
    )
    if errors:
        return base.redirect(back, "not cancelled: " + next(iter(errors.values())), kind="error")
    return base.redirect(back, f"directive {prescription_id} cancelled")


async def override_precycle(request: Request, pseudonym: str, cycle: int) -> Response:
    """``POST /ui/patients/{pseudonym}/precycle/{cycle}/override``: physician, reason, e-signature."""
    me = base.require_user(request, "precycle:override")
    form = await base.checked_form(request, me)
    back = f"/ui/patients/{pseudonym}"
    reason, password = base.form_text(form, "reason"), form.get("password")
    state = request.app.state

    def work(body: precycle.OverrideIn) -> precycle.DecisionOut:
        signer = signatures.reauthenticate(
            me, "overridden", body.password, auth=state.auth, client=client_address(request)
        )
        return base.write(request, precycle.override, signer, pseudonym, cycle, body, keys=state.keys)

    _, errors = await run_in_threadpool(
        base.run_form,
        lambda: precycle.OverrideIn.model_validate(
            {"reason": reason, "password": password if isinstance(password, str) else ""}
        ),
        work,
    )
    if errors:
        return base.redirect(back, "not overridden: " + next(iter(errors.values())), kind="error")
    return base.redirect(back, f"cycle {cycle}: pre-cycle decision overridden (signed)")


async def draft_from_plan(request: Request, pseudonym: str) -> Response:
    """``POST /ui/patients/{pseudonym}/next-cycle-directive``: the next cycle's directive drafted from the
    plan of the approved dosimetry (physician); it is a draft until signed."""
    me = base.require_user(request, "prescriptions:write")
    await base.checked_form(request, me)
    back = f"/ui/patients/{pseudonym}"
    state = request.app.state

    def work() -> directive_plans.DraftOut:
        return base.write(
            request,
            directive_plans.draft_next_directive,
            me,
            pseudonym,
            store=base.state(request).store,
            keys=state.keys,
            site_timezone=state.settings.site_timezone,
        )

    result, errors = await run_in_threadpool(base.run_form, lambda: None, lambda _body: work())
    if errors:
        return base.redirect(back + "#directive", "not drafted: " + "; ".join(errors.values()), kind="error")
    return base.redirect(
        back,
        f"draft directive written from the plan: {result.plan.summary}; review it, edit it if needed and "
        "sign it to release it for dispensing",
    )


async def edit_directive(request: Request, prescription_id: int) -> Response:
    """``POST /ui/directives/{id}/edit``: change a directive's activity or date, with a reason (a signed one
    returns to draft and must be signed again)."""
    me = base.require_user(request, "prescriptions:write")
    form = await base.checked_form(request, me)
    back = base.safe_next(form.get("next"), "/ui/worklist")
    values = {k: base.form_text(form, k) for k in ("prescribed_activity_mbq", "planned_date", "range_reason")}
    reason = base.form_text(form, "reason")
    _, errors = await run_in_threadpool(
        base.run_form,
        lambda: prescriptions.PrescriptionEdit.model_validate(
            {**{k: v for k, v in values.items() if v}, "reason": reason}
        ),
        lambda body: base.write(request, prescriptions.edit_prescription, me, prescription_id, body),
    )
    if errors:
        named = (m if f == "_form" else f"{f.replace('_', ' ')}: {m}" for f, m in errors.items())
        return base.redirect(back, "not changed: " + "; ".join(named), kind="error")
    return base.redirect(back, f"directive {prescription_id} changed: sign it to release it for dispensing")
