"""Use cases of dispensing a patient dose from a released batch."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from theradose.pharmacy.dispensing import BatchStock, InsufficientStockError, dispense
from theradose.pharmacy.regulatory import check_dosage
from theradose.service import audit_store
from theradose.service.auth import Principal
from theradose.service.errors import conflict
from theradose.service.models import Batch, Dispensing, Patient, Prescription, row_to_dict
from theradose.service.operations.batches import domain_batch
from theradose.service.operations.common import ActivityMBq, Model, OptReason, Time, get_or_404, utcnow


class DispenseIn(Model):
    prescription_id: Annotated[int, Field(ge=1, le=2**31 - 1)]
    activity_mbq: ActivityMBq
    planned_time: Time
    draw_time: Time | None = None
    override_reason: OptReason = None


class DispensingOut(BaseModel):
    id: int
    batch_id: int
    prescription_id: int
    patient: str
    volume_ml: float
    activity_at_draw_mbq: float
    activity_at_planned_mbq: float
    activity_ref_mbq: float
    draw_time: datetime
    planned_time: datetime
    dispensed_by: str
    deviation_fraction: float
    override_reason: str | None
    batch_remaining_volume_ml: float
    batch_remaining_activity_ref_mbq: float


def dispensing_out(row: Dispensing, pseudonym: str, batch: Batch) -> DispensingOut:
    """The public view of a dispensed dose."""
    data = row_to_dict(row)
    data.pop("patient_id")
    return DispensingOut(
        **data,
        patient=pseudonym,
        batch_remaining_volume_ml=batch.remaining_volume_ml,
        batch_remaining_activity_ref_mbq=batch.remaining_activity_ref_mbq,
    )


def create_dispensing(session: Session, me: Principal, batch_id: int, body: DispenseIn) -> DispensingOut:
    """Dispense the dose of a written directive from a released batch, booking the batch stock."""
    draw_time = body.draw_time or utcnow()
    batch = get_or_404(session, Batch, batch_id, lock=True)
    prescription = get_or_404(session, Prescription, body.prescription_id)
    if batch.status != "released":
        raise conflict("batch_not_released", f"batch {batch.id} is {batch.status}: release it from QC first")
    if prescription.status != "active":
        raise conflict("prescription_not_active", f"prescription {prescription.id} is {prescription.status}")
    if prescription.nuclide != batch.nuclide:
        raise conflict(
            "nuclide_mismatch",
            f"prescription is for {prescription.nuclide} but batch {batch.id} is {batch.nuclide}",
            "prescription_id",
        )
    check = check_dosage(body.activity_mbq, prescription.prescribed_activity_mbq)
    if not check.within_limits and not body.override_reason:
        raise conflict(
            "dosage_out_of_range",
            f"activity_mbq {body.activity_mbq:g} deviates {check.deviation_fraction:+.1%} from the "
            f"prescribed "
            f"{prescription.prescribed_activity_mbq:g} MBq (limit ±{check.tolerance_fraction:.0%}, "
            f"{check.basis}): give override_reason as directed by the authorized user",
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
    audit_store.append(
        session,
        actor=me.username,
        at=now,
        action="create",
        entity="dispensing",
        entity_id=row.id,
        after=row_to_dict(row),
        reason=body.override_reason,
    )
    patient = session.get(Patient, row.patient_id)
    assert patient is not None
    return dispensing_out(row, patient.pseudonym, batch)


def get_dispensing(session: Session, me: Principal, dispensing_id: int) -> DispensingOut:
    """One dispensed dose."""
    row = get_or_404(session, Dispensing, dispensing_id)
    batch = session.get(Batch, row.batch_id)
    patient = session.get(Patient, row.patient_id)
    assert batch is not None and patient is not None
    return dispensing_out(row, patient.pseudonym, batch)
