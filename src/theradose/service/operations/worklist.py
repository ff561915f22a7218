"""Use cases of the day's work: the worklist of a day and what can be dispensed now."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from theradose.service.auth import Principal
from theradose.service.models import Administration, Batch, Dispensing, Patient, Prescription


def day_worklist(session: Session, me: Principal, *, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Active written directives not yet dispensed, and the doses planned in ``[start, end)``.

    Each row is ``{"rx", "patient", "disp", "adm"}`` (prescription, pseudonym, dispensing or None,
    administration or None); doses planned first, by planned time.
    """
    rows: list[dict[str, Any]] = []
    prescriptions = session.execute(
        select(Prescription, Patient.pseudonym)
        .join(Patient, Patient.id == Prescription.patient_id)
        .where(Prescription.status == "active")
        .order_by(Prescription.id)
    ).all()
    for rx, pseudonym in prescriptions:
        dispensings = list(
            session.execute(
                select(Dispensing).where(Dispensing.prescription_id == rx.id).order_by(Dispensing.id)
            ).scalars()
        )
        today = [d for d in dispensings if start <= d.planned_time < end]
        if dispensings and not today:
            continue  # dispensed for another day
        if not today:
            rows.append({"rx": rx, "patient": pseudonym, "disp": None, "adm": None})
        for d in today:
            adm = session.execute(
                select(Administration).where(Administration.dispensing_id == d.id)
            ).scalar_one_or_none()
            rows.append({"rx": rx, "patient": pseudonym, "disp": d, "adm": adm})
    rows.sort(key=lambda r: (r["disp"] is None, r["disp"].planned_time if r["disp"] else start, r["rx"].id))
    return rows


def dispense_choices(session: Session, me: Principal) -> tuple[list[Batch], list[tuple[Prescription, str]]]:
    """Released batches in date, and active written directives with their patient's pseudonym."""
    now = datetime.now(UTC)
    released = list(
        session.execute(
            select(Batch).where(Batch.status == "released", Batch.expiry_time > now).order_by(Batch.id)
        ).scalars()
    )
    rxs = [
        (rx, pseudonym)
        for rx, pseudonym in session.execute(
            select(Prescription, Patient.pseudonym)
            .join(Patient, Patient.id == Prescription.patient_id)
            .where(Prescription.status == "active")
            .order_by(Prescription.id)
        ).all()
    ]
    return released, rxs
