"""Dispensing a patient dose: the directive chosen on the worklist, the batch of its product and the
calibrator pre-selected when only one fits, the live decay-corrected activity of each batch."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from sqlalchemy.orm import Session

from theradose.pharmacy.decay import half_life_h
from theradose.service.auth import Principal, client_address
from theradose.service.operations import calibrators, dispensing, idempotency, patients, precycle, worklist
from theradose.service.web.views import base


def _choices(session: Session, me: Principal) -> dict[str, Any]:
    released, rxs, fits = worklist.dispense_choices(session, me)
    devices = calibrators.list_calibrators(session, me)
    decisions = {}
    for rx, pseudonym in rxs:
        row = precycle.current_decision(session, rx.patient_id, rx.cycle)
        if row is not None:
            decisions[rx.id] = precycle.decision_out(row, pseudonym)
    return {"released": released, "rxs": rxs, "fits": fits, "calibrators": devices, "decisions": decisions}


def _page(
    request: Request, me: Principal, *, errors: dict[str, str], values: Mapping[str, str], status: int = 200
) -> Response:
    with request.app.state.db.write() as session:
        ctx = _choices(session, me)
        rx_param = values.get("prescription_id") or request.query_params.get("prescription") or ""
        chosen = next((rx for rx, _p in ctx["rxs"] if str(rx.id) == rx_param), None)
        names = patients.identities(
            session, me, [p for _rx, p in ctx["rxs"]], view="dispense", audit=request.method == "GET"
        )
        session.expunge_all()
    batches = [
        {
            "row": b,
            "half_life_h": half_life_h(b.nuclide),
            "reference_time": b.reference_time.isoformat(),
            "concentration_ref": b.activity_mbq / b.volume_ml,
        }
        for b in ctx["released"]
    ]
    tz = base.site_tz(request)
    defaults = {"planned_time": (datetime.now(tz) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")}
    usable = [c for c in ctx["calibrators"] if not c.blocked]
    if len(usable) == 1:
        defaults["calibrator_id"] = str(usable[0].id)
    if chosen is not None:
        defaults["prescription_id"] = str(chosen.id)
        defaults["activity_mbq"] = f"{chosen.prescribed_activity_mbq:g}"
        fitting = ctx["fits"].get(chosen.id, [])
        if len(fitting) == 1:
            defaults["batch_id"] = str(fitting[0])
    offset = datetime.now(tz).utcoffset()
    return base.render(
        request,
        "dispense.html",
        me,
        utc_offset_min=0.0 if offset is None else offset.total_seconds() / 60,
        status=status,
        batches=batches,
        prescriptions=ctx["rxs"],
        fits=ctx["fits"],
        calibrators=ctx["calibrators"],
        decisions=ctx["decisions"],
        chosen=chosen,
        names=names,
        errors=errors,
        values={**defaults, **{k: v for k, v in values.items() if v}},
    )


def dispense_page(request: Request) -> Response:
    """``GET /ui/dispense[?prescription=ID]``."""
    me = base.require_user(request, "dispense")
    return _page(request, me, errors={}, values={})


async def dispense_submit(request: Request) -> Response:
    """``POST /ui/dispense`` (a resubmitted form writes nothing: form token)."""
    me = base.require_user(request, "dispense")
    form = await base.checked_form(request, me)
    keys = (
        "batch_id",
        "prescription_id",
        "calibrator_id",
        "activity_mbq",
        "planned_time",
        "override_reason",
        "product_override_reason",
    )
    values = {k: base.form_text(form, k) for k in keys}
    errors: dict[str, str] = {}
    if not values["batch_id"].isdigit():
        errors["batch_id"] = "choose a released batch"
    if not values["prescription_id"].isdigit():
        errors["prescription_id"] = "choose the patient's written directive"
    if not values["calibrator_id"].isdigit():
        errors["calibrator_id"] = "choose the dose calibrator used for the assay"
    planned = base.parse_local(request, values["planned_time"])
    if planned is None:
        errors["planned_time"] = "enter the planned administration time"
    if errors:
        return _page(request, me, errors=errors, values=values, status=422)
    key = base.form_key(form)
    keys = request.app.state.keys

    def work(body: dispensing.DispenseIn) -> tuple[dispensing.DispensingOut, bool]:
        batch_id = int(values["batch_id"])
        with request.app.state.db.write() as session:
            return idempotency.run_once(
                session,
                me,
                key,
                "create_dispensing",
                idempotency.request_hash("create_dispensing", batch_id, body),
                dispensing.DispensingOut,
                lambda: dispensing.create_dispensing(session, me, batch_id, body, keys=keys),
            )

    result, errors = await run_in_threadpool(
        base.run_form,
        lambda: dispensing.DispenseIn.model_validate(
            {
                "prescription_id": int(values["prescription_id"]),
                "calibrator_id": int(values["calibrator_id"]),
                "activity_mbq": values["activity_mbq"] or None,
                "planned_time": planned,
                "override_reason": values["override_reason"] or None,
                "product_override_reason": values["product_override_reason"] or None,
            }
        ),
        work,
    )
    if errors:
        if "_form" in errors and "batch" in errors["_form"] and "not found" in errors["_form"]:
            errors = {"batch_id": errors.pop("_form")}
        return _page(request, me, errors=errors, values=values, status=422)
    row, replayed = result
    if replayed:
        return base.redirect(
            "/ui/worklist", f"this form was sent before: dispensing D{row.id} already recorded"
        )
    return base.redirect(
        "/ui/worklist",
        f"dispensed D{row.id}: {row.volume_ml:.3f} mL = {row.activity_at_planned_mbq:,.0f} MBq at the "
        f"planned time for {row.patient} — print the label",
    )


async def void_submit(request: Request, dispensing_id: int) -> Response:
    """``POST /ui/dispensings/{id}/void``: reason and e-signature."""
    me = base.require_user(request, "dispense")
    form = await base.checked_form(request, me)
    reason, password = base.form_text(form, "reason"), form.get("password")
    back = base.safe_next(form.get("next"), "/ui/worklist")
    from theradose.service.operations import signatures

    def work(body: dispensing.VoidDispensingIn) -> dispensing.DispensingOut:
        state = request.app.state
        signer = signatures.reauthenticate(
            me, "voided", body.password, auth=state.auth, client=client_address(request)
        )
        return base.write(request, dispensing.void_dispensing, signer, dispensing_id, body, keys=state.keys)

    _, errors = await run_in_threadpool(
        base.run_form,
        lambda: dispensing.VoidDispensingIn.model_validate(
            {"reason": reason, "password": password if isinstance(password, str) else ""}
        ),
        work,
    )
    if errors:
        return base.redirect(back, "not voided: " + next(iter(errors.values())), kind="error")
    return base.redirect(back, f"dispensing D{dispensing_id} voided: the directive can be dispensed again")


def label(request: Request, dispensing_id: int) -> Response:
    """``GET /ui/dispensings/{id}/label``: the syringe label (PDF)."""
    from theradose.service.errors import ApiError
    from theradose.service.operations import labels

    me = base.require_user(request, "batches:read")
    try:
        fields = base.write(
            request,
            labels.label_text,
            me,
            dispensing_id,
            site_timezone=request.app.state.settings.site_timezone,
        )
    except ApiError:
        return base.not_found(request, me, f"dispensing {dispensing_id}")
    return Response(
        labels.label_pdf(fields),
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="label_D{dispensing_id}.pdf"'},
    )
