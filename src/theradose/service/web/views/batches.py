"""Batches: receipt into quarantine, QC results, release."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from sqlalchemy.orm import Session

from theradose.service.auth import Principal
from theradose.service.keys import KeyRing
from theradose.service.operations import batches, signatures
from theradose.service.permissions import allowed
from theradose.service.web.views import base

_RECEIPT_FIELDS = ("product", "nuclide", "lot", "activity_mbq", "volume_ml", "reference_time", "expiry_time")


def _list_page(
    request: Request, me: Principal, *, errors: dict[str, str], values: Mapping[str, str], status: int = 200
) -> Response:
    listed = base.read(request, batches.list_batches, me, limit=100, with_qc=False)
    now = datetime.now(base.site_tz(request))
    defaults = {
        "reference_time": now.strftime("%Y-%m-%dT%H:%M"),
        "expiry_time": (now + timedelta(hours=72)).strftime("%Y-%m-%dT%H:%M"),
        "nuclide": "Lu-177",
    }
    return base.render(
        request,
        "batches.html",
        me,
        status=status,
        batches=listed,
        errors=errors,
        values={**defaults, **values},
    )


def batches_page(request: Request) -> Response:
    """``GET /ui/batches``."""
    me = base.require_user(request, "batches:read")
    return _list_page(request, me, errors={}, values={})


async def receive_batch(request: Request) -> Response:
    """``POST /ui/batches``: receive a batch (quarantine)."""
    me = base.require_user(request, "batches:write")
    form = await base.checked_form(request, me)
    values = {k: base.form_text(form, k) for k in _RECEIPT_FIELDS}
    time_errors = {
        k: "enter a date and time"
        for k in ("reference_time", "expiry_time")
        if base.parse_local(request, values[k]) is None
    }
    if time_errors:
        return _list_page(request, me, errors=time_errors, values=values, status=422)
    row, errors = await run_in_threadpool(
        base.run_form,
        lambda: batches.BatchIn.model_validate(
            {
                "product": values["product"],
                "nuclide": values["nuclide"],
                "lot": values["lot"],
                "activity_mbq": values["activity_mbq"] or None,
                "volume_ml": values["volume_ml"] or None,
                "reference_time": base.parse_local(request, values["reference_time"]),
                "expiry_time": base.parse_local(request, values["expiry_time"]),
            }
        ),
        lambda body: base.write(request, batches.create_batch, me, body),
    )
    if errors:
        return _list_page(request, me, errors=errors, values=values, status=422)
    return base.redirect(f"/ui/batches/{row.id}", f"batch {row.lot} received (quarantine): record QC next")


def _detail(
    session: Session, me: Principal, batch_id: int, *, keys: KeyRing
) -> tuple[object, list[object]] | None:
    batch = batches.find_batch(session, me, batch_id)
    if batch is None:
        return None
    sigs = (
        signatures.list_signatures(session, me, "batch", batch_id, keys=keys)
        if allowed(me.role, "signatures:read")
        else []
    )
    return batch, list(sigs)


def _detail_page(
    request: Request,
    me: Principal,
    batch_id: int,
    *,
    errors: dict[str, str],
    values: Mapping[str, str],
    status: int = 200,
) -> Response:
    found = base.read(request, _detail, me, batch_id, keys=request.app.state.keys)
    if found is None:
        return base.not_found(request, me, f"batch {batch_id}")
    batch, sigs = found
    return base.render(
        request,
        "batch.html",
        me,
        status=status,
        batch=batch,
        errors=errors,
        values=values,
        signatures=sigs,
        required_qc=request.app.state.settings.required_qc,
    )


def batch_page(request: Request, batch_id: int) -> Response:
    """``GET /ui/batches/{id}``."""
    me = base.require_user(request, "batches:read")
    return _detail_page(request, me, batch_id, errors={}, values={})


async def record_qc(request: Request, batch_id: int) -> Response:
    """``POST /ui/batches/{id}/qc``."""
    me = base.require_user(request, "batches:write")
    form = await base.checked_form(request, me)
    values = {
        k: base.form_text(form, k) for k in ("test", "value", "unit", "lower_limit", "upper_limit", "reason")
    }
    _, errors = await run_in_threadpool(
        base.run_form,
        lambda: batches.QcIn.model_validate(
            {
                "test": values["test"],
                "value": values["value"] or None,
                "unit": values["unit"],
                "lower_limit": values["lower_limit"] or None,
                "upper_limit": values["upper_limit"] or None,
                "reason": values["reason"] or None,
            }
        ),
        lambda body: base.write(request, batches.add_qc, me, batch_id, body),
    )
    if errors:
        if "test" not in errors and "_form" in errors and "not found" in errors["_form"]:
            return base.not_found(request, me, f"batch {batch_id}")
        return _detail_page(request, me, batch_id, errors=errors, values=values, status=422)
    return base.redirect(f"/ui/batches/{batch_id}", f"QC result {values['test']} recorded")


async def release(request: Request, batch_id: int) -> Response:
    """``POST /ui/batches/{id}/release``."""
    me = base.require_user(request, "batches:write")
    form = await base.checked_form(request, me)
    reason = base.form_opt(form, "release_reason")
    required_qc = request.app.state.settings.required_qc
    _, errors = await run_in_threadpool(
        base.run_form,
        lambda: batches.ReleaseIn.model_validate({"reason": reason}),
        lambda body: base.write(request, batches.release_batch, me, batch_id, body, required_qc=required_qc),
    )
    if errors:
        errors = {"release": next(iter(errors.values()))}
        return _detail_page(request, me, batch_id, errors=errors, values={}, status=409)
    return base.redirect(f"/ui/batches/{batch_id}", "batch released")
