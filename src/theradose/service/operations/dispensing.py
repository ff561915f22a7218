"""Use cases of dispensing a patient dose from a released batch, and voiding it.

Rules, all here so that the API and the pages enforce the same: the written directive is signed (its
signature matches its content) and not blocked by a pre-cycle DELAY or STOP; the batch is released, in
date and of the directive's product (registry names and aliases; a nuclide-only match needs a
documented override); the dose calibrator is not blocked by a failed constancy check; one active
dispensing per directive (a second is refused until the first is voided with a reason and an
e-signature); a dosage outside ±20 % needs the authorized user's direction as a reason.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from theradose.pharmacy.dispensing import BatchStock, InsufficientStockError, dispense
from theradose.pharmacy.regulatory import check_dosage
from theradose.service import audit_store
from theradose.service.auth import Principal
from theradose.service.errors import ApiError, conflict
from theradose.service.keys import KeyRing
from theradose.service.models import Administration, Batch, Dispensing, Patient, Prescription, row_to_dict
from theradose.service.operations import calibrators, precycle
from theradose.service.operations.batches import domain_batch
from theradose.service.operations.common import ActivityMBq, Model, OptReason, Time, get_or_404, text, utcnow
from theradose.service.operations.prescriptions import require_dispensable
from theradose.service.operations.signatures import Signer, seal_signature, signed_record


class DispenseIn(Model):
    prescription_id: Annotated[int, Field(ge=1, le=2**31 - 1)]
    activity_mbq: ActivityMBq
    planned_time: Time
    calibrator_id: Annotated[int, Field(ge=1, le=2**31 - 1)]
    draw_time: Time | None = None
    override_reason: OptReason = None
    product_override_reason: OptReason = None


class VoidDispensingIn(Model):
    reason: text(500)  # type: ignore[valid-type]
    password: Annotated[str, Field(min_length=1, max_length=200)]


class DispensingOut(BaseModel):
    id: int
    batch_id: int
    prescription_id: int
    patient: str
    product: str
    lot: str
    volume_ml: float
    activity_at_draw_mbq: float
    activity_at_planned_mbq: float
    activity_ref_mbq: float
    draw_time: datetime
    planned_time: datetime
    dispensed_by: str
    deviation_fraction: float
    override_reason: str | None
    product_override_reason: str | None
    calibrator_id: int | None
    status: str
    void_reason: str | None
    batch_remaining_volume_ml: float
    batch_remaining_activity_ref_mbq: float


def dispensing_out(row: Dispensing, pseudonym: str, batch: Batch) -> DispensingOut:
    """The public view of a dispensed dose (with what is in the syringe: product and lot)."""
    data = row_to_dict(row)
    for key in ("patient_id", "voided_by", "voided_at"):
        data.pop(key)
    return DispensingOut(
        **data,
        patient=pseudonym,
        product=batch.product,
        lot=batch.lot,
        batch_remaining_volume_ml=batch.remaining_volume_ml,
        batch_remaining_activity_ref_mbq=batch.remaining_activity_ref_mbq,
    )


def active_dispensing(session: Session, prescription_id: int) -> Dispensing | None:
    """The dispensing of a directive that is not voided, or None."""
    return session.execute(
        select(Dispensing).where(Dispensing.prescription_id == prescription_id, Dispensing.status == "active")
    ).scalar_one_or_none()


def fitting_batches(session: Session, prescription: Prescription, now: datetime) -> list[Batch]:
    """Released, unexpired batches of the directive's product, soonest expiry first."""
    return list(
        session.execute(
            select(Batch)
            .where(
                Batch.status == "released",
                Batch.expiry_time > now,
                Batch.product_code == prescription.product_code,
                Batch.product_code.is_not(None),
            )
            .order_by(Batch.expiry_time, Batch.id)
        ).scalars()
    )


def check_product(batch: Batch, prescription: Prescription, override_reason: str | None) -> None:
    """Refuse a batch that is not the directive's product (a nuclide-only match needs a reason)."""
    if batch.product_code is not None and batch.product_code == prescription.product_code:
        return
    if batch.nuclide != prescription.nuclide:
        raise conflict(
            "nuclide_mismatch",
            f"prescription is for {prescription.nuclide} but batch {batch.id} is {batch.nuclide}",
            "batch_id",
        )
    if override_reason is None:
        raise conflict(
            "product_mismatch",
            f"batch {batch.id} is {batch.product} (lot {batch.lot}) but the written directive is for "
            f"{prescription.radiopharmaceutical}: choose a batch of that product (only the nuclide matches)",
            "batch_id",
        )


