"""Use cases of dosimetry reviews: import a pipeline output, list, sign (checked/approved).

Reviews are files kept by :class:`theradose.service.review_store.Store`; their signatures are audit
entries of entity ``dosimetry_review`` (action ``sign``) carrying the seal of
:mod:`theradose.pharmacy.signatures` over :meth:`Review.record`, made with the e-signature sub-key of the
key named by its ``key_id`` (entries without one were sealed before key ids; the sealed audit chain that
holds them vouches for them).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from theradose.pharmacy import signatures as sig_logic
from theradose.pharmacy.audit import format_time
from theradose.service import audit_store
from theradose.service.auth import Authenticator, Principal
from theradose.service.errors import ApiError
from theradose.service.keys import KeyRing
from theradose.service.models import AuditEntryRow, Patient, PatientIdentity
from theradose.service.operations.common import utcnow
from theradose.service.permissions import SIGNATURE_MEANING_ROLES
from theradose.service.review_store import Review, Store

#: Meanings a dosimetry review can be signed with.
REVIEW_MEANINGS: tuple[str, ...] = ("checked", "approved")


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
    files, _result, chosen = store.check_import(
        zip_bytes=zip_bytes, folder=folder, patient=patient, other_patient_ids=mrns, cycle=cycle
    )
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


def list_reviews(
    session: Session, me: Principal, *, store: Store, keys: KeyRing, patient: str | None = None
) -> list[dict[str, Any]]:
    """Reviews (optionally of one patient) with whether each is approved."""
    return [
        {"review": r, "approved": review_approved(session, r, keys=keys)}
        for r in store.reviews(patient=patient)
    ]
