"""Audit trail, electronic signatures and RRDSR import."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, UploadFile

from theradose.service.api.params import IdPath, Limit, Offset
from theradose.service.auth import Principal, client_address, require
from theradose.service.errors import ERROR_RESPONSES, ErrorResponse
from theradose.service.operations import audit, rrdsr_import, signatures
from theradose.service.operations.audit import AuditOut, VerifyOut
from theradose.service.operations.rrdsr_import import ImportedOut
from theradose.service.operations.signatures import RecordType, SignatureOut, SignIn

router = APIRouter(responses=ERROR_RESPONSES)


# --- audit --------------------------------------------------------------------------------------------------
@router.get("/audit", tags=["audit"], summary="Audit trail entries, newest first")
def list_audit(
    request: Request,
    me: Annotated[Principal, require("audit:read")],
    entity: Annotated[str | None, Query(max_length=40, pattern=r"^[a-z_]+$")] = None,
    entity_id: Annotated[str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[AuditOut]:
    with request.app.state.db.read() as session:
        return audit.list_audit(session, me, entity=entity, entity_id=entity_id, limit=limit, offset=offset)


@router.get(
    "/audit/verify",
    tags=["audit"],
    summary="Verify the keyed audit chain, its head, and every record against its last audit entry",
)
def verify_audit(request: Request, me: Annotated[Principal, require("audit:read")]) -> VerifyOut:
    with request.app.state.db.read() as session:
        return audit.verify_audit(session, me, keys=request.app.state.keys)


# --- signatures ---------------------------------------------------------------------------------------------
@router.post(
    "/signatures",
    tags=["signatures"],
    status_code=201,
    summary="Sign a record (re-enter your password)",
    responses={
        429: {"model": ErrorResponse, "description": "too many failed re-authentications: locked"},
        503: {"model": ErrorResponse, "description": "too many password checks at once"},
    },
)
def sign_record(body: SignIn, request: Request, me: Annotated[Principal, require("sign")]) -> SignatureOut:
    state = request.app.state
    signer = signatures.reauthenticate(
        me, body.meaning, body.password, auth=state.auth, client=client_address(request)
    )
    with state.db.write() as session:
        return signatures.sign_record(session, signer, body, keys=state.keys)


@router.get(
    "/signatures/{record_type}/{record_id}", tags=["signatures"], summary="Signatures of a record, verified"
)
def list_signatures(
    record_type: RecordType,
    record_id: IdPath,
    request: Request,
    me: Annotated[Principal, require("signatures:read")],
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[SignatureOut]:
    with request.app.state.db.read() as session:
        return signatures.list_signatures(
            session, me, record_type, record_id, keys=request.app.state.keys, limit=limit, offset=offset
        )


# --- RRDSR import -------------------------------------------------------------------------------------------
@router.post(
    "/rrdsr/import", tags=["administration"], status_code=201, summary="Import an RRDSR (DICOM file upload)"
)
async def import_rrdsr(
    file: UploadFile, request: Request, me: Annotated[Principal, require("rrdsr:import")]
) -> ImportedOut:
    from fastapi.concurrency import run_in_threadpool

    data = await file.read()

    def work() -> ImportedOut:
        with request.app.state.db.write() as session:
            return rrdsr_import.import_rrdsr(
                session, me, data, site_timezone=request.app.state.settings.site_timezone
            )

    return await run_in_threadpool(work)
