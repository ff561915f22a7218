"""Use cases of the pre-cycle decision per patient and cycle, and the gate it puts on the cycle.

When a laboratory value of a cycle is recorded, the decision of that cycle is re-evaluated with the
laboratory rules of the patient's product (:mod:`theradose.safety`; the rule file of the protocol the product
is planned with, :func:`theradose.planning.protocols.protocol_for_product`) and recorded (newest row in
force; ``rules`` names that protocol). A DELAY or STOP blocks dispensing and administration of
that cycle (:func:`require_cycle_open`) until a physician overrides it with a reason and an
e-signature (meaning ``overridden``), which is audited.
"""

from __future__ import annotations

import json
from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from theradose.planning.protocols import find_protocol_for_product, load_protocol
from theradose.products import find_product
from theradose.safety import LabValue, check_cycle
from theradose.service import audit_store
from theradose.service.auth import Principal
from theradose.service.errors import ApiError, conflict, not_found
from theradose.service.keys import KeyRing
from theradose.service.models import LabRecord, Patient, PrecycleDecisionRow, Prescription, row_to_dict
from theradose.service.operations.common import Model, patient_by_pseudonym, text, utcnow
from theradose.service.operations.signatures import Signer, seal_signature

#: Decisions that block the cycle.
BLOCKING: frozenset[str] = frozenset({"delay", "stop"})


class OverrideIn(Model):
    reason: text(500)  # type: ignore[valid-type]
    password: text(200)  # type: ignore[valid-type]


class DecisionOut(BaseModel):
    id: int
    patient: str
    cycle: int
    rules: str
    decision: str
    activity_factor: float
    reasons: list[str]
    source: str
    decided_at: datetime
    blocking: bool
    override_reason: str | None
    overridden_by: str | None
    overridden_at: datetime | None


def decision_out(row: PrecycleDecisionRow, pseudonym: str) -> DecisionOut:
    """The public view of a decision; ``blocking`` is true for a delay or stop not overridden."""
    return DecisionOut(
        id=row.id,
        patient=pseudonym,
        cycle=row.cycle,
        rules=row.rules,
        decision=row.decision,
        activity_factor=row.activity_factor,
        reasons=json.loads(row.reasons_json),
        source=row.source,
        decided_at=row.decided_at,
        blocking=row.decision in BLOCKING and row.overridden_by is None,
        override_reason=row.override_reason,
        overridden_by=row.overridden_by,
        overridden_at=row.overridden_at,
    )


