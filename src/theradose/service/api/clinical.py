"""Patients (pseudonyms + identity mapping), referrals/worklist and prescriptions (written directives)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request

from theradose.service.api.params import IdempotencyKeyHeader, IdPath, Limit, Offset, PseudonymPath
from theradose.service.auth import Principal, client_address, require
from theradose.service.errors import ERROR_RESPONSES
from theradose.service.operations import patients, precycle, prescriptions, referrals, signatures
from theradose.service.operations.idempotency import request_hash, run_once
from theradose.service.operations.patients import IdentityOut, PatientIn, PatientOut
from theradose.service.operations.precycle import DecisionOut, OverrideIn
from theradose.service.operations.prescriptions import (
    CancelIn,
    PrescriptionEdit,
    PrescriptionIn,
    PrescriptionOut,
)
from theradose.service.operations.referrals import ReferralIn, ReferralOut, ReferralStatusIn

router = APIRouter(responses=ERROR_RESPONSES)


# --- patients ---------------------------------------------------------------------------------------------
@router.post(
    "/patients", tags=["patients"], status_code=201, summary="Register a patient; returns the pseudonym"
)
def create_patient(
    body: PatientIn,
    request: Request,
    me: Annotated[Principal, require("patients:create")],
    idempotency_key: IdempotencyKeyHeader = None,
) -> PatientOut:
    with request.app.state.db.write() as session:
        digest = request_hash("create_patient", body)
        out, _ = run_once(
            session,
            me,
            idempotency_key,
            "create_patient",
            digest,
            PatientOut,
            lambda: patients.create_patient(session, me, body),
        )
        return out


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
    body: PrescriptionIn,
    request: Request,
    me: Annotated[Principal, require("prescriptions:write")],
    idempotency_key: IdempotencyKeyHeader = None,
) -> PrescriptionOut:
    with request.app.state.db.write() as session:
        digest = request_hash("create_prescription", body)
        out, _ = run_once(
            session,
            me,
            idempotency_key,
            "create_prescription",
            digest,
            PrescriptionOut,
            lambda: prescriptions.create_prescription(session, me, body),
        )
        return out


@router.patch(
    "/prescriptions/{prescription_id}",
    tags=["prescriptions"],
    summary="Edit a written directive before dispensing (a signed one returns to draft)",
)
def edit_prescription(
    prescription_id: IdPath,
    body: PrescriptionEdit,
    request: Request,
    me: Annotated[Principal, require("prescriptions:write")],
) -> PrescriptionOut:
    with request.app.state.db.write() as session:
        return prescriptions.edit_prescription(session, me, prescription_id, body)


@router.get("/prescriptions/{prescription_id}", tags=["prescriptions"], summary="One written directive")
def get_prescription(
    prescription_id: IdPath, request: Request, me: Annotated[Principal, require("prescriptions:read")]
) -> PrescriptionOut:
    with request.app.state.db.read() as session:
        return prescriptions.get_prescription(session, me, prescription_id, keys=request.app.state.keys)


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


# --- pre-cycle decisions ------------------------------------------------------------------------------------
@router.get(
    "/patients/{pseudonym}/precycle/decisions",
    tags=["safety"],
    summary="Pre-cycle decision in force per cycle (DELAY/STOP block dispensing and administration)",
)
def precycle_decisions(
    pseudonym: PseudonymPath, request: Request, me: Annotated[Principal, require("labs:read")]
) -> list[DecisionOut]:
    with request.app.state.db.read() as session:
        return precycle.list_decisions(session, me, pseudonym)


@router.post(
    "/patients/{pseudonym}/precycle/{cycle}/override",
    tags=["safety"],
    summary="Override a DELAY or STOP (physician: reason and e-signature)",
)
def precycle_override(
    pseudonym: PseudonymPath,
    cycle: Annotated[int, Path(ge=1, le=100)],
    body: OverrideIn,
    request: Request,
    me: Annotated[Principal, require("precycle:override")],
) -> DecisionOut:
    state = request.app.state
    signer = signatures.reauthenticate(
        me, "overridden", body.password, auth=state.auth, client=client_address(request)
    )
    with state.db.write() as session:
        return precycle.override(session, signer, pseudonym, cycle, body, keys=state.keys)
