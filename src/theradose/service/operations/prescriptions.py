"""Use cases of written directives (prescriptions): write (draft), edit, sign, cancel, read.

Status model (:mod:`theradose.pharmacy.directives`): ``draft`` → ``signed`` (a physician's e-signature
with the meaning ``approved``) → dispensed and administered; ``cancelled`` with a reason. Editing a
signed directive returns it to ``draft``. The product is taken from the product registry; the activity
is checked against the product's protocol range; one directive per patient and cycle.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from theradose.pharmacy import signatures as sig_logic
from theradose.pharmacy.administration import Route
from theradose.pharmacy.decay import canonical_nuclide
from theradose.pharmacy.directives import check_plausibility, not_dispensable_reason
from theradose.planning.protocols import protocol_for_product
from theradose.products import Product, get_product
from theradose.service import audit_store
from theradose.service.auth import Principal
from theradose.service.errors import ApiError, conflict
from theradose.service.keys import KeyRing
from theradose.service.models import Dispensing, Patient, Prescription, Referral, SignatureRow, row_to_dict
from theradose.service.operations.common import (
    ActivityMBq,
    Model,
    OptReason,
    Pseudonym,
    get_or_404,
    patient_by_pseudonym,
    text,
    utcnow,
)

PlannedDate = Annotated[date | None, Field(default=None, ge=date(1970, 1, 1), le=date(2200, 1, 1))]


class PrescriptionIn(Model):
    patient: Pseudonym
    radiopharmaceutical: text(200)  # type: ignore[valid-type]
    nuclide: Annotated[str | None, Field(default=None, max_length=20)] = None
    prescribed_activity_mbq: ActivityMBq
    route: Route = "intravenous"
    plan_id: Annotated[str | None, Field(default=None, max_length=100, pattern=r"^[^\x00-\x1f]*$")] = None
    cycle: Annotated[int, Field(ge=1, le=100)] = 1
    referral_id: Annotated[int | None, Field(default=None, ge=1, le=2**31 - 1)] = None
    planned_date: PlannedDate = None
    range_reason: OptReason = None


class PrescriptionEdit(Model):
    prescribed_activity_mbq: ActivityMBq | None = None
    route: Route | None = None
    planned_date: PlannedDate = None
    range_reason: OptReason = None
    reason: text(500)  # type: ignore[valid-type]


class PrescriptionOut(BaseModel):
    id: int
    patient: str
    radiopharmaceutical: str
    product_code: str | None
    nuclide: str
    prescribed_activity_mbq: float
    route: str
    authorized_user: str
    plan_id: str | None
    cycle: int
    written_at: datetime
    planned_date: date | None
    range_reason: str | None
    status: str
    signed_by: str | None
    signed_at: str | None


class CancelIn(Model):
    reason: text(500)  # type: ignore[valid-type]


def signed_content(row: Prescription) -> dict[str, object]:
    """What a directive's signature binds: every column but the workflow status."""
    data = row_to_dict(row)
    data.pop("status")
    return data


def valid_approval(session: Session, row: Prescription, *, keys: KeyRing) -> SignatureRow | None:
    """The newest physician ``approved`` signature that still matches the directive's content, or None."""
    content = signed_content(row)
    rows = session.execute(
        select(SignatureRow)
        .where(
            SignatureRow.record_type == "prescription",
            SignatureRow.record_id == str(row.id),
            SignatureRow.meaning == "approved",
        )
        .order_by(SignatureRow.id.desc())
    ).scalars()
    for sig_row in rows:
        sig = sig_logic.Signature(
            signer=sig_row.signer,
            meaning=sig_row.meaning,
            signed_at=datetime.fromisoformat(sig_row.signed_at.replace("Z", "+00:00")),
            record_type="prescription",
            record_id=sig_row.record_id,
            record_hash=sig_row.record_hash,
            seal=sig_row.seal,
            key_id=sig_row.key_id,
        )
        if sig_row.key_id is None:  # sealed before key ids: valid while the verified trail records it
            view = audit_store.unkeyed_signature_view("prescription", content)
            if sig_logic.record_hash(view) == sig_row.record_hash and audit_store.signature_recorded(
                session, sig_row
            ):
                return sig_row
        elif keys.has(sig_row.key_id):
            if sig_logic.verify(sig, content, secret=keys.sub_key("e-signature", sig_row.key_id)).valid:
                return sig_row
    return None


def require_dispensable(session: Session, row: Prescription, *, keys: KeyRing) -> None:
    """Refuse (409) a directive that is not signed with a signature matching its content."""
    reason = not_dispensable_reason(
        row.status,
        signature_valid=row.status == "signed" and valid_approval(session, row, keys=keys) is not None,
    )
    if reason is not None:
        code = "prescription_not_signed" if row.status != "cancelled" else "prescription_not_active"
        raise conflict(code, f"prescription {row.id}: {reason}", "prescription_id")


