"""Patients (pseudonyms + identity mapping), referrals/worklist and prescriptions (written directives)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from sqlalchemy import select

from theradose.pharmacy import referrals as referral_logic
from theradose.pharmacy.administration import Route
from theradose.pharmacy.decay import canonical_nuclide
from theradose.pharmacy.patients import new_pseudonym
from theradose.service import audit_store
from theradose.service.api._common import (
    ActivityMBq,
    IdPath,
    Limit,
    Model,
    Offset,
    PseudonymPath,
    Time,
    get_or_404,
    opt_text,
    patient_by_pseudonym,
    text,
    utcnow,
)
from theradose.service.auth import Principal, require
from theradose.service.errors import ERROR_RESPONSES, ApiError, conflict, not_found
from theradose.service.models import Patient, PatientIdentity, Prescription, Referral, row_to_dict

router = APIRouter(responses=ERROR_RESPONSES)


# --- patients ---------------------------------------------------------------------------------------------
class PatientIn(Model):
    family_name: text(200)  # type: ignore[valid-type]
    given_name: opt_text(200) = ""  # type: ignore[valid-type]
    mrn: text(64)  # type: ignore[valid-type]
    birth_date: Annotated[date | None, Field(default=None, ge=date(1900, 1, 1), le=date(2200, 1, 1))] = None


class PatientOut(BaseModel):
    pseudonym: str
    created_at: datetime


class IdentityOut(BaseModel):
    pseudonym: str
    family_name: str
    given_name: str
    mrn: str
    birth_date: date | None


@router.post(
    "/patients", tags=["patients"], status_code=201, summary="Register a patient; returns the pseudonym"
)
def create_patient(
    body: PatientIn, request: Request, me: Annotated[Principal, require("patients:create")]
) -> PatientOut:
    with request.app.state.db.write() as session:
        if session.execute(select(PatientIdentity).where(PatientIdentity.mrn == body.mrn)).first():
            raise conflict("conflict", f"a patient with mrn {body.mrn!r} exists", "mrn")
        now = utcnow()
        patient = Patient(pseudonym=new_pseudonym(), created_at=now)
        session.add(patient)
        session.flush()
        session.add(
            PatientIdentity(
                patient_id=patient.id,
                family_name=body.family_name,
                given_name=body.given_name,
                mrn=body.mrn,
                birth_date=body.birth_date,
            )
        )
        # The audit trail names the pseudonym and which identity fields were set, never their values.
        audit_store.append(
            session,
            actor=me.username,
            at=now,
            action="create",
            entity="patient",
            entity_id=patient.pseudonym,
            after={
                "pseudonym": patient.pseudonym,
                "identity_fields": ["birth_date", "family_name", "given_name", "mrn"],
            },
        )
        return PatientOut(pseudonym=patient.pseudonym, created_at=patient.created_at)


@router.get("/patients", tags=["patients"], summary="List patients (pseudonyms only)")
def list_patients(
    request: Request,
    me: Annotated[Principal, require("patients:read")],
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[PatientOut]:
    with request.app.state.db.read() as session:
        rows = session.execute(select(Patient).order_by(Patient.id).limit(limit).offset(offset)).scalars()
        return [PatientOut(pseudonym=p.pseudonym, created_at=p.created_at) for p in rows]


@router.get("/patients/{pseudonym}/identity", tags=["patients"], summary="Re-identify a patient")
def get_identity(
    pseudonym: PseudonymPath, request: Request, me: Annotated[Principal, require("identity:read")]
) -> IdentityOut:
    with request.app.state.db.write() as session:
        patient = patient_by_pseudonym(session, pseudonym)
        ident = session.execute(
            select(PatientIdentity).where(PatientIdentity.patient_id == patient.id)
        ).scalar_one_or_none()
        if ident is None:
            raise not_found("identity of patient", pseudonym)
        audit_store.append(
            session,
            actor=me.username,
            at=utcnow(),
            action="read",
            entity="patient_identity",
            entity_id=pseudonym,
        )
        return IdentityOut(
            pseudonym=pseudonym,
            family_name=ident.family_name,
            given_name=ident.given_name,
            mrn=ident.mrn,
            birth_date=ident.birth_date,
        )


# --- referrals ----------------------------------------------------------------------------------------------
PetResult = Literal["positive", "negative", "equivocal", "not_done"]
ReferralStatus = Literal["referred", "accepted", "scheduled", "treated", "declined"]


class ReferralIn(Model):
    patient: Annotated[str, Field(pattern=r"^PT-[0-9A-HJKMNP-TV-Z]{10}$")]
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


def _referral_out(row: Referral, pseudonym: str) -> ReferralOut:
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


@router.post("/referrals", tags=["referrals"], status_code=201, summary="Record a referral")
def create_referral(
    body: ReferralIn, request: Request, me: Annotated[Principal, require("referrals:write")]
) -> ReferralOut:
    with request.app.state.db.write() as session:
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
        return _referral_out(row, patient.pseudonym)


@router.get("/worklist", tags=["referrals"], summary="Open referrals: positive PET first, then oldest")
def worklist(request: Request, me: Annotated[Principal, require("referrals:read")]) -> list[ReferralOut]:
    with request.app.state.db.read() as session:
        rows = session.execute(
            select(Referral, Patient.pseudonym)
            .join(Patient, Patient.id == Referral.patient_id)
            .where(Referral.status.in_(sorted(referral_logic.OPEN_STATUSES)))
        ).all()
        items = [_referral_out(r, p) for r, p in rows]
        return sorted(items, key=lambda r: (r.pet_result != "positive", r.received_at, r.id))


@router.post("/referrals/{referral_id}/status", tags=["referrals"], summary="Change a referral's status")
def set_referral_status(
    referral_id: IdPath,
    body: ReferralStatusIn,
    request: Request,
    me: Annotated[Principal, require("referrals:write")],
) -> ReferralOut:
    with request.app.state.db.write() as session:
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
        return _referral_out(row, patient.pseudonym)


# --- prescriptions ------------------------------------------------------------------------------------------
class PrescriptionIn(Model):
    patient: Annotated[str, Field(pattern=r"^PT-[0-9A-HJKMNP-TV-Z]{10}$")]
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


def prescription_out(row: Prescription, pseudonym: str) -> PrescriptionOut:
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


@router.post("/prescriptions", tags=["prescriptions"], status_code=201, summary="Write a written directive")
def create_prescription(
    body: PrescriptionIn, request: Request, me: Annotated[Principal, require("prescriptions:write")]
) -> PrescriptionOut:
    nuclide = canonical_nuclide(body.nuclide)
    with request.app.state.db.write() as session:
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


@router.get("/prescriptions/{prescription_id}", tags=["prescriptions"], summary="One written directive")
def get_prescription(
    prescription_id: IdPath, request: Request, me: Annotated[Principal, require("prescriptions:read")]
) -> PrescriptionOut:
    with request.app.state.db.read() as session:
        row = get_or_404(session, Prescription, prescription_id)
        patient = session.get(Patient, row.patient_id)
        assert patient is not None
        return prescription_out(row, patient.pseudonym)


class CancelIn(Model):
    reason: text(500)  # type: ignore[valid-type]


@router.post(
    "/prescriptions/{prescription_id}/cancel", tags=["prescriptions"], summary="Cancel a written directive"
)
def cancel_prescription(
    prescription_id: IdPath,
    body: CancelIn,
    request: Request,
    me: Annotated[Principal, require("prescriptions:write")],
) -> PrescriptionOut:
    with request.app.state.db.write() as session:
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
