"""Audit hash chain and e-signatures (pure functions)."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from theradose.errors import InputError
from theradose.pharmacy import signatures
from theradose.pharmacy.audit import GENESIS_HASH, canonical_json, entry_hash, new_entry, verify_chain

T0 = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


def test_canonical_json_by_hand() -> None:
    assert canonical_json({"b": 1, "a": [1.5, "é", None]}) == '{"a":[1.5,"é",null],"b":1}'
    assert canonical_json({"t": T0}) == '{"t":"2026-11-22T08:00:00.000000Z"}'
    with pytest.raises(InputError):
        canonical_json({"x": float("nan")})


def test_entry_hash_is_sha256_of_link_and_body() -> None:
    entry = new_entry(
        None, actor="alice", at=T0, action="create", entity="batch", entity_id="1", after={"lot": "L1"}
    )
    body = (
        '{"action":"create","actor":"alice","after":{"lot":"L1"},"at":"2026-11-22T08:00:00.000000Z",'
        '"before":null,"entity":"batch","entity_id":"1","reason":null,"seq":1}'
    )
    assert entry.hash == hashlib.sha256((GENESIS_HASH + "\n" + body).encode()).hexdigest()
    assert entry.prev_hash == GENESIS_HASH and entry.seq == 1


def _chain(n: int = 5):
    entries = []
    prev = None
    for i in range(n):
        prev = new_entry(
            prev,
            actor="bob",
            at=T0 + timedelta(minutes=i),
            action="update",
            entity="batch",
            entity_id="1",
            before={"v": i},
            after={"v": i + 1},
            reason=f"step {i}",
        )
        entries.append(prev)
    return entries


def test_verify_detects_edit_deletion_reorder_truncation() -> None:
    chain = _chain()
    ok = verify_chain(chain, head_seq=5, head_hash=chain[-1].hash)
    assert ok.ok and ok.entries == 5 and ok.first_bad_entry is None
    edited = list(chain)
    edited[2] = dataclasses.replace(edited[2], after={"v": 99})
    assert verify_chain(edited).first_bad_entry == 3
    rehashed = list(edited)
    rehashed[2] = dataclasses.replace(edited[2], hash=entry_hash(edited[2].prev_hash, edited[2].body()))
    assert verify_chain(rehashed).first_bad_entry == 4  # the next link breaks
    assert verify_chain(chain[:1] + chain[2:]).first_bad_entry == 2
    assert verify_chain([chain[1], chain[0], *chain[2:]]).first_bad_entry == 1
    truncated = verify_chain(chain[:3], head_seq=5, head_hash=chain[-1].hash)
    assert not truncated.ok and truncated.first_bad_entry == 4
    assert verify_chain(chain[:3]).ok  # without the head a truncated tail is not visible


def test_signature_binds_record_meaning_and_signer() -> None:
    record = {"id": 7, "lot": "L1", "activity_mbq": 7400.0}
    sig = signatures.sign(
        record,
        secret=b"k" * 32,
        signer="carol",
        meaning="approved",
        signed_at=T0,
        record_type="batch",
        record_id="7",
    )
    assert sig.record_hash == hashlib.sha256(canonical_json(record).encode()).hexdigest()
    assert signatures.verify(sig, record, secret=b"k" * 32).valid
    changed = signatures.verify(sig, {**record, "activity_mbq": 8000.0}, secret=b"k" * 32)
    assert changed.seal_valid and not changed.record_unchanged and not changed.valid
    forged = dataclasses.replace(sig, meaning="checked")
    assert not signatures.verify(forged, record, secret=b"k" * 32).seal_valid
    moved = dataclasses.replace(sig, record_id="8")
    assert not signatures.verify(moved, record, secret=b"k" * 32).valid
    assert not signatures.verify(sig, record, secret=b"other-key").seal_valid
    with pytest.raises(InputError, match="meaning"):
        signatures.sign(
            record, secret=b"k", signer="c", meaning="liked", signed_at=T0, record_type="b", record_id="1"
        )
