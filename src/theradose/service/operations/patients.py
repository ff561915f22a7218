"""Use cases of patients: registration (pseudonym + identity kept apart), list, re-identification."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from theradose.pharmacy.identifiers import check_identifier, identifier_key
from theradose.pharmacy.patients import new_pseudonym
from theradose.service import audit_store
from theradose.service.auth import Principal
from theradose.service.errors import conflict, not_found
from theradose.service.models import Patient, PatientIdentity
from theradose.service.operations.common import Model, opt_text, patient_by_pseudonym, text, utcnow


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


def create_patient(session: Session, me: Principal, body: PatientIn) -> PatientOut:
    """Register a patient; the audit trail names which identity fields were set, never their values."""
    mrn = check_identifier(body.mrn, "mrn")
    mrn_key = identifier_key(mrn)
    existing = session.execute(
        select(PatientIdentity.mrn).where(PatientIdentity.mrn_key == mrn_key)
    ).scalar_one_or_none()
    if existing is not None:
        raise conflict("conflict", f"a patient with mrn {existing!r} exists (same as {mrn!r})", "mrn")
    now = utcnow()
    patient = Patient(pseudonym=new_pseudonym(), created_at=now)
    session.add(patient)
    session.flush()
    session.add(
        PatientIdentity(
            patient_id=patient.id,
            family_name=body.family_name,
            given_name=body.given_name,
            mrn=mrn,
            mrn_key=mrn_key,
            birth_date=body.birth_date,
        )
    )
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


def list_patients(session: Session, me: Principal, *, limit: int = 100, offset: int = 0) -> list[PatientOut]:
    """Patients by registration order (pseudonyms only)."""
    rows = session.execute(select(Patient).order_by(Patient.id).limit(limit).offset(offset)).scalars()
    return [PatientOut(pseudonym=p.pseudonym, created_at=p.created_at) for p in rows]


def read_identity(session: Session, me: Principal, pseudonym: str) -> IdentityOut:
    """Re-identify a patient (needs a write session: every read is audited)."""
    patient = patient_by_pseudonym(session, pseudonym)
    ident = session.execute(
        select(PatientIdentity).where(PatientIdentity.patient_id == patient.id)
    ).scalar_one_or_none()
    if ident is None:
        raise not_found("identity of patient", pseudonym)
    audit_store.append(
        session, actor=me.username, at=utcnow(), action="read", entity="patient_identity", entity_id=pseudonym
    )
    return IdentityOut(
        pseudonym=pseudonym,
        family_name=ident.family_name,
        given_name=ident.given_name,
        mrn=ident.mrn,
        birth_date=ident.birth_date,
    )
