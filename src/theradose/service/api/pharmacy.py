"""Deliveries, generators, batches (QC, release), dispensing, administration and RRDSR."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import Response

from theradose.service.api.params import IdempotencyKeyHeader, IdPath, Limit, Offset
from theradose.service.auth import Principal, client_address, require
from theradose.service.errors import ERROR_RESPONSES
from theradose.service.operations import (
    administration,
    batches,
    deliveries,
    dispensing,
    labels,
    signatures,
    specifications,
)
from theradose.service.operations.administration import AdministrationIn, AdministrationOut, AssayIn, AssayOut
from theradose.service.operations.batches import BatchIn, BatchOut, BatchStatusIn, QcIn, QcOut, ReleaseIn
from theradose.service.operations.common import Time
from theradose.service.operations.deliveries import (
    DeliveryIn,
    DeliveryOut,
    GeneratorIn,
    GeneratorOut,
    GeneratorYieldOut,
)
from theradose.service.operations.dispensing import DispenseIn, DispensingOut, VoidDispensingIn
from theradose.service.operations.idempotency import request_hash, run_once
from theradose.service.operations.specifications import SpecificationIn, SpecificationOut

router = APIRouter(responses=ERROR_RESPONSES)


# --- deliveries and generators ------------------------------------------------------------------------------
@router.post("/deliveries", tags=["deliveries"], status_code=201, summary="Receive a radionuclide delivery")
def create_delivery(
    body: DeliveryIn, request: Request, me: Annotated[Principal, require("deliveries:write")]
) -> DeliveryOut:
    with request.app.state.db.write() as session:
        return deliveries.create_delivery(session, me, body)


@router.get("/deliveries", tags=["deliveries"], summary="List deliveries, newest first")
def list_deliveries(
    request: Request,
    me: Annotated[Principal, require("deliveries:read")],
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[DeliveryOut]:
    with request.app.state.db.read() as session:
        return deliveries.list_deliveries(session, me, limit=limit, offset=offset)


@router.post("/generators", tags=["deliveries"], status_code=201, summary="Register a generator")
def create_generator(
    body: GeneratorIn, request: Request, me: Annotated[Principal, require("deliveries:write")]
) -> GeneratorOut:
    with request.app.state.db.write() as session:
        return deliveries.create_generator(session, me, body)


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
        return deliveries.generator_available(
            session, me, generator_id, last_elution=last_elution, at_time=at_time
        )


# --- batches ------------------------------------------------------------------------------------------------
@router.post("/batches", tags=["batches"], status_code=201, summary="Register a batch (in quarantine)")
def create_batch(
    body: BatchIn, request: Request, me: Annotated[Principal, require("batches:write")]
) -> BatchOut:
    with request.app.state.db.write() as session:
        return batches.create_batch(session, me, body)


@router.get("/batches", tags=["batches"], summary="List batches, newest first")
def list_batches(
    request: Request,
    me: Annotated[Principal, require("batches:read")],
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[BatchOut]:
    with request.app.state.db.read() as session:
        return batches.list_batches(session, me, limit=limit, offset=offset)


@router.get("/batches/{batch_id}", tags=["batches"], summary="One batch with QC and remaining stock")
def get_batch(
    batch_id: IdPath, request: Request, me: Annotated[Principal, require("batches:read")]
) -> BatchOut:
    with request.app.state.db.read() as session:
        return batches.get_batch(session, me, batch_id)


@router.post("/batches/{batch_id}/qc", tags=["batches"], status_code=201, summary="Record a QC result")
def add_qc(
    batch_id: IdPath, body: QcIn, request: Request, me: Annotated[Principal, require("batches:write")]
) -> QcOut:
    with request.app.state.db.write() as session:
        return batches.add_qc(session, me, batch_id, body)


@router.post(
    "/batches/{batch_id}/release",
    tags=["batches"],
    summary="Release a batch from QC: e-signature of a pharmacist who did not record its QC",
)
def release_batch(
    batch_id: IdPath, body: ReleaseIn, request: Request, me: Annotated[Principal, require("batches:write")]
) -> BatchOut:
    state = request.app.state
    signer = signatures.reauthenticate(
        me, "released", body.password, auth=state.auth, client=client_address(request)
    )
    with state.db.write() as session:
        return batches.release_batch(session, signer, batch_id, body, keys=state.keys)


@router.post("/batches/{batch_id}/reject", tags=["batches"], summary="Reject a batch in quarantine (reason)")
def reject_batch(
    batch_id: IdPath,
    body: BatchStatusIn,
    request: Request,
    me: Annotated[Principal, require("batches:write")],
) -> BatchOut:
    with request.app.state.db.write() as session:
        return batches.set_batch_status(session, me, batch_id, body, to="rejected")


@router.post("/batches/{batch_id}/void", tags=["batches"], summary="Void a batch entered in error (reason)")
def void_batch(
    batch_id: IdPath,
    body: BatchStatusIn,
    request: Request,
    me: Annotated[Principal, require("batches:write")],
) -> BatchOut:
    with request.app.state.db.write() as session:
        return batches.set_batch_status(session, me, batch_id, body, to="voided")


@router.get(
    "/specifications", tags=["batches"], summary="Release specifications of the products, every version"
)
def list_specifications(
    request: Request, me: Annotated[Principal, require("batches:read")]
) -> list[SpecificationOut]:
    with request.app.state.db.read() as session:
        return specifications.list_specifications(session, me)


@router.post(
    "/specifications", tags=["batches"], status_code=201, summary="Write the next version of a specification"
)
def create_specification(
    body: SpecificationIn, request: Request, me: Annotated[Principal, require("specifications:write")]
) -> SpecificationOut:
    with request.app.state.db.write() as session:
        return specifications.create_specification(session, me, body)


# --- dispensing ---------------------------------------------------------------------------------------------
@router.post(
    "/batches/{batch_id}/dispensings", tags=["dispensing"], status_code=201, summary="Dispense a patient dose"
)
def create_dispensing(
    batch_id: IdPath,
    body: DispenseIn,
    request: Request,
    me: Annotated[Principal, require("dispense")],
    idempotency_key: IdempotencyKeyHeader = None,
) -> DispensingOut:
    keys = request.app.state.keys
    with request.app.state.db.write() as session:
        digest = request_hash("create_dispensing", batch_id, body)
        out, _ = run_once(
            session,
            me,
            idempotency_key,
            "create_dispensing",
            digest,
            DispensingOut,
            lambda: dispensing.create_dispensing(session, me, batch_id, body, keys=keys),
        )
        return out


@router.post(
    "/dispensings/{dispensing_id}/void",
    tags=["dispensing"],
    summary="Void a dose not administered (reason and e-signature); the directive can be dispensed again",
)
def void_dispensing(
    dispensing_id: IdPath,
    body: VoidDispensingIn,
    request: Request,
    me: Annotated[Principal, require("dispense")],
) -> DispensingOut:
    state = request.app.state
    signer = signatures.reauthenticate(
        me, "voided", body.password, auth=state.auth, client=client_address(request)
    )
    with state.db.write() as session:
        return dispensing.void_dispensing(session, signer, dispensing_id, body, keys=state.keys)


@router.get(
    "/dispensings/{dispensing_id}/label",
    tags=["dispensing"],
    summary="Syringe/vial label (PDF with a QR code)",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}, "description": "one-page PDF"}},
)
def dispensing_label(
    dispensing_id: IdPath, request: Request, me: Annotated[Principal, require("batches:read")]
) -> Response:
    with request.app.state.db.write() as session:
        fields = labels.label_text(
            session, me, dispensing_id, site_timezone=request.app.state.settings.site_timezone
        )
    return Response(
        labels.label_pdf(fields),
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="label_D{dispensing_id}.pdf"'},
    )


@router.get("/dispensings/{dispensing_id}", tags=["dispensing"], summary="One dispensed dose")
def get_dispensing(
    dispensing_id: IdPath, request: Request, me: Annotated[Principal, require("batches:read")]
) -> DispensingOut:
    with request.app.state.db.read() as session:
        return dispensing.get_dispensing(session, me, dispensing_id)


# --- administration -----------------------------------------------------------------------------------------
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
    idempotency_key: IdempotencyKeyHeader = None,
) -> AdministrationOut:
    keys = request.app.state.keys
    with request.app.state.db.write() as session:
        digest = request_hash("create_administration", dispensing_id, body)
        out, _ = run_once(
            session,
            me,
            idempotency_key,
            "create_administration",
            digest,
            AdministrationOut,
            lambda: administration.create_administration(session, me, dispensing_id, body, keys=keys),
        )
        return out


@router.post(
    "/dispensings/{dispensing_id}/assay",
    tags=["administration"],
    summary="Pre-injection syringe assay against the directive (nothing is recorded)",
)
def assay_syringe(
    dispensing_id: IdPath, body: AssayIn, request: Request, me: Annotated[Principal, require("administer")]
) -> AssayOut:
    with request.app.state.db.read() as session:
        return administration.assay_preview(session, me, dispensing_id, body, keys=request.app.state.keys)


@router.get("/administrations/{administration_id}", tags=["administration"], summary="One administration")
def get_administration(
    administration_id: IdPath, request: Request, me: Annotated[Principal, require("administrations:read")]
) -> AdministrationOut:
    with request.app.state.db.read() as session:
        return administration.get_administration(session, me, administration_id)


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
    with request.app.state.db.read() as session:
        data = administration.administration_rrdsr(
            session, me, administration_id, settings=request.app.state.settings
        )
    return Response(
        content=data,
        media_type="application/dicom",
        headers={"Content-Disposition": f'attachment; filename="rrdsr_{administration_id}.dcm"'},
    )
