"""Use case: import an RRDSR written by another system (injector, scanner)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from theradose.service import audit_store
from theradose.service.auth import Principal
from theradose.service.errors import ApiError, conflict
from theradose.service.models import ImportedAdministration, row_to_dict
from theradose.service.operations.common import utcnow


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
        report = read_rrdsr(data, site_timezone=site_timezone)
    except DicomError as exc:
        raise ApiError(422, "invalid_dicom", str(exc), "file") from exc
    except (AttributeError, IndexError, KeyError, TypeError, ValueError) as exc:  # malformed content items
        raise ApiError(
            422, "invalid_dicom", f"RRDSR content not understood: {type(exc).__name__}", "file"
        ) from exc
    if not report.sop_instance_uid:
        raise ApiError(422, "invalid_dicom", "RRDSR has no SOPInstanceUID", "file")
    exists = session.execute(
        select(ImportedAdministration).where(
            ImportedAdministration.sop_instance_uid == report.sop_instance_uid
        )
    ).first()
    if exists:
        raise conflict("already_imported", f"RRDSR {report.sop_instance_uid} was imported before", "file")
    row = ImportedAdministration(
        sop_instance_uid=report.sop_instance_uid[:64],
        event_uid=(report.event_uid or None) and report.event_uid[:64],
        patient_ref=report.patient_id[:64],
        radiopharmaceutical=report.radiopharmaceutical[:200],
        radionuclide=report.nuclide[:64],
        administered_activity_mbq=report.administered_activity_mbq,
        start_time=report.injection_time,
        route=report.route[:100] or None,
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
