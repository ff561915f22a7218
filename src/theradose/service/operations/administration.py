"""Use cases of administering a dispensed dose, and its DICOM RRDSR."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from theradose.pharmacy.administration import Route, check_times, confirm_identity, net_administered_activity
from theradose.pharmacy.decay import activity_at_mbq
from theradose.pharmacy.regulatory import check_dosage
from theradose.planning.regulatory import detect_medical_event
from theradose.service import audit_store
from theradose.service.auth import Principal
from theradose.service.errors import ApiError, conflict
from theradose.service.keys import KeyRing
from theradose.service.models import (
    Administration,
    Batch,
    Dispensing,
    Patient,
    PatientIdentity,
    Prescription,
    row_to_dict,
)
from theradose.service.operations import calibrators, precycle
from theradose.service.operations.common import (
    ActivityMBq,
    Model,
    NonNegActivityMBq,
    OptReason,
    Time,
    get_or_404,
    utcnow,
)
from theradose.service.operations.prescriptions import require_dispensable
from theradose.service.settings import Settings


class AdministrationIn(Model):
    syringe_activity_mbq: ActivityMBq
    syringe_measured_at: Time
    residual_activity_mbq: NonNegActivityMBq | None = None
    residual_measured_at: Time | None = None
    no_residual_measured: bool = False
    injection_time: Time
    route: Route = "intravenous"
    calibrator_id: Annotated[int, Field(ge=1, le=2**31 - 1)]
    confirm_mrn: Annotated[str | None, Field(default=None, max_length=64)] = None
    confirm_birth_date: Annotated[str | None, Field(default=None, max_length=10)] = None
    confirm_family_name: Annotated[str | None, Field(default=None, max_length=200)] = None
    deviation_reason: OptReason = None


class AssayIn(Model):
    syringe_activity_mbq: ActivityMBq
    syringe_measured_at: Time
    injection_time: Time


class AssayOut(BaseModel):
    """The syringe reading decay-corrected to the intended injection time, against the directive."""

    activity_at_injection_mbq: float
    prescribed_activity_mbq: float
    deviation_fraction: float
    within_limits: bool
    rule: str


class AdministrationOut(BaseModel):
    id: int
    dispensing_id: int
    patient: str
    syringe_activity_mbq: float
    syringe_measured_at: datetime
    residual_activity_mbq: float | None
    residual_measured_at: datetime | None
    injection_time: datetime
    route: str
    net_activity_mbq: float
    prescribed_activity_mbq: float
    deviation_fraction: float
    within_limits: bool
    event_uid: str
    administered_by: str
    calibrator_id: int | None
    identifiers_confirmed: str | None
    deviation_reason: str | None
    medical_event_possible: bool
    medical_event_criteria: str | None
    notification_steps: list[str]


def notification_steps() -> list[str]:
    """What to do after a possible medical event (10 CFR 35.3045(c)-(e), from ``data/regulatory``)."""
    import tomllib
    from importlib import resources

    text = (resources.files("theradose.data") / "regulatory" / "us_nrc.toml").read_text(encoding="utf-8")
    return [str(s) for s in tomllib.loads(text)["medical_event_notification"]["steps"]]


def administration_out(row: Administration, pseudonym: str, prescribed_mbq: float) -> AdministrationOut:
    """The public view of an administration (with the notification steps of a possible medical event)."""
    data = row_to_dict(row)
    data.pop("patient_id")
    steps = notification_steps() if row.medical_event_possible else []
    return AdministrationOut(
        **data, patient=pseudonym, prescribed_activity_mbq=prescribed_mbq, notification_steps=steps
    )


def _bedside_checks(session: Session, disp: Dispensing, *, keys: KeyRing) -> tuple[Batch, Prescription]:
    if disp.status != "active":
        raise conflict("dispensing_voided", f"dispensing {disp.id} is voided: dispense the dose again")
    batch = session.get(Batch, disp.batch_id)
    prescription = session.get(Prescription, disp.prescription_id)
    assert batch is not None and prescription is not None
    require_dispensable(session, prescription, keys=keys)
    precycle.require_cycle_open(session, prescription.patient_id, prescription.cycle)
    return batch, prescription


def assay_preview(
    session: Session, me: Principal, dispensing_id: int, body: AssayIn, *, keys: KeyRing
) -> AssayOut:
    """The syringe assay decay-corrected to the intended injection time (nothing is written)."""
    disp = get_or_404(session, Dispensing, dispensing_id)
    batch, prescription = _bedside_checks(session, disp, keys=keys)
    check_times(
        syringe_measured_at=body.syringe_measured_at,
        injection_time=max(body.injection_time, body.syringe_measured_at),
        residual_measured_at=None,
        now=utcnow() + timedelta(days=1),  # the intended injection may be in the next minutes
    )
    activity = activity_at_mbq(
        body.syringe_activity_mbq,
        batch.nuclide,
        from_time=body.syringe_measured_at,
        to_time=body.injection_time,
    )
    check = check_dosage(activity, prescription.prescribed_activity_mbq)
    return AssayOut(
        activity_at_injection_mbq=activity,
        prescribed_activity_mbq=prescription.prescribed_activity_mbq,
        deviation_fraction=check.deviation_fraction,
        within_limits=check.within_limits,
        rule=check.basis,
    )


def _identity(session: Session, patient_id: int) -> dict[str, str | None]:
    ident = session.execute(
        select(PatientIdentity).where(PatientIdentity.patient_id == patient_id)
    ).scalar_one_or_none()
    if ident is None:
        return {}
    return {
        "mrn": ident.mrn,
        "birth_date": ident.birth_date.isoformat() if ident.birth_date else None,
        "family_name": ident.family_name,
    }


def create_administration(
    session: Session, me: Principal, dispensing_id: int, body: AdministrationIn, *, keys: KeyRing
) -> AdministrationOut:
    """Record the administration of a dispensed dose.

    Refused (nothing written): a voided dispensing, an unsigned or cancelled directive, a DELAY/STOP not
    overridden, identifiers that do not match the patient (two required), times in the future or out of
    order, a blank residual without "no residual measured", a blocked calibrator. A net activity more than
    20 % from the directive (10 CFR 35.63(d)) or 20 % or more (35.3045(a)(1)), or another route than
    written, is **recorded** as a possible medical event with its required reason and notification steps.
    """
    from pydicom.uid import generate_uid

    disp = get_or_404(session, Dispensing, dispensing_id, lock=True)
    if session.execute(select(Administration).where(Administration.dispensing_id == disp.id)).first():
        raise conflict("already_administered", f"dispensing {disp.id} has an administration")
    batch, prescription = _bedside_checks(session, disp, keys=keys)
    matched = confirm_identity(
        _identity(session, disp.patient_id),
        {
            "mrn": body.confirm_mrn,
            "birth_date": body.confirm_birth_date,
            "family_name": body.confirm_family_name,
        },
    )
    if body.no_residual_measured and body.residual_activity_mbq is not None:
        raise ApiError(
            422,
            "validation_error",
            "residual_activity_mbq: give a residual or tick no residual measured, not both",
            "residual_activity_mbq",
        )
    if not body.no_residual_measured and (
        body.residual_activity_mbq is None or body.residual_measured_at is None
    ):
        raise ApiError(
            422,
            "validation_error",
            "residual_activity_mbq: enter the residual reading and its time, or tick no residual measured",
            "residual_activity_mbq",
        )
    check_times(
        syringe_measured_at=body.syringe_measured_at,
        injection_time=body.injection_time,
        residual_measured_at=None if body.no_residual_measured else body.residual_measured_at,
        now=utcnow(),
        dispensed_at=disp.draw_time,
    )
    calibrators.require_usable(session, body.calibrator_id)
    result = net_administered_activity(
        batch.nuclide,
        syringe_activity_mbq=body.syringe_activity_mbq,
        syringe_measured_at=body.syringe_measured_at,
        residual_activity_mbq=0.0 if body.no_residual_measured else float(body.residual_activity_mbq or 0.0),
        residual_measured_at=body.injection_time
        if body.no_residual_measured
        else (body.residual_measured_at or body.injection_time),
        injection_time=body.injection_time,
        route=body.route,
    )
    check = check_dosage(result.net_activity_mbq, prescription.prescribed_activity_mbq)
    event = detect_medical_event(
        prescription.prescribed_activity_mbq,
        result.net_activity_mbq,
        wrong_route=body.route != prescription.route,
    )
    criteria: list[str] = []
    if not check.within_limits:
        criteria.append(
            f"net activity {result.net_activity_mbq:,.0f} MBq deviates {check.deviation_fraction:+.1%} "
            f"from the prescribed {prescription.prescribed_activity_mbq:,.0f} MBq ({check.basis})"
        )
    if abs(event.deviation_percent or 0.0) >= 20.0 and check.within_limits:
        criteria.append(f"dosage differs by {event.deviation_percent:+.1f} % (20 % or more, {event.rule})")
    if body.route != prescription.route:
        criteria.append(
            f"route {body.route} differs from the written {prescription.route} (10 CFR 35.3045(a)(2))"
        )
    if criteria:
        criteria.append("whether the dose criterion of 10 CFR 35.3045(a)(1) is met needs a dose estimate")
        if body.deviation_reason is None:
            raise ApiError(
                422,
                "deviation_reason_required",
                "deviation_reason: "
                + "; ".join(criteria[:-1])
                + ": record why (it is recorded as a possible "
                "medical event, not refused)",
                "deviation_reason",
            )
    row = Administration(
        dispensing_id=disp.id,
        patient_id=disp.patient_id,
        syringe_activity_mbq=body.syringe_activity_mbq,
        syringe_measured_at=body.syringe_measured_at,
        residual_activity_mbq=None if body.no_residual_measured else body.residual_activity_mbq,
        residual_measured_at=None if body.no_residual_measured else body.residual_measured_at,
        injection_time=body.injection_time,
        route=body.route,
        net_activity_mbq=result.net_activity_mbq,
        deviation_fraction=check.deviation_fraction,
        within_limits=check.within_limits,
        event_uid=generate_uid(),
        administered_by=me.username,
        calibrator_id=body.calibrator_id,
        identifiers_confirmed=",".join(matched),
        deviation_reason=body.deviation_reason,
        medical_event_possible=bool(criteria),
        medical_event_criteria="; ".join(criteria) or None,
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
        reason=body.deviation_reason,
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
