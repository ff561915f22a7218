"""Deliveries, generators, batches (QC, release), dispensing, administration and RRDSR."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy import select

from theradose.pharmacy import batches as batch_logic
from theradose.pharmacy import deliveries as delivery_logic
from theradose.pharmacy.administration import Route, net_administered_activity
from theradose.pharmacy.decay import canonical_nuclide
from theradose.pharmacy.dispensing import BatchStock, InsufficientStockError, dispense
from theradose.pharmacy.regulatory import check_dosage
from theradose.service import audit_store
from theradose.service.api._common import (
    ActivityMBq,
    Finite,
    IdPath,
    Limit,
    Model,
    NonNegActivityMBq,
    Offset,
    Time,
    VolumeML,
    get_or_404,
    opt_text,
    text,
    utcnow,
)
from theradose.service.auth import Principal, require
from theradose.service.errors import ERROR_RESPONSES, ApiError, conflict
from theradose.service.models import (
    Administration,
    Batch,
    Delivery,
    Dispensing,
    Generator,
    Patient,
    Prescription,
    QcResultRow,
    row_to_dict,
)

router = APIRouter(responses=ERROR_RESPONSES)


# --- deliveries and generators ------------------------------------------------------------------------------
class DeliveryIn(Model):
    nuclide: text(20)  # type: ignore[valid-type]
    supplier: text(200)  # type: ignore[valid-type]
    lot: text(100)  # type: ignore[valid-type]
    activity_mbq: ActivityMBq
    calibration_time: Time
    received_at: Time | None = None


class DeliveryOut(BaseModel):
    id: int
    nuclide: str
    supplier: str
    lot: str
    activity_mbq: float
    calibration_time: datetime
    received_at: datetime


@router.post("/deliveries", tags=["deliveries"], status_code=201, summary="Receive a radionuclide delivery")
def create_delivery(
    body: DeliveryIn, request: Request, me: Annotated[Principal, require("deliveries:write")]
) -> DeliveryOut:
    nuclide = canonical_nuclide(body.nuclide)
    received = body.received_at or utcnow()
    delivery_logic.Delivery(
        nuclide, body.supplier, body.lot, body.activity_mbq, body.calibration_time, received
    )
    with request.app.state.db.write() as session:
        row = Delivery(
            nuclide=nuclide,
            supplier=body.supplier,
            lot=body.lot,
            activity_mbq=body.activity_mbq,
            calibration_time=body.calibration_time,
            received_at=received,
        )
        session.add(row)
        session.flush()
        audit_store.append(
            session,
            actor=me.username,
            at=utcnow(),
            action="create",
            entity="delivery",
            entity_id=row.id,
            after=row_to_dict(row),
        )
        return DeliveryOut(**row_to_dict(row))


@router.get("/deliveries", tags=["deliveries"], summary="List deliveries, newest first")
def list_deliveries(
    request: Request,
    me: Annotated[Principal, require("deliveries:read")],
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[DeliveryOut]:
    with request.app.state.db.read() as session:
        rows = session.execute(
            select(Delivery).order_by(Delivery.id.desc()).limit(limit).offset(offset)
        ).scalars()
        return [DeliveryOut(**row_to_dict(r)) for r in rows]


class GeneratorIn(Model):
    serial: text(100)  # type: ignore[valid-type]
    parent: text(20)  # type: ignore[valid-type]
    daughter: text(20)  # type: ignore[valid-type]
    parent_activity_mbq: ActivityMBq
    calibration_time: Time


class GeneratorOut(BaseModel):
    id: int
    serial: str
    parent: str
    daughter: str
    parent_activity_mbq: float
    calibration_time: datetime


class GeneratorYieldOut(BaseModel):
    generator_id: int
    at_time: datetime
    last_elution: datetime
    parent_activity_mbq: float
    daughter_activity_mbq: float


@router.post("/generators", tags=["deliveries"], status_code=201, summary="Register a generator")
def create_generator(
    body: GeneratorIn, request: Request, me: Annotated[Principal, require("deliveries:write")]
) -> GeneratorOut:
    parent, daughter = canonical_nuclide(body.parent), canonical_nuclide(body.daughter)
    delivery_logic.Generator(parent, daughter, body.serial, body.parent_activity_mbq, body.calibration_time)
    with request.app.state.db.write() as session:
        if session.execute(select(Generator).where(Generator.serial == body.serial)).first():
            raise conflict("conflict", f"generator {body.serial!r} exists", "serial")
        row = Generator(
            serial=body.serial,
            parent=parent,
            daughter=daughter,
            parent_activity_mbq=body.parent_activity_mbq,
            calibration_time=body.calibration_time,
        )
        session.add(row)
        session.flush()
        audit_store.append(
            session,
            actor=me.username,
            at=utcnow(),
            action="create",
            entity="generator",
            entity_id=row.id,
            after=row_to_dict(row),
        )
        return GeneratorOut(**row_to_dict(row))


@router.get(
    "/generators/{generator_id}/available", tags=["deliveries"], summary="Daughter activity available"
)
def generator_available(
    generator_id: IdPath,
    last_elution: Time,
    at_time: Time,
    request: Request,
    me: Annotated[Principal, require("deliveries:read")],
) -> GeneratorYieldOut:
    with request.app.state.db.read() as session:
        row = get_or_404(session, Generator, generator_id)
    gen = delivery_logic.Generator(
        row.parent, row.daughter, row.serial, row.parent_activity_mbq, row.calibration_time
    )
    daughter = delivery_logic.daughter_activity_mbq(gen, last_elution=last_elution, at_time=at_time)
    return GeneratorYieldOut(
        generator_id=row.id,
        at_time=at_time,
        last_elution=last_elution,
        parent_activity_mbq=gen.parent_activity_at_mbq(at_time),
        daughter_activity_mbq=daughter,
    )


# --- batches ------------------------------------------------------------------------------------------------
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
    reason: Annotated[str | None, Field(default=None, max_length=500, pattern=r"^[^\x00-\x1f]*$")] = None


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
    remaining_activity_now_mbq: float
    version: int
    qc: list[QcOut]


class ReleaseIn(Model):
    reason: Annotated[str | None, Field(default=None, max_length=500, pattern=r"^[^\x00-\x1f]*$")] = None


def _domain_batch(row: Batch) -> batch_logic.Batch:
    return batch_logic.Batch(
        product=row.product,
        nuclide=row.nuclide,
        lot=row.lot,
        activity_mbq=row.activity_mbq,
        volume_ml=row.volume_ml,
        reference_time=row.reference_time,
        expiry_time=row.expiry_time,
    )


def _qc_rows(session: object, batch_id: int) -> list[QcResultRow]:
    return list(
        session.execute(  # type: ignore[attr-defined]
            select(QcResultRow).where(QcResultRow.batch_id == batch_id).order_by(QcResultRow.id)
        ).scalars()
    )


def _batch_out(row: Batch, qc: list[QcResultRow]) -> BatchOut:
    data = row_to_dict(row)
    data.pop("delivery_id")
    now_mbq = _domain_batch(row).concentration_at_mbq_per_ml(utcnow()) * row.remaining_volume_ml
    return BatchOut(
        **data,
        remaining_activity_now_mbq=now_mbq,
        qc=[QcOut(**{k: v for k, v in row_to_dict(q).items() if k != "batch_id"}) for q in qc],
    )


@router.post("/batches", tags=["batches"], status_code=201, summary="Register a batch (in quarantine)")
def create_batch(
    body: BatchIn, request: Request, me: Annotated[Principal, require("batches:write")]
) -> BatchOut:
    nuclide = canonical_nuclide(body.nuclide)
    _domain = batch_logic.Batch(
        body.product,
        nuclide,
        body.lot,
        body.activity_mbq,
        body.volume_ml,
        body.reference_time,
        body.expiry_time,
    )
    with request.app.state.db.write() as session:
        if body.delivery_id is not None:
            get_or_404(session, Delivery, body.delivery_id)
        exists = session.execute(
            select(Batch).where(Batch.product == body.product, Batch.lot == body.lot)
        ).first()
        if exists:
            raise conflict("conflict", f"batch {body.product} lot {body.lot} exists", "lot")
        row = Batch(
            product=body.product,
            nuclide=nuclide,
            lot=body.lot,
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
        return _batch_out(row, [])


@router.get("/batches", tags=["batches"], summary="List batches, newest first")
def list_batches(
    request: Request,
    me: Annotated[Principal, require("batches:read")],
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[BatchOut]:
    with request.app.state.db.read() as session:
        rows = list(
            session.execute(select(Batch).order_by(Batch.id.desc()).limit(limit).offset(offset)).scalars()
        )
        return [_batch_out(r, _qc_rows(session, r.id)) for r in rows]


@router.get("/batches/{batch_id}", tags=["batches"], summary="One batch with QC and remaining stock")
def get_batch(
    batch_id: IdPath, request: Request, me: Annotated[Principal, require("batches:read")]
) -> BatchOut:
    with request.app.state.db.read() as session:
        row = get_or_404(session, Batch, batch_id)
        return _batch_out(row, _qc_rows(session, row.id))


@router.post("/batches/{batch_id}/qc", tags=["batches"], status_code=201, summary="Record a QC result")
def add_qc(
    batch_id: IdPath, body: QcIn, request: Request, me: Annotated[Principal, require("batches:write")]
) -> QcOut:
    result = batch_logic.QcResult(body.test, body.value, body.unit, body.lower_limit, body.upper_limit)
    with request.app.state.db.write() as session:
        batch = get_or_404(session, Batch, batch_id, lock=True)
        if batch.status != "quarantine":
            raise conflict(
                "batch_not_in_quarantine",
                f"batch {batch.id} is {batch.status}; QC is recorded before release",
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
        return QcOut(**{k: v for k, v in row_to_dict(row).items() if k != "batch_id"})


@router.post("/batches/{batch_id}/release", tags=["batches"], summary="Release (or refuse) a batch from QC")
def release_batch(
    batch_id: IdPath, body: ReleaseIn, request: Request, me: Annotated[Principal, require("batches:write")]
) -> BatchOut:
    with request.app.state.db.write() as session:
        batch = get_or_404(session, Batch, batch_id, lock=True)
        if batch.status != "quarantine":
            raise conflict("batch_not_in_quarantine", f"batch {batch.id} is already {batch.status}")
        qc_rows = _qc_rows(session, batch.id)
        decision = batch_logic.release_decision(
            _domain_batch(batch),
            [batch_logic.QcResult(q.test, q.value, q.unit, q.lower_limit, q.upper_limit) for q in qc_rows],
            decision_time=utcnow(),
            required_tests=request.app.state.required_qc,
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
        return _batch_out(batch, qc_rows)


# --- dispensing ---------------------------------------------------------------------------------------------
class DispenseIn(Model):
    prescription_id: Annotated[int, Field(ge=1, le=2**31 - 1)]
    activity_mbq: ActivityMBq
    planned_time: Time
    draw_time: Time | None = None
    override_reason: Annotated[
        str | None, Field(default=None, max_length=500, pattern=r"^[^\x00-\x1f]*$")
    ] = None


class DispensingOut(BaseModel):
    id: int
    batch_id: int
    prescription_id: int
    patient: str
    volume_ml: float
    activity_at_draw_mbq: float
    activity_at_planned_mbq: float
    activity_ref_mbq: float
    draw_time: datetime
    planned_time: datetime
    dispensed_by: str
    deviation_fraction: float
    override_reason: str | None
    batch_remaining_volume_ml: float
    batch_remaining_activity_ref_mbq: float


def _dispensing_out(row: Dispensing, pseudonym: str, batch: Batch) -> DispensingOut:
    data = row_to_dict(row)
    data.pop("patient_id")
    return DispensingOut(
        **data,
        patient=pseudonym,
        batch_remaining_volume_ml=batch.remaining_volume_ml,
        batch_remaining_activity_ref_mbq=batch.remaining_activity_ref_mbq,
    )


@router.post(
    "/batches/{batch_id}/dispensings", tags=["dispensing"], status_code=201, summary="Dispense a patient dose"
)
def create_dispensing(
    batch_id: IdPath, body: DispenseIn, request: Request, me: Annotated[Principal, require("dispense")]
) -> DispensingOut:
    draw_time = body.draw_time or utcnow()
    with request.app.state.db.write() as session:
        batch = get_or_404(session, Batch, batch_id, lock=True)
        prescription = get_or_404(session, Prescription, body.prescription_id)
        if batch.status != "released":
            raise conflict(
                "batch_not_released", f"batch {batch.id} is {batch.status}: release it from QC first"
            )
        if prescription.status != "active":
            raise conflict(
                "prescription_not_active", f"prescription {prescription.id} is {prescription.status}"
            )
        if prescription.nuclide != batch.nuclide:
            raise conflict(
                "nuclide_mismatch",
                f"prescription is for {prescription.nuclide} but batch {batch.id} is {batch.nuclide}",
                "prescription_id",
            )
        check = check_dosage(body.activity_mbq, prescription.prescribed_activity_mbq)
        if not check.within_limits and not body.override_reason:
            raise conflict(
                "dosage_out_of_range",
                f"activity_mbq {body.activity_mbq:g} deviates {check.deviation_fraction:+.1%} from the "
                f"prescribed "
                f"{prescription.prescribed_activity_mbq:g} MBq (limit ±{check.tolerance_fraction:.0%}, "
                f"{check.basis}): give override_reason as directed by the authorized user",
                "activity_mbq",
            )
        before = row_to_dict(batch)
        try:
            result = dispense(
                _domain_batch(batch),
                BatchStock(batch.remaining_activity_ref_mbq, batch.remaining_volume_ml),
                activity_mbq=body.activity_mbq,
                planned_time=body.planned_time,
                draw_time=draw_time,
            )
        except InsufficientStockError as exc:
            raise conflict("insufficient_stock", str(exc), "activity_mbq") from exc
        batch.remaining_volume_ml = result.remaining.remaining_volume_ml
        batch.remaining_activity_ref_mbq = result.remaining.remaining_activity_ref_mbq
        batch.version += 1
        row = Dispensing(
            batch_id=batch.id,
            prescription_id=prescription.id,
            patient_id=prescription.patient_id,
            volume_ml=result.volume_ml,
            activity_at_draw_mbq=result.activity_at_draw_mbq,
            activity_at_planned_mbq=result.activity_at_planned_mbq,
            activity_ref_mbq=result.activity_ref_mbq,
            draw_time=result.draw_time,
            planned_time=result.planned_time,
            dispensed_by=me.username,
            deviation_fraction=check.deviation_fraction,
            override_reason=body.override_reason,
        )
        session.add(row)
        session.flush()
        now = utcnow()
        audit_store.append(
            session,
            actor=me.username,
            at=now,
            action="update",
            entity="batch",
            entity_id=batch.id,
            before=before,
            after=row_to_dict(batch),
            reason=f"dispensing {row.id}",
        )
        audit_store.append(
            session,
            actor=me.username,
            at=now,
            action="create",
            entity="dispensing",
            entity_id=row.id,
            after=row_to_dict(row),
            reason=body.override_reason,
        )
        patient = session.get(Patient, row.patient_id)
        assert patient is not None
        return _dispensing_out(row, patient.pseudonym, batch)


@router.get("/dispensings/{dispensing_id}", tags=["dispensing"], summary="One dispensed dose")
def get_dispensing(
    dispensing_id: IdPath, request: Request, me: Annotated[Principal, require("batches:read")]
) -> DispensingOut:
    with request.app.state.db.read() as session:
        row = get_or_404(session, Dispensing, dispensing_id)
        batch = session.get(Batch, row.batch_id)
        patient = session.get(Patient, row.patient_id)
        assert batch is not None and patient is not None
        return _dispensing_out(row, patient.pseudonym, batch)


# --- administration -----------------------------------------------------------------------------------------
class AdministrationIn(Model):
    syringe_activity_mbq: ActivityMBq
    syringe_measured_at: Time
    residual_activity_mbq: NonNegActivityMBq
    residual_measured_at: Time
    injection_time: Time
    route: Route = "intravenous"


class AdministrationOut(BaseModel):
    id: int
    dispensing_id: int
    patient: str
    syringe_activity_mbq: float
    syringe_measured_at: datetime
    residual_activity_mbq: float
    residual_measured_at: datetime
    injection_time: datetime
    route: str
    net_activity_mbq: float
    prescribed_activity_mbq: float
    deviation_fraction: float
    within_limits: bool
    event_uid: str
    administered_by: str


def administration_out(row: Administration, pseudonym: str, prescribed_mbq: float) -> AdministrationOut:
    data = row_to_dict(row)
    data.pop("patient_id")
    return AdministrationOut(**data, patient=pseudonym, prescribed_activity_mbq=prescribed_mbq)


@router.post(
    "/dispensings/{dispensing_id}/administration",
    tags=["administration"],
    status_code=201,
    summary="Record the administration of a dispensed dose",
)
def create_administration(
    dispensing_id: IdPath,
    body: AdministrationIn,
    request: Request,
    me: Annotated[Principal, require("administer")],
) -> AdministrationOut:
    from pydicom.uid import generate_uid

    with request.app.state.db.write() as session:
        disp = get_or_404(session, Dispensing, dispensing_id)
        if session.execute(select(Administration).where(Administration.dispensing_id == disp.id)).first():
            raise conflict("already_administered", f"dispensing {disp.id} has an administration")
        batch = session.get(Batch, disp.batch_id)
        prescription = session.get(Prescription, disp.prescription_id)
        assert batch is not None and prescription is not None
        result = net_administered_activity(
            batch.nuclide,
            syringe_activity_mbq=body.syringe_activity_mbq,
            syringe_measured_at=body.syringe_measured_at,
            residual_activity_mbq=body.residual_activity_mbq,
            residual_measured_at=body.residual_measured_at,
            injection_time=body.injection_time,
            route=body.route,
        )
        check = check_dosage(result.net_activity_mbq, prescription.prescribed_activity_mbq)
        row = Administration(
            dispensing_id=disp.id,
            patient_id=disp.patient_id,
            syringe_activity_mbq=body.syringe_activity_mbq,
            syringe_measured_at=body.syringe_measured_at,
            residual_activity_mbq=body.residual_activity_mbq,
            residual_measured_at=body.residual_measured_at,
            injection_time=body.injection_time,
            route=body.route,
            net_activity_mbq=result.net_activity_mbq,
            deviation_fraction=check.deviation_fraction,
            within_limits=check.within_limits,
            event_uid=generate_uid(),
            administered_by=me.username,
        )
        session.add(row)
        session.flush()
        audit_store.append(
            session,
            actor=me.username,
            at=utcnow(),
            action="create",
            entity="administration",
            entity_id=row.id,
            after=row_to_dict(row),
        )
        patient = session.get(Patient, row.patient_id)
        assert patient is not None
        return administration_out(row, patient.pseudonym, prescription.prescribed_activity_mbq)


@router.get("/administrations/{administration_id}", tags=["administration"], summary="One administration")
def get_administration(
    administration_id: IdPath, request: Request, me: Annotated[Principal, require("administrations:read")]
) -> AdministrationOut:
    with request.app.state.db.read() as session:
        row = get_or_404(session, Administration, administration_id)
        disp = session.get(Dispensing, row.dispensing_id)
        patient = session.get(Patient, row.patient_id)
        assert disp is not None and patient is not None
        prescription = session.get(Prescription, disp.prescription_id)
        assert prescription is not None
        return administration_out(row, patient.pseudonym, prescription.prescribed_activity_mbq)


@router.get(
    "/administrations/{administration_id}/rrdsr",
    tags=["administration"],
    summary="Radiopharmaceutical Radiation Dose SR (DICOM, TID 10021) of an administration",
    response_class=Response,
    responses={200: {"content": {"application/dicom": {}}, "description": "DICOM Part 10 file"}},
)
def get_rrdsr(
    administration_id: IdPath, request: Request, me: Annotated[Principal, require("administrations:read")]
) -> Response:
    from theradose.service.rrdsr import AdministrationReport, write_rrdsr_bytes

    with request.app.state.db.read() as session:
        row = get_or_404(session, Administration, administration_id)
        disp = session.get(Dispensing, row.dispensing_id)
        assert disp is not None
        batch = session.get(Batch, disp.batch_id)
        prescription = session.get(Prescription, disp.prescription_id)
        patient = session.get(Patient, row.patient_id)
        assert batch is not None and prescription is not None and patient is not None
        report = AdministrationReport(
            patient_id=patient.pseudonym,
            radiopharmaceutical=batch.product,
            nuclide=batch.nuclide,
            administered_activity_mbq=row.net_activity_mbq,
            pre_activity_mbq=row.syringe_activity_mbq,
            post_activity_mbq=row.residual_activity_mbq,
            pre_activity_time=row.syringe_measured_at,
            post_activity_time=row.residual_measured_at,
            injection_time=row.injection_time,
            route=row.route,
            volume_ml=disp.volume_ml,
            lot=batch.lot,
            dispense_id=f"D{disp.id}",
            prescription_id=f"RX{prescription.id}",
            event_uid=row.event_uid,
            administered_by=row.administered_by,
        )
    settings = request.app.state.settings
    data = write_rrdsr_bytes(report, institution=settings.site_name, site_timezone=settings.site_timezone)
    return Response(
        content=data,
        media_type="application/dicom",
        headers={"Content-Disposition": f'attachment; filename="rrdsr_{administration_id}.dcm"'},
    )
