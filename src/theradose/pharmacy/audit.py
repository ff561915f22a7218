"""Append-only audit trail chained by a keyed hash (HMAC-SHA-256).

Each entry records who did what, when, to which record, the state before and after, and why. Its hash is
``HMAC-SHA-256(K, prev_hash || "\\n" || canonical_json(body))`` where ``body`` holds every recorded field
including the id of the key ``K`` [2]_, and ``prev_hash`` is the previous entry's hash (64 zeros for the
first). Changing any stored field of any entry, deleting or reordering entries breaks the chain from that
entry on (the hash-chain construction of Haber & Stornetta [1]_); because the hash is keyed, whoever can
write to the database but does not hold ``K`` cannot re-hash an edited chain. Entries written before
keys were introduced (``key_id`` None) carry the unkeyed ``SHA-256(prev_hash || "\\n" || body)``; they
stay verifiable and are anchored by the first keyed entry, whose sealed ``prev_hash`` names them, and no
unkeyed entry may follow a keyed one.

References
----------
.. [1] Haber S, Stornetta WS. How to time-stamp a digital document. J Cryptology 3:99-111, 1991.
.. [2] RFC 2104, HMAC: Keyed-Hashing for Message Authentication, 1997.

Canonical JSON: keys sorted, no insignificant whitespace, UTF-8, no NaN/Infinity, datetimes as ISO 8601
UTC with microseconds and a ``Z`` suffix (in the spirit of RFC 8785).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from theradose.errors import InputError
from theradose.pharmacy._checks import require_aware, require_text

#: ``prev_hash`` of the first entry.
GENESIS_HASH = "0" * 64


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"cannot put {type(value).__name__} into canonical JSON")


def format_time(value: datetime) -> str:
    """ISO 8601 in UTC with microseconds and ``Z`` (``2026-11-22T04:00:00.000000Z``)."""
    require_aware(value, "time")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_json(value: Any) -> str:
    """Canonical JSON text of ``value`` (sorted keys, compact separators, UTF-8, finite numbers only)."""
    try:
        return json.dumps(
            value,
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
            allow_nan=False,
            default=_default,
        )
    except ValueError as exc:
        raise InputError(f"audit data must contain only finite numbers: {exc}") from exc


def sha256_hex(text: str) -> str:
    """Hex SHA-256 of the UTF-8 encoding of ``text``."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class AuditEntry:
    """One audit trail entry (see module docstring for the hash)."""

    seq: int
    actor: str
    at: datetime
    action: str
    entity: str
    entity_id: str
    before: Mapping[str, Any] | None
    after: Mapping[str, Any] | None
    reason: str | None
    prev_hash: str
    hash: str
    key_id: str | None = None

    def body(self) -> dict[str, Any]:
        """The hashed fields."""
        return entry_body(
            seq=self.seq,
            actor=self.actor,
            at=self.at,
            action=self.action,
            entity=self.entity,
            entity_id=self.entity_id,
            before=self.before,
            after=self.after,
            reason=self.reason,
            key_id=self.key_id,
        )


def entry_body(
    *,
    seq: int,
    actor: str,
    at: datetime,
    action: str,
    entity: str,
    entity_id: str,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    reason: str | None,
    key_id: str | None = None,
) -> dict[str, Any]:
    """The dictionary that is hashed for an entry (``key_id`` only in keyed entries)."""
    body = {
        "seq": seq,
        "actor": actor,
        "at": format_time(at),
        "action": action,
        "entity": entity,
        "entity_id": entity_id,
        "before": None if before is None else dict(before),
        "after": None if after is None else dict(after),
        "reason": reason,
    }
    if key_id is not None:
        body["key_id"] = key_id
    return body


def entry_hash(prev_hash: str, body: Mapping[str, Any], key: bytes | None = None) -> str:
    """HMAC-SHA-256 under ``key`` (SHA-256 when ``key`` is None: entries from before keys) chaining
    ``prev_hash`` and the canonical JSON of ``body``."""
    message = prev_hash + "\n" + canonical_json(body)
    if key is None:
        return sha256_hex(message)
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).hexdigest()


