"""Use cases of the day's work: the worklist of a day and what can be dispensed now."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from theradose.service.auth import Principal
from theradose.service.models import Administration, Batch, Dispensing, Patient, Prescription
from theradose.service.operations import precycle


def day_worklist(
    session: Session, me: Principal, *, start: datetime, end: datetime, day: date | None = None
) -> list[dict[str, Any]]:
    """Written directives still to sign or dispense, and the doses planned in ``[start, end)``.

    Each row is ``{"rx", "patient", "disp", "adm", "batch", "decision"}``: the directive, the pseudonym,
    its active dispensing (or None) with the batch in the syringe, the administration (or None) and the
    pre-cycle decision in force for its cycle (or None). Doses first, by planned time.
    """
    rows: list[dict[str, Any]] = []
    prescriptions = session.execute(
        select(Prescription, Patient.pseudonym)
        .join(Patient, Patient.id == Prescription.patient_id)
        .where(Prescription.status != "cancelled")
        .order_by(Prescription.id)
    ).all()
    for rx, pseudonym in prescriptions:
        disp = session.execute(
            select(Dispensing).where(Dispensing.prescription_id == rx.id, Dispensing.status == "active")
        ).scalar_one_or_none()
        adm = None
        if disp is not None:
            if not start <= disp.planned_time < end:
                continue  # dispensed for another day
            adm = session.execute(
                select(Administration).where(Administration.dispensing_id == disp.id)
            ).scalar_one_or_none()
        elif rx.planned_date is not None and day is not None and rx.planned_date > day:
            continue  # planned for a later day
        decision = precycle.current_decision(session, rx.patient_id, rx.cycle)
        rows.append(
            {
                "rx": rx,
                "patient": pseudonym,
                "disp": disp,
                "adm": adm,
                "batch": session.get(Batch, disp.batch_id) if disp is not None else None,
                "decision": None if decision is None else precycle.decision_out(decision, pseudonym),
            }
        )
    rows.sort(key=lambda r: (r["disp"] is None, r["disp"].planned_time if r["disp"] else start, r["rx"].id))
    return rows


def dispense_choices(
    session: Session, me: Principal
) -> tuple[list[Batch], list[tuple[Prescription, str]], dict[int, list[int]]]:
    """Released batches in date; signed directives without an active dispensing (with pseudonyms); and for
    each directive the ids of the batches of its product."""
    now = datetime.now(UTC)
    released = list(
        session.execute(
            select(Batch)
            .where(Batch.status == "released", Batch.expiry_time > now)
            .order_by(Batch.expiry_time)
        ).scalars()
    )
    dispensed = select(Dispensing.prescription_id).where(Dispensing.status == "active")
    rxs = [
        (rx, pseudonym)
        for rx, pseudonym in session.execute(
            select(Prescription, Patient.pseudonym)
            .join(Patient, Patient.id == Prescription.patient_id)
            .where(Prescription.status == "signed", Prescription.id.not_in(dispensed))
            .order_by(Prescription.id)
        ).all()
    ]
    fits = {
        rx.id: [b.id for b in released if b.product_code is not None and b.product_code == rx.product_code]
        for rx, _p in rxs
    }
    return released, rxs, fits
