"""Use cases of the audit trail: list entries, verify the chain, its head and every record."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from theradose.service import audit_store
from theradose.service.auth import Principal
from theradose.service.keys import KeyRing
from theradose.service.models import AuditEntryRow, row_to_dict


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
    key_id: str | None = None


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


def list_audit(
    session: Session,
    me: Principal,
    *,
    entity: str | None = None,
    entity_id: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[AuditOut]:
    """Audit entries, newest first, optionally of one entity (and id)."""
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


def count_audit(session: Session, me: Principal) -> int:
    """Number of entries in the chain."""
    return int(session.execute(select(func.count()).select_from(AuditEntryRow)).scalar_one())


def verify_audit(session: Session, me: Principal, *, keys: KeyRing) -> VerifyOut:
    """Verify the keyed chain, its sealed head and every record against its newest audit entry
    (checkpoints outside the database are compared by ``theradose audit verify --checkpoint``)."""
    return VerifyOut(**audit_store.verify(session, keys).as_dict())
