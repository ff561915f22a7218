"""Use cases of written directives (prescriptions): write, read, cancel."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from theradose.pharmacy.administration import Route
from theradose.pharmacy.decay import canonical_nuclide
from theradose.service import audit_store
from theradose.service.auth import Principal
from theradose.service.errors import ApiError, conflict
from theradose.service.models import Patient, Prescription, Referral, row_to_dict
from theradose.service.operations.common import (
    ActivityMBq,
    Model,
    Pseudonym,
    get_or_404,
    patient_by_pseudonym,
    text,
    utcnow,
)


class PrescriptionIn(Model):
    patient: Pseudonym
    radiopharmaceutical: text(200)  # type: ignore[valid-type]
    nuclide: text(20)  # type: ignore[valid-type]
    prescribed_activity_mbq: ActivityMBq
    route: Route = "intravenous"
    plan_id: Annotated[str | None, Field(default=None, max_length=100, pattern=r"^[^\x00-\x1f]*$")] = None
    cycle: Annotated[int, Field(ge=1, le=100)] = 1
    referral_id: Annotated[int | None, Field(default=None, ge=1, le=2**31 - 1)] = None


class PrescriptionOut(BaseModel):
    id: int
    patient: str
    radiopharmaceutical: str
    nuclide: str
    prescribed_activity_mbq: float
    route: str
    authorized_user: str
    plan_id: str | None
    cycle: int
    written_at: datetime
    status: str


class CancelIn(Model):
    reason: text(500)  # type: ignore[valid-type]


def prescription_out(row: Prescription, pseudonym: str) -> PrescriptionOut:
    """The public view of a written directive."""
    return PrescriptionOut(
        id=row.id,
        patient=pseudonym,
        radiopharmaceutical=row.radiopharmaceutical,
        nuclide=row.nuclide,
        prescribed_activity_mbq=row.prescribed_activity_mbq,
        route=row.route,
        authorized_user=row.authorized_user,
        plan_id=row.plan_id,
        cycle=row.cycle,
        written_at=row.written_at,
        status=row.status,
    )


def create_prescription(session: Session, me: Principal, body: PrescriptionIn) -> PrescriptionOut:
    """Write a written directive; the writer is its authorized user."""
    nuclide = canonical_nuclide(body.nuclide)
    patient = patient_by_pseudonym(session, body.patient)
    if body.referral_id is not None:
        referral = get_or_404(session, Referral, body.referral_id)
        if referral.patient_id != patient.id:
            raise ApiError(422, "invalid_input", "referral_id belongs to another patient", "referral_id")
    row = Prescription(
        patient_id=patient.id,
        referral_id=body.referral_id,
        radiopharmaceutical=body.radiopharmaceutical,
        nuclide=nuclide,
        prescribed_activity_mbq=body.prescribed_activity_mbq,
        route=body.route,
        authorized_user=me.username,
        plan_id=body.plan_id,
        cycle=body.cycle,
        written_at=utcnow(),
        status="active",
    )
    session.add(row)
    session.flush()
    audit_store.append(
        session,
        actor=me.username,
        at=utcnow(),
        action="create",
        entity="prescription",
        entity_id=row.id,
        after=row_to_dict(row),
    )
    return prescription_out(row, patient.pseudonym)


def get_prescription(session: Session, me: Principal, prescription_id: int) -> PrescriptionOut:
    """One written directive."""
    row = get_or_404(session, Prescription, prescription_id)
    patient = session.get(Patient, row.patient_id)
    assert patient is not None
    return prescription_out(row, patient.pseudonym)


def cancel_prescription(
    session: Session, me: Principal, prescription_id: int, body: CancelIn
) -> PrescriptionOut:
    """Cancel an active written directive, with a reason."""
    row = get_or_404(session, Prescription, prescription_id, lock=True)
    if row.status != "active":
        raise conflict("prescription_not_active", f"prescription {row.id} is already {row.status}")
    before = row_to_dict(row)
    row.status = "cancelled"
    session.flush()
    audit_store.append(
        session,
        actor=me.username,
        at=utcnow(),
        action="update",
        entity="prescription",
        entity_id=row.id,
        before=before,
        after=row_to_dict(row),
        reason=body.reason,
    )
    patient = session.get(Patient, row.patient_id)
    assert patient is not None
    return prescription_out(row, patient.pseudonym)
