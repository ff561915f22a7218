"""Use cases of dose calibrators and their QA tests (graded by :mod:`theradose.qa.dose_calibrator`)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from theradose.pharmacy import calibrators as calibrator_rules
from theradose.pharmacy.decay import canonical_nuclide
from theradose.pharmacy.identifiers import check_identifier, identifier_key
from theradose.service import audit_store
from theradose.service.auth import Principal
from theradose.service.errors import ApiError, conflict
from theradose.service.models import Calibrator, CalibratorQa, row_to_dict
from theradose.service.operations.common import (
    ActivityMBq,
    Fraction,
    Model,
    Time,
    VolumeML,
    get_or_404,
    opt_text,
    text,
    utcnow,
)

#: Default calibrator tolerance (fraction): the ±10 % action level of AAPM TG-181 (Carey et al. 2012).
DEFAULT_TOLERANCE_FRACTION = 0.10


class CalibratorIn(Model):
    name: text(100)  # type: ignore[valid-type]
    manufacturer: opt_text(200) = ""  # type: ignore[valid-type]
    model: opt_text(200) = ""  # type: ignore[valid-type]
    serial: opt_text(100) = ""  # type: ignore[valid-type]
    tolerance_fraction: Fraction = DEFAULT_TOLERANCE_FRACTION


class CalibratorOut(BaseModel):
    id: int
    name: str
    manufacturer: str
    model: str
    serial: str
    tolerance_fraction: float
    blocked: bool = False


class SourceCheckIn(Model):
    test: Literal["constancy", "accuracy"]
    nuclide: text(20)  # type: ignore[valid-type]
    measured_mbq: ActivityMBq
    certified_activity_mbq: ActivityMBq
    certified_at: Time
    measured_at: Time
    tolerance_fraction: Fraction | None = None


class Reading(Model):
    time: Time
    measured_mbq: ActivityMBq


class LinearityIn(Model):
    test: Literal["linearity"]
    nuclide: text(20)  # type: ignore[valid-type]
    readings: Annotated[list[Reading], Field(min_length=3, max_length=200)]
    tolerance_fraction: Fraction | None = None


class VolumeReading(Model):
    volume_ml: VolumeML
    measured_mbq: ActivityMBq


class GeometryIn(Model):
    test: Literal["geometry"]
    reference_volume_ml: VolumeML
    readings: Annotated[list[VolumeReading], Field(min_length=2, max_length=100)]
    tolerance_fraction: Fraction | None = None


QaIn = Annotated[SourceCheckIn | LinearityIn | GeometryIn, Field(discriminator="test")]


class QaOut(BaseModel):
    id: int
    calibrator_id: int
    test: str
    performed_at: datetime
    passed: bool
    max_abs_deviation: float
    tolerance_fraction: float
    deviations: list[float]
    performed_by: str
    voided: bool
    void_reason: str | None


def qa_out(row: CalibratorQa) -> QaOut:
    """The public view of a QA result."""
    data = json.loads(row.data_json)
    return QaOut(
        id=row.id,
        calibrator_id=row.calibrator_id,
        test=row.test,
        performed_at=row.performed_at,
        passed=row.passed,
        max_abs_deviation=row.max_abs_deviation,
        tolerance_fraction=row.tolerance_fraction,
        deviations=data["deviations"],
        performed_by=row.performed_by,
        voided=row.voided,
        void_reason=row.void_reason,
    )


def calibrator_out(row: Calibrator) -> CalibratorOut:
    """The public view of a calibrator."""
    return CalibratorOut(**row_to_dict(row))


def create_calibrator(session: Session, me: Principal, body: CalibratorIn) -> CalibratorOut:
    """Register a dose calibrator."""
    name = check_identifier(body.name, "name")
    name_key = identifier_key(name)
    exists = session.execute(
        select(Calibrator.name).where(Calibrator.name_key == name_key)
    ).scalar_one_or_none()
    if exists is not None:
        raise conflict("conflict", f"calibrator {exists!r} exists (same as {name!r})", "name")
    row = Calibrator(**{**body.model_dump(), "name": name}, name_key=name_key)
    session.add(row)
    session.flush()
    audit_store.append(
        session,
        actor=me.username,
        at=utcnow(),
        action="create",
        entity="calibrator",
        entity_id=row.id,
        after=row_to_dict(row),
    )
    return calibrator_out(row)


def list_calibrators(
    session: Session, me: Principal, *, limit: int | None = None, offset: int = 0
) -> list[CalibratorOut]:
    """Dose calibrators by id (one page of ``limit`` from ``offset``), each with whether a failed constancy
    check blocks it."""
    stmt = select(Calibrator).order_by(Calibrator.id).limit(limit).offset(offset)
    return [
        calibrator_out(r).model_copy(update={"blocked": blocking_check(session, r.id) is not None})
        for r in session.execute(stmt).scalars()
    ]


def add_calibrator_qa(
    session: Session, me: Principal, calibrator_id: int, body: SourceCheckIn | LinearityIn | GeometryIn
) -> QaOut:
    """Grade and record a QA test of a calibrator (AAPM TG-181 tests)."""
    from theradose.qa import dose_calibrator as qa_logic
    from theradose.qa.tolerances import ToleranceSet

    device = get_or_404(session, Calibrator, calibrator_id)
    tolerance = body.tolerance_fraction or device.tolerance_fraction
    percent = tolerance * 100.0
    tolerances = ToleranceSet(
        name=f"calibrator {device.name}",
        constancy_percent=percent,
        linearity_percent=percent,
        accuracy_percent=percent,
        geometry_percent=percent,
    )
    if isinstance(body, SourceCheckIn):
        nuclide = canonical_nuclide(body.nuclide)
        if body.test == "constancy":
            result = qa_logic.constancy(
                [body.measured_mbq],
                [body.measured_at],
                nuclide=nuclide,
                reference_activity_mbq=body.certified_activity_mbq,
                reference_time=body.certified_at,
                tolerance=tolerances,
            )
        else:
            result = qa_logic.accuracy(
                [body.measured_mbq],
                [body.measured_at],
                nuclide=nuclide,
                certified_activity_mbq=body.certified_activity_mbq,
                certificate_time=body.certified_at,
                tolerance=tolerances,
            )
        performed_at = body.measured_at
    elif isinstance(body, LinearityIn):
        result = qa_logic.linearity_decay(
            [r.measured_mbq for r in body.readings],
            [r.time for r in body.readings],
            nuclide=canonical_nuclide(body.nuclide),
            tolerance=tolerances,
        )
        performed_at = max(r.time for r in body.readings)
    else:
        volumes = [r.volume_ml for r in body.readings]
        if len(set(volumes)) != len(volumes):
            raise conflict("duplicate_volume", "each volume may appear once in a geometry test", "readings")
        if body.reference_volume_ml not in volumes:
            raise ApiError(
                422,
                "invalid_input",
                f"reference_volume_ml {body.reference_volume_ml:g} has no reading: add one at that volume",
                "reference_volume_ml",
            )
        result = qa_logic.geometry(
            [r.measured_mbq for r in body.readings],
            [f"{v:g} mL" for v in volumes],
            reference_index=volumes.index(body.reference_volume_ml),
            tolerance=tolerances,
        )
        performed_at = utcnow()
    deviations = [r.deviation_percent / 100.0 for r in result.readings]
    data = {
        "input": body.model_dump(mode="json"),
        "deviations": deviations,
        "expected_mbq": [r.expected_mbq for r in result.readings],
    }
    row = CalibratorQa(
        calibrator_id=calibrator_id,
        test=result.test,
        performed_at=performed_at,
        passed=result.passed,
        max_abs_deviation=max(abs(d) for d in deviations),
        tolerance_fraction=tolerance,
        data_json=json.dumps(data, sort_keys=True),
        performed_by=me.username,
    )
    session.add(row)
    session.flush()
    audit_store.append(
        session,
        actor=me.username,
        at=utcnow(),
        action="create",
        entity="calibrator_qa",
        entity_id=row.id,
        after=row_to_dict(row),
    )
    return qa_out(row)


def list_calibrator_qa(
    session: Session, me: Principal, calibrator_id: int, *, limit: int = 100, offset: int = 0
) -> list[QaOut]:
    """QA history of a calibrator, newest first."""
    get_or_404(session, Calibrator, calibrator_id)
    rows = session.execute(
        select(CalibratorQa)
        .where(CalibratorQa.calibrator_id == calibrator_id)
        .order_by(CalibratorQa.performed_at.desc(), CalibratorQa.id.desc())
        .limit(limit)
        .offset(offset)
    ).scalars()
    return [qa_out(r) for r in rows]


class VoidIn(Model):
    reason: text(500)  # type: ignore[valid-type]


def blocking_check(session: Session, calibrator_id: int) -> CalibratorQa | None:
    """The failed constancy check blocking a calibrator, or None (:mod:`theradose.pharmacy.calibrators`)."""
    rows = list(
        session.execute(select(CalibratorQa).where(CalibratorQa.calibrator_id == calibrator_id)).scalars()
    )
    found = calibrator_rules.blocking_check(
        calibrator_rules.CheckRecord(r.test, r.passed, r.performed_at, r.voided) for r in rows
    )
    if found is None:
        return None
    return next(
        r for r in rows if r.performed_at == found.performed_at and r.test == "constancy" and not r.voided
    )


def require_usable(session: Session, calibrator_id: int, *, field: str = "calibrator_id") -> Calibrator:
    """The calibrator, refused (409 ``calibrator_blocked``) while its latest constancy check failed."""
    device = get_or_404(session, Calibrator, calibrator_id)
    failed = blocking_check(session, calibrator_id)
    if failed is not None:
        raise conflict(
            "calibrator_blocked",
            f"calibrator {device.name} failed its constancy check of {failed.performed_at.isoformat()} "
            f"({failed.max_abs_deviation:.1%} > {failed.tolerance_fraction:.0%}): "
            "record a passing check first",
            field,
        )
    return device


def void_qa(session: Session, me: Principal, qa_id: int, body: VoidIn) -> QaOut:
    """Void a QA reading entered in error (e.g. µCi typed as MBq), with a reason; it no longer counts."""
    row = get_or_404(session, CalibratorQa, qa_id, lock=True)
    if row.voided:
        raise conflict("already_voided", f"QA result {row.id} is already voided")
    before = row_to_dict(row)
    row.voided = True
    row.void_reason = body.reason
    row.voided_by = me.username
    session.flush()
    audit_store.append(
        session,
        actor=me.username,
        at=utcnow(),
        action="update",
        entity="calibrator_qa",
        entity_id=row.id,
        before=before,
        after=row_to_dict(row),
        reason=body.reason,
    )
    return qa_out(row)
