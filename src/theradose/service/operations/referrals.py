"""Use cases of referrals: record, change status, the open-referral worklist."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field
from sqlalchemy import case, select
from sqlalchemy.orm import Session

from theradose.pharmacy import referrals as referral_logic
from theradose.service import audit_store
from theradose.service.auth import Principal
from theradose.service.models import Patient, Referral, row_to_dict
from theradose.service.operations.common import (
    Model,
    Pseudonym,
    Time,
    get_or_404,
    patient_by_pseudonym,
    text,
    utcnow,
)

PetResult = Literal["positive", "negative", "equivocal", "not_done"]
ReferralStatus = Literal["referred", "accepted", "scheduled", "treated", "declined"]


class ReferralIn(Model):
    patient: Pseudonym
    referring_physician: text(200)  # type: ignore[valid-type]
    indication: text(500)  # type: ignore[valid-type]
    pet_result: PetResult
    pet_suv_max: Annotated[float | None, Field(default=None, ge=0, le=1000, allow_inf_nan=False)] = None
    received_at: Time | None = None


class ReferralStatusIn(Model):
    status: ReferralStatus
    reason: text(500)  # type: ignore[valid-type]


class ReferralOut(BaseModel):
    id: int
    patient: str
    referring_physician: str
    indication: str
    pet_result: str
    pet_suv_max: float | None
    received_at: datetime
    status: str


def referral_out(row: Referral, pseudonym: str) -> ReferralOut:
    """The public view of a referral."""
    return ReferralOut(
        id=row.id,
        patient=pseudonym,
        referring_physician=row.referring_physician,
        indication=row.indication,
        pet_result=row.pet_result,
        pet_suv_max=row.pet_suv_max,
        received_at=row.received_at,
        status=row.status,
    )


def create_referral(session: Session, me: Principal, body: ReferralIn) -> ReferralOut:
    """Record a referral (status ``referred``)."""
    patient = patient_by_pseudonym(session, body.patient)
    received = body.received_at or utcnow()
    referral_logic.Referral(
        patient_pseudonym=body.patient,
        referring_physician=body.referring_physician,
        indication=body.indication,
        pet_result=body.pet_result,
        received_at=received,
        pet_suv_max=body.pet_suv_max,
    )
    row = Referral(
        patient_id=patient.id,
        referring_physician=body.referring_physician,
        indication=body.indication,
        pet_result=body.pet_result,
        pet_suv_max=body.pet_suv_max,
        received_at=received,
        status="referred",
    )
    session.add(row)
    session.flush()
    audit_store.append(
        session,
        actor=me.username,
        at=utcnow(),
        action="create",
        entity="referral",
        entity_id=row.id,
        after=row_to_dict(row),
    )
    return referral_out(row, patient.pseudonym)


def open_referrals(
    session: Session, me: Principal, *, limit: int | None = None, offset: int = 0
) -> list[ReferralOut]:
    """Open referrals: positive PET first, then the oldest (one page of ``limit`` from ``offset``)."""
    rows = session.execute(
        select(Referral, Patient.pseudonym)
        .join(Patient, Patient.id == Referral.patient_id)
        .where(Referral.status.in_(sorted(referral_logic.OPEN_STATUSES)))
        .order_by(case((Referral.pet_result == "positive", 0), else_=1), Referral.received_at, Referral.id)
        .limit(limit)
        .offset(offset)
    ).all()
    return [referral_out(r, p) for r, p in rows]


def set_referral_status(
    session: Session, me: Principal, referral_id: int, body: ReferralStatusIn
) -> ReferralOut:
    """Move a referral to another status (allowed transitions only), with a reason."""
    row = get_or_404(session, Referral, referral_id, lock=True)
    before = row_to_dict(row)
    referral_logic.check_transition(row.status, body.status)
    row.status = body.status
    session.flush()
    audit_store.append(
        session,
        actor=me.username,
        at=utcnow(),
        action="update",
        entity="referral",
        entity_id=row.id,
        before=before,
        after=row_to_dict(row),
        reason=body.reason,
    )
    patient = session.get(Patient, row.patient_id)
    assert patient is not None
    return referral_out(row, patient.pseudonym)
