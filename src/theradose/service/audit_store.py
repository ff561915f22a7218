"""The audit chain in the database: appending, verifying, checking live rows, signed checkpoints.

Three checks answer "could anyone have changed this record unseen?":

1. **Chain** (:func:`verify`): every entry's keyed hash and link, and the sealed head
   (:mod:`theradose.pharmacy.audit`). Editing, re-hashing, inserting or deleting entries needs the key.
2. **State**: every *tracked* row (clinical records, users, signatures) is compared, field by field, with
   the state its newest ``create``/``update`` entry recorded; :func:`append` records that state itself
   (the row as the ORM holds it, plus keyed digests of the password hash of a user and of the identity
   of a patient, so neither secret nor identifying value enters the trail). A row edited, inserted or
   deleted outside the application is named by table, id and field.
3. **Checkpoints** (:func:`write_checkpoint`, :func:`verify_checkpoints`): the head, sealed with the
   checkpoint sub-key, appended to a file outside the database. A truncated tail (newest entries
   deleted and head moved back, even to an earlier sealed head copied from a backup) or a rewritten
   chain no longer contains what a checkpoint saw.

The key ring travels on the write session (``session.info``), set by
:class:`theradose.service.db.Database`, so callers of :func:`append` pass no key.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from theradose.errors import InputError, ServiceError
from theradose.pharmacy.audit import (
    GENESIS_HASH,
    AuditEntry,
    ChainVerification,
    canonical_json,
    chain_entry,
    format_time,
    verify_chain,
)
from theradose.service.keys import KeyRing, mac_hex
from theradose.service.models import (
    Administration,
    AuditEntryRow,
    AuditHead,
    Base,
    Batch,
    Calibrator,
    CalibratorQa,
    CameraCalibrationRow,
    Delivery,
    DirectivePlan,
    Dispensing,
    Generator,
    ImportedAdministration,
    LabRecord,
    Patient,
    PatientIdentity,
    PrecycleDecisionRow,
    Prescription,
    ProductSpecification,
    QcResultRow,
    Referral,
    SignatureRow,
    User,
    WasteContainer,
    row_to_dict,
)

log = logging.getLogger("theradose.service.audit")

#: Key of the key ring in ``Session.info``.
KEYRING_INFO = "theradose.keyring"
#: Actions whose ``after`` records the full state of a tracked row.
STATE_ACTIONS = frozenset({"create", "update"})
#: Name of the checkpoint file inside a checkpoint folder.
CHECKPOINT_FILE = "audit-checkpoints.jsonl"


@dataclass(frozen=True)
class Tracked:
    """A table whose rows are checked against the audit trail: its model and the entity key column."""

    model: type[Base]
    key: str = "id"


#: Audit entity name → tracked table. Signatures are tracked through their ``sign`` entries; patient
#: identities through the ``identity_digest`` of their patient.
TRACKED: dict[str, Tracked] = {
    "user": Tracked(User),
    "patient": Tracked(Patient, key="pseudonym"),
    "referral": Tracked(Referral),
    "prescription": Tracked(Prescription),
    "delivery": Tracked(Delivery),
    "generator": Tracked(Generator),
    "batch": Tracked(Batch),
    "qc_result": Tracked(QcResultRow),
    "dispensing": Tracked(Dispensing),
    "administration": Tracked(Administration),
    "imported_administration": Tracked(ImportedAdministration),
    "calibrator": Tracked(Calibrator),
    "calibrator_qa": Tracked(CalibratorQa),
    "camera_calibration": Tracked(CameraCalibrationRow),
    "lab_record": Tracked(LabRecord),
    "precycle_decision": Tracked(PrecycleDecisionRow),
    "product_specification": Tracked(ProductSpecification),
    "waste_container": Tracked(WasteContainer),
    "directive_plan": Tracked(DirectivePlan),
}

#: Tables deliberately not compared with the trail, and why (a test keeps this list complete).
UNTRACKED: dict[str, str] = {
    "audit_entries": "the chain itself (verified by its keyed hashes)",
    "audit_head": "sealed with the chain key, checked with the chain",
    "signatures": "checked against their 'sign' entries",
    "patient_identities": "checked through the identity_digest of the patient",
    "session_tokens": "login tokens are stored as keyed hashes: a row written without the key opens nothing",
    "auth_failures": "throttling counters, not records; every failure is also an audit entry",
    "idempotency_keys": "the stored answers of writes already done (a replay cache); the writes are audited",
    "specification_tests": "written once with their specification, whose audit entry lists them; not "
    "compared row by row (a specification is never edited: a change is a new version)",
}


def keyring_of(session: Session) -> KeyRing:
    """The key ring attached to ``session`` by :class:`theradose.service.db.Database`."""
    ring = session.info.get(KEYRING_INFO)
    if ring is None:
        raise ServiceError(
            "no audit key on this database connection: configure a key file ($THERADOSE_KEY_FILE) "
            "or $THERADOSE_SECRET_KEY"
        )
    assert isinstance(ring, KeyRing)
    return ring


# --- state of a tracked row ---------------------------------------------------------------------------------
def _digest(ring: KeyRing, key_id: str, label: str, value: Any) -> str:
    return mac_hex(ring.sub_key("state-digest", key_id), label + "\n" + canonical_json(value))


def identity_content(identity: PatientIdentity | None) -> dict[str, Any] | None:
    """The identifying fields of a patient (what the identity digest covers)."""
    if identity is None:
        return None
    return {
        "family_name": identity.family_name,
        "given_name": identity.given_name,
        "mrn": identity.mrn,
        "birth_date": None if identity.birth_date is None else identity.birth_date.isoformat(),
    }


def row_state(
    row: Base,
    *,
    ring: KeyRing | None,
    key_id: str | None,
    identity: Callable[[int], PatientIdentity | None] | None = None,
) -> dict[str, Any]:
    """The state of a tracked row as the audit trail records it.

    Columns as :func:`theradose.service.models.row_to_dict` gives them, except that a user's password
    hash is replaced by ``password_digest`` and a patient gets ``identity_digest``, both keyed digests
    (key ``key_id``; left out when no key is given, as for entries from before keyed sealing).
    """
    data = row_to_dict(row)
    if isinstance(row, User):
        password_hash = data.pop("password_hash")
        if ring is not None and key_id is not None:
            data["password_digest"] = _digest(ring, key_id, "user.password_hash", password_hash)
    elif isinstance(row, Patient) and ring is not None and key_id is not None and identity is not None:
        data["identity_digest"] = _digest(
            ring, key_id, "patient.identity", identity_content(identity(row.id))
        )
    return data


def _identity_in(session: Session) -> Callable[[int], PatientIdentity | None]:
    def find(patient_id: int) -> PatientIdentity | None:
        return session.execute(
            select(PatientIdentity).where(PatientIdentity.patient_id == patient_id)
        ).scalar_one_or_none()

    return find


def _tracked_row(session: Session, entity: str, entity_id: str) -> Base | None:
    tracked = TRACKED[entity]
    column = getattr(tracked.model, tracked.key)
    value: Any = entity_id
    if tracked.key == "id":
        try:
            value = int(entity_id)
        except ValueError:
            return None
    return session.execute(select(tracked.model).where(column == value)).scalar_one_or_none()


# --- appending ----------------------------------------------------------------------------------------------
def head_mac(ring: KeyRing, key_id: str, seq: int, hash_: str) -> str:
    """The seal of the audit head ``(seq, hash)`` under key ``key_id``."""
    return mac_hex(
        ring.sub_key("audit-chain", key_id),
        canonical_json({"head": True, "seq": seq, "hash": hash_, "key_id": key_id}),
    )


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
    """Append one entry in the caller's write transaction (which holds the audit head lock).

    For a ``create`` or ``update`` of a tracked entity, ``after`` is completed with the row's state as
    :func:`row_state` gives it (state fields win), so that the state verification compares like with like.
    """
    ring = keyring_of(session)
    key_id = ring.active_id
    head = session.execute(select(AuditHead).where(AuditHead.id == 1)).scalar_one()
    if after is not None and action in STATE_ACTIONS and entity in TRACKED:
        session.flush()
        row = _tracked_row(session, entity, str(entity_id))
        if row is None:
            raise ServiceError(f"audit entry for {entity} {entity_id}: no such row to record")
        after = {**after, **row_state(row, ring=ring, key_id=key_id, identity=_identity_in(session))}
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
        key_id=key_id,
        key=ring.sub_key("audit-chain", key_id),
    )
    row_out = AuditEntryRow(
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
        key_id=key_id,
    )
    session.add(row_out)
    head.seq = entry.seq
    head.hash = entry.hash
    head.key_id = key_id
    head.mac = head_mac(ring, key_id, entry.seq, entry.hash)
    session.flush()
    return row_out


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
        key_id=row.key_id,
    )


# --- verification -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StateMismatch:
    """A live row that differs from the state its newest audit entry recorded."""

    table: str
    id: str
    field: str | None
    problem: str
    audit_entry: int | None = None
    recorded: Any = None
    found: Any = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "table": self.table,
            "id": self.id,
            "field": self.field,
            "problem": self.problem,
            "audit_entry": self.audit_entry,
            "recorded": self.recorded,
            "found": self.found,
        }

    def text(self) -> str:
        """One line naming table, id and field."""
        where = f"{self.table} id {self.id}" + (f" field {self.field}" if self.field else "")
        return f"{where}: {self.problem}"


@dataclass(frozen=True)
class CheckpointCheck:
    """Result of comparing the chain with the checkpoints of one file."""

    ok: bool
    path: str
    checkpoints: int
    newest_seq: int | None
    problem: str | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "ok": self.ok,
            "path": self.path,
            "checkpoints": self.checkpoints,
            "newest_seq": self.newest_seq,
            "problem": self.problem,
        }


@dataclass(frozen=True)
class Verification:
    """Everything :func:`verify` found; ``ok`` only when the chain, the head, every tracked row and (when
    asked) the checkpoints agree."""

    chain: ChainVerification
    head_problem: str | None
    state_mismatches: tuple[StateMismatch, ...]
    rows_checked: int
    key_ids: tuple[str, ...]
    checkpoint: CheckpointCheck | None = None
    legacy_entries: int = 0

    @property
    def ok(self) -> bool:
        """True when nothing was found."""
        return (
            self.chain.ok
            and self.head_problem is None
            and not self.state_mismatches
            and (self.checkpoint is None or self.checkpoint.ok)
        )

    @property
    def problem(self) -> str | None:
        """The first problem, in one line."""
        if not self.chain.ok:
            return self.chain.problem
        if self.head_problem:
            return self.head_problem
        if self.state_mismatches:
            return self.state_mismatches[0].text()
        if self.checkpoint is not None and not self.checkpoint.ok:
            return self.checkpoint.problem
        return None

    def as_dict(self) -> dict[str, Any]:
        """JSON-able summary (the shape of ``theradose audit verify --json`` and ``GET /audit/verify``)."""
        return {
            "ok": self.ok,
            "entries": self.chain.entries,
            "first_bad_entry": self.chain.first_bad_entry,
            "problem": self.problem,
            "head_ok": self.chain.ok and self.head_problem is None,
            "rows_checked": self.rows_checked,
            "state_mismatches": [m.as_dict() for m in self.state_mismatches],
            "key_ids": list(self.key_ids),
            "legacy_entries": self.legacy_entries,
            "checkpoint": None if self.checkpoint is None else self.checkpoint.as_dict(),
        }


def _same(recorded: Any, found: Any) -> bool:
    numbers = (int, float)
    if (
        isinstance(recorded, numbers)
        and isinstance(found, numbers)
        and not isinstance(recorded, bool)
        and not isinstance(found, bool)
    ):
        return float(recorded) == float(found)
    return bool(recorded == found)


def _key_for(ring: KeyRing | None) -> Callable[[str], bytes | None]:
    def key_for(key_id: str) -> bytes | None:
        if ring is None or not ring.has(key_id):
            return None
        return ring.sub_key("audit-chain", key_id)

    return key_for


def _check_head(head: AuditHead, entries: Sequence[AuditEntry], ring: KeyRing | None) -> str | None:
    keyed = any(e.key_id is not None for e in entries)
    if head.key_id is None or head.mac is None:
        return "audit head is not sealed although the chain has keyed entries" if keyed else None
    if ring is None or not ring.has(head.key_id):
        return f"audit head sealed with key {head.key_id!r}, which the key ring does not hold"
    if not hmac.compare_digest(head_mac(ring, head.key_id, head.seq, head.hash), head.mac):
        return "audit head seal invalid: the head was changed (e.g. moved back over deleted entries)"
    return None


def _latest_states(
    entries: Sequence[AuditEntry],
) -> tuple[dict[tuple[str, str], AuditEntry], dict[str, AuditEntry]]:
    latest: dict[tuple[str, str], AuditEntry] = {}
    signatures: dict[str, AuditEntry] = {}
    for entry in entries:
        if entry.after is None:
            continue
        if entry.action in STATE_ACTIONS and entry.entity in TRACKED:
            latest[(entry.entity, entry.entity_id)] = entry
        elif entry.action == "sign" and "id" in entry.after and "seal" in entry.after:
            signatures[str(entry.after["id"])] = entry
    return latest, signatures


def _compare(
    table: str,
    key: str,
    state: Mapping[str, Any],
    entry: AuditEntry,
    out: list[StateMismatch],
) -> None:
    assert entry.after is not None
    for name, value in state.items():
        if name in entry.after and not _same(entry.after[name], value):
            out.append(
                StateMismatch(
                    table,
                    key,
                    name,
                    f"changed outside the application (audit entry {entry.seq} recorded "
                    f"{entry.after[name]!r}, the row holds {value!r})",
                    entry.seq,
                    entry.after[name],
                    value,
                )
            )


def verify_state(
    session: Session, entries: Sequence[AuditEntry], ring: KeyRing | None
) -> tuple[list[StateMismatch], int]:
    """Compare every tracked row and every signature row with the audit trail.

    Returns the mismatches (table, id, field) and the number of rows checked.
    """
    latest, signature_entries = _latest_states(entries)
    identities = {i.patient_id: i for i in session.execute(select(PatientIdentity)).scalars()}
    mismatches: list[StateMismatch] = []
    seen: set[tuple[str, str]] = set()
    checked = 0
    for entity, tracked in TRACKED.items():
        table = tracked.model.__tablename__
        rows = session.execute(select(tracked.model)).scalars().all()
        for row in rows:
            checked += 1
            key = str(getattr(row, tracked.key))
            seen.add((entity, key))
            entry = latest.get((entity, key))
            if entry is None:
                mismatches.append(
                    StateMismatch(table, key, None, "not in the audit trail: written outside the application")
                )
                continue
            usable_key = entry.key_id if ring is not None and ring.has(entry.key_id) else None
            state = row_state(row, ring=ring, key_id=usable_key, identity=identities.get)
            _compare(table, key, state, entry, mismatches)
    for (entity, key), entry in latest.items():
        if (entity, key) not in seen:
            mismatches.append(
                StateMismatch(
                    TRACKED[entity].model.__tablename__,
                    key,
                    None,
                    f"deleted outside the application (audit entry {entry.seq} recorded it)",
                    entry.seq,
                )
            )
    signature_rows = session.execute(select(SignatureRow)).scalars().all()
    seen_signatures = set()
    for sig in signature_rows:
        checked += 1
        key = str(sig.id)
        seen_signatures.add(key)
        entry = signature_entries.get(key)
        if entry is None:
            mismatches.append(
                StateMismatch(
                    "signatures", key, None, "not in the audit trail: written outside the application"
                )
            )
            continue
        _compare("signatures", key, row_to_dict(sig), entry, mismatches)
    for key, entry in signature_entries.items():
        if key not in seen_signatures:
            mismatches.append(
                StateMismatch(
                    "signatures",
                    key,
                    None,
                    f"deleted outside the application (audit entry {entry.seq})",
                    entry.seq,
                )
            )
    return mismatches, checked


def load_entries(session: Session) -> tuple[list[AuditEntry], int | None]:
    """All entries in order, and the sequence number of the first unreadable one (or None)."""
    entries = []
    for row in session.execute(select(AuditEntryRow).order_by(AuditEntryRow.seq)).scalars():
        try:
            entries.append(row_to_entry(row))
        except (ValueError, TypeError):
            return entries, row.seq
    return entries, None


def verify(
    session: Session,
    ring: KeyRing | None = None,
    *,
    checkpoint: Path | None = None,
    state: bool = True,
) -> Verification:
    """Verify the chain (keyed hashes, links, sealed head), every tracked row against its newest entry,
    and, when ``checkpoint`` is given, the chain against the signed checkpoints in that file or folder.

    ``ring`` defaults to the key ring of ``session`` (when it has one).
    """
    ring = ring if ring is not None else session.info.get(KEYRING_INFO)
    head = session.execute(select(AuditHead).where(AuditHead.id == 1)).scalar_one()
    entries, unreadable = load_entries(session)
    key_ids = tuple(sorted({e.key_id for e in entries if e.key_id is not None}))
    legacy = sum(1 for e in entries if e.key_id is None)
    if unreadable is not None:
        chain = ChainVerification(False, len(entries) + 1, unreadable, f"entry {unreadable} unreadable")
    else:
        chain = verify_chain(entries, head_seq=head.seq, head_hash=head.hash, key_for=_key_for(ring))
    head_problem = _check_head(head, entries, ring) if chain.ok else None
    mismatches: list[StateMismatch] = []
    checked = 0
    if state:
        mismatches, checked = verify_state(session, entries, ring)
    cp = None
    if checkpoint is not None:
        cp = verify_checkpoints(entries, checkpoint, ring)
    return Verification(chain, head_problem, tuple(mismatches), checked, key_ids, cp, legacy)


# --- checkpoints --------------------------------------------------------------------------------------------
def checkpoint_file(path: Path) -> Path:
    """The checkpoint file for ``path``: ``path`` itself, or :data:`CHECKPOINT_FILE` inside a folder."""
    path = Path(path)
    return path / CHECKPOINT_FILE if path.is_dir() else path


def _checkpoint_mac(ring: KeyRing, key_id: str, record: Mapping[str, Any]) -> str:
    return mac_hex(ring.sub_key("checkpoint", key_id), canonical_json(dict(record)))


def current_checkpoint(session: Session, ring: KeyRing) -> dict[str, Any] | None:
    """The sealed checkpoint of the current head, after checking the head's own seal (None: empty chain).

    Raises
    ------
    ServiceError
        When the head's seal or its link to the newest entry is wrong: a tampered head is never
        written into a checkpoint.
    """
    head = session.execute(select(AuditHead).where(AuditHead.id == 1)).scalar_one()
    if head.seq == 0:
        return None
    first = session.execute(select(AuditEntryRow.hash).where(AuditEntryRow.seq == 1)).scalar_one_or_none()
    last = session.execute(select(AuditEntryRow).where(AuditEntryRow.seq == head.seq)).scalar_one_or_none()
    if first is None or last is None or last.hash != head.hash:
        raise ServiceError("audit head does not match the newest entry: run `theradose audit verify`")
    problem = _check_head(head, [row_to_entry(last)], ring)
    if problem:
        raise ServiceError(f"{problem}: run `theradose audit verify`")
    record = {
        "chain": first,
        "seq": head.seq,
        "hash": head.hash,
        "written_at": format_time(datetime.now(UTC)),
        "key_id": ring.active_id,
    }
    return {**record, "mac": _checkpoint_mac(ring, ring.active_id, record)}


def write_checkpoint(session: Session, ring: KeyRing, path: Path) -> dict[str, Any] | None:
    """Append the sealed checkpoint of the current head to the checkpoint file (created mode 640).

    Returns the checkpoint written, or None for an empty chain.
    """
    record = current_checkpoint(session, ring)
    if record is None:
        return None
    target = checkpoint_file(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n").encode("ascii")
    fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)
    return record


def read_checkpoints(path: Path) -> list[tuple[int, dict[str, Any] | None]]:
    """The checkpoint lines of a file (line number, parsed record or None when unreadable)."""
    target = checkpoint_file(path)
    try:
        text = target.read_text(encoding="ascii")
    except FileNotFoundError as exc:
        raise InputError(f"checkpoint file {target} does not exist: check --checkpoint") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"checkpoint file {target} cannot be read ({type(exc).__name__})") from exc
    out: list[tuple[int, dict[str, Any] | None]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError:
            out.append((number, None))
            continue
        out.append((number, value if isinstance(value, dict) else None))
    return out


def verify_checkpoints(entries: Sequence[AuditEntry], path: Path, ring: KeyRing | None) -> CheckpointCheck:
    """Check that the chain still holds every entry a checkpoint of ``path`` saw, with the same hash."""
    target = checkpoint_file(path)
    lines = read_checkpoints(target)
    if not lines:
        return CheckpointCheck(False, str(target), 0, None, f"no checkpoint in {target}")
    by_seq = {e.seq: e for e in entries}
    last_seq = entries[-1].seq if entries else 0
    first_hash = by_seq[1].hash if 1 in by_seq else GENESIS_HASH
    newest = None
    fields = ("chain", "seq", "hash", "written_at", "key_id")
    for number, record in lines:
        where = f"checkpoint line {number} of {target}"
        if record is None or any(k not in record for k in (*fields, "mac")):
            return CheckpointCheck(False, str(target), len(lines), newest, f"{where} is not a checkpoint")
        key_id = record["key_id"]
        body = {k: record[k] for k in fields}
        if ring is None or not isinstance(key_id, str) or not ring.has(key_id):
            return CheckpointCheck(
                False,
                str(target),
                len(lines),
                newest,
                f"{where} sealed with key {key_id!r} not in the key ring",
            )
        if not isinstance(record["mac"], str) or not hmac.compare_digest(
            _checkpoint_mac(ring, key_id, body), record["mac"]
        ):
            return CheckpointCheck(
                False, str(target), len(lines), newest, f"{where}: seal invalid (edited or forged)"
            )
        seq = record["seq"]
        if not isinstance(seq, int) or seq < 1:
            return CheckpointCheck(False, str(target), len(lines), newest, f"{where}: bad sequence number")
        newest = seq if newest is None else max(newest, seq)
        if record["chain"] != first_hash:
            return CheckpointCheck(
                False,
                str(target),
                len(lines),
                newest,
                f"entry 1 differs from {where} (written {record['written_at']}): the chain was rewritten "
                "from its start, or the checkpoints belong to another database",
            )
        if seq > last_seq:
            return CheckpointCheck(
                False,
                str(target),
                len(lines),
                newest,
                f"chain truncated: {where} (written {record['written_at']}) saw entry {seq}, "
                f"the chain ends at entry {last_seq}",
            )
        if by_seq[seq].hash != record["hash"]:
            return CheckpointCheck(
                False,
                str(target),
                len(lines),
                newest,
                f"entry {seq} rewritten since {where} (written {record['written_at']})",
            )
    return CheckpointCheck(True, str(target), len(lines), newest, None)


@dataclass
class Checkpointer:
    """Writes a checkpoint from the running service when the head has moved (at most every
    ``interval_s`` seconds, and once more at shutdown)."""

    path: Path
    interval_s: float
    last_seq: int | None = None
    errors: list[str] = field(default_factory=list)

    def run_once(self, session: Session, ring: KeyRing) -> dict[str, Any] | None:
        """Write a checkpoint if the head moved since the last one; errors are logged, never raised."""
        try:
            head_seq = session.execute(select(AuditHead.seq).where(AuditHead.id == 1)).scalar_one()
            if head_seq == 0 or head_seq == self.last_seq:
                return None
            record = write_checkpoint(session, ring, self.path)
        except (ServiceError, OSError, InputError) as exc:
            message = f"audit checkpoint not written to {self.path}: {exc}"
            log.error(message)
            self.errors.append(message)
            return None
        if record is not None:
            self.last_seq = int(record["seq"])
        return record


def record_history(session: Session, entity: str, entity_id: str) -> list[AuditEntryRow]:
    """The audit entries of one record, oldest first."""
    return list(
        session.execute(
            select(AuditEntryRow)
            .where(AuditEntryRow.entity == entity, AuditEntryRow.entity_id == entity_id)
            .order_by(AuditEntryRow.seq)
        ).scalars()
    )


#: Columns of signable records added after signatures carried key ids (migrations web_0003 and audit_0005):
#: a signature sealed before them (``key_id`` None) never bound them, so its record hash is compared with
#: the record without them.
ADDED_AFTER_UNKEYED_SIGNATURES: dict[str, frozenset[str]] = {
    "prescription": frozenset({"product_code", "planned_date", "range_reason"}),
    "batch": frozenset(
        {"product_code", "carrier_added", "specification_id", "status_reason", "product_key", "lot_key"}
    ),
    "dispensing": frozenset(
        {
            "status",
            "product_override_reason",
            "calibrator_id",
            "void_reason",
            "voided_by",
            "voided_at",
        }
    ),
    "administration": frozenset(
        {
            "calibrator_id",
            "identifiers_confirmed",
            "deviation_reason",
            "medical_event_possible",
            "medical_event_criteria",
        }
    ),
    "calibrator_qa": frozenset({"voided", "void_reason", "voided_by"}),
}


def unkeyed_signature_view(record_type: str, record: Mapping[str, Any]) -> dict[str, Any]:
    """``record`` as a signature sealed before key ids saw it (see :data:`ADDED_AFTER_UNKEYED_SIGNATURES`)."""
    added = ADDED_AFTER_UNKEYED_SIGNATURES.get(record_type, frozenset())
    return {k: v for k, v in record.items() if k not in added}


def signature_recorded(session: Session, sig: SignatureRow) -> bool:
    """True when the audit trail recorded signature row ``sig`` exactly as it is stored."""
    for row in record_history(session, sig.record_type, sig.record_id):
        if row.action != "sign" or row.after_json is None:
            continue
        after = json.loads(row.after_json)
        if str(after.get("id")) == str(sig.id):
            state = row_to_dict(sig)
            return all(_same(after[k], v) for k, v in state.items() if k in after)
    return False
