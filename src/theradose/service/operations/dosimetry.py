"""Use cases of dosimetry reviews: import a pipeline output, list, sign (checked/approved).

Reviews are files kept by :class:`theradose.service.review_store.Store`; their signatures are audit
entries of entity ``dosimetry_review`` (action ``sign``) carrying the seal of
:mod:`theradose.pharmacy.signatures` over :meth:`Review.record`, made with the e-signature sub-key of the
key named by its ``key_id`` (entries without one were sealed before key ids; the sealed audit chain that
holds them vouches for them).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from theradose.pharmacy import signatures as sig_logic
from theradose.pharmacy.audit import format_time
from theradose.pharmacy.reconcile import AdministrationFacts, compare_administration
from theradose.service import audit_store
from theradose.service.auth import Authenticator, Principal
from theradose.service.errors import ApiError
from theradose.service.keys import KeyRing
from theradose.service.models import Administration, AuditEntryRow, Patient, PatientIdentity
from theradose.service.operations.administration_record import administration_of_cycle, record_of
from theradose.service.operations.common import Model, utcnow
from theradose.service.permissions import SIGNATURE_MEANING_ROLES
from theradose.service.review_store import DosimetryResult, Review, Store, read_result

#: Meanings a dosimetry review can be signed with.
REVIEW_MEANINGS: tuple[str, ...] = ("checked", "approved")


class ReviewSignIn(Model):
    meaning: Literal["checked", "approved"]
    password: Annotated[str, Field(min_length=1, max_length=1000)]


class RegionDoseOut(BaseModel):
    """One region of a review as every screen shows it: the reference dose (source named) and the BED
    computed from it, with the tissue parameters used (:meth:`theradose.dosimetry.results.StudyDoses.row`)."""

    name: str
    kind: str
    dose_source: str
    dose_gy: float | None
    dose_sigma_gy: float | None
    dose_gy_per_gbq: float | None
    bed_gy: float | None
    bed_tissue: str | None
    alpha_beta_gy: float | None
    repair_half_time_h: float | None
    effective_half_life_h: float | None
    mass_g: float | None


class ReviewSignatureOut(BaseModel):
    signer: str
    signer_name: str
    meaning: str
    signed_at: str
    valid: bool


class ReviewOut(BaseModel):
    review_id: str
    patient: str
    cycle: int
    imported_by: str
    imported_at: str
    files: dict[str, str]
    approved: bool
    reference_dose: str
    administered_activity_mbq: float
    injection_time: datetime
    regions: list[RegionDoseOut]
    signatures: list[ReviewSignatureOut]


def get_review(store: Store, review_id: str) -> Review:
    """The review with ``review_id`` or a 404 error."""
    review = store.review(review_id)
    if review is None:
        raise ApiError(404, "not_found", f"dosimetry review {review_id} not found")
    return review


def review_out(session: Session, me: Principal, review: Review, *, keys: KeyRing) -> ReviewOut:
    """The public view of a review: its dose record's rows and its signatures (re-verified)."""
    record = read_result(review.folder).record
    if record is None:
        raise ApiError(422, "invalid_input", f"review {review.review_id}: doses.json is not a dose record")
    regions = []
    for region in record.regions:
        row = record.row(region)
        bed = region.bed if row.bed_gy is not None else None
        regions.append(
            RegionDoseOut(
                name=row.name,
                kind=row.kind.value,
                dose_source=row.source,
                dose_gy=row.dose_gy,
                dose_sigma_gy=row.dose_sigma_gy,
                dose_gy_per_gbq=row.dose_gy_per_gbq,
                bed_gy=row.bed_gy,
                bed_tissue=None if bed is None else bed.tissue,
                alpha_beta_gy=None if bed is None else bed.alpha_beta_gy,
                repair_half_time_h=None if bed is None else bed.repair_half_time_h,
                effective_half_life_h=row.effective_half_life_h,
                mass_g=row.mass_g,
            )
        )
    signatures = review_signatures(session, review, keys=keys)
    return ReviewOut(
        review_id=review.review_id,
        patient=review.patient,
        cycle=review.cycle,
        imported_by=review.imported_by,
        imported_at=review.imported_at,
        files=dict(review.files),
        approved=any(s["meaning"] == "approved" and s["valid"] for s in signatures),
        reference_dose=record.reference_dose,
        administered_activity_mbq=record.administration.activity_mbq,
        injection_time=record.administration.datetime,
        regions=regions,
        signatures=[
            ReviewSignatureOut(
                signer=s["signer"],
                signer_name=s.get("signer_name", s["signer"]),
                meaning=s["meaning"],
                signed_at=s["signed_at"],
                valid=s["valid"],
            )
            for s in signatures
        ],
    )


