"""Writing and verifying the audit chain in the database."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from theradose.pharmacy.audit import (
    AuditEntry,
    ChainVerification,
    canonical_json,
    chain_entry,
    format_time,
    verify_chain,
)
from theradose.service.models import AuditEntryRow, AuditHead


def append(
    session: Session,
    *,
    actor: str,
    at: datetime,
    action: str,
    entity: str,
    entity_id: str | int,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    reason: str | None = None,
) -> AuditEntryRow:
    """Append one entry in the caller's write transaction (which holds the audit head lock)."""
    head = session.execute(select(AuditHead).where(AuditHead.id == 1)).scalar_one()
    entry = chain_entry(
        prev_seq=head.seq,
        prev_hash=head.hash,
        actor=actor,
        at=at,
        action=action,
        entity=entity,
        entity_id=str(entity_id),
        before=before,
        after=after,
        reason=reason,
    )
    row = AuditEntryRow(
        seq=entry.seq,
        actor=entry.actor,
        at=format_time(entry.at),
        action=entry.action,
        entity=entry.entity,
        entity_id=entry.entity_id,
        before_json=None if before is None else canonical_json(dict(before)),
        after_json=None if after is None else canonical_json(dict(after)),
        reason=reason,
        prev_hash=entry.prev_hash,
        hash=entry.hash,
    )
    session.add(row)
    head.seq = entry.seq
    head.hash = entry.hash
    session.flush()
    return row


def row_to_entry(row: AuditEntryRow) -> AuditEntry:
    """Rebuild the domain entry from a stored row (for verification)."""
    return AuditEntry(
        seq=row.seq,
        actor=row.actor,
        at=datetime.fromisoformat(row.at.replace("Z", "+00:00")),
        action=row.action,
        entity=row.entity,
        entity_id=row.entity_id,
        before=None if row.before_json is None else json.loads(row.before_json),
        after=None if row.after_json is None else json.loads(row.after_json),
        reason=row.reason,
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


def verify(session: Session) -> ChainVerification:
    """Verify the whole stored chain against itself and the stored head."""
    rows = session.execute(select(AuditEntryRow).order_by(AuditEntryRow.seq)).scalars().all()
    head = session.execute(select(AuditHead).where(AuditHead.id == 1)).scalar_one()
    entries = []
    for row in rows:
        try:
            entries.append(row_to_entry(row))
        except (ValueError, TypeError):
            return ChainVerification(False, len(rows), row.seq, f"entry {row.seq} unreadable")
    return verify_chain(entries, head_seq=head.seq, head_hash=head.hash)
