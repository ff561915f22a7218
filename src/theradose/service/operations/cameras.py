"""Use cases of SPECT/CT camera calibrations (sensitivity and recovery) with their history."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from theradose.pharmacy import camera as camera_logic
from theradose.pharmacy.decay import canonical_nuclide
from theradose.service import audit_store
from theradose.service.auth import Principal
from theradose.service.models import CameraCalibrationRow, row_to_dict
from theradose.service.operations.common import Model, Time, VolumeML, text, utcnow


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


def _recovery_tuples(text_json: str) -> tuple[list[float], list[float]]:
    points = json.loads(text_json)
    return [p["volume_ml"] for p in points], [p["recovery_coefficient"] for p in points]


def camera_names(session: Session, me: Principal) -> list[str]:
    """Cameras with at least one calibration, by name."""
    return [
        n
        for (n,) in session.execute(
            select(CameraCalibrationRow.camera).distinct().order_by(CameraCalibrationRow.camera)
        )
    ]


def camera_history(session: Session, me: Principal, camera: str) -> list[CameraCalibrationOut]:
    """Calibrations of a camera, oldest first, with the change from the previous one and trend flags."""
    rows = list(
        session.execute(
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


def add_camera_calibration(
    session: Session, me: Principal, camera: str, body: CameraCalibrationIn
) -> CameraCalibrationOut:
    """Record a SPECT/CT calibration of ``camera``."""
    points = sorted(body.recovery, key=lambda p: p.volume_ml)
    camera_logic.CameraCalibration(
        camera,
        canonical_nuclide(body.nuclide),
        body.sensitivity_cps_per_mbq,
        body.performed_at,
        tuple(p.volume_ml for p in points),
        tuple(p.recovery_coefficient for p in points),
    )
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
    history = camera_history(session, me, camera)
    return next(h for h in history if h.id == row.id)
