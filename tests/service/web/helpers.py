"""Database snapshots for the 'nothing is written on a rejected form' checks."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select


def snapshot(app: Any) -> dict[str, Any]:
    """Row counts of every table plus the audit head (sequence number and hash)."""
    from theradose.service.models import AuditHead, Base

    out: dict[str, Any] = {}
    with app.state.db.read() as session:
        for table in Base.metadata.sorted_tables:
            out[table.name] = session.execute(select(func.count()).select_from(table)).scalar_one()
        head = session.execute(select(AuditHead)).scalar_one()
        out["audit_head"] = (head.seq, head.hash)
    return out


def unchanged_except_logins(before: dict[str, Any], after: dict[str, Any]) -> bool:
    """True when no table changed (session tokens aside: page loads may log users in)."""
    keys = set(before) - {"session_tokens", "audit_entries", "audit_head"}
    return all(before[k] == after[k] for k in keys) and before["audit_head"] == after["audit_head"]
