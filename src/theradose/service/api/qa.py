"""Dose-calibrator devices and QA results; SPECT/CT camera calibrations with history."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request

from theradose.service.api.params import CameraPath, IdPath, Limit, Offset
from theradose.service.auth import Principal, require
from theradose.service.errors import ERROR_RESPONSES, not_found
from theradose.service.operations import calibrators, cameras, waste
from theradose.service.operations.calibrators import CalibratorIn, CalibratorOut, QaIn, QaOut, VoidIn
from theradose.service.operations.cameras import CameraCalibrationIn, CameraCalibrationOut
from theradose.service.operations.waste import ContainerIn, ContainerOut, SurveyIn

router = APIRouter(responses=ERROR_RESPONSES)


@router.post("/calibrators", tags=["qa"], status_code=201, summary="Register a dose calibrator")
def create_calibrator(
    body: CalibratorIn, request: Request, me: Annotated[Principal, require("calibrators:write")]
) -> CalibratorOut:
    with request.app.state.db.write() as session:
        return calibrators.create_calibrator(session, me, body)


@router.get("/calibrators", tags=["qa"], summary="List dose calibrators")
def list_calibrators(
    request: Request,
    me: Annotated[Principal, require("calibrators:read")],
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[CalibratorOut]:
    with request.app.state.db.read() as session:
        return calibrators.list_calibrators(session, me, limit=limit, offset=offset)


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
    with request.app.state.db.write() as session:
        return calibrators.add_calibrator_qa(session, me, calibrator_id, body)


@router.get("/calibrators/{calibrator_id}/qa", tags=["qa"], summary="QA history of a calibrator")
def list_calibrator_qa(
    calibrator_id: IdPath,
    request: Request,
    me: Annotated[Principal, require("calibrators:read")],
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[QaOut]:
    with request.app.state.db.read() as session:
        return calibrators.list_calibrator_qa(session, me, calibrator_id, limit=limit, offset=offset)


@router.post(
    "/cameras/{camera}/calibrations", tags=["qa"], status_code=201, summary="Record a SPECT/CT calibration"
)
def add_camera_calibration(
    camera: CameraPath,
    body: CameraCalibrationIn,
    request: Request,
    me: Annotated[Principal, require("cameras:write")],
) -> CameraCalibrationOut:
    with request.app.state.db.write() as session:
        return cameras.add_camera_calibration(session, me, camera, body)


@router.get(
    "/cameras/{camera}/calibrations", tags=["qa"], summary="Calibration history of a camera, oldest first"
)
def list_camera_calibrations(
    camera: CameraPath,
    request: Request,
    me: Annotated[Principal, require("cameras:read")],
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[CameraCalibrationOut]:
    """Oldest first; the change from the previous calibration is computed over the whole history."""
    with request.app.state.db.read() as session:
        history = cameras.camera_history(session, me, camera)
    if not history:
        raise not_found("camera", camera)
    return history[offset : offset + limit]


@router.post("/calibrator-qa/{qa_id}/void", tags=["qa"], summary="Void a QA result entered in error (reason)")
def void_calibrator_qa(
    qa_id: IdPath, body: VoidIn, request: Request, me: Annotated[Principal, require("calibrator_qa:write")]
) -> QaOut:
    with request.app.state.db.write() as session:
        return calibrators.void_qa(session, me, qa_id, body)


# --- decay-in-storage waste ---------------------------------------------------------------------------------
@router.get("/waste", tags=["radiation safety"], summary="Waste containers held for decay-in-storage")
def list_waste(request: Request, me: Annotated[Principal, require("waste:read")]) -> list[ContainerOut]:
    with request.app.state.db.read() as session:
        return waste.list_containers(session, me)


@router.post("/waste", tags=["radiation safety"], status_code=201, summary="Open a waste container")
def open_waste(
    body: ContainerIn, request: Request, me: Annotated[Principal, require("waste:write")]
) -> ContainerOut:
    with request.app.state.db.write() as session:
        return waste.open_container(session, me, body)


@router.post("/waste/{container_id}/seal", tags=["radiation safety"], summary="Seal a waste container")
def seal_waste(
    container_id: IdPath, request: Request, me: Annotated[Principal, require("waste:write")]
) -> ContainerOut:
    with request.app.state.db.write() as session:
        return waste.seal_container(session, me, container_id)


@router.post(
    "/waste/{container_id}/release",
    tags=["radiation safety"],
    summary="Release a sealed container after a survey at background (10 CFR 35.92)",
)
def release_waste(
    container_id: IdPath, body: SurveyIn, request: Request, me: Annotated[Principal, require("waste:write")]
) -> ContainerOut:
    with request.app.state.db.write() as session:
        return waste.release_container(session, me, container_id, body)
