"""Patients (pseudonyms + identity mapping), referrals/worklist and prescriptions (written directives)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request

from theradose.service.api.params import IdPath, Limit, Offset, PseudonymPath
from theradose.service.auth import Principal, require
from theradose.service.errors import ERROR_RESPONSES
from theradose.service.operations import patients, prescriptions, referrals
from theradose.service.operations.patients import IdentityOut, PatientIn, PatientOut
from theradose.service.operations.prescriptions import CancelIn, PrescriptionIn, PrescriptionOut
from theradose.service.operations.referrals import ReferralIn, ReferralOut, ReferralStatusIn

router = APIRouter(responses=ERROR_RESPONSES)


# --- patients ---------------------------------------------------------------------------------------------
@router.post(
    "/patients", tags=["patients"], status_code=201, summary="Register a patient; returns the pseudonym"
)
def create_patient(
    body: PatientIn, request: Request, me: Annotated[Principal, require("patients:create")]
) -> PatientOut:
    with request.app.state.db.write() as session:
        return patients.create_patient(session, me, body)


@router.get("/patients", tags=["patients"], summary="List patients (pseudonyms only)")
def list_patients(
    request: Request,
    me: Annotated[Principal, require("patients:read")],
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[PatientOut]:
    with request.app.state.db.read() as session:
        return patients.list_patients(session, me, limit=limit, offset=offset)


@router.get("/patients/{pseudonym}/identity", tags=["patients"], summary="Re-identify a patient")
def get_identity(
    pseudonym: PseudonymPath, request: Request, me: Annotated[Principal, require("identity:read")]
) -> IdentityOut:
    with request.app.state.db.write() as session:
        return patients.read_identity(session, me, pseudonym)


# --- referrals ----------------------------------------------------------------------------------------------
@router.post("/referrals", tags=["referrals"], status_code=201, summary="Record a referral")
def create_referral(
    body: ReferralIn, request: Request, me: Annotated[Principal, require("referrals:write")]
) -> ReferralOut:
    with request.app.state.db.write() as session:
        return referrals.create_referral(session, me, body)


@router.get("/worklist", tags=["referrals"], summary="Open referrals: positive PET first, then oldest")
def worklist(
    request: Request,
    me: Annotated[Principal, require("referrals:read")],
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[ReferralOut]:
    with request.app.state.db.read() as session:
        return referrals.open_referrals(session, me, limit=limit, offset=offset)


@router.post("/referrals/{referral_id}/status", tags=["referrals"], summary="Change a referral's status")
def set_referral_status(
    referral_id: IdPath,
    body: ReferralStatusIn,
    request: Request,
    me: Annotated[Principal, require("referrals:write")],
) -> ReferralOut:
    with request.app.state.db.write() as session:
        return referrals.set_referral_status(session, me, referral_id, body)


# --- prescriptions ------------------------------------------------------------------------------------------
@router.post("/prescriptions", tags=["prescriptions"], status_code=201, summary="Write a written directive")
def create_prescription(
    body: PrescriptionIn, request: Request, me: Annotated[Principal, require("prescriptions:write")]
) -> PrescriptionOut:
    with request.app.state.db.write() as session:
        return prescriptions.create_prescription(session, me, body)


@router.get("/prescriptions/{prescription_id}", tags=["prescriptions"], summary="One written directive")
def get_prescription(
    prescription_id: IdPath, request: Request, me: Annotated[Principal, require("prescriptions:read")]
) -> PrescriptionOut:
    with request.app.state.db.read() as session:
        return prescriptions.get_prescription(session, me, prescription_id)


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
        return prescriptions.cancel_prescription(session, me, prescription_id, body)
