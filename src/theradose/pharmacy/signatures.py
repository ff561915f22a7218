"""Electronic signatures bound to a record's hash (21 CFR Part 11 style).

21 CFR 11.50 requires a signed record to show the signer's printed name, the date and time and the
meaning of the signature; 11.70 requires the signature to be linked to the record so that it cannot be
copied to another; 11.200 requires each signing to use the signer's credentials (re-authentication).
Here the link is the SHA-256 of the record's canonical JSON, and the signature manifest (signer,
meaning, time, record type, record id, record hash and the id of the sealing key) is sealed with
HMAC-SHA-256 (RFC 2104) under a key kept outside the database, so neither the manifest nor the record can
change unnoticed, and a signature row written into the database by anyone without the key does not verify.
Signatures from before key ids (``key_id`` None) were sealed without one in the manifest.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

from theradose.errors import InputError
from theradose.pharmacy._checks import require_aware, require_text
from theradose.pharmacy.audit import canonical_json, format_time, sha256_hex

Meaning = Literal["prepared", "checked", "approved", "administered", "released", "voided", "overridden"]
MEANINGS: tuple[str, ...] = get_args(Meaning)


def record_hash(record: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of ``record``."""
    return sha256_hex(canonical_json(dict(record)))


@dataclass(frozen=True)
class Signature:
    """A sealed electronic signature."""

    signer: str
    meaning: str
    signed_at: datetime
    record_type: str
    record_id: str
    record_hash: str
    seal: str
    key_id: str | None = None

    def manifest(self) -> dict[str, str]:
        """The sealed fields."""
        return _manifest(
            self.signer,
            self.meaning,
            self.signed_at,
            self.record_type,
            self.record_id,
            self.record_hash,
            self.key_id,
        )


def _manifest(
    signer: str,
    meaning: str,
    signed_at: datetime,
    record_type: str,
    record_id: str,
    rec_hash: str,
    key_id: str | None,
) -> dict[str, str]:
    manifest = {
        "signer": signer,
        "meaning": meaning,
        "signed_at": format_time(signed_at),
        "record_type": record_type,
        "record_id": record_id,
        "record_hash": rec_hash,
    }
    if key_id is not None:
        manifest["key_id"] = key_id
    return manifest


def _seal(secret: bytes, manifest: Mapping[str, str]) -> str:
    return hmac.new(secret, canonical_json(dict(manifest)).encode("utf-8"), hashlib.sha256).hexdigest()


def sign(
    record: Mapping[str, Any],
    *,
    secret: bytes,
    signer: str,
    meaning: str,
    signed_at: datetime,
    record_type: str,
    record_id: str,
    key_id: str | None = None,
) -> Signature:
    """Sign ``record`` (the caller has re-authenticated ``signer``).

    Parameters
    ----------
    record : mapping
        The record's content as stored (JSON-able).
    secret : bytes
        Key of the HMAC seal (kept outside the database).
    signer : str
        User name of the signer.
    meaning : {"prepared", "checked", "approved", "administered", "released", "voided", "overridden"}
        Meaning of the signature.
    signed_at : datetime
        Signing time (timezone-aware).
    record_type, record_id : str
        What is signed.
    key_id : str, optional
        Id of ``secret``, sealed into the manifest so that keys can rotate.
    """
    require_text(signer, "signer")
    require_text(record_type, "record_type")
    require_text(record_id, "record_id")
    require_aware(signed_at, "signed_at")
    if meaning not in MEANINGS:
        raise InputError(f"meaning must be one of {', '.join(MEANINGS)}; got {meaning!r}")
    if not secret:
        raise InputError("secret must not be empty: configure the server secret key")
    rec_hash = record_hash(record)
    manifest = _manifest(signer, meaning, signed_at, record_type, record_id, rec_hash, key_id)
    return Signature(
        signer, meaning, signed_at, record_type, record_id, rec_hash, _seal(secret, manifest), key_id
    )


@dataclass(frozen=True)
class SignatureCheck:
    """``seal_valid``: manifest untouched; ``record_unchanged``: record hash still matches."""

    seal_valid: bool
    record_unchanged: bool

    @property
    def valid(self) -> bool:
        """Both checks pass."""
        return self.seal_valid and self.record_unchanged


def verify(signature: Signature, record: Mapping[str, Any], *, secret: bytes) -> SignatureCheck:
    """Check the seal of ``signature`` and that ``record`` still has the signed hash."""
    seal_ok = hmac.compare_digest(_seal(secret, signature.manifest()), signature.seal)
    return SignatureCheck(seal_valid=seal_ok, record_unchanged=record_hash(record) == signature.record_hash)


#: Pairs of meanings that must come from two different people (four-eyes principle; EU GMP Annex 16,
#: EudraLex vol. 4: the person who prepares or tests a batch is not the one who checks or certifies it).
FOUR_EYES: tuple[tuple[str, str], ...] = (("prepared", "checked"), ("qc_recorded", "released"))
_DID = {"prepared": "prepared", "checked": "checked", "qc_recorded": "recorded QC of", "released": "released"}
_DOING = {"prepared": "preparing", "checked": "checking", "qc_recorded": "QC", "released": "release"}


def four_eyes_conflict(signer: str, meaning: str, earlier: Iterable[tuple[str, str]]) -> str | None:
    """Why ``signer`` may not sign with ``meaning`` given the ``(signer, meaning)`` pairs already on the
    record (None when they may)."""
    for first, second in FOUR_EYES:
        other = first if meaning == second else second if meaning == first else None
        if other is None:
            continue
        if any(s == signer and m == other for s, m in earlier):
            return f"{signer} {_DID[other]} this record: {_DOING[meaning]} needs a second person (four-eyes)"
    return None
