"""The administration record a dosimetry study is computed from (what the service publishes).

The service answers ``GET /administrations/{id}/record`` with :meth:`AdministrationRecord.to_dict` plus
``record_sha256``, the SHA-256 of the canonical JSON (:func:`theradose.pharmacy.audit.canonical_json`) of
that dict; ``theradose run --administration`` reads it back with :meth:`AdministrationRecord.from_dict`,
checks the hash and names record and hash in ``provenance.json``. An RRDSR read from a file gives the
same record (without the service's identifiers and cycle).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from theradose.errors import InputError
from theradose.pharmacy.reconcile import AdministrationFacts

#: ``format`` of the record.
RECORD_FORMAT = "theradose-administration-record"
#: Version written by this module.
RECORD_VERSION = 1


def _utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class AdministrationRecord:
    """One administration as the dosimetry of it needs it (activities in MBq, times timezone-aware).

    Attributes
    ----------
    patient : str
        The service's pseudonym of the patient (or the Patient ID of an RRDSR).
    cycle : int or None
        Therapy cycle of the written directive (None: the source does not say, e.g. an RRDSR).
    radiopharmaceutical, nuclide : str
        What was in the syringe (the batch's product and nuclide).
    activity_mbq : float
        Net administered activity at ``injection_time``.
    injection_time : datetime
    administration_id, prescription_id, dispensing_id : int or None
        The service's identifiers (None for a record read from an RRDSR).
    route, event_uid, lot : str
    syringe_activity_mbq, residual_activity_mbq : float or None
        Dose-calibrator readings (before and after; decay-corrected in ``activity_mbq``).
    """

    patient: str
    cycle: int | None
    radiopharmaceutical: str
    nuclide: str
    activity_mbq: float
    injection_time: datetime
    administration_id: int | None = None
    prescription_id: int | None = None
    dispensing_id: int | None = None
    route: str = ""
    event_uid: str = ""
    lot: str = ""
    syringe_activity_mbq: float | None = None
    residual_activity_mbq: float | None = None

    def __post_init__(self) -> None:
        if not self.patient.strip():
            raise InputError("administration record: patient is empty")
        if self.cycle is not None and (isinstance(self.cycle, bool) or self.cycle < 1):
            raise InputError(f"administration record: cycle must be >= 1; got {self.cycle!r}")
        if not (math.isfinite(self.activity_mbq) and self.activity_mbq > 0):
            raise InputError(f"administration record: activity_mbq must be > 0; got {self.activity_mbq}")
        if self.injection_time.tzinfo is None:
            raise InputError("administration record: injection_time has no time zone")
        if not self.radiopharmaceutical.strip() or not self.nuclide.strip():
            raise InputError("administration record: radiopharmaceutical and nuclide are required")

    def facts(self) -> AdministrationFacts:
        """What the record says, for :func:`theradose.pharmacy.reconcile.compare_administration`."""
        return AdministrationFacts(
            patient=self.patient,
            cycle=self.cycle,
            radiopharmaceutical=self.radiopharmaceutical,
            nuclide=self.nuclide,
            activity_mbq=self.activity_mbq,
            injection_time=self.injection_time,
        )

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-ready data (times in UTC with ``Z``)."""
        return {
            "format": RECORD_FORMAT,
            "version": RECORD_VERSION,
            "administration_id": self.administration_id,
            "prescription_id": self.prescription_id,
            "dispensing_id": self.dispensing_id,
            "patient": self.patient,
            "cycle": self.cycle,
            "radiopharmaceutical": self.radiopharmaceutical,
            "nuclide": self.nuclide,
            "activity_mbq": self.activity_mbq,
            "injection_time": _utc_text(self.injection_time),
            "route": self.route,
            "event_uid": self.event_uid,
            "lot": self.lot,
            "syringe_activity_mbq": self.syringe_activity_mbq,
            "residual_activity_mbq": self.residual_activity_mbq,
        }

    def sha256(self) -> str:
        """SHA-256 of the canonical JSON of :meth:`to_dict` (the ``record_sha256`` the service sends)."""
        from theradose.pharmacy.audit import canonical_json

        return hashlib.sha256(canonical_json(self.to_dict()).encode("utf-8")).hexdigest()

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], *, source: str = "administration record"
    ) -> AdministrationRecord:
        """Validate the service's answer (:meth:`to_dict`, ``record_sha256`` optional but checked)."""
        if not isinstance(data, Mapping) or data.get("format") != RECORD_FORMAT:
            raise InputError(f"{source} is not a theradose administration record (format {RECORD_FORMAT!r})")
        if data.get("version") != RECORD_VERSION:
            raise InputError(
                f"{source} has version {data.get('version')!r}; this theradose reads version "
                f"{RECORD_VERSION}: use the same theradose version as the service"
            )

        def text(key: str) -> str:
            value = data.get(key)
            if not isinstance(value, str):
                raise InputError(f"{source}: {key} must be a string; got {value!r}")
            return value

        def number(key: str, *, optional: bool = False) -> float | None:
            value = data.get(key)
            if value is None and optional:
                return None
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise InputError(f"{source}: {key} must be a number; got {value!r}")
            return float(value)

        def integer(key: str) -> int | None:
            value = data.get(key)
            if value is None:
                return None
            if isinstance(value, bool) or not isinstance(value, int):
                raise InputError(f"{source}: {key} must be a whole number; got {value!r}")
            return value

        try:
            when = datetime.fromisoformat(text("injection_time").replace("Z", "+00:00"))
        except ValueError:
            raise InputError(
                f"{source}: injection_time {data.get('injection_time')!r} is not ISO 8601"
            ) from None
        activity = number("activity_mbq")
        assert activity is not None
        record = cls(
            patient=text("patient"),
            cycle=integer("cycle"),
            radiopharmaceutical=text("radiopharmaceutical"),
            nuclide=text("nuclide"),
            activity_mbq=activity,
            injection_time=when,
            administration_id=integer("administration_id"),
            prescription_id=integer("prescription_id"),
            dispensing_id=integer("dispensing_id"),
            route=text("route"),
            event_uid=text("event_uid"),
            lot=text("lot"),
            syringe_activity_mbq=number("syringe_activity_mbq", optional=True),
            residual_activity_mbq=number("residual_activity_mbq", optional=True),
        )
        stated = data.get("record_sha256")
        if stated is not None and stated != record.sha256():
            raise InputError(
                f"{source}: record_sha256 {stated!r} is not the SHA-256 of the record's content "
                f"({record.sha256()}): the record was altered on its way; fetch it again"
            )
        return record


__all__ = ["RECORD_FORMAT", "RECORD_VERSION", "AdministrationRecord"]
