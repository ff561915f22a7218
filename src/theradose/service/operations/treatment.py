"""Use cases of the patient treatment view: cycles, measured doses and the next-cycle plan."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from theradose.errors import TheradoseError
from theradose.service.auth import Principal
from theradose.service.keys import KeyRing
from theradose.service.models import Administration, Dispensing, Patient, Prescription, SignatureRow
from theradose.service.review_store import RegionRow, Review, Store, read_result


def protocol_for(radiopharmaceutical: str) -> str | None:
    """The planning protocol of a radiopharmaceutical name (from the protocol registry's product names
    and spellings), or None when no protocol treats that product."""
    from theradose.planning.protocols import find_protocol_for_product

    protocol = find_protocol_for_product(radiopharmaceutical)
    return None if protocol is None else protocol.name


def find_patient(session: Session, me: Principal, pseudonym: str) -> Patient | None:
    """The patient with ``pseudonym`` or None."""
    return session.execute(select(Patient).where(Patient.pseudonym == pseudonym)).scalar_one_or_none()


def patient_cycles(session: Session, me: Principal, patient: Patient) -> list[dict[str, Any]]:
    """Each written directive of the patient with its dispensings, administrations and signatures."""
    rxs = list(
        session.execute(
            select(Prescription)
            .where(Prescription.patient_id == patient.id)
            .order_by(Prescription.cycle, Prescription.id)
        ).scalars()
    )
    cycles = []
    for rx in rxs:
        disps = list(
            session.execute(
                select(Dispensing).where(Dispensing.prescription_id == rx.id).order_by(Dispensing.id)
            ).scalars()
        )
        adms = [
            session.execute(
                select(Administration).where(Administration.dispensing_id == d.id)
            ).scalar_one_or_none()
            for d in disps
        ]
        sigs = list(
            session.execute(
                select(SignatureRow)
                .where(SignatureRow.record_type == "prescription", SignatureRow.record_id == str(rx.id))
                .order_by(SignatureRow.id)
            ).scalars()
        )
        cycles.append({"rx": rx, "dispensings": list(zip(disps, adms, strict=True)), "signatures": sigs})
    return cycles


def measured_doses(reviews: Sequence[Review]) -> dict[str, dict[str, RegionRow]]:
    """Each region's row of each review's dose record (its reference dose, named, and the BED computed from
    it): ``{region: {review_id: row}}``."""
    table: dict[str, dict[str, RegionRow]] = {}
    for review in reviews:
        try:
            result = read_result(review.folder)
        except TheradoseError:
            continue
        for region in result.regions:
            table.setdefault(region.name, {})[review.review_id] = region
    return table


def dose_sources(reviews: Sequence[Review]) -> dict[str, str]:
    """The reference dose (``organ`` or an engine) of each review's dose record: ``{review_id: source}``."""
    out: dict[str, str] = {}
    for review in reviews:
        try:
            out[review.review_id] = read_result(review.folder).dose_source
        except TheradoseError:
            continue
    return out


def administered_activities(cycles: Sequence[dict[str, Any]]) -> dict[int, float]:
    """Net administered activity (MBq) per cycle number, from :func:`patient_cycles`."""
    out: dict[int, float] = {}
    for cycle in cycles:
        for _dispensing, administration in cycle["dispensings"]:
            if administration is not None:
                number = int(cycle["rx"].cycle)
                out[number] = out.get(number, 0.0) + float(administration.net_activity_mbq)
    return out


def next_cycle_plan(
    protocol_name: str | None, approved: Sequence[Review], administered: Mapping[int, float] | None = None
) -> dict[str, Any]:
    """The next-cycle plan from the approved reviews (``{"error": ...}`` when there is none).

    Every administered cycle counts: a cycle with approved dosimetry with its dose record (the newest
    approved import of that cycle), a cycle given without it with its net activity and the expected Gy/GBq
    of the measured cycles (the planner notes it), so the cumulative dose is never that of fewer cycles
    than were given.

    Returns ``{"result", "organs", "histories", "cycles"}``: the planner's result, the per-organ
    projections, ``(organ, history)`` pairs of cumulative dose/BED, and the number of cycles used.
    """
    from theradose.planning import Cycle, TreatmentPlan, cycle_doses, load_protocol, plan_next_cycle
    from theradose.planning.nextcycle import organ_history_gy

    if protocol_name is None:
        return {"error": "no protocol known for this patient's radiopharmaceutical"}
    if not approved:
        return {"error": "no approved dosimetry yet: approve a dosimetry review to plan the next cycle"}
    given = dict(administered or {})
    newest: dict[int, Review] = {}
    for review in sorted(approved, key=lambda r: r.imported_at):
        newest[review.cycle] = review
    try:
        cycles = []
        for number in sorted(set(newest) | set(given)):
            review = newest.get(number)
            if review is None:
                cycles.append(Cycle(given[number], (), label=f"cycle {number} (no approved dosimetry)"))
                continue
            result = read_result(review.folder)
            if result.record is None:
                raise TheradoseError(f"cycle {number}: doses.json could not be read as a dose record")
            activity_mbq, regions = cycle_doses(result.record)
            cycles.append(Cycle(activity_mbq, regions, label=f"cycle {number}"))
        protocol = load_protocol(protocol_name)
        plan = TreatmentPlan(protocol=protocol, cycles=tuple(cycles))
        result_next = plan_next_cycle(plan)
        histories = []
        for organ in protocol.organs:
            try:
                history = organ_history_gy(plan, organ)
            except TheradoseError:
                continue
            histories.append((organ, history))
    except TheradoseError as exc:
        return {"error": str(exc)}
    return {
        "result": result_next,
        "organs": list(result_next.organs),
        "histories": histories,
        "cycles": len(cycles),
        "reviews": [newest[n].review_id for n in sorted(newest)],
    }


def patient_protocol(session: Session, me: Principal, patient: Patient) -> str | None:
    """The planning protocol of the patient's written directives (their radiopharmaceutical's)."""
    for cycle in patient_cycles(session, me, patient):
        name = protocol_for(cycle["rx"].radiopharmaceutical)
        if name is not None:
            return name
    return None


def next_cycle(
    session: Session, me: Principal, pseudonym: str, *, store: Store, keys: KeyRing
) -> dict[str, Any]:
    """The next-cycle plan of a patient from the approved dosimetry, as JSON
    (:meth:`theradose.planning.NextCycleResult.as_dict` under ``plan``, or ``error``)."""
    from theradose.service.errors import not_found
    from theradose.service.operations.dosimetry import list_reviews

    patient = find_patient(session, me, pseudonym)
    if patient is None:
        raise not_found("patient", pseudonym)
    protocol = patient_protocol(session, me, patient)
    rows = list_reviews(session, me, store=store, keys=keys, patient=pseudonym)
    approved = [r["review"] for r in rows if r["approved"]]
    given = administered_activities(patient_cycles(session, me, patient))
    plan = next_cycle_plan(protocol, approved, given)
    out: dict[str, Any] = {"patient": pseudonym, "protocol": protocol, "administered_mbq": given}
    if "error" in plan:
        return {**out, "reviews": [], "error": plan["error"]}
    return {**out, "reviews": plan["reviews"], "plan": plan["result"].as_dict()}
