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


def test_keyed_entry_hash_is_hmac_sha256_of_link_and_body_with_key_id() -> None:
    """The keyed hash, computed by hand with the standard library (RFC 2104)."""
    import hmac

    key = b"k" * 32
    entry = new_entry(
        None,
        actor="alice",
        at=T0,
        action="create",
        entity="batch",
        entity_id="1",
        after={"lot": "L1"},
        key_id="site-1",
        key=key,
    )
    body = (
        '{"action":"create","actor":"alice","after":{"lot":"L1"},"at":"2026-11-22T08:00:00.000000Z",'
        '"before":null,"entity":"batch","entity_id":"1","key_id":"site-1","reason":null,"seq":1}'
    )
    expected = hmac.new(key, (GENESIS_HASH + "\n" + body).encode(), hashlib.sha256).hexdigest()
    assert entry.hash == expected and entry.key_id == "site-1"


def test_keyed_chain_needs_its_key_and_keeps_unkeyed_entries_first() -> None:
    key = b"s" * 32
    legacy = _chain(2)
    keyed = []
    prev = legacy[-1]
    for i in range(3):
        prev = new_entry(
            prev, actor="c", at=T0, action="create", entity="x", entity_id=str(i), key_id="k1", key=key
        )
        keyed.append(prev)
    chain = legacy + keyed

    def key_for(key_id: str) -> bytes | None:
        return key if key_id == "k1" else None

    assert verify_chain(chain, key_for=key_for).ok
    result = verify_chain(chain)  # no key ring: the keyed part cannot be verified
    assert not result.ok and result.first_bad_entry == 3 and "does not hold" in str(result.problem)
    wrong = verify_chain(chain, key_for=lambda _id: b"w" * 32)
    assert not wrong.ok and wrong.first_bad_entry == 3
    # an unkeyed entry after keyed ones (re-hashed without the key) is refused
    tail = new_entry(chain[-1], actor="m", at=T0, action="create", entity="x", entity_id="9")
    result = verify_chain([*chain, tail], key_for=key_for)
    assert not result.ok and result.first_bad_entry == 6 and "unkeyed after keyed" in str(result.problem)
    with pytest.raises(InputError):
        new_entry(None, actor="a", at=T0, action="x", entity="y", entity_id="1", key_id="k1")


def test_signature_with_key_id_seals_the_key_id() -> None:
    record = {"id": 1, "lot": "L1"}
    sig = signatures.sign(
        record,
        secret=b"e" * 32,
        signer="ph",
        meaning="approved",
        signed_at=T0,
        record_type="batch",
        record_id="1",
        key_id="k1",
    )
    assert sig.manifest()["key_id"] == "k1"
    assert signatures.verify(sig, record, secret=b"e" * 32).valid
    relabelled = dataclasses.replace(sig, key_id="k2")
    assert not signatures.verify(relabelled, record, secret=b"e" * 32).seal_valid
