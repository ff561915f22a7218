"""Use cases: the next cycle's written directive drafted from the plan of the approved dosimetry.

:func:`draft_next_directive` writes the next cycle's directive as a **draft** (through
:func:`theradose.service.operations.prescriptions.create_prescription`: product registry, protocol range,
one directive per cycle, audit) with what the plan proposes (:func:`theradose.planning.draft.draft_directive`)
and keeps the plan beside it (:class:`~theradose.service.models.DirectivePlan`): the reviews planned from,
the organ that limits the activity with its projected cumulative BED and dose, expected and at the plan's
confidence. A physician reviews it, edits it if needed and signs it (meaning ``approved``); only then can
it be dispensed (:func:`theradose.service.operations.prescriptions.require_dispensable`).
"""

from __future__ import annotations

import json
from datetime import date, datetime

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from theradose.errors import InputError
from theradose.jsonsafe import finite_or_null
from theradose.pharmacy.directives import check_plausibility
from theradose.planning.protocols import protocol_for_product
from theradose.service import audit_store
from theradose.service.auth import Principal
from theradose.service.errors import conflict
from theradose.service.keys import KeyRing
from theradose.service.models import DirectivePlan, row_to_dict
from theradose.service.operations import dosimetry, precycle, prescriptions, treatment
from theradose.service.operations.common import patient_by_pseudonym, utcnow
from theradose.service.review_store import Store


class DirectivePlanOut(BaseModel):
    """The plan a draft directive was drafted from."""

    prescription_id: int
    reviews: list[str]
    protocol: str
    recommended_activity_mbq: float
    earliest_date: date
    organ: str | None
    limited_by: str
    binding_limit: str | None
    projected_bed_gy: float | None
    projected_bed_upper_gy: float | None
    projected_dose_gy: float | None
    projected_dose_upper_gy: float | None
    confidence: float
    reasons: list[str]
    summary: str
    drafted_by: str
    drafted_at: datetime


class DraftOut(BaseModel):
    prescription: prescriptions.PrescriptionOut
    plan: DirectivePlanOut


def plan_out(row: DirectivePlan) -> DirectivePlanOut:
    """The public view of a directive's plan."""
    from theradose.planning.draft import DirectiveDraft

    plan = json.loads(row.plan_json)
    draft = DirectiveDraft(
        cycle=int(plan.get("cycle_number", 0)),
        activity_mbq=row.recommended_activity_mbq,
        earliest_date=row.earliest_date,
        interval_weeks=0.0,
        organ=row.organ,
        limited_by=row.limited_by,
        binding_limit=row.binding_limit,
        projected_bed_gy=row.projected_bed_gy,
        projected_bed_upper_gy=row.projected_bed_upper_gy,
        projected_dose_gy=row.projected_dose_gy,
        projected_dose_upper_gy=row.projected_dose_upper_gy,
        confidence=row.confidence,
        reasons=tuple(plan.get("reasons", ())),
    )
    return DirectivePlanOut(
        prescription_id=row.prescription_id,
        reviews=list(json.loads(row.reviews_json)),
        protocol=row.protocol,
        recommended_activity_mbq=row.recommended_activity_mbq,
        earliest_date=row.earliest_date,
        organ=row.organ,
        limited_by=row.limited_by,
        binding_limit=row.binding_limit,
        projected_bed_gy=row.projected_bed_gy,
        projected_bed_upper_gy=row.projected_bed_upper_gy,
        projected_dose_gy=row.projected_dose_gy,
        projected_dose_upper_gy=row.projected_dose_upper_gy,
        confidence=row.confidence,
        reasons=list(draft.reasons),
        summary=draft.summary(),
        drafted_by=row.drafted_by,
        drafted_at=row.drafted_at,
    )


def directive_plans(session: Session, prescription_ids: list[int]) -> dict[int, DirectivePlanOut]:
    """The plans of those directives that were drafted from one: ``{prescription_id: plan}``."""
    if not prescription_ids:
        return {}
    rows = session.execute(
        select(DirectivePlan).where(DirectivePlan.prescription_id.in_(prescription_ids))
    ).scalars()
    return {row.prescription_id: plan_out(row) for row in rows}


