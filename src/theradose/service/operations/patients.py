"""Use cases of patients: registration (pseudonym + identity kept apart), list, re-identification."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from theradose.pharmacy.identifiers import check_identifier, identifier_key
from theradose.pharmacy.patients import new_pseudonym
from theradose.service import audit_store
from theradose.service.auth import Principal
from theradose.service.errors import conflict, not_found
from theradose.service.models import Patient, PatientIdentity
from theradose.service.operations.common import Model, opt_text, patient_by_pseudonym, text, utcnow
from theradose.service.permissions import allowed

Sex = Literal["female", "male", "other", "unknown"]


def _not_future(value: date) -> date:
    if value > utcnow().date():
        raise ValueError("birth date lies in the future")
    return value


class PatientIn(Model):
    family_name: text(200)  # type: ignore[valid-type]
    given_name: opt_text(200) = ""  # type: ignore[valid-type]
    mrn: text(64)  # type: ignore[valid-type]
    birth_date: Annotated[date, Field(ge=date(1900, 1, 1)), AfterValidator(_not_future)]
    sex: Sex | None = None
    weight_kg: Annotated[float | None, Field(default=None, ge=20, le=400, allow_inf_nan=False)] = None


class PatientOut(BaseModel):
    pseudonym: str
    created_at: datetime
    sex: str | None = None
    weight_kg: float | None = None


class PatientRow(BaseModel):
    """A patient in a list: the pseudonym, and the identity for roles allowed to read it."""

    pseudonym: str
    sex: str | None
    weight_kg: float | None
    family_name: str | None = None
    given_name: str | None = None
    birth_date: date | None = None
    mrn: str | None = None


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
    patient = Patient(pseudonym=new_pseudonym(), created_at=now, sex=body.sex, weight_kg=body.weight_kg)
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
    return PatientOut(
        pseudonym=patient.pseudonym,
        created_at=patient.created_at,
        sex=patient.sex,
        weight_kg=patient.weight_kg,
    )


def list_patients(session: Session, me: Principal, *, limit: int = 100, offset: int = 0) -> list[PatientOut]:
    """Patients by registration order (pseudonyms only)."""
    rows = session.execute(select(Patient).order_by(Patient.id).limit(limit).offset(offset)).scalars()
    return [
        PatientOut(pseudonym=p.pseudonym, created_at=p.created_at, sex=p.sex, weight_kg=p.weight_kg)
        for p in rows
    ]


def identities(
    session: Session, me: Principal, pseudonyms: list[str], *, view: str, audit: bool = True
) -> dict[str, IdentityOut]:
    """The identities of patients for a page, for roles allowed to read them (one audited read per view)."""
    if not allowed(me.role, "identity:read") or not pseudonyms:
        return {}
    rows = session.execute(
        select(Patient.pseudonym, PatientIdentity)
        .join(PatientIdentity, PatientIdentity.patient_id == Patient.id)
        .where(Patient.pseudonym.in_(sorted(set(pseudonyms))))
    ).all()
    if audit:
        audit_store.append(
            session,
            actor=me.username,
            at=utcnow(),
            action="read",
            entity="patient_identity",
            entity_id=pseudonyms[0] if len(set(pseudonyms)) == 1 else "list",
            after={"view": view, "pseudonyms": sorted(set(pseudonyms))},
        )
    return {
        p: IdentityOut(
            pseudonym=p,
            family_name=i.family_name,
            given_name=i.given_name,
            mrn=i.mrn,
            birth_date=i.birth_date,
        )
        for p, i in rows
    }


def search_patients(
    session: Session, me: Principal, query: str = "", *, limit: int = 200
) -> list[PatientRow]:
    """Patients matching ``query`` (pseudonym; and name or record number for roles allowed to read the
    identity), newest first; the identities shown are one audited read."""
    q = query.strip()
    stmt = select(Patient, PatientIdentity).join(PatientIdentity, PatientIdentity.patient_id == Patient.id)
    may_identify = allowed(me.role, "identity:read")
    if q:
        like = f"%{q.casefold()}%"
        conditions = [func.lower(Patient.pseudonym).like(like)]
        if may_identify:
            conditions += [
                func.lower(PatientIdentity.family_name).like(like),
                func.lower(PatientIdentity.given_name).like(like),
                func.lower(PatientIdentity.mrn).like(like),
            ]
        stmt = stmt.where(or_(*conditions))
    rows = session.execute(stmt.order_by(Patient.id.desc()).limit(limit)).all()
    out = []
    for patient, ident in rows:
        item = PatientRow(pseudonym=patient.pseudonym, sex=patient.sex, weight_kg=patient.weight_kg)
        if may_identify:
            item = item.model_copy(
                update={
                    "family_name": ident.family_name,
                    "given_name": ident.given_name,
                    "birth_date": ident.birth_date,
                    "mrn": ident.mrn,
                }
            )
        out.append(item)
    if may_identify and out:
        identities(session, me, [r.pseudonym for r in out], view="patient list")
    return out


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
