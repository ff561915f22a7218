"""Batches: receipt into quarantine, QC graded against the product's specification, release by
e-signature (four-eyes), reject or void with a reason; the specifications in force."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from sqlalchemy.orm import Session

from theradose.products import load_products
from theradose.service.auth import Principal, client_address
from theradose.service.keys import KeyRing
from theradose.service.models import ProductSpecification
from theradose.service.operations import batches, idempotency, signatures, specifications
from theradose.service.permissions import allowed
from theradose.service.web.views import base

_RECEIPT_FIELDS = (
    "product",
    "carrier_added",
    "lot",
    "activity_mbq",
    "volume_ml",
    "reference_time",
    "expiry_time",
)


def _list_page(
    request: Request, me: Principal, *, errors: dict[str, str], values: Mapping[str, str], status: int = 200
) -> Response:
    listed = base.read(request, batches.list_batches, me, limit=100, with_qc=False)
    now = datetime.now(base.site_tz(request))
    defaults = {
        "reference_time": now.strftime("%Y-%m-%dT%H:%M"),
        "expiry_time": (now + timedelta(hours=72)).strftime("%Y-%m-%dT%H:%M"),
    }
    return base.render(
        request,
        "batches.html",
        me,
        status=status,
        batches=listed,
        products=list(load_products().values()),
        specifications=base.read(request, specifications.list_specifications, me),
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
    key = base.form_key(form)

    def work(body: batches.BatchIn) -> tuple[batches.BatchOut, bool]:
        with request.app.state.db.write() as session:
            return idempotency.run_once(
                session,
                me,
                key,
                "create_batch",
                idempotency.request_hash("create_batch", body),
                batches.BatchOut,
                lambda: batches.create_batch(session, me, body),
            )

    result, errors = await run_in_threadpool(
        base.run_form,
        lambda: batches.BatchIn.model_validate(
            {
                "product": values["product"],
                "carrier_added": {"yes": True, "no": False}.get(values["carrier_added"]),
                "lot": values["lot"],
                "activity_mbq": values["activity_mbq"] or None,
                "volume_ml": values["volume_ml"] or None,
                "reference_time": base.parse_local(request, values["reference_time"]),
                "expiry_time": base.parse_local(request, values["expiry_time"]),
            }
        ),
        work,
    )
    if errors:
        return _list_page(request, me, errors=errors, values=values, status=422)
    row, _replayed = result
    return base.redirect(f"/ui/batches/{row.id}", f"batch {row.lot} received (quarantine): record QC next")


def _detail(session: Session, me: Principal, batch_id: int, *, keys: KeyRing) -> dict[str, Any] | None:
    batch = batches.find_batch(session, me, batch_id)
    if batch is None:
        return None
    spec_row = session.get(ProductSpecification, batch.specification_id) if batch.specification_id else None
    sigs = (
        signatures.list_signatures(session, me, "batch", batch_id, keys=keys)
        if allowed(me.role, "signatures:read")
        else []
    )
    return {
        "batch": batch,
        "signatures": list(sigs),
        "spec": None if spec_row is None else specifications.specification_out(session, spec_row),
    }


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
    return base.render(request, "batch.html", me, status=status, errors=errors, values=values, **found)


def batch_page(request: Request, batch_id: int) -> Response:
    """``GET /ui/batches/{id}``."""
    me = base.require_user(request, "batches:read")
    return _detail_page(request, me, batch_id, errors={}, values={})


async def record_qc(request: Request, batch_id: int) -> Response:
    """``POST /ui/batches/{id}/qc``: a result graded against the batch's specification."""
    me = base.require_user(request, "batches:write")
    form = await base.checked_form(request, me)
    values = {k: base.form_text(form, k) for k in ("test", "value", "reason")}
    _, errors = await run_in_threadpool(
        base.run_form,
        lambda: batches.QcIn.model_validate(
            {"test": values["test"], "value": values["value"] or None, "reason": values["reason"] or None}
        ),
        lambda body: base.write(request, batches.add_qc, me, batch_id, body),
    )
    if errors:
        if "test" not in errors and "_form" in errors and "not found" in errors["_form"]:
            return base.not_found(request, me, f"batch {batch_id}")
        return _detail_page(request, me, batch_id, errors=errors, values=values, status=422)
    return base.redirect(f"/ui/batches/{batch_id}", f"QC result {values['test']} recorded")


async def release(request: Request, batch_id: int) -> Response:
    """``POST /ui/batches/{id}/release``: the e-signature of a pharmacist who did not record the QC."""
    me = base.require_user(request, "batches:write")
    form = await base.checked_form(request, me)
    reason, password = base.form_opt(form, "release_reason"), form.get("password")
    state = request.app.state

    def work(body: batches.ReleaseIn) -> batches.BatchOut:
        signer = signatures.reauthenticate(
            me, "released", body.password, auth=state.auth, client=client_address(request)
        )
        return base.write(request, batches.release_batch, signer, batch_id, body, keys=state.keys)

    _, errors = await run_in_threadpool(
        base.run_form,
        lambda: batches.ReleaseIn.model_validate(
            {"reason": reason, "password": password if isinstance(password, str) else ""}
        ),
        work,
    )
    if errors:
        return _detail_page(
            request, me, batch_id, errors={"release": next(iter(errors.values()))}, values={}, status=409
        )
    return base.redirect(f"/ui/batches/{batch_id}", "batch released (signed)")


async def close(request: Request, batch_id: int) -> Response:
    """``POST /ui/batches/{id}/close``: reject (quarantine) or void (entered in error), with a reason."""
    me = base.require_user(request, "batches:write")
    form = await base.checked_form(request, me)
    to = "voided" if base.form_text(form, "action") == "void" else "rejected"
    reason = base.form_text(form, "status_reason")
    _, errors = await run_in_threadpool(
        base.run_form,
        lambda: batches.BatchStatusIn.model_validate({"reason": reason}),
        lambda body: base.write(request, batches.set_batch_status, me, batch_id, body, to=to),
    )
    if errors:
        return _detail_page(
            request,
            me,
            batch_id,
            errors={"status_reason": next(iter(errors.values()))},
            values={},
            status=409,
        )
    return base.redirect(f"/ui/batches/{batch_id}", f"batch {to}")