def create_dispensing(
    session: Session, me: Principal, batch_id: int, body: DispenseIn, *, keys: KeyRing
) -> DispensingOut:
    """Dispense the dose of a written directive from a released batch, booking the batch stock."""
    draw_time = body.draw_time or utcnow()
    batch = get_or_404(session, Batch, batch_id, lock=True)
    prescription = get_or_404(session, Prescription, body.prescription_id, lock=True)
    require_dispensable(session, prescription, keys=keys)
    existing = active_dispensing(session, prescription.id)
    if existing is not None:
        raise conflict(
            "already_dispensed",
            f"prescription {prescription.id} already has dispensing {existing.id}: one dose per written "
            "directive; void that dispensing (reason and e-signature) to dispense again",
            "prescription_id",
        )
    precycle.require_cycle_open(session, prescription.patient_id, prescription.cycle)
    if batch.status != "released":
        raise conflict("batch_not_released", f"batch {batch.id} is {batch.status}: release it from QC first")
    check_product(batch, prescription, body.product_override_reason)
    calibrators.require_usable(session, body.calibrator_id)
    check = check_dosage(body.activity_mbq, prescription.prescribed_activity_mbq)
    if not check.within_limits and body.override_reason is None:
        raise conflict(
            "dosage_out_of_range",
            f"activity_mbq {body.activity_mbq:g} deviates {check.deviation_fraction:+.1%} from the "
            f"prescribed {prescription.prescribed_activity_mbq:g} MBq "
            f"(limit ±{check.tolerance_fraction:.0%}, {check.basis}): give override_reason as directed "
            "by the authorized user",
            "activity_mbq",
        )
    before = row_to_dict(batch)
    try:
        result = dispense(
            domain_batch(batch),
            BatchStock(batch.remaining_activity_ref_mbq, batch.remaining_volume_ml),
            activity_mbq=body.activity_mbq,
            planned_time=body.planned_time,
            draw_time=draw_time,
        )
    except InsufficientStockError as exc:
        raise conflict("insufficient_stock", str(exc), "activity_mbq") from exc
    batch.remaining_volume_ml = result.remaining.remaining_volume_ml
    batch.remaining_activity_ref_mbq = result.remaining.remaining_activity_ref_mbq
    batch.version += 1
    row = Dispensing(
        batch_id=batch.id,
        prescription_id=prescription.id,
        patient_id=prescription.patient_id,
        volume_ml=result.volume_ml,
        activity_at_draw_mbq=result.activity_at_draw_mbq,
        activity_at_planned_mbq=result.activity_at_planned_mbq,
        activity_ref_mbq=result.activity_ref_mbq,
        draw_time=result.draw_time,
        planned_time=result.planned_time,
        dispensed_by=me.username,
        deviation_fraction=check.deviation_fraction,
        override_reason=body.override_reason,
        product_override_reason=body.product_override_reason,
        calibrator_id=body.calibrator_id,
        status="active",
    )
    session.add(row)
    session.flush()
    now = utcnow()
    audit_store.append(
        session,
        actor=me.username,
        at=now,
        action="update",
        entity="batch",
        entity_id=batch.id,
        before=before,
        after=row_to_dict(batch),
        reason=f"dispensing {row.id}",
    )
    reasons = "; ".join(r for r in (body.override_reason, body.product_override_reason) if r) or None
    audit_store.append(
        session,
        actor=me.username,
        at=now,
        action="create",
        entity="dispensing",
        entity_id=row.id,
        after=row_to_dict(row),
        reason=reasons,
    )
    patient = session.get(Patient, row.patient_id)
    assert patient is not None
    return dispensing_out(row, patient.pseudonym, batch)


def void_dispensing(
    session: Session, signer: Signer, dispensing_id: int, body: VoidDispensingIn, *, keys: KeyRing
) -> DispensingOut:
    """Void a dispensed dose that was not administered (reason and e-signature ``voided``).

    The drawn activity is not returned to the batch (a syringe is never put back into the vial); the
    directive can then be dispensed again.
    """
    me = signer.principal
    if signer.meaning != "voided":
        raise ApiError(403, "forbidden", "voiding needs a signature with the meaning voided")
    row = get_or_404(session, Dispensing, dispensing_id, lock=True)
    if row.status == "voided":
        raise conflict("already_voided", f"dispensing {row.id} is already voided")
    if session.execute(select(Administration).where(Administration.dispensing_id == row.id)).first():
        raise conflict("already_administered", f"dispensing {row.id} was administered: it cannot be voided")
    before = row_to_dict(row)
    row.status = "voided"
    row.void_reason = body.reason
    row.voided_by = me.username
    row.voided_at = utcnow()
    session.flush()
    audit_store.append(
        session,
        actor=me.username,
        at=row.voided_at,
        action="update",
        entity="dispensing",
        entity_id=row.id,
        before=before,
        after=row_to_dict(row),
        reason=body.reason,
    )
    seal_signature(
        session,
        signer,
        "dispensing",
        row.id,
        signed_record(session, "dispensing", row.id),
        keys=keys,
        reason=body.reason,
    )
    batch = session.get(Batch, row.batch_id)
    patient = session.get(Patient, row.patient_id)
    assert batch is not None and patient is not None
    return dispensing_out(row, patient.pseudonym, batch)


def get_dispensing(session: Session, me: Principal, dispensing_id: int) -> DispensingOut:
    """One dispensed dose."""
    row = get_or_404(session, Dispensing, dispensing_id)
    batch = session.get(Batch, row.batch_id)
    patient = session.get(Patient, row.patient_id)
    assert batch is not None and patient is not None
    return dispensing_out(row, patient.pseudonym, batch)