def current_decision(session: Session, patient_id: int, cycle: int) -> PrecycleDecisionRow | None:
    """The decision in force for a patient's cycle (the newest), or None."""
    return session.execute(
        select(PrecycleDecisionRow)
        .where(PrecycleDecisionRow.patient_id == patient_id, PrecycleDecisionRow.cycle == cycle)
        .order_by(PrecycleDecisionRow.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def rules_for_cycle(session: Session, patient_id: int, cycle: int) -> str | None:
    """The protocol whose pre-cycle rules apply to ``cycle``: that of the product of the patient's directive
    for ``cycle`` (else of their latest directive); None when no directive's product has a protocol with
    pre-cycle rules."""
    rows = session.execute(
        select(Prescription)
        .where(Prescription.patient_id == patient_id, Prescription.status != "cancelled")
        .order_by(Prescription.cycle.desc(), Prescription.id.desc())
    ).scalars()
    ordered = sorted(rows, key=lambda r: (r.cycle != cycle,))
    for rx in ordered:
        product = find_product(rx.product_code or rx.radiopharmaceutical)
        protocol = None if product is None else find_protocol_for_product(product.name)
        if protocol is not None and protocol.precycle_rules is not None:
            return protocol.name
    return None


def evaluate(session: Session, me: Principal, patient: Patient, cycle: int) -> PrecycleDecisionRow | None:
    """Re-evaluate and record the decision of ``cycle`` from the lab values of that cycle.

    None when the patient has no directive whose product names its rules (nothing to decide yet).
    """
    rules = rules_for_cycle(session, patient.id, cycle)
    if rules is None:
        return None
    rows = (
        session.execute(select(LabRecord).where(LabRecord.patient_id == patient.id, LabRecord.cycle == cycle))
        .scalars()
        .all()
    )
    labs = [LabValue(r.test, r.value, r.unit, r.taken_on, r.baseline, r.lln, r.uln) for r in rows]
    if not labs:
        return None
    rules_path = load_protocol(rules).precycle_rules
    assert rules_path is not None  # rules_for_cycle returns only protocols with rules
    result = check_cycle(labs, rules_path=rules_path, sex=None, weight_kg=patient.weight_kg)
    row = PrecycleDecisionRow(
        patient_id=patient.id,
        cycle=cycle,
        rules=rules,
        decision=result.decision,
        activity_factor=result.activity_factor,
        reasons_json=json.dumps(list(result.reasons) + list(result.alerts)),
        source=result.source,
        decided_at=utcnow(),
        decided_by=me.username,
    )
    session.add(row)
    session.flush()
    audit_store.append(
        session,
        actor=me.username,
        at=row.decided_at,
        action="create",
        entity="precycle_decision",
        entity_id=row.id,
        after={**row_to_dict(row), "patient": patient.pseudonym},
    )
    return row


def require_cycle_open(session: Session, patient_id: int, cycle: int) -> None:
    """Refuse (409 ``precycle_delay``) when the cycle's decision is a DELAY or STOP not overridden."""
    row = current_decision(session, patient_id, cycle)
    if row is not None and row.decision in BLOCKING and row.overridden_by is None:
        reasons = "; ".join(json.loads(row.reasons_json)) or row.decision
        raise conflict(
            "precycle_delay",
            f"pre-cycle decision for cycle {cycle} is {row.decision.upper()} ({reasons}): a physician may "
            "override it with a reason and an e-signature",
            "prescription_id",
        )


def list_decisions(session: Session, me: Principal, pseudonym: str) -> list[DecisionOut]:
    """The decisions in force for each cycle of a patient."""
    patient = patient_by_pseudonym(session, pseudonym)
    cycles = sorted(
        {
            c
            for (c,) in session.execute(
                select(PrecycleDecisionRow.cycle).where(PrecycleDecisionRow.patient_id == patient.id)
            )
        }
    )
    out = []
    for cycle in cycles:
        row = current_decision(session, patient.id, cycle)
        assert row is not None
        out.append(decision_out(row, patient.pseudonym))
    return out


def override(
    session: Session, signer: Signer, pseudonym: str, cycle: int, body: OverrideIn, *, keys: KeyRing
) -> DecisionOut:
    """Override a DELAY or STOP of a cycle (physician, reason, e-signature ``overridden``)."""
    me = signer.principal
    if signer.meaning != "overridden":
        raise ApiError(403, "forbidden", "an override needs a signature with the meaning overridden")
    patient = patient_by_pseudonym(session, pseudonym)
    row = current_decision(session, patient.id, cycle)
    if row is None:
        raise not_found(f"pre-cycle decision of cycle {cycle} of patient", pseudonym)
    if row.decision not in BLOCKING or row.overridden_by is not None:
        raise conflict("nothing_to_override", f"cycle {cycle} is {row.decision} and not blocked")
    before = row_to_dict(row)
    row.override_reason = body.reason
    row.overridden_by = me.username
    row.overridden_at = utcnow()
    session.flush()
    audit_store.append(
        session,
        actor=me.username,
        at=row.overridden_at,
        action="update",
        entity="precycle_decision",
        entity_id=row.id,
        before=before,
        after=row_to_dict(row),
        reason=body.reason,
    )
    seal_signature(
        session, signer, "precycle_decision", row.id, row_to_dict(row), keys=keys, reason=body.reason
    )
    return decision_out(row, patient.pseudonym)
