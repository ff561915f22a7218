"""Dispensing a patient dose, with the live decay-corrected activity of each released batch."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from theradose.pharmacy.decay import half_life_h
from theradose.service.auth import Principal
from theradose.service.operations import dispensing, worklist
from theradose.service.web.views import base


def _page(
    request: Request, me: Principal, *, errors: dict[str, str], values: Mapping[str, str], status: int = 200
) -> Response:
    released, rxs = base.read(request, worklist.dispense_choices, me)
    batches = [
        {
            "row": b,
            "half_life_h": half_life_h(b.nuclide),
            "reference_time": b.reference_time.isoformat(),
            "concentration_ref": b.activity_mbq / b.volume_ml,
        }
        for b in released
    ]
    tz = base.site_tz(request)
    defaults = {"planned_time": (datetime.now(tz) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")}
    offset = datetime.now(tz).utcoffset()
    utc_offset_min = 0.0 if offset is None else offset.total_seconds() / 60
    rx_param = request.query_params.get("prescription")
    if rx_param:
        defaults["prescription_id"] = rx_param
        for rx, _p in rxs:
            if str(rx.id) == rx_param:
                defaults["activity_mbq"] = f"{rx.prescribed_activity_mbq:g}"
    return base.render(
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


def dispense_page(request: Request) -> Response:
    """``GET /ui/dispense[?prescription=ID]``."""
    me = base.require_user(request, "dispense")
    return _page(request, me, errors={}, values={})


async def dispense_submit(request: Request) -> Response:
    """``POST /ui/dispense``."""
    me = base.require_user(request, "dispense")
    form = await base.checked_form(request, me)
    values = {
        k: base.form_text(form, k)
        for k in ("batch_id", "prescription_id", "activity_mbq", "planned_time", "override_reason")
    }
    errors: dict[str, str] = {}
    if not values["batch_id"].isdigit():
        errors["batch_id"] = "choose a released batch"
    if not values["prescription_id"].isdigit():
        errors["prescription_id"] = "choose the patient's prescription"
    planned = base.parse_local(request, values["planned_time"])
    if planned is None:
        errors["planned_time"] = "enter the planned administration time"
    if errors:
        return _page(request, me, errors=errors, values=values, status=422)
    row, errors = await run_in_threadpool(
        base.run_form,
        lambda: dispensing.DispenseIn.model_validate(
            {
                "prescription_id": int(values["prescription_id"]),
                "activity_mbq": values["activity_mbq"] or None,
                "planned_time": planned,
                "override_reason": values["override_reason"] or None,
            }
        ),
        lambda body: base.write(request, dispensing.create_dispensing, me, int(values["batch_id"]), body),
    )
    if errors:
        if "_form" in errors and "batch" in errors["_form"] and "not found" in errors["_form"]:
            errors = {"batch_id": errors.pop("_form")}
        if "_form" in errors and "prescription" in errors["_form"]:
            errors = {"prescription_id": errors.pop("_form")}
        return _page(request, me, errors=errors, values=values, status=422)
    return base.redirect(
        "/ui/worklist",
        f"dispensed {row.volume_ml:.3f} mL = {row.activity_at_planned_mbq:,.0f} MBq at the planned time "
        f"for {row.patient}",
    )
