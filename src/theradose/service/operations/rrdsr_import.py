"""Use case: import an RRDSR written by another system (injector, scanner).

What the service stores is checked at this boundary: activities must be finite and within the physical
range (:mod:`theradose.pharmacy.ranges`), texts must fit their columns (never cut silently), and the
sender's PatientID (often a medical record number) is never stored: it becomes the local pseudonym when
a registered patient has that MRN (compared by its Unicode key), else ``EXT-`` and 20 hex digits of its
HMAC under the ``foreign-patient`` sub-key (imports of one patient stay linked; the number cannot be
recovered or guessed from the reference without the key).
"""

from __future__ import annotations

import math
import warnings
from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from theradose.pharmacy.identifiers import identifier_key
from theradose.pharmacy.ranges import EARLIEST_TIME, LATEST_TIME, MAX_ACTIVITY_MBQ, MIN_ACTIVITY_MBQ
from theradose.service import audit_store
from theradose.service.auth import Principal
from theradose.service.errors import ApiError, conflict
from theradose.service.keys import mac_hex
from theradose.service.models import ImportedAdministration, Patient, PatientIdentity, row_to_dict
from theradose.service.operations.common import utcnow

#: Column widths of what is stored from an RRDSR (longer values are refused, never cut).
TEXT_LIMITS = {
    "SOPInstanceUID": 64,
    "event UID": 64,
    "radiopharmaceutical": 200,
    "radionuclide": 64,
    "route": 100,
    "device name": 200,
}


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


def import_rrdsr(
    session: Session, me: Principal, data: bytes, *, site_timezone: str | None = None
) -> ImportedOut:
    """Read an RRDSR (DICOM Part 10 bytes) and record its administration; the same SR only once.

    Date-times without their own UTC offset are read in the file's Timezone Offset From UTC, else in
    ``site_timezone`` (the site's zone); with neither the file is refused.
    """
    from theradose.errors import DicomError
    from theradose.service.rrdsr import read_rrdsr

    try:
        with warnings.catch_warnings():
            # a sender's non-conforming values (e.g. an LO longer than 64 characters) are read as they
            # are; what cannot be stored is refused below with its own message
            warnings.simplefilter("ignore", UserWarning)
            report = read_rrdsr(data, site_timezone=site_timezone)
    except DicomError as exc:
        raise ApiError(422, "invalid_dicom", str(exc), "file") from exc
    except (AttributeError, IndexError, KeyError, TypeError, ValueError) as exc:  # malformed content items
        raise ApiError(
            422, "invalid_dicom", f"RRDSR content not understood: {type(exc).__name__}", "file"
        ) from exc
    if not report.sop_instance_uid:
        raise ApiError(422, "invalid_dicom", "RRDSR has no SOPInstanceUID", "file")
    _check_report(report)
    exists = session.execute(
        select(ImportedAdministration).where(
            ImportedAdministration.sop_instance_uid == report.sop_instance_uid
        )
    ).first()
    if exists:
        raise conflict("already_imported", f"RRDSR {report.sop_instance_uid} was imported before", "file")
    row = ImportedAdministration(
        sop_instance_uid=report.sop_instance_uid,
        event_uid=report.event_uid or None,
        patient_ref=patient_reference(session, report.patient_id),
        radiopharmaceutical=report.radiopharmaceutical,
        radionuclide=report.nuclide,
        administered_activity_mbq=report.administered_activity_mbq,
        start_time=report.injection_time,
        route=report.route or None,
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


def _refuse(message: str) -> ApiError:
    return ApiError(422, "invalid_dicom", message, "file")


def _check_report(report: object) -> None:
    """Refuse what cannot be stored as it is: non-finite or unphysical activities, times out of range,
    texts longer than their columns."""
    activity = getattr(report, "administered_activity_mbq", None)
    if not isinstance(activity, float | int) or not math.isfinite(activity):
        raise _refuse(f"RRDSR administered activity is {activity!r}: a finite number of MBq is needed")
    if not MIN_ACTIVITY_MBQ <= activity <= MAX_ACTIVITY_MBQ:
        raise _refuse(
            f"RRDSR administered activity {activity:g} MBq is outside "
            f"{MIN_ACTIVITY_MBQ:g}-{MAX_ACTIVITY_MBQ:g} MBq: check the sender's unit"
        )
    for name in ("pre_activity_mbq", "post_activity_mbq"):
        value = getattr(report, name, None)
        if value is None:
            continue
        if not math.isfinite(value) or not 0.0 <= value <= MAX_ACTIVITY_MBQ:
            label = name.removesuffix("_mbq").replace("_", "-")
            raise _refuse(
                f"RRDSR {label} activity {value!r} MBq is not a finite value in 0-{MAX_ACTIVITY_MBQ:g}"
            )
    time = getattr(report, "injection_time", None)
    if time is not None and not EARLIEST_TIME <= time < LATEST_TIME:
        raise _refuse(
            f"RRDSR administration time {time.isoformat()} is outside {EARLIEST_TIME.year}-{LATEST_TIME.year}"
        )
    values = {
        "SOPInstanceUID": getattr(report, "sop_instance_uid", None),
        "event UID": getattr(report, "event_uid", None),
        "radiopharmaceutical": getattr(report, "radiopharmaceutical", None),
        "radionuclide": getattr(report, "nuclide", None),
        "route": getattr(report, "route", None),
        "device name": getattr(report, "device", None),
    }
    for label, text in values.items():
        if text is not None and len(text) > TEXT_LIMITS[label]:
            raise _refuse(
                f"RRDSR {label} has {len(text)} characters; at most {TEXT_LIMITS[label]} are stored"
            )


def patient_reference(session: Session, patient_id: str) -> str:
    """The stored reference of a sender's PatientID: the local pseudonym of the patient with that MRN,
    else ``EXT-`` + 20 hex digits of its keyed hash (see the module docstring)."""
    if not patient_id.strip():
        raise _refuse("RRDSR has no PatientID: the administration cannot be attributed")
    key = identifier_key(patient_id)
    local = session.execute(
        select(Patient.pseudonym)
        .join(PatientIdentity, PatientIdentity.patient_id == Patient.id)
        .where(PatientIdentity.mrn_key == key)
    ).scalar_one_or_none()
    if local is not None:
        return str(local)
    ring = audit_store.keyring_of(session)
    return "EXT-" + mac_hex(ring.sub_key("foreign-patient"), key)[:20]
