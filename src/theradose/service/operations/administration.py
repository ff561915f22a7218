"""Use cases of administering a dispensed dose, and its DICOM RRDSR."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from theradose.pharmacy.administration import Route, net_administered_activity
from theradose.pharmacy.regulatory import check_dosage
from theradose.planning.regulatory import DosageCheck
from theradose.service import audit_store
from theradose.service.auth import Principal
from theradose.service.errors import conflict
from theradose.service.models import Administration, Batch, Dispensing, Patient, Prescription, row_to_dict
from theradose.service.operations.common import (
    ActivityMBq,
    Model,
    NonNegActivityMBq,
    Time,
    get_or_404,
    utcnow,
)
from theradose.service.settings import Settings


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
    """The public view of an administration."""
    data = row_to_dict(row)
    data.pop("patient_id")
    return AdministrationOut(**data, patient=pseudonym, prescribed_activity_mbq=prescribed_mbq)


def create_administration(
    session: Session, me: Principal, dispensing_id: int, body: AdministrationIn
) -> AdministrationOut:
    """Record the administration of a dispensed dose: net activity at injection and the dosage check."""
    from pydicom.uid import generate_uid

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


def get_administration(session: Session, me: Principal, administration_id: int) -> AdministrationOut:
    """One administration."""
    row = get_or_404(session, Administration, administration_id)
    disp = session.get(Dispensing, row.dispensing_id)
    patient = session.get(Patient, row.patient_id)
    assert disp is not None and patient is not None
    prescription = session.get(Prescription, disp.prescription_id)
    assert prescription is not None
    return administration_out(row, patient.pseudonym, prescription.prescribed_activity_mbq)


def administration_rrdsr(
    session: Session, me: Principal, administration_id: int, *, settings: Settings
) -> bytes:
    """The Radiopharmaceutical Radiation Dose SR (DICOM Part 10 bytes) of an administration."""
    from theradose.service.rrdsr import AdministrationReport, write_rrdsr_bytes

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
        injection_time=row.injection_time,
        route=row.route,
        volume_ml=disp.volume_ml,
        lot=batch.lot,
        dispense_id=f"D{disp.id}",
        prescription_id=f"RX{prescription.id}",
        event_uid=row.event_uid,
        administered_by=row.administered_by,
    )
    return write_rrdsr_bytes(report, institution=settings.site_name, site_timezone=settings.site_timezone)


def administration_context(session: Session, me: Principal, dispensing_id: int) -> dict[str, Any] | None:
    """What the bedside needs about a dispensed dose: ``{"disp", "rx", "batch", "patient", "adm"}``."""
    disp = session.get(Dispensing, dispensing_id)
    if disp is None:
        return None
    adm = session.execute(
        select(Administration).where(Administration.dispensing_id == disp.id)
    ).scalar_one_or_none()
    return {
        "disp": disp,
        "rx": session.get(Prescription, disp.prescription_id),
        "batch": session.get(Batch, disp.batch_id),
        "patient": session.get(Patient, disp.patient_id),
        "adm": adm,
    }


def dosage_preview(
    session: Session, me: Principal, dispensing_id: int, body: AdministrationIn
) -> tuple[float, DosageCheck]:
    """The net activity at injection and the 10 CFR 35.63(d) check, without recording anything."""
    from theradose.planning.regulatory import check_dosage as regulatory_check

    disp = get_or_404(session, Dispensing, dispensing_id)
    batch = session.get(Batch, disp.batch_id)
    rx = session.get(Prescription, disp.prescription_id)
    assert batch is not None and rx is not None
    result = net_administered_activity(
        batch.nuclide,
        syringe_activity_mbq=body.syringe_activity_mbq,
        syringe_measured_at=body.syringe_measured_at,
        residual_activity_mbq=body.residual_activity_mbq,
        residual_measured_at=body.residual_measured_at,
        injection_time=body.injection_time,
        route=body.route,
    )
    return result.net_activity_mbq, regulatory_check(
        rx.prescribed_activity_mbq, max(result.net_activity_mbq, 0.0)
    )