def prescription_out(
    row: Prescription, pseudonym: str, approval: SignatureRow | None = None
) -> PrescriptionOut:
    """The public view of a written directive."""
    return PrescriptionOut(
        id=row.id,
        patient=pseudonym,
        radiopharmaceutical=row.radiopharmaceutical,
        product_code=row.product_code,
        nuclide=row.nuclide,
        prescribed_activity_mbq=row.prescribed_activity_mbq,
        route=row.route,
        authorized_user=row.authorized_user,
        plan_id=row.plan_id,
        cycle=row.cycle,
        written_at=row.written_at,
        planned_date=row.planned_date,
        range_reason=row.range_reason,
        status=row.status,
        signed_by=approval.signer if approval and row.status == "signed" else None,
        signed_at=approval.signed_at if approval and row.status == "signed" else None,
    )


def _check_activity(activity_mbq: float, product: Product, range_reason: str | None) -> None:
    check = check_plausibility(activity_mbq, protocol_for_product(product.name))
    if check.implausible:
        raise ApiError(422, "implausible_activity", check.message, "prescribed_activity_mbq")
    if not check.within_range and range_reason is None:
        raise conflict("activity_outside_protocol", check.message, "prescribed_activity_mbq")


def create_prescription(session: Session, me: Principal, body: PrescriptionIn) -> PrescriptionOut:
    """Write a written directive as a draft (the writer is its authorized user; a physician signs it)."""
    product = get_product(body.radiopharmaceutical, field="radiopharmaceutical")
    if body.nuclide is not None and canonical_nuclide(body.nuclide) != product.nuclide:
        raise ApiError(
            422,
            "invalid_input",
            f"nuclide {body.nuclide!r} is not that of {product.name} ({product.nuclide})",
            "nuclide",
        )
    _check_activity(body.prescribed_activity_mbq, product, body.range_reason)
    patient = patient_by_pseudonym(session, body.patient)
    if body.referral_id is not None:
        referral = get_or_404(session, Referral, body.referral_id)
        if referral.patient_id != patient.id:
            raise ApiError(422, "invalid_input", "referral_id belongs to another patient", "referral_id")
    duplicate = session.execute(
        select(Prescription).where(
            Prescription.patient_id == patient.id,
            Prescription.cycle == body.cycle,
            Prescription.status != "cancelled",
        )
    ).scalar_one_or_none()
    if duplicate is not None:
        raise conflict(
            "duplicate_cycle",
            f"cycle {body.cycle} of {patient.pseudonym} already has written directive {duplicate.id} "
            f"({duplicate.status}): edit or cancel it",
            "cycle",
        )
    row = Prescription(
        patient_id=patient.id,
        referral_id=body.referral_id,
        radiopharmaceutical=product.name,
        product_code=product.code,
        nuclide=product.nuclide,
        prescribed_activity_mbq=body.prescribed_activity_mbq,
        route=body.route,
        authorized_user=me.username,
        plan_id=body.plan_id,
        cycle=body.cycle,
        written_at=utcnow(),
        planned_date=body.planned_date,
        range_reason=body.range_reason,
        status="draft",
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
        reason=body.range_reason,
    )
    return prescription_out(row, patient.pseudonym)


def edit_prescription(
    session: Session, me: Principal, prescription_id: int, body: PrescriptionEdit
) -> PrescriptionOut:
    """Change a directive before it is dispensed; a signed one returns to draft (sign it again)."""
    row = get_or_404(session, Prescription, prescription_id, lock=True)
    if row.status == "cancelled":
        raise conflict("prescription_not_active", f"prescription {row.id} is cancelled")
    if session.execute(
        select(Dispensing).where(Dispensing.prescription_id == row.id, Dispensing.status == "active")
    ).first():
        raise conflict(
            "already_dispensed", f"prescription {row.id} has an active dispensing: void it before editing"
        )
    before = row_to_dict(row)
    if body.prescribed_activity_mbq is not None:
        product = get_product(row.product_code or row.radiopharmaceutical, field="radiopharmaceutical")
        _check_activity(body.prescribed_activity_mbq, product, body.range_reason or row.range_reason)
        row.prescribed_activity_mbq = body.prescribed_activity_mbq
    if body.route is not None:
        row.route = body.route
    if body.planned_date is not None:
        row.planned_date = body.planned_date
    if body.range_reason is not None:
        row.range_reason = body.range_reason
    if row_to_dict(row) == before:
        raise ApiError(422, "invalid_input", "nothing changed: give a new value", None)
    row.status = "draft"
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


def get_prescription(
    session: Session, me: Principal, prescription_id: int, *, keys: KeyRing
) -> PrescriptionOut:
    """One written directive."""
    row = get_or_404(session, Prescription, prescription_id)
    patient = session.get(Patient, row.patient_id)
    assert patient is not None
    return prescription_out(row, patient.pseudonym, valid_approval(session, row, keys=keys))


def cancel_prescription(
    session: Session, me: Principal, prescription_id: int, body: CancelIn
) -> PrescriptionOut:
    """Cancel a directive (draft or signed), with a reason."""
    row = get_or_404(session, Prescription, prescription_id, lock=True)
    if row.status == "cancelled":
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