def chain_entry(
    *,
    prev_seq: int,
    prev_hash: str,
    actor: str,
    at: datetime,
    action: str,
    entity: str,
    entity_id: str,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    reason: str | None = None,
    key_id: str | None = None,
    key: bytes | None = None,
) -> AuditEntry:
    """Build the entry that follows the entry ``prev_seq`` with hash ``prev_hash`` (0 and
    :data:`GENESIS_HASH` for the first entry), sealed with ``key`` (id ``key_id``)."""
    require_text(actor, "actor")
    require_text(action, "action")
    require_text(entity, "entity")
    require_aware(at, "at")
    if (key_id is None) != (key is None):
        raise InputError("key_id and key go together: give both to seal the entry, or neither")
    if key is not None and not key:
        raise InputError("key must not be empty: configure the audit key")
    seq = prev_seq + 1
    body = entry_body(
        seq=seq,
        actor=actor,
        at=at,
        action=action,
        entity=entity,
        entity_id=entity_id,
        before=before,
        after=after,
        reason=reason,
        key_id=key_id,
    )
    return AuditEntry(
        seq=seq,
        actor=actor,
        at=at,
        action=action,
        entity=entity,
        entity_id=entity_id,
        before=before,
        after=after,
        reason=reason,
        prev_hash=prev_hash,
        hash=entry_hash(prev_hash, body, key),
        key_id=key_id,
    )


def new_entry(
    previous: AuditEntry | None,
    *,
    actor: str,
    at: datetime,
    action: str,
    entity: str,
    entity_id: str,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    reason: str | None = None,
    key_id: str | None = None,
    key: bytes | None = None,
) -> AuditEntry:
    """Build the entry that follows ``previous`` (``None`` for the first entry)."""
    return chain_entry(
        prev_seq=0 if previous is None else previous.seq,
        prev_hash=GENESIS_HASH if previous is None else previous.hash,
        actor=actor,
        at=at,
        action=action,
        entity=entity,
        entity_id=entity_id,
        before=before,
        after=after,
        reason=reason,
        key_id=key_id,
        key=key,
    )


@dataclass(frozen=True)
class ChainVerification:
    """Result of :func:`verify_chain`: ``first_bad_entry`` is the sequence number where it breaks."""

    ok: bool
    entries: int
    first_bad_entry: int | None
    problem: str | None


def verify_chain(
    entries: Sequence[AuditEntry],
    *,
    head_seq: int | None = None,
    head_hash: str | None = None,
    key_for: Callable[[str], bytes | None] | None = None,
) -> ChainVerification:
    """Verify an audit chain given in sequence order.

    Parameters
    ----------
    entries : sequence of AuditEntry
        All entries, ordered by ``seq``.
    head_seq, head_hash : int and str, optional
        The separately stored head; when given, the last entry must match it.
    key_for : callable, optional
        Returns the chain key of a key id, or None when it is not known. Without it, any keyed entry is
        reported as unverifiable.

    Returns
    -------
    ChainVerification
        ``ok`` is false at the first entry whose sequence number, link, key or hash is wrong.
    """
    prev_hash = GENESIS_HASH
    expected_seq = 1
    keyed_seen = False
    for entry in entries:
        if entry.seq != expected_seq:
            return ChainVerification(
                False,
                len(entries),
                expected_seq,
                f"entry {expected_seq} missing (next stored is {entry.seq})",
            )
        if entry.prev_hash != prev_hash:
            return ChainVerification(False, len(entries), entry.seq, f"entry {entry.seq} link broken")
        key = None
        if entry.key_id is None:
            if keyed_seen:
                return ChainVerification(
                    False, len(entries), entry.seq, f"entry {entry.seq} is unkeyed after keyed entries"
                )
        else:
            keyed_seen = True
            key = None if key_for is None else key_for(entry.key_id)
            if key is None:
                return ChainVerification(
                    False,
                    len(entries),
                    entry.seq,
                    f"entry {entry.seq} sealed with key {entry.key_id!r}, which the key ring does not hold",
                )
        if not hmac.compare_digest(entry_hash(entry.prev_hash, entry.body(), key), entry.hash):
            return ChainVerification(
                False,
                len(entries),
                entry.seq,
                f"entry {entry.seq} content changed"
                + (" or sealed with another key" if key is not None else ""),
            )
        prev_hash = entry.hash
        expected_seq += 1
    last_seq = expected_seq - 1
    if head_seq is not None:
        if head_seq > last_seq:
            return ChainVerification(
                False, len(entries), last_seq + 1, f"entries {last_seq + 1}..{head_seq} missing"
            )
        if head_seq < last_seq or (head_hash is not None and head_hash != prev_hash):
            return ChainVerification(
                False, len(entries), head_seq + 1 if head_seq < last_seq else head_seq, "head mismatch"
            )
    return ChainVerification(True, len(entries), None, None)
