"""Use cases of batches: receipt (quarantine), QC results, release, stock."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, StrictBool
from sqlalchemy import select
from sqlalchemy.orm import Session

from theradose.pharmacy import batches as batch_logic
from theradose.pharmacy.decay import canonical_nuclide, remaining_activity_mbq
from theradose.pharmacy.identifiers import identifier_key
from theradose.pharmacy.signatures import four_eyes_conflict
from theradose.products import get_product
from theradose.service import audit_store
from theradose.service.auth import Principal
from theradose.service.errors import ApiError, conflict
from theradose.service.keys import KeyRing
from theradose.service.models import Batch, Delivery, Dispensing, QcResultRow, row_to_dict
from theradose.service.operations.common import (
    ActivityMBq,
    Finite,
    Model,
    OptReason,
    Time,
    VolumeML,
    get_or_404,
    text,
    utcnow,
)
from theradose.service.operations.signatures import Signer, seal_signature, signed_record
from theradose.service.operations.specifications import current_specification, spec_tests


class BatchIn(Model):
    product: text(200)  # type: ignore[valid-type]
    nuclide: Annotated[str | None, Field(default=None, max_length=20)] = None
    lot: text(100)  # type: ignore[valid-type]
    activity_mbq: ActivityMBq
    volume_ml: VolumeML
    reference_time: Time
    expiry_time: Time
    delivery_id: Annotated[int | None, Field(default=None, ge=1, le=2**31 - 1)] = None
    carrier_added: StrictBool | None = None  # true or false from the certificate, never "yes" or 1


class QcIn(Model):
    test: text(100)  # type: ignore[valid-type]
    value: Finite
    reason: OptReason = None


class QcOut(BaseModel):
    id: int
    test: str
    value: float
    unit: str
    lower_limit: float | None
    upper_limit: float | None
    passed: bool
    recorded_at: datetime
    recorded_by: str


class BatchOut(BaseModel):
    id: int
    product: str
    nuclide: str
    lot: str
    activity_mbq: float
    volume_ml: float
    reference_time: datetime
    expiry_time: datetime
    status: str
    remaining_activity_ref_mbq: float
    remaining_volume_ml: float
    #: 0 once decayed beyond the float range; null when the reference time is so far ahead that the
    #: correction back would overflow.
    remaining_activity_now_mbq: float | None
    version: int
    product_code: str | None
    carrier_added: bool | None
    specification_id: int | None
    status_reason: str | None
    qc: list[QcOut]


class ReleaseIn(Model):
    password: Annotated[str, Field(min_length=1, max_length=200)]
    reason: OptReason = None


class BatchStatusIn(Model):
    reason: text(500)  # type: ignore[valid-type]


def domain_batch(row: Batch) -> batch_logic.Batch:
    """The pure domain object of a stored batch."""
    return batch_logic.Batch(
        product=row.product,
        nuclide=row.nuclide,
        lot=row.lot,
        activity_mbq=row.activity_mbq,
        volume_ml=row.volume_ml,
        reference_time=row.reference_time,
        expiry_time=row.expiry_time,
    )


def qc_rows(session: Session, batch_id: int) -> list[QcResultRow]:
    """The QC results of a batch in the order recorded."""
    return list(
        session.execute(
            select(QcResultRow).where(QcResultRow.batch_id == batch_id).order_by(QcResultRow.id)
        ).scalars()
    )


def qc_out(row: QcResultRow) -> QcOut:
    """The public view of a QC result."""
    return QcOut(**{k: v for k, v in row_to_dict(row).items() if k != "batch_id"})


def batch_out(row: Batch, qc: Sequence[QcResultRow]) -> BatchOut:
    """The public view of a batch with its QC results and the remaining activity now."""
    data = row_to_dict(row)
    data.pop("delivery_id")
    now_mbq = remaining_activity_mbq(
        row.remaining_activity_ref_mbq, row.nuclide, from_time=row.reference_time, to_time=utcnow()
    )
    return BatchOut(**data, remaining_activity_now_mbq=now_mbq, qc=[qc_out(q) for q in qc])


def create_batch(session: Session, me: Principal, body: BatchIn) -> BatchOut:
    """Register a batch of a registry product in quarantine, graded later against the product's current
    release specification. For 177Lu the production route (carrier-added or not) must be stated: it
    decides whether its waste contains 177mLu."""
    product = get_product(body.product)
    nuclide = product.nuclide
    if body.nuclide is not None and canonical_nuclide(body.nuclide) != nuclide:
        raise ApiError(
            422,
            "invalid_input",
            f"nuclide {body.nuclide!r} is not that of {product.name} ({nuclide})",
            "nuclide",
        )
    if nuclide == "Lu-177" and body.carrier_added is None:
        raise ApiError(
            422,
            "validation_error",
            "carrier_added: state whether the 177Lu is carrier-added (contains 177mLu) from the certificate "
            "of analysis",
            "carrier_added",
        )
    batch_logic.Batch(
        product.name,
        nuclide,
        body.lot,
        body.activity_mbq,
        body.volume_ml,
        body.reference_time,
        body.expiry_time,
    )
    spec = current_specification(session, product.code)
    if spec is None:
        raise conflict(
            "no_specification",
            f"{product.name} has no release specification: a pharmacist writes one",
            "product",
        )
    if body.delivery_id is not None:
        get_or_404(session, Delivery, body.delivery_id)
    product_key, lot_key = identifier_key(product.name), identifier_key(body.lot)
    exists = session.execute(
        select(Batch.lot).where(Batch.product_key == product_key, Batch.lot_key == lot_key)
    ).scalar_one_or_none()
    if exists is not None:
        raise conflict(
            "conflict", f"batch {product.name} lot {exists!r} exists (same as {body.lot!r})", "lot"
        )
    row = Batch(
        product=product.name,
        product_code=product.code,
        carrier_added=body.carrier_added,
        specification_id=spec.id,
        nuclide=nuclide,
        lot=body.lot,
        product_key=product_key,
        lot_key=lot_key,
        activity_mbq=body.activity_mbq,
        volume_ml=body.volume_ml,
        reference_time=body.reference_time,
        expiry_time=body.expiry_time,
        status="quarantine",
        remaining_activity_ref_mbq=body.activity_mbq,
        remaining_volume_ml=body.volume_ml,
        delivery_id=body.delivery_id,
        version=1,
    )
    session.add(row)
    session.flush()
    audit_store.append(
        session,
        actor=me.username,
        at=utcnow(),
        action="create",
        entity="batch",
        entity_id=row.id,
        after=row_to_dict(row),
    )
    return batch_out(row, [])


def list_batches(
    session: Session, me: Principal, *, limit: int = 100, offset: int = 0, with_qc: bool = True
) -> list[BatchOut]:
    """Batches, newest first."""
    rows = list(
        session.execute(select(Batch).order_by(Batch.id.desc()).limit(limit).offset(offset)).scalars()
    )
    return [batch_out(r, qc_rows(session, r.id) if with_qc else []) for r in rows]


def get_batch(session: Session, me: Principal, batch_id: int) -> BatchOut:
    """One batch with its QC results and remaining stock."""
    row = get_or_404(session, Batch, batch_id)
    return batch_out(row, qc_rows(session, row.id))


def add_qc(session: Session, me: Principal, batch_id: int, body: QcIn) -> QcOut:
    """Record a QC result of a batch in quarantine, graded against the batch's release specification
    (units and limits come from the specification, never from the client); a repeat needs a reason."""
    batch = get_or_404(session, Batch, batch_id, lock=True)
    if batch.specification_id is None:
        raise conflict("no_specification", f"batch {batch.id} has no release specification", "test")
    tests = spec_tests(session, batch.specification_id)
    if body.test not in tests:
        raise ApiError(
            422,
            "invalid_input",
            f"test {body.test!r} is not in the release specification of {batch.product}: use one of "
            f"{', '.join(sorted(tests))}",
            "test",
        )
    spec = tests[body.test]
    result = batch_logic.QcResult(body.test, body.value, spec.unit, spec.lower_limit, spec.upper_limit)
    if batch.status != "quarantine":
        raise conflict(
            "batch_not_in_quarantine", f"batch {batch.id} is {batch.status}; QC is recorded before release"
        )
    retest = session.execute(
        select(QcResultRow).where(QcResultRow.batch_id == batch.id, QcResultRow.test == body.test)
    ).first()
    if retest and not body.reason:
        raise ApiError(422, "validation_error", "reason is required when a QC test is repeated", "reason")
    row = QcResultRow(
        batch_id=batch.id,
        test=result.test,
        value=result.value,
        unit=result.unit,
        lower_limit=result.lower_limit,
        upper_limit=result.upper_limit,
        passed=result.passed,
        recorded_at=utcnow(),
        recorded_by=me.username,
        specification_id=batch.specification_id,
    )
    session.add(row)
    session.flush()
    audit_store.append(
        session,
        actor=me.username,
        at=utcnow(),
        action="create",
        entity="qc_result",
        entity_id=row.id,
        after=row_to_dict(row),
        reason=body.reason,
    )
    return qc_out(row)


def release_batch(
    session: Session, signer: Signer, batch_id: int, body: ReleaseIn, *, keys: KeyRing
) -> BatchOut:
    """Release a batch from quarantine: an e-signature (meaning ``released``) by a pharmacist other than
    anyone who recorded its QC, when every test of its specification passed and it is in date."""
    me = signer.principal
    if signer.meaning != "released":
        raise ApiError(403, "forbidden", "release needs a signature with the meaning released")
    batch = get_or_404(session, Batch, batch_id, lock=True)
    if batch.status != "quarantine":
        raise conflict("batch_not_in_quarantine", f"batch {batch.id} is already {batch.status}")
    rows = qc_rows(session, batch.id)
    clash = four_eyes_conflict(me.username, "released", [(q.recorded_by, "qc_recorded") for q in rows])
    if clash is not None:
        raise conflict("four_eyes", f"batch not released: {clash}", "password")
    required = tuple(spec_tests(session, batch.specification_id)) if batch.specification_id else ()
    if not required:
        raise conflict(
            "release_refused", f"batch not released: batch {batch.id} has no release specification"
        )
    decision = batch_logic.release_decision(
        domain_batch(batch),
        [batch_logic.QcResult(q.test, q.value, q.unit, q.lower_limit, q.upper_limit) for q in rows],
        decision_time=utcnow(),
        required_tests=required,
    )
    if not decision.released:
        raise conflict("release_refused", "batch not released: " + "; ".join(decision.reasons))
    before = row_to_dict(batch)
    batch.status = "released"
    batch.version += 1
    session.flush()
    audit_store.append(
        session,
        actor=me.username,
        at=utcnow(),
        action="update",
        entity="batch",
        entity_id=batch.id,
        before=before,
        after=row_to_dict(batch),
        reason=body.reason or "QC release",
    )
    record = signed_record(session, "batch", batch.id)
    seal_signature(session, signer, "batch", batch.id, record, keys=keys, reason=body.reason)
    return batch_out(batch, rows)


def set_batch_status(
    session: Session, me: Principal, batch_id: int, body: BatchStatusIn, *, to: str
) -> BatchOut:
    """Reject a batch in quarantine (``to="rejected"``) or void a batch entered in error (``to="voided"``),
    with a reason. A batch with a dispensing that is not voided cannot be voided."""
    batch = get_or_404(session, Batch, batch_id, lock=True)
    if batch.status in ("rejected", "voided"):
        raise conflict("batch_closed", f"batch {batch.id} is already {batch.status}")
    if to == "rejected" and batch.status != "quarantine":
        raise conflict(
            "batch_not_in_quarantine", f"batch {batch.id} is {batch.status}: only quarantine is rejected"
        )
    if (
        to == "voided"
        and session.execute(
            select(Dispensing).where(Dispensing.batch_id == batch.id, Dispensing.status != "voided")
        ).first()
    ):
        raise conflict("batch_in_use", f"batch {batch.id} has doses dispensed: void them first")
    before = row_to_dict(batch)
    batch.status = to
    batch.status_reason = body.reason
    batch.version += 1
    session.flush()
    audit_store.append(
        session,
        actor=me.username,
        at=utcnow(),
        action="update",
        entity="batch",
        entity_id=batch.id,
        before=before,
        after=row_to_dict(batch),
        reason=body.reason,
    )
    return batch_out(batch, qc_rows(session, batch.id))


def find_batch(session: Session, me: Principal, batch_id: int) -> BatchOut | None:
    """One batch with its QC results, or None."""
    row = session.get(Batch, batch_id)
    return None if row is None else batch_out(row, qc_rows(session, row.id))
