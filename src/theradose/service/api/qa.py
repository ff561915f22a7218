"""Dose-calibrator devices and QA results; SPECT/CT camera calibrations with history."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, Field
from sqlalchemy import select

from theradose.pharmacy import camera as camera_logic
from theradose.pharmacy.decay import canonical_nuclide
from theradose.service import audit_store
from theradose.service.api._common import (
    ActivityMBq,
    Fraction,
    IdPath,
    Limit,
    Model,
    Offset,
    Time,
    VolumeML,
    get_or_404,
    opt_text,
    text,
    utcnow,
)
from theradose.service.auth import Principal, require
from theradose.service.errors import ERROR_RESPONSES, ApiError, conflict, not_found
from theradose.service.models import Calibrator, CalibratorQa, CameraCalibrationRow, row_to_dict

router = APIRouter(responses=ERROR_RESPONSES)

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


@router.post("/calibrators", tags=["qa"], status_code=201, summary="Register a dose calibrator")
def create_calibrator(
    body: CalibratorIn, request: Request, me: Annotated[Principal, require("calibrators:write")]
) -> CalibratorOut:
    with request.app.state.db.write() as session:
        if session.execute(select(Calibrator).where(Calibrator.name == body.name)).first():
            raise conflict("conflict", f"calibrator {body.name!r} exists", "name")
        row = Calibrator(**body.model_dump())
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
        return CalibratorOut(**row_to_dict(row))


@router.get("/calibrators", tags=["qa"], summary="List dose calibrators")
def list_calibrators(
    request: Request, me: Annotated[Principal, require("calibrators:read")]
) -> list[CalibratorOut]:
    with request.app.state.db.read() as session:
        return [
            CalibratorOut(**row_to_dict(r))
            for r in session.execute(select(Calibrator).order_by(Calibrator.id)).scalars()
        ]


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


def _qa_out(row: CalibratorQa) -> QaOut:
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
    )


@router.post(
    "/calibrators/{calibrator_id}/qa", tags=["qa"], status_code=201, summary="Record a calibrator QA test"
)
def add_calibrator_qa(
    calibrator_id: IdPath,
    body: QaIn,
    request: Request,
    me: Annotated[Principal, require("calibrator_qa:write")],
) -> QaOut:
    """Grade the readings with :mod:`theradose.qa.dose_calibrator` (AAPM TG-181 tests)."""
    from theradose.qa import dose_calibrator as qa_logic
    from theradose.qa.tolerances import ToleranceSet

    with request.app.state.db.read() as session:
        device = get_or_404(session, Calibrator, calibrator_id)
        tolerance = body.tolerance_fraction or device.tolerance_fraction
        device_name = device.name
    percent = tolerance * 100.0
    tolerances = ToleranceSet(
        name=f"calibrator {device_name}",
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
    with request.app.state.db.write() as session:
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
        return _qa_out(row)


@router.get("/calibrators/{calibrator_id}/qa", tags=["qa"], summary="QA history of a calibrator")
def list_calibrator_qa(
    calibrator_id: IdPath,
    request: Request,
    me: Annotated[Principal, require("calibrators:read")],
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[QaOut]:
    with request.app.state.db.read() as session:
        get_or_404(session, Calibrator, calibrator_id)
        rows = session.execute(
            select(CalibratorQa)
            .where(CalibratorQa.calibrator_id == calibrator_id)
            .order_by(CalibratorQa.performed_at.desc(), CalibratorQa.id.desc())
            .limit(limit)
            .offset(offset)
        ).scalars()
        return [_qa_out(r) for r in rows]


# --- cameras ------------------------------------------------------------------------------------------------
class RecoveryPoint(Model):
    volume_ml: VolumeML
    recovery_coefficient: Annotated[float, Field(gt=0, le=1.5, allow_inf_nan=False)]


class CameraCalibrationIn(Model):
    nuclide: text(20)  # type: ignore[valid-type]
    sensitivity_cps_per_mbq: Annotated[float, Field(gt=0, le=1e6, allow_inf_nan=False)]
    performed_at: Time
    recovery: Annotated[list[RecoveryPoint], Field(default_factory=list, max_length=50)]


class CameraCalibrationOut(BaseModel):
    id: int
    camera: str
    nuclide: str
    sensitivity_cps_per_mbq: float
    performed_at: datetime
    recovery: list[RecoveryPoint]
    performed_by: str
    change_from_previous_fraction: float | None
    flagged: bool


CameraPath = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")]


def _history(session: object, camera: str) -> list[CameraCalibrationOut]:
    rows = list(
        session.execute(  # type: ignore[attr-defined]
            select(CameraCalibrationRow)
            .where(CameraCalibrationRow.camera == camera)
            .order_by(CameraCalibrationRow.performed_at, CameraCalibrationRow.id)
        ).scalars()
    )
    domain = [
        camera_logic.CameraCalibration(
            r.camera,
            r.nuclide,
            r.sensitivity_cps_per_mbq,
            r.performed_at,
            *(tuple(v) for v in _recovery_tuples(r.recovery_json)),
        )
        for r in rows
    ]
    trend = camera_logic.sensitivity_trend(domain) if domain else None
    out = []
    for i, r in enumerate(rows):
        out.append(
            CameraCalibrationOut(
                id=r.id,
                camera=r.camera,
                nuclide=r.nuclide,
                sensitivity_cps_per_mbq=r.sensitivity_cps_per_mbq,
                performed_at=r.performed_at,
                recovery=[
                    RecoveryPoint(volume_ml=v, recovery_coefficient=c)
                    for v, c in zip(*_recovery_tuples(r.recovery_json), strict=True)
                ],
                performed_by=r.performed_by,
                change_from_previous_fraction=trend.change_fraction[i] if trend else None,
                flagged=trend.flagged[i] if trend else False,
            )
        )
    return out


def _recovery_tuples(text_json: str) -> tuple[list[float], list[float]]:
    points = json.loads(text_json)
    return [p["volume_ml"] for p in points], [p["recovery_coefficient"] for p in points]


@router.post(
    "/cameras/{camera}/calibrations", tags=["qa"], status_code=201, summary="Record a SPECT/CT calibration"
)
def add_camera_calibration(
    camera: CameraPath,
    body: CameraCalibrationIn,
    request: Request,
    me: Annotated[Principal, require("cameras:write")],
) -> CameraCalibrationOut:
    points = sorted(body.recovery, key=lambda p: p.volume_ml)
    camera_logic.CameraCalibration(
        camera,
        canonical_nuclide(body.nuclide),
        body.sensitivity_cps_per_mbq,
        body.performed_at,
        tuple(p.volume_ml for p in points),
        tuple(p.recovery_coefficient for p in points),
    )
    with request.app.state.db.write() as session:
        row = CameraCalibrationRow(
            camera=camera,
            nuclide=canonical_nuclide(body.nuclide),
            sensitivity_cps_per_mbq=body.sensitivity_cps_per_mbq,
            performed_at=body.performed_at,
            recovery_json=json.dumps([p.model_dump() for p in points]),
            performed_by=me.username,
        )
        session.add(row)
        session.flush()
        audit_store.append(
            session,
            actor=me.username,
            at=utcnow(),
            action="create",
            entity="camera_calibration",
            entity_id=row.id,
            after=row_to_dict(row),
        )
        history = _history(session, camera)
        return next(h for h in history if h.id == row.id)


@router.get(
    "/cameras/{camera}/calibrations", tags=["qa"], summary="Calibration history of a camera, oldest first"
)
def list_camera_calibrations(
    camera: CameraPath, request: Request, me: Annotated[Principal, require("cameras:read")]
) -> list[CameraCalibrationOut]:
    with request.app.state.db.read() as session:
        history = _history(session, camera)
    if not history:
        raise not_found("camera", camera)
    return history