def draft_next_directive(
    session: Session,
    me: Principal,
    pseudonym: str,
    *,
    store: Store,
    keys: KeyRing,
    site_timezone: str,
) -> DraftOut:
    """Write the next cycle's directive as a draft from the plan of the approved dosimetry.

    Refused (409, nothing written): no cycle administered yet (``nothing_administered``), no plan
    (``no_plan``: no approved dosimetry, no protocol), cycle numbers with a gap, a plan that says stop
    (``plan_stop``, naming its reasons), a laboratory pre-cycle decision STOP for that cycle not overridden
    (``precycle_stop``), a directive already written for that cycle (``duplicate_cycle``).
    """
    from theradose.planning.draft import draft_directive
    from theradose.planning.protocols import load_protocol

    patient = patient_by_pseudonym(session, pseudonym)
    cycles = treatment.patient_cycles(session, me, patient)
    given = treatment.administered_activities(cycles)
    if not given:
        raise conflict(
            "nothing_administered",
            f"{pseudonym} has no administered cycle: the first directive is written, not drafted from a plan",
        )
    protocol = treatment.patient_protocol(session, me, patient)
    rows = dosimetry.list_reviews(session, me, store=store, keys=keys, patient=pseudonym)
    plan = treatment.next_cycle_plan(protocol, [r["review"] for r in rows if r["approved"]], given)
    if "error" in plan or protocol is None:
        raise conflict("no_plan", f"no next-cycle plan for {pseudonym}: {plan.get('error')}")
    result = plan["result"]
    last = max(given)
    if result.cycle_number != last + 1:
        raise conflict(
            "no_plan",
            f"cycles {sorted(given)} of {pseudonym} are not numbered 1 to {last}: the plan counts "
            f"{result.cycle_number - 1}; correct the directives' cycle numbers",
        )
    decision = precycle.current_decision(session, patient.id, result.cycle_number)
    if decision is not None and decision.decision == "stop" and decision.overridden_by is None:
        why = "; ".join(json.loads(decision.reasons_json)) or "stop"
        raise conflict(
            "precycle_stop",
            f"the pre-cycle decision for cycle {result.cycle_number} is STOP ({why}): no directive is "
            "drafted; a physician may override the decision with a reason and an e-signature",
        )
    last_rx = next(c["rx"] for c in reversed(cycles) if c["rx"].cycle == last and c["dispensings"])
    last_injection = max(
        a.injection_time
        for c in cycles
        if c["rx"].cycle == last
        for _d, a in c["dispensings"]
        if a is not None
    )
    try:
        draft = draft_directive(
            result, load_protocol(protocol), last_injection=last_injection, site_timezone=site_timezone
        )
    except InputError as exc:
        raise conflict("plan_stop", str(exc)) from None
    check = check_plausibility(draft.activity_mbq, protocol_for_product(last_rx.radiopharmaceutical))
    out = prescriptions.create_prescription(
        session,
        me,
        prescriptions.PrescriptionIn(
            patient=pseudonym,
            radiopharmaceutical=last_rx.radiopharmaceutical,
            prescribed_activity_mbq=draft.activity_mbq,
            route=last_rx.route,
            plan_id="next-cycle plan",
            cycle=draft.cycle,
            planned_date=draft.earliest_date,
            # below the protocol's range only when the organ limit requires it: the plan is the reason
            range_reason=None if check.within_range else f"dosimetry-based activity: {draft.summary()}"[:500],
        ),
    )
    row = DirectivePlan(
        prescription_id=out.id,
        reviews_json=json.dumps(plan["reviews"]),
        protocol=protocol,
        recommended_activity_mbq=draft.activity_mbq,
        earliest_date=draft.earliest_date,
        organ=draft.organ,
        limited_by=draft.limited_by,
        binding_limit=draft.binding_limit,
        projected_bed_gy=draft.projected_bed_gy,
        projected_bed_upper_gy=draft.projected_bed_upper_gy,
        projected_dose_gy=draft.projected_dose_gy,
        projected_dose_upper_gy=draft.projected_dose_upper_gy,
        confidence=draft.confidence,
        plan_json=json.dumps(finite_or_null(result.as_dict()), sort_keys=True),
        drafted_by=me.username,
        drafted_at=utcnow(),
    )
    session.add(row)
    session.flush()
    audit_store.append(
        session,
        actor=me.username,
        at=row.drafted_at,
        action="create",
        entity="directive_plan",
        entity_id=row.id,
        after={k: v for k, v in row_to_dict(row).items() if k != "plan_json"},
    )
    return DraftOut(prescription=out, plan=plan_out(row))
