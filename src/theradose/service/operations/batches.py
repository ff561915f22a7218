"""Use cases of batches: receipt (quarantine), QC results, release, stock."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from theradose.pharmacy import batches as batch_logic
from theradose.pharmacy.decay import canonical_nuclide, remaining_activity_mbq
from theradose.pharmacy.identifiers import identifier_key
from theradose.service import audit_store
from theradose.service.auth import Principal
from theradose.service.errors import ApiError, conflict
from theradose.service.models import Batch, Delivery, QcResultRow, row_to_dict
from theradose.service.operations.common import (
    ActivityMBq,
    Finite,
    Model,
    OptReason,
    Time,
    VolumeML,
    get_or_404,
    opt_text,
    text,
    utcnow,
)


class BatchIn(Model):
    product: text(200)  # type: ignore[valid-type]
    nuclide: text(20)  # type: ignore[valid-type]
    lot: text(100)  # type: ignore[valid-type]
    activity_mbq: ActivityMBq
    volume_ml: VolumeML
    reference_time: Time
    expiry_time: Time
    delivery_id: Annotated[int | None, Field(default=None, ge=1, le=2**31 - 1)] = None


class QcIn(Model):
    test: text(100)  # type: ignore[valid-type]
    value: Finite
    unit: opt_text(30) = ""  # type: ignore[valid-type]
    lower_limit: Finite | None = None
    upper_limit: Finite | None = None
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
    qc: list[QcOut]


class ReleaseIn(Model):
    reason: OptReason = None


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
    """Register a batch in quarantine."""
    nuclide = canonical_nuclide(body.nuclide)
    batch_logic.Batch(
        body.product,
        nuclide,
        body.lot,
        body.activity_mbq,
        body.volume_ml,
        body.reference_time,
        body.expiry_time,
    )
    if body.delivery_id is not None:
        get_or_404(session, Delivery, body.delivery_id)
    product_key, lot_key = identifier_key(body.product), identifier_key(body.lot)
    exists = session.execute(
        select(Batch.lot).where(Batch.product_key == product_key, Batch.lot_key == lot_key)
    ).scalar_one_or_none()
    if exists is not None:
        raise conflict(
            "conflict", f"batch {body.product} lot {exists!r} exists (same as {body.lot!r})", "lot"
        )
    row = Batch(
        product=body.product,
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
    """Record a QC result of a batch in quarantine (a repeated test needs a reason)."""
    result = batch_logic.QcResult(body.test, body.value, body.unit, body.lower_limit, body.upper_limit)
    batch = get_or_404(session, Batch, batch_id, lock=True)
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
    session: Session, me: Principal, batch_id: int, body: ReleaseIn, *, required_qc: Sequence[str]
) -> BatchOut:
    """Release a batch from quarantine when every required QC test passed and it is in date."""
    batch = get_or_404(session, Batch, batch_id, lock=True)
    if batch.status != "quarantine":
        raise conflict("batch_not_in_quarantine", f"batch {batch.id} is already {batch.status}")
    rows = qc_rows(session, batch.id)
    decision = batch_logic.release_decision(
        domain_batch(batch),
        [batch_logic.QcResult(q.test, q.value, q.unit, q.lower_limit, q.upper_limit) for q in rows],
        decision_time=utcnow(),
        required_tests=required_qc,
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
    return batch_out(batch, rows)


def find_batch(session: Session, me: Principal, batch_id: int) -> BatchOut | None:
    """One batch with its QC results, or None."""
    row = session.get(Batch, batch_id)
    return None if row is None else batch_out(row, qc_rows(session, row.id))
