"""Audit trail, electronic signatures and RRDSR import."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, UploadFile
from pydantic import BaseModel, Field
from sqlalchemy import select

from theradose.pharmacy import signatures as sig_logic
from theradose.pharmacy.audit import format_time
from theradose.service import audit_store
from theradose.service.api._common import IdPath, Limit, Model, Offset, utcnow
from theradose.service.auth import Principal, client_address, require
from theradose.service.errors import ERROR_RESPONSES, ApiError, ErrorResponse, conflict, not_found
from theradose.service.models import (
    Administration,
    AuditEntryRow,
    Batch,
    CalibratorQa,
    Dispensing,
    ImportedAdministration,
    Prescription,
    SignatureRow,
    row_to_dict,
)
from theradose.service.permissions import SIGNATURE_MEANING_ROLES

router = APIRouter(responses=ERROR_RESPONSES)

#: Records that can be signed: type → model.
SIGNABLE: dict[str, Any] = {
    "prescription": Prescription,
    "batch": Batch,
    "dispensing": Dispensing,
    "administration": Administration,
    "calibrator_qa": CalibratorQa,
}
RecordType = Literal["prescription", "batch", "dispensing", "administration", "calibrator_qa"]


# --- audit --------------------------------------------------------------------------------------------------
class AuditOut(BaseModel):
    seq: int
    actor: str
    at: str
    action: str
    entity: str
    entity_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    reason: str | None
    prev_hash: str
    hash: str


class StateMismatchOut(BaseModel):
    table: str
    id: str
    field: str | None
    problem: str
    audit_entry: int | None
    recorded: Any = None
    found: Any = None


class VerifyOut(BaseModel):
    ok: bool
    entries: int
    first_bad_entry: int | None
    problem: str | None
    head_ok: bool
    rows_checked: int
    state_mismatches: list[StateMismatchOut]
    key_ids: list[str]
    legacy_entries: int
    checkpoint: dict[str, Any] | None


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
        stmt = select(AuditEntryRow).order_by(AuditEntryRow.seq.desc()).limit(limit).offset(offset)
        if entity is not None:
            stmt = stmt.where(AuditEntryRow.entity == entity)
        if entity_id is not None:
            stmt = stmt.where(AuditEntryRow.entity_id == entity_id)
        out = []
        for r in session.execute(stmt).scalars():
            data = row_to_dict(r)
            data["before"] = None if r.before_json is None else json.loads(r.before_json)
            data["after"] = None if r.after_json is None else json.loads(r.after_json)
            data.pop("before_json")
            data.pop("after_json")
            out.append(AuditOut(**data))
        return out


@router.get(
    "/audit/verify",
    tags=["audit"],
    summary="Verify the keyed audit chain, its head, and every record against its last audit entry",
)
def verify_audit(request: Request, me: Annotated[Principal, require("audit:read")]) -> VerifyOut:
    """Checkpoints (outside the database) are compared by ``theradose audit verify --checkpoint``."""
    with request.app.state.db.read() as session:
        result = audit_store.verify(session, request.app.state.keys)
    return VerifyOut(**result.as_dict())


# --- signatures ---------------------------------------------------------------------------------------------
class SignIn(Model):
    record_type: RecordType
    record_id: Annotated[int, Field(ge=1, le=2**31 - 1)]
    meaning: Literal["prepared", "checked", "approved", "administered"]
    password: Annotated[str, Field(min_length=1, max_length=200)]
    reason: Annotated[str | None, Field(default=None, max_length=500, pattern=r"^[^\x00-\x1f]*$")] = None


class SignatureOut(BaseModel):
    id: int
    record_type: str
    record_id: str
    signer: str
    signer_name: str
    meaning: str
    signed_at: str
    record_hash: str
    valid: bool
    record_unchanged: bool
    key_id: str | None = None


def _record(session: Any, record_type: str, record_id: int) -> dict[str, Any]:
    model = SIGNABLE[record_type]
    row = session.get(model, record_id)
    if row is None:
        raise not_found(record_type.replace("_", " "), record_id)
    data = row_to_dict(row)
    data.pop("version", None)  # stock bookkeeping changes do not void a batch signature
    if record_type == "batch":
        data.pop("remaining_activity_ref_mbq")
        data.pop("remaining_volume_ml")
    return data


def _signature_out(session: Any, row: SignatureRow, record: dict[str, Any], keys: Any) -> SignatureOut:
    """A signature with its checks: the seal under the key it names (a key the ring does not hold, or a
    row from before keyed seals that the audit trail does not record exactly, is not valid)."""
    sig = sig_logic.Signature(
        signer=row.signer,
        meaning=row.meaning,
        signed_at=datetime.fromisoformat(row.signed_at.replace("Z", "+00:00")),
        record_type=row.record_type,
        record_id=row.record_id,
        record_hash=row.record_hash,
        seal=row.seal,
        key_id=row.key_id,
    )
    if row.key_id is None:  # sealed before keys lived outside the database: only the trail vouches for it
        unchanged = sig_logic.record_hash(record) == row.record_hash
        check = sig_logic.SignatureCheck(audit_store.signature_recorded(session, row), unchanged)
    elif keys.has(row.key_id):
        check = sig_logic.verify(sig, record, secret=keys.sub_key("e-signature", row.key_id))
    else:
        check = sig_logic.SignatureCheck(False, sig_logic.record_hash(record) == row.record_hash)
    return SignatureOut(
        id=row.id,
        record_type=row.record_type,
        record_id=row.record_id,
        signer=row.signer,
        signer_name=row.signer_name,
        meaning=row.meaning,
        signed_at=row.signed_at,
        record_hash=row.record_hash,
        valid=check.valid,
        record_unchanged=check.record_unchanged,
        key_id=row.key_id,
    )


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
    """The password is checked again (throttled; failures audited). An account whose password an
    administrator set cannot sign until its owner has chosen a new one."""
    allowed = SIGNATURE_MEANING_ROLES[body.meaning]
    if me.role not in allowed:
        raise ApiError(
            403, "forbidden", f"role {me.role!r} may not sign as {body.meaning!r}; allowed: {sorted(allowed)}"
        )
    request.app.state.auth.reauthenticate(me, body.password, client_address(request), purpose="signature")
    keys = request.app.state.keys
    secret = keys.sub_key("e-signature")
    with request.app.state.db.write() as session:
        record = _record(session, body.record_type, body.record_id)
        duplicate = session.execute(
            select(SignatureRow).where(
                SignatureRow.record_type == body.record_type,
                SignatureRow.record_id == str(body.record_id),
                SignatureRow.signer == me.username,
                SignatureRow.meaning == body.meaning,
            )
        ).first()
        if duplicate:
            raise conflict("already_signed", f"{me.username} already signed this record as {body.meaning}")
        sig = sig_logic.sign(
            record,
            secret=secret,
            signer=me.username,
            meaning=body.meaning,
            signed_at=utcnow(),
            record_type=body.record_type,
            record_id=str(body.record_id),
            key_id=keys.active_id,
        )
        row = SignatureRow(
            record_type=sig.record_type,
            record_id=sig.record_id,
            signer=sig.signer,
            signer_name=me.full_name or me.username,
            meaning=sig.meaning,
            signed_at=format_time(sig.signed_at),
            record_hash=sig.record_hash,
            seal=sig.seal,
            key_id=sig.key_id,
        )
        session.add(row)
        session.flush()
        audit_store.append(
            session,
            actor=me.username,
            at=sig.signed_at,
            action="sign",
            entity=body.record_type,
            entity_id=str(body.record_id),
            after=row_to_dict(row),
            reason=body.reason,
        )
        return _signature_out(session, row, record, keys)


@router.get(
    "/signatures/{record_type}/{record_id}", tags=["signatures"], summary="Signatures of a record, verified"
)
def list_signatures(
    record_type: RecordType,
    record_id: IdPath,
    request: Request,
    me: Annotated[Principal, require("signatures:read")],
) -> list[SignatureOut]:
    with request.app.state.db.read() as session:
        record = _record(session, record_type, record_id)
        rows = session.execute(
            select(SignatureRow)
            .where(SignatureRow.record_type == record_type, SignatureRow.record_id == str(record_id))
            .order_by(SignatureRow.id)
        ).scalars()
        return [_signature_out(session, r, record, request.app.state.keys) for r in rows]


# --- RRDSR import -------------------------------------------------------------------------------------------
class ImportedOut(BaseModel):
    id: int
    sop_instance_uid: str
    event_uid: str | None
    patient_ref: str
    radiopharmaceutical: str
    radionuclide: str
    administered_activity_mbq: float
    start_time: datetime | None
    route: str | None
    pre_activity_mbq: float | None
    post_activity_mbq: float | None
    device: str | None
    imported_by: str
    imported_at: datetime


@router.post(
    "/rrdsr/import", tags=["administration"], status_code=201, summary="Import an RRDSR (DICOM file upload)"
)
async def import_rrdsr(
    file: UploadFile, request: Request, me: Annotated[Principal, require("rrdsr:import")]
) -> ImportedOut:
    from theradose.errors import DicomError
    from theradose.service.rrdsr import read_rrdsr

    data = await file.read()
    try:
        report = read_rrdsr(data)
    except DicomError as exc:
        raise ApiError(422, "invalid_dicom", str(exc), "file") from exc
    except (AttributeError, IndexError, KeyError, TypeError, ValueError) as exc:  # malformed content items
        raise ApiError(
            422, "invalid_dicom", f"RRDSR content not understood: {type(exc).__name__}", "file"
        ) from exc
    if not report.sop_instance_uid:
        raise ApiError(422, "invalid_dicom", "RRDSR has no SOPInstanceUID", "file")
    with request.app.state.db.write() as session:
        exists = session.execute(
            select(ImportedAdministration).where(
                ImportedAdministration.sop_instance_uid == report.sop_instance_uid
            )
        ).first()
        if exists:
            raise conflict("already_imported", f"RRDSR {report.sop_instance_uid} was imported before", "file")
        row = ImportedAdministration(
            sop_instance_uid=report.sop_instance_uid[:64],
            event_uid=(report.event_uid or None) and report.event_uid[:64],
            patient_ref=report.patient_id[:64],
            radiopharmaceutical=report.radiopharmaceutical[:200],
            radionuclide=report.nuclide[:64],
            administered_activity_mbq=report.administered_activity_mbq,
            start_time=report.injection_time,
            route=report.route[:100] or None,
            pre_activity_mbq=report.pre_activity_mbq,
            post_activity_mbq=report.post_activity_mbq,
            device=report.device,
            imported_by=me.username,
            imported_at=utcnow(),
        )
        session.add(row)
        session.flush()
        audit_store.append(
            session,
            actor=me.username,
            at=utcnow(),
            action="create",
            entity="imported_administration",
            entity_id=row.id,
            after=row_to_dict(row),
        )
        return ImportedOut(**row_to_dict(row))
