"""The patient treatment view: cycles, measured doses, cumulative BED and next cycle, laboratory values."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from sqlalchemy.orm import Session

from theradose.errors import TheradoseError
from theradose.products import load_products
from theradose.service.auth import Principal
from theradose.service.keys import KeyRing
from theradose.service.operations import (
    directive_plans,
    dosimetry,
    labs,
    patients,
    precycle,
    prescriptions,
    treatment,
)
from theradose.service.operations.common import PSEUDONYM_PATTERN
from theradose.service.permissions import allowed
from theradose.service.review_store import Store
from theradose.service.web.svg import HLine, Series, line_chart
from theradose.service.web.views import base


def _planning_chart(plan: dict[str, Any]) -> str | None:
    series = []
    hlines = []
    for organ, history in plan["histories"]:
        if history is None or history[1] is None:
            continue
        beds = history[1]
        series.append(Series(organ.name, list(range(1, len(beds) + 1)), [float(b) for b in beds]))
        if organ.bed_limit_gy is not None:
            hlines.append(HLine(float(organ.bed_limit_gy.value), f"{organ.name} BED limit"))
    if not series:
        return None
    return line_chart(
        series,
        title="Cumulative BED per organ against its limit",
        x_label="cycle",
        y_label="cumulative BED (Gy)",
        include_zero=True,
        hlines=hlines,
        x_tick_labels={float(i): str(i) for i in range(1, plan["cycles"] + 1)},
    )


def _labs(session: Session, me: Principal, pseudonym: str, protocol_name: str | None) -> dict[str, Any]:
    if not allowed(me.role, "labs:read"):
        return {"hidden": True}
    rows = labs.list_labs(session, me, pseudonym)
    decision = None
    if rows and protocol_name is not None:
        try:
            decision = labs.precycle(session, me, pseudonym, protocol=protocol_name)
        except TheradoseError as exc:
            return {"rows": rows, "error": str(exc)}
    return {"rows": rows, "decision": decision}


def _view(
    session: Session,
    me: Principal,
    pseudonym: str,
    *,
    store: Store,
    keys: KeyRing,
    with_identity: bool = True,
) -> dict[str, Any] | None:
    patient = treatment.find_patient(session, me, pseudonym)
    if patient is None:
        return None
    cycles = treatment.patient_cycles(session, me, patient)
    for cycle in cycles:
        cycle["approval"] = prescriptions.valid_approval(session, cycle["rx"], keys=keys)
    names = patients.identities(session, me, [pseudonym], view="patient", audit=with_identity)
    protocol_name = next(
        (p for p in (treatment.protocol_for(c["rx"].radiopharmaceutical) for c in cycles) if p), None
    )
    review_rows = dosimetry.list_reviews(session, me, store=store, keys=keys, patient=pseudonym)
    plan = treatment.next_cycle_plan(
        protocol_name,
        [r["review"] for r in review_rows if r["approved"]],
        treatment.administered_activities(cycles),
    )
    if "error" not in plan:
        plan["chart"] = _planning_chart(plan)
    return {
        "cycles": cycles,
        "reviews": review_rows,
        "dose_table": treatment.measured_doses([r["review"] for r in review_rows]),
        "dose_sources": treatment.dose_sources([r["review"] for r in review_rows]),
        "planning": plan,
        "labs": _labs(session, me, pseudonym, protocol_name),
        "protocol": protocol_name,
        "patient": patient,
        "identity": names.get(pseudonym),
        "decisions": precycle.list_decisions(session, me, pseudonym) if allowed(me.role, "labs:read") else [],
        "products": list(load_products().values()),
        "next_cycle": 1 + max((c["rx"].cycle for c in cycles if c["rx"].status != "cancelled"), default=0),
        "directive_plans": directive_plans.directive_plans(session, [c["rx"].id for c in cycles]),
    }


def _page(
    request: Request,
    me: Principal,
    pseudonym: str,
    *,
    errors: dict[str, str],
    values: Mapping[str, str] | None = None,
    status: int = 200,
) -> Response:
    with request.app.state.db.write() as session:
        ctx = _view(
            session,
            me,
            pseudonym,
            store=base.state(request).store,
            keys=request.app.state.keys,
            with_identity=request.method == "GET",
        )
        session.expunge_all()
    if ctx is None:
        return base.not_found(request, me, f"patient {pseudonym}")
    return base.render(
        request,
        "patient.html",
        me,
        status=status,
        pseudonym=pseudonym,
        errors=errors,
        values={
            "taken_on": datetime.now(base.site_tz(request)).date().isoformat(),
            "cycle": str(ctx["next_cycle"] - 1 or 1),
            "rx_cycle": str(ctx["next_cycle"]),
            **(values or {}),
        },
        **ctx,
    )


def patient_page(request: Request, pseudonym: str) -> Response:
    """``GET /ui/patients/{pseudonym}``."""
    me = base.require_user(request, "patients:read")
    return _page(request, me, pseudonym, errors={})


async def record_lab(request: Request, pseudonym: str) -> Response:
    """``POST /ui/patients/{pseudonym}/labs``."""
    me = base.require_user(request, "labs:write")
    form = await base.checked_form(request, me)
    values = {k: base.form_text(form, k) for k in ("taken_on", "test", "value", "unit", "cycle")}
    if not re.match(PSEUDONYM_PATTERN, pseudonym):
        return base.not_found(request, me, f"patient {pseudonym}")
    row, errors = await run_in_threadpool(
        base.run_form,
        lambda: labs.LabIn.model_validate(
            {
                "taken_on": values["taken_on"] or None,
                "test": values["test"],
                "value": values["value"] or None,
                "unit": values["unit"],
                "cycle": values["cycle"] or None,
            }
        ),
        lambda body: base.write(request, labs.record_lab, me, pseudonym, body),
    )
    if errors:
        if any("not found" in v for v in errors.values()):
            return base.not_found(request, me, f"patient {pseudonym}")
        return _page(request, me, pseudonym, errors=errors, values=values, status=422)
    return base.redirect(
        f"/ui/patients/{pseudonym}", f"{row.test} {row.value:g} {row.unit} recorded: CTCAE grade {row.grade}"
    )


def _list_page(
    request: Request, me: Principal, *, errors: dict[str, str], values: Mapping[str, str], status: int = 200
) -> Response:
    query = request.query_params.get("q", "")
    if request.method == "GET":
        with request.app.state.db.write() as session:
            rows = patients.search_patients(session, me, query)
    else:
        rows = []
    return base.render(
        request, "patients.html", me, status=status, rows=rows, query=query, errors=errors, values=values
    )


def patients_page(request: Request) -> Response:
    """``GET /ui/patients[?q=...]``: patient list and search, registration form."""
    me = base.require_user(request, "patients:read")
    return _list_page(request, me, errors={}, values={})


async def register(request: Request) -> Response:
    """``POST /ui/patients``: register a patient (identity kept apart, a pseudonym returned)."""
    from theradose.service.operations import idempotency

    me = base.require_user(request, "patients:create")
    form = await base.checked_form(request, me)
    keys = ("family_name", "given_name", "mrn", "birth_date", "sex", "weight_kg")
    values = {k: base.form_text(form, k) for k in keys}
    key = base.form_key(form)

    def work(body: patients.PatientIn) -> tuple[patients.PatientOut, bool]:
        with request.app.state.db.write() as session:
            return idempotency.run_once(
                session,
                me,
                key,
                "create_patient",
                idempotency.request_hash("create_patient", body),
                patients.PatientOut,
                lambda: patients.create_patient(session, me, body),
            )

    result, errors = await run_in_threadpool(
        base.run_form,
        lambda: patients.PatientIn.model_validate({k: (v or None) for k, v in values.items()}),
        work,
    )
    if errors:
        return _list_page(request, me, errors=errors, values=values, status=422)
    row, _replayed = result
    return base.redirect(f"/ui/patients/{row.pseudonym}", f"patient registered as {row.pseudonym}")