@dataclass(frozen=True)
class ReviewSigner:
    """A user who re-entered their password to sign review ``review_id`` with ``meaning``."""

    principal: Principal
    review: Review
    meaning: str


def review_signatures(session: Session, review: Review, *, keys: KeyRing) -> list[dict[str, Any]]:
    """The signatures of a review (from the audit chain), each with ``valid`` re-verified."""
    rows = list(
        session.execute(
            select(AuditEntryRow)
            .where(
                AuditEntryRow.entity == "dosimetry_review",
                AuditEntryRow.entity_id == review.review_id,
                AuditEntryRow.action == "sign",
            )
            .order_by(AuditEntryRow.seq)
        ).scalars()
    )
    out = []
    for row in rows:
        data = json.loads(row.after_json or "{}")
        sig = sig_logic.Signature(
            signer=data["signer"],
            meaning=data["meaning"],
            signed_at=datetime.fromisoformat(data["signed_at"].replace("Z", "+00:00")),
            record_type="dosimetry_review",
            record_id=review.review_id,
            record_hash=data["record_hash"],
            seal=data["seal"],
            key_id=data.get("key_id"),
        )
        unchanged = sig_logic.record_hash(review.record()) == sig.record_hash
        if sig.key_id is None:
            valid = unchanged  # sealed before key ids: the verified audit chain holding it vouches for it
        elif keys.has(sig.key_id):
            valid = sig_logic.verify(
                sig, review.record(), secret=keys.sub_key("e-signature", sig.key_id)
            ).valid
        else:
            valid = False
        out.append({**data, "valid": valid, "seq": row.seq})
    return out


def review_approved(session: Session, review: Review, *, keys: KeyRing) -> bool:
    """True when a valid ``approved`` signature is on the review."""
    return any(
        s["meaning"] == "approved" and s["valid"] for s in review_signatures(session, review, keys=keys)
    )


def reauthenticate_for_review(
    session: Session,
    me: Principal,
    review_id: str,
    meaning: str,
    password: object,
    *,
    store: Store,
    auth: Authenticator,
    client: str,
    keys: KeyRing,
) -> ReviewSigner:
    """Check who may sign the review with ``meaning`` and their password (outside a write transaction)."""
    review = store.review(review_id)
    if review is None:
        raise ApiError(404, "not_found", f"dosimetry review {review_id} not found")
    if meaning not in REVIEW_MEANINGS:
        raise ApiError(422, "invalid_input", "a dosimetry review is signed as checked or approved", "meaning")
    if me.role not in SIGNATURE_MEANING_ROLES[meaning] or me.role == "pharmacist":
        raise ApiError(403, "forbidden", f"role {me.role!r} may not sign a dosimetry review as {meaning!r}")
    auth.reauthenticate(me, password if isinstance(password, str) else "", client, purpose="signature")
    if any(
        s["signer"] == me.username and s["meaning"] == meaning
        for s in review_signatures(session, review, keys=keys)
    ):
        raise ApiError(409, "already_signed", f"{me.username} already signed this review as {meaning}")
    return ReviewSigner(me, review, meaning)


def sign_review(session: Session, signer: ReviewSigner, *, keys: KeyRing) -> None:
    """Write the review signature into the audit chain (in the caller's write transaction)."""
    me, review, meaning = signer.principal, signer.review, signer.meaning
    sig = sig_logic.sign(
        review.record(),
        secret=keys.sub_key("e-signature"),
        signer=me.username,
        meaning=meaning,
        signed_at=utcnow(),
        record_type="dosimetry_review",
        record_id=review.review_id,
        key_id=keys.active_id,
    )
    # checked again inside the write transaction (writers are serialised): no double signature
    for (after,) in session.execute(
        select(AuditEntryRow.after_json).where(
            AuditEntryRow.entity == "dosimetry_review",
            AuditEntryRow.entity_id == review.review_id,
            AuditEntryRow.action == "sign",
        )
    ):
        data = json.loads(after or "{}")
        if data.get("signer") == me.username and data.get("meaning") == meaning:
            raise ApiError(409, "already_signed", f"{me.username} already signed this review as {meaning}")
    audit_store.append(
        session,
        actor=me.username,
        at=sig.signed_at,
        action="sign",
        entity="dosimetry_review",
        entity_id=review.review_id,
        after={
            "signer": sig.signer,
            "signer_name": me.full_name or me.username,
            "meaning": sig.meaning,
            "signed_at": format_time(sig.signed_at),
            "record_hash": sig.record_hash,
            "seal": sig.seal,
            "key_id": sig.key_id,
        },
    )


