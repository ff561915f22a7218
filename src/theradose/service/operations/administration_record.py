"""Use cases of the administration record a dosimetry study is computed from and reconciled with.

``GET /administrations/{id}/record`` (:func:`administration_record`) gives the pipeline everything it takes
from the service (:class:`theradose.pharmacy.administration_record.AdministrationRecord`: patient
pseudonym, cycle, radiopharmaceutical and nuclide of the syringe, net activity, injection time) with the
SHA-256 of its content. :func:`administration_of_cycle` finds the administration a dosimetry import of a
patient's cycle is reconciled with (:func:`theradose.pharmacy.reconcile.require_same_administration`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from theradose.pharmacy.administration_record import AdministrationRecord
from theradose.service.auth import Principal
from theradose.service.errors import conflict
from theradose.service.models import Administration, Batch, Dispensing, Patient, Prescription
from theradose.service.operations.common import get_or_404


def record_of(session: Session, row: Administration) -> AdministrationRecord:
    """The dosimetry record of an administration row (its directive's cycle, its syringe's product)."""
    disp = session.get(Dispensing, row.dispensing_id)
    assert disp is not None
    batch = session.get(Batch, disp.batch_id)
    prescription = session.get(Prescription, disp.prescription_id)
    patient = session.get(Patient, row.patient_id)
    assert batch is not None and prescription is not None and patient is not None
    return AdministrationRecord(
        patient=patient.pseudonym,
        cycle=prescription.cycle,
        radiopharmaceutical=batch.product,
        nuclide=batch.nuclide,
        activity_mbq=row.net_activity_mbq,
        injection_time=row.injection_time,
        administration_id=row.id,
        prescription_id=prescription.id,
        dispensing_id=disp.id,
        route=row.route,
        event_uid=row.event_uid,
        lot=batch.lot,
        syringe_activity_mbq=row.syringe_activity_mbq,
        residual_activity_mbq=row.residual_activity_mbq,
    )


def administration_record(session: Session, me: Principal, administration_id: int) -> dict[str, Any]:
    """The record of one administration with ``record_sha256`` (the SHA-256 of its canonical JSON)."""
    record = record_of(session, get_or_404(session, Administration, administration_id))
    return {**record.to_dict(), "record_sha256": record.sha256()}


def administration_of_cycle(session: Session, patient: Patient, cycle: int) -> Administration:
    """The administration of ``patient``'s cycle (through the cycle's written directive).

    Raises
    ------
    ApiError
        409 ``no_administration``: none is recorded for that cycle, or more than one (field ``cycle``).
    """
    rows = list(
        session.execute(
            select(Administration)
            .join(Dispensing, Dispensing.id == Administration.dispensing_id)
            .join(Prescription, Prescription.id == Dispensing.prescription_id)
            .where(Administration.patient_id == patient.id, Prescription.cycle == cycle)
            .order_by(Administration.id)
        ).scalars()
    )
    if not rows:
        raise conflict(
            "no_administration",
            f"cycle: {patient.pseudonym} has no administration recorded for cycle {cycle}: record the "
            "administration before importing its dosimetry, or choose the cycle that was given",
            "cycle",
        )
    if len(rows) > 1:
        ids = ", ".join(str(r.id) for r in rows)
        raise conflict(
            "no_administration",
            f"cycle: cycle {cycle} of {patient.pseudonym} has {len(rows)} administrations ({ids}): the "
            "dosimetry cannot be matched to one; void the wrong one first",
            "cycle",
        )
    return rows[0]
