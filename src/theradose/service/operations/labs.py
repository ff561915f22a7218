"""Use cases of side-effect monitoring: laboratory values with CTCAE v5.0 grades and the pre-cycle check.

Values are converted to canonical units and graded by :mod:`theradose.safety` when they are recorded;
implausible values, unknown tests or units are refused and nothing is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from theradose.errors import InputError
from theradose.safety import LabValue, check_cycle, grade_lab, to_canonical
from theradose.safety.labs import SYMPTOMS, canonical_test_name, lab_catalogue
from theradose.service import audit_store
from theradose.service.auth import Principal
from theradose.service.errors import ApiError
from theradose.service.models import LabRecord, Prescription, row_to_dict
from theradose.service.operations import precycle as precycle_ops
from theradose.service.operations.common import Model, opt_text, patient_by_pseudonym, text, utcnow

Number = Annotated[float, Field(allow_inf_nan=False, ge=-1e9, le=1e9)]
Sex = Literal["male", "female"]


class LabIn(Model):
    taken_on: Annotated[date, Field(ge=date(1900, 1, 1), le=date(2200, 1, 1))]
    test: text(40)  # type: ignore[valid-type]
    value: Number
    unit: opt_text(32) = ""  # type: ignore[valid-type]
    baseline: Number | None = None
    lln: Number | None = None
    uln: Number | None = None
    cycle: Annotated[int | None, Field(ge=1, le=100)] = None


class LabOut(BaseModel):
    id: int
    taken_on: date
    test: str
    value: float
    unit: str
    entered_value: float
    entered_unit: str
    baseline: float | None
    lln: float | None
    uln: float | None
    cycle: int | None
    grade: int
    rule: str
    recorded_by: str


class PreCycleOut(BaseModel):
    decision: Literal["go", "delay", "reduce", "stop"]
    activity_factor: float
    recommended_activity_mbq: float | None
    reasons: list[str]
    rules_fired: list[str]
    alerts: list[str]
    source: str


def lab_out(row: LabRecord) -> LabOut:
    """The public view of a lab record."""
    return LabOut(**{k: v for k, v in row_to_dict(row).items() if k in LabOut.model_fields})


def record_lab(
    session: Session, me: Principal, pseudonym: str, body: LabIn, *, sex: Sex | None = None
) -> LabOut:
    """Record a laboratory value (canonical unit, CTCAE grade)."""
    test = canonical_test_name(body.test)
    value = to_canonical(test, body.value, body.unit)
    extra = {
        key: None if getattr(body, key) is None else to_canonical(test, getattr(body, key), body.unit)
        for key in ("baseline", "lln", "uln")
    }
    unit = "grade" if test in SYMPTOMS else lab_catalogue()[test].unit
    graded = grade_lab(LabValue(test, value, unit, body.taken_on, **extra), sex=sex)
    patient = patient_by_pseudonym(session, pseudonym)
    now = utcnow()
    row = LabRecord(
        patient_id=patient.id,
        taken_on=body.taken_on,
        test=test,
        value=value,
        unit=unit,
        entered_value=body.value,
        entered_unit=body.unit,
        cycle=body.cycle,
        grade=graded.grade,
        rule=graded.rule,
        recorded_by=me.username,
        recorded_at=now,
        **extra,
    )
    session.add(row)
    session.flush()
    audit_store.append(
        session,
        actor=me.username,
        at=now,
        action="create",
        entity="lab_record",
        entity_id=str(row.id),
        after={**row_to_dict(row), "patient": pseudonym},
    )
    if body.cycle is not None:
        precycle_ops.evaluate(session, me, patient, body.cycle)
    return lab_out(row)


def list_labs(
    session: Session, me: Principal, pseudonym: str, *, limit: int | None = None, offset: int = 0
) -> list[LabOut]:
    """A patient's lab values by date (one page of ``limit`` from ``offset``)."""
    patient = patient_by_pseudonym(session, pseudonym)
    rows = session.execute(
        select(LabRecord)
        .where(LabRecord.patient_id == patient.id)
        .order_by(LabRecord.taken_on, LabRecord.id)
        .limit(limit)
        .offset(offset)
    ).scalars()
    return [lab_out(r) for r in rows]


def precycle(
    session: Session,
    me: Principal,
    pseudonym: str,
    *,
    protocol: str | None = None,
    sex: Sex | None = None,
    age_y: float | None = None,
    weight_kg: float | None = None,
    previously_reduced_for: Sequence[str] = (),
) -> PreCycleOut:
    """The pre-cycle check of a patient's lab values against the rules of ``protocol`` (by default the
    protocol of the product of the patient's latest directive): go, delay, reduce or stop. An unknown
    protocol, one without pre-cycle rules, or no protocol to be found is an error naming the choices."""
    from theradose.planning.protocols import available_protocols, load_protocol

    patient = patient_by_pseudonym(session, pseudonym)
    if protocol is None:
        latest = session.execute(
            select(Prescription.cycle)
            .where(Prescription.patient_id == patient.id)
            .order_by(Prescription.cycle.desc())
            .limit(1)
        ).scalar_one_or_none()
        protocol = None if latest is None else precycle_ops.rules_for_cycle(session, patient.id, latest)
        if protocol is None:
            known = ", ".join(available_protocols())
            raise ApiError(
                422,
                "invalid_input",
                "protocol: the patient has no written directive of a product with pre-cycle rules; give "
                f"protocol (one of {known})",
                "protocol",
            )
    if protocol not in available_protocols():
        known = ", ".join(available_protocols())
        raise InputError(f"protocol: {protocol!r} is not a protocol; use one of {known}")
    rules_path = load_protocol(protocol).precycle_rules
    if rules_path is None:
        raise InputError(f"protocol: {protocol!r} has no pre-cycle rules")
    rows = session.execute(select(LabRecord).where(LabRecord.patient_id == patient.id)).scalars().all()
    labs = [LabValue(r.test, r.value, r.unit, r.taken_on, r.baseline, r.lln, r.uln) for r in rows]
    decision = check_cycle(
        labs,
        rules_path=rules_path,
        sex=sex,
        age_y=age_y,
        weight_kg=weight_kg,
        previously_reduced_for=previously_reduced_for,
    )
    return PreCycleOut(
        decision=decision.decision,
        activity_factor=decision.activity_factor,
        recommended_activity_mbq=decision.recommended_activity_mbq,
        reasons=list(decision.reasons),
        rules_fired=list(decision.rules_fired),
        alerts=list(decision.alerts),
        source=decision.source,
    )
