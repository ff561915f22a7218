"""Use cases of electronic signatures (21 CFR Part 11 style): re-authenticate, sign, list and verify.

Signing is two steps: :func:`reauthenticate` checks the re-entered password (outside any write
transaction, because password hashing is slow; throttled, failures audited, see
:class:`theradose.service.auth.Authenticator`) and returns a :class:`Signer`; :func:`sign_record` takes
that signer and writes the signature in the caller's write transaction. A signature can only be made by
a :class:`Signer`, so no caller can skip the password check, and an account whose password an
administrator set cannot sign until its owner has chosen a new one.

Seals use the e-signature sub-key of the active key of the key ring (kept outside the database) and
name its key id; a signature sealed before keys had ids (``key_id`` None) counts as valid only while
the audit trail records it exactly (the trail is sealed and verified).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from theradose.pharmacy import signatures as sig_logic
from theradose.pharmacy.audit import format_time
from theradose.pharmacy.directives import SIGNATURE_MEANING, SIGNING_ROLE
from theradose.service import audit_store
from theradose.service.auth import Authenticator, Principal
from theradose.service.errors import ApiError, conflict, not_found
from theradose.service.keys import KeyRing
from theradose.service.models import (
    Administration,
    Batch,
    CalibratorQa,
    Dispensing,
    Prescription,
    SignatureRow,
    row_to_dict,
)
from theradose.service.operations.common import Model, OptReason, utcnow
from theradose.service.operations.prescriptions import signed_content
from theradose.service.permissions import SIGNATURE_MEANING_ROLES

#: Records that can be signed: type → model.
SIGNABLE: dict[str, Any] = {
    "prescription": Prescription,
    "batch": Batch,
    "dispensing": Dispensing,
    "administration": Administration,
    "calibrator_qa": CalibratorQa,
}
RecordType = Literal["prescription", "batch", "dispensing", "administration", "calibrator_qa"]
Meaning = Literal["prepared", "checked", "approved", "administered"]
#: Meanings one person may give to the same record more than once (e.g. void after a re-release).
REPEATABLE_MEANINGS: frozenset[str] = frozenset({"overridden"})


class SignIn(Model):
    record_type: RecordType
    record_id: Annotated[int, Field(ge=1, le=2**31 - 1)]
    meaning: Meaning
    password: Annotated[str, Field(min_length=1, max_length=200)]
    reason: OptReason = None


class SignatureOut(BaseModel):
    id: int
    record_type: str
    record_id: str
    signer: str
    signer_name: str
    meaning: str
    signed_at: str
    record_hash: str
    valid: bool
    record_unchanged: bool
    key_id: str | None = None


@dataclass(frozen=True)
class Signer:
    """A user who has just re-entered their password to sign with ``meaning`` (see :func:`reauthenticate`)."""

    principal: Principal
    meaning: str


def reauthenticate(me: Principal, meaning: str, password: str, *, auth: Authenticator, client: str) -> Signer:
    """Check that ``me`` may sign with ``meaning`` and that ``password`` is theirs (403 while an
    administrator-set password awaits its change, 401 audited on a wrong one, 429 while locked)."""
    allowed = SIGNATURE_MEANING_ROLES[meaning]
    if me.role not in allowed:
        raise ApiError(
            403, "forbidden", f"role {me.role!r} may not sign as {meaning!r}; allowed: {sorted(allowed)}"
        )
    auth.reauthenticate(me, password, client, purpose="signature")
    return Signer(me, meaning)


def signed_record(session: Session, record_type: str, record_id: int) -> dict[str, Any]:
    """The canonical content of a signable record (what a signature is bound to)."""
    model = SIGNABLE[record_type]
    row = session.get(model, record_id)
    if row is None:
        raise not_found(record_type.replace("_", " "), record_id)
    if record_type == "prescription":
        return signed_content(row)
    data = row_to_dict(row)
    data.pop("version", None)  # stock bookkeeping changes do not void a batch signature
    if record_type == "batch":
        for key in ("remaining_activity_ref_mbq", "remaining_volume_ml", "status", "status_reason"):
            data.pop(key)
    if record_type == "dispensing":
        data.pop("status")  # the workflow state is not part of what is signed
    for key in ("void_reason", "voided_by", "voided_at", "voided"):
        data.pop(key, None)
    return data


def _unkeyed_signed_record(session: Session, record_type: str, record_id: int) -> dict[str, Any]:
    """The content a signature sealed before key ids was bound to: the record as it was then signed (the
    batch's status included), without the columns added since
    (:data:`theradose.service.audit_store.ADDED_AFTER_UNKEYED_SIGNATURES`)."""
    row = session.get(SIGNABLE[record_type], record_id)
    if row is None:
        raise not_found(record_type.replace("_", " "), record_id)
    data = signed_content(row) if record_type == "prescription" else row_to_dict(row)
    data.pop("version", None)
    if record_type == "batch":
        data.pop("remaining_activity_ref_mbq")
        data.pop("remaining_volume_ml")
    return audit_store.unkeyed_signature_view(record_type, data)


def signature_out(session: Session, row: SignatureRow, record: dict[str, Any], keys: KeyRing) -> SignatureOut:
    """The public view of a signature, its seal and the record's hash verified: the seal under the key
    it names (a key the ring does not hold is not valid); a signature from before key ids only while the
    audit trail records it exactly."""
    sig = sig_logic.Signature(
        signer=row.signer,
        meaning=row.meaning,
        signed_at=datetime.fromisoformat(row.signed_at.replace("Z", "+00:00")),
        record_type=row.record_type,
        record_id=row.record_id,
        record_hash=row.record_hash,
        seal=row.seal,
        key_id=row.key_id,
    )
    unchanged = sig_logic.record_hash(record) == row.record_hash
    if row.key_id is None:
        view = _unkeyed_signed_record(session, row.record_type, int(row.record_id))
        unchanged = sig_logic.record_hash(view) == row.record_hash
        check = sig_logic.SignatureCheck(audit_store.signature_recorded(session, row), unchanged)
    elif keys.has(row.key_id):
        check = sig_logic.verify(sig, record, secret=keys.sub_key("e-signature", row.key_id))
    else:
        check = sig_logic.SignatureCheck(False, unchanged)
    return SignatureOut(
        id=row.id,
        record_type=row.record_type,
        record_id=row.record_id,
        signer=row.signer,
        signer_name=row.signer_name,
        meaning=row.meaning,
        signed_at=row.signed_at,
        record_hash=row.record_hash,
        valid=check.valid,
        record_unchanged=check.record_unchanged,
        key_id=row.key_id,
    )


def seal_signature(
    session: Session,
    signer: Signer,
    record_type: str,
    record_id: int | str,
    record: dict[str, Any],
    *,
    keys: KeyRing,
    reason: str | None = None,
) -> SignatureRow:
    """Write ``signer``'s signature over ``record``, sealed under the active key, and its audit entry (in
    the caller's transaction)."""
    me = signer.principal
    same = session.execute(
        select(SignatureRow.record_hash).where(
            SignatureRow.record_type == record_type,
            SignatureRow.record_id == str(record_id),
            SignatureRow.signer == me.username,
            SignatureRow.meaning == signer.meaning,
        )
    ).all()
    # the same signature twice is refused; after the record changed (e.g. an edited directive) it is due again
    if signer.meaning not in REPEATABLE_MEANINGS and any(h == sig_logic.record_hash(record) for (h,) in same):
        raise conflict("already_signed", f"{me.username} already signed this record as {signer.meaning}")
    if me.must_change_password:  # also refused by reauthenticate; kept where the seal is made
        raise ApiError(403, "password_change_required", "set your own password before signing")
    earlier = session.execute(
        select(SignatureRow.signer, SignatureRow.meaning).where(
            SignatureRow.record_type == record_type, SignatureRow.record_id == str(record_id)
        )
    ).all()
    clash = sig_logic.four_eyes_conflict(me.username, signer.meaning, [(s, m) for s, m in earlier])
    if clash is not None:
        raise conflict("four_eyes", clash)
    sig = sig_logic.sign(
        record,
        secret=keys.sub_key("e-signature"),
        signer=me.username,
        meaning=signer.meaning,
        signed_at=utcnow(),
        record_type=record_type,
        record_id=str(record_id),
        key_id=keys.active_id,
    )
    row = SignatureRow(
        record_type=sig.record_type,
        record_id=sig.record_id,
        signer=sig.signer,
        signer_name=me.full_name or me.username,
        meaning=sig.meaning,
        signed_at=format_time(sig.signed_at),
        record_hash=sig.record_hash,
        seal=sig.seal,
        key_id=sig.key_id,
    )
    session.add(row)
    session.flush()
    audit_store.append(
        session,
        actor=me.username,
        at=sig.signed_at,
        action="sign",
        entity=record_type,
        entity_id=str(record_id),
        after=row_to_dict(row),
        reason=reason,
    )
    return row


def sign_record(session: Session, signer: Signer, body: SignIn, *, keys: KeyRing) -> SignatureOut:
    """Sign a record as ``signer`` (who re-authenticated for ``body.meaning``).

    A written directive is signed ``approved`` by a physician (the authorized user) while it is a draft;
    the signature makes it ``signed``. "prepared" and "checked" must come from two people.
    """
    me = signer.principal
    if signer.meaning != body.meaning:
        raise ApiError(403, "forbidden", f"re-authenticated for {signer.meaning!r}, not {body.meaning!r}")
    if body.record_type == "prescription" and body.meaning == SIGNATURE_MEANING:
        if me.role != SIGNING_ROLE:
            raise ApiError(
                403,
                "forbidden",
                f"a written directive is signed as approved by a {SIGNING_ROLE}, not a {me.role}",
            )
        rx = session.get(Prescription, body.record_id, with_for_update=True)
        if rx is None:
            raise not_found("prescription", body.record_id)
        if rx.status != "draft":
            raise conflict(
                "prescription_not_draft",
                f"prescription {rx.id} is {rx.status}: only a draft is signed",
                "record_id",
            )
    record = signed_record(session, body.record_type, body.record_id)
    row = seal_signature(
        session, signer, body.record_type, body.record_id, record, keys=keys, reason=body.reason
    )
    if body.record_type == "prescription" and body.meaning == SIGNATURE_MEANING:
        rx = session.get(Prescription, body.record_id)
        assert rx is not None
        before = row_to_dict(rx)
        rx.status = "signed"
        session.flush()
        audit_store.append(
            session,
            actor=me.username,
            at=utcnow(),
            action="update",
            entity="prescription",
            entity_id=rx.id,
            before=before,
            after=row_to_dict(rx),
            reason="signed by the authorized user",
        )
    return signature_out(session, row, record, keys)


def list_signatures(
    session: Session,
    me: Principal,
    record_type: str,
    record_id: int,
    *,
    keys: KeyRing,
    limit: int | None = None,
    offset: int = 0,
) -> list[SignatureOut]:
    """The signatures of a record, each verified."""
    record = signed_record(session, record_type, record_id)
    rows = session.execute(
        select(SignatureRow)
        .where(SignatureRow.record_type == record_type, SignatureRow.record_id == str(record_id))
        .order_by(SignatureRow.id)
        .limit(limit)
        .offset(offset)
    ).scalars()
    return [signature_out(session, r, record, keys) for r in list(rows)]