def import_review(
    session: Session,
    me: Principal,
    *,
    store: Store,
    patient: str,
    cycle: int | None,
    zip_bytes: bytes | None,
    folder: str | None,
) -> Review:
    """Import a pipeline output folder (zip or server folder) as a review of ``patient``.

    The files are checked (patient and cycle of ``doses.json``), copied, and the import is written to
    the audit chain in the caller's write transaction; if that fails the copy is removed again.
    """
    row = session.execute(select(Patient).where(Patient.pseudonym == patient)).scalar_one_or_none()
    if row is None:
        raise ApiError(404, "not_found", f"patient {patient or '(none)'} not found", "patient")
    # images may carry the record number as Patient ID: compared here, never shown
    mrns = [
        mrn
        for (mrn,) in session.execute(select(PatientIdentity.mrn).where(PatientIdentity.patient_id == row.id))
    ]
    files, result, chosen = store.check_import(
        zip_bytes=zip_bytes, folder=folder, patient=patient, other_patient_ids=mrns, cycle=cycle
    )
    reconcile_with_administration(session, row, chosen, result, files, patient_aliases=mrns)
    now = utcnow()
    review = store.save_review(
        files,
        patient=patient,
        cycle=chosen,
        source=("upload" if zip_bytes is not None else folder or ""),
        imported_by=me.username,
        imported_at=now,
    )
    try:
        audit_store.append(
            session,
            actor=me.username,
            at=now,
            action="create",
            entity="dosimetry_review",
            entity_id=review.review_id,
            after=review.record() | {"source": review.source},
        )
    except Exception:
        store.discard_review(review.review_id)
        raise
    return review


def reconcile_with_administration(
    session: Session,
    patient: Patient,
    cycle: int,
    result: DosimetryResult,
    files: Mapping[str, bytes],
    *,
    patient_aliases: Sequence[str] = (),
) -> Administration:
    """Refuse (409 ``administration_mismatch``, nothing written) a dose record that is not of the
    administration the service recorded for the patient's cycle.

    Patient, cycle, radiopharmaceutical (registry spellings), nuclide, injection time (±1 min) and
    administered activity (±1 %) must agree (:func:`theradose.pharmacy.reconcile.compare_administration`);
    when ``provenance.json`` names the service administration the study was run from, it must be this one.
    """
    adm = administration_of_cycle(session, patient, cycle)
    record = record_of(session, adm)
    doses = result.record
    if doses is None:
        raise ApiError(422, "invalid_input", "doses.json could not be read as a dose record", "file")
    stated = AdministrationFacts(
        patient=doses.patient.id or None,
        cycle=doses.cycle,
        radiopharmaceutical=doses.administration.radiopharmaceutical,
        nuclide=doses.administration.nuclide,
        activity_mbq=doses.administration.activity_mbq,
        injection_time=doses.administration.datetime,
    )
    found = compare_administration(
        stated,
        record.facts(),
        stated_name="doses.json",
        recorded_name=f"administration {adm.id} of cycle {cycle}",
        patient_aliases=patient_aliases,
    )
    if found:
        raise ApiError(409, "administration_mismatch", found[0].message, found[0].field)
    named = _provenance_administration(files.get("provenance.json"))
    if named is not None and named != adm.id:
        raise ApiError(
            409,
            "administration_mismatch",
            f"administration_id: provenance.json says the study was run from administration {named}, "
            f"cycle {cycle} of {patient.pseudonym} is administration {adm.id}: import the output of that "
            "administration's study",
            "administration_id",
        )
    return adm


def _provenance_administration(data: bytes | None) -> int | None:
    """The service administration id named by a pipeline ``provenance.json`` (None when it names none)."""
    if data is None:
        return None
    try:
        provenance = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ApiError(422, "invalid_input", "provenance.json is not readable JSON", "file") from None
    named = provenance.get("administration_record") if isinstance(provenance, dict) else None
    if not isinstance(named, dict) or named.get("source") != "service":
        return None
    value = named.get("administration_id")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def list_reviews(
    session: Session, me: Principal, *, store: Store, keys: KeyRing, patient: str | None = None
) -> list[dict[str, Any]]:
    """Reviews (optionally of one patient) with whether each is approved."""
    return [
        {"review": r, "approved": review_approved(session, r, keys=keys)}
        for r in store.reviews(patient=patient)
    ]
