"""Dose-calibrator QA: register calibrators, record source checks, trend chart."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from sqlalchemy.orm import Session

from theradose.service.auth import Principal
from theradose.service.operations import calibrators
from theradose.service.web.svg import HLine, Series, line_chart
from theradose.service.web.views import base


def _history(
    session: Session, me: Principal, calibrator_id: int | None
) -> tuple[list[calibrators.CalibratorOut], calibrators.CalibratorOut | None, list[calibrators.QaOut]]:
    devices = calibrators.list_calibrators(session, me)
    if calibrator_id is None and devices:
        calibrator_id = devices[0].id
    current = next((c for c in devices if c.id == calibrator_id), None)
    rows = (
        list(reversed(calibrators.list_calibrator_qa(session, me, current.id, limit=1000))) if current else []
    )
    return devices, current, rows


def _chart(current: calibrators.CalibratorOut | None, rows: list[calibrators.QaOut]) -> str | None:
    source = [r for r in rows if r.test in ("constancy", "accuracy")]
    if not source:
        return None
    tol = current.tolerance_fraction if current else source[-1].tolerance_fraction
    series = []
    for test in ("constancy", "accuracy"):
        pts = [(i, r) for i, r in enumerate(source) if r.test == test]
        if pts:
            series.append(
                Series(
                    test,
                    [i + 1 for i, _ in pts],
                    [r.deviations[0] * 100 for _, r in pts],
                    [not r.passed for _, r in pts],
                )
            )
    return line_chart(
        series,
        title="Dose-calibrator source checks: deviation from the decay-corrected reference",
        x_label="check number (oldest first)",
        x_tick_labels={float(i): str(i) for i in range(1, len(source) + 1)},
        y_label="deviation (%)",
        hlines=[HLine(tol * 100, f"+{tol * 100:g} %"), HLine(-tol * 100, f"-{tol * 100:g} %")],
    )


def _page(
    request: Request,
    me: Principal,
    *,
    calibrator_id: int | None,
    errors: dict[str, str],
    values: Mapping[str, str],
    status: int = 200,
) -> Response:
    devices, current, rows = base.read(request, _history, me, calibrator_id)
    defaults = {"test": "constancy", "nuclide": "Cs-137", "measured_at": base.now_input(request)}
    return base.render(
        request,
        "qa.html",
        me,
        status=status,
        calibrators=devices,
        current=current,
        rows=list(reversed(rows)),
        chart=_chart(current, rows),
        errors=errors,
        values={**defaults, **values},
    )


def qa_page(request: Request, calibrator: int | None = None) -> Response:
    """``GET /ui/qa[?calibrator=ID]``."""
    me = base.require_user(request, "calibrators:read")
    return _page(request, me, calibrator_id=calibrator, errors={}, values={})


async def register_calibrator(request: Request) -> Response:
    """``POST /ui/qa``: register a dose calibrator (tolerance entered in percent)."""
    me = base.require_user(request, "calibrators:write")
    form = await base.checked_form(request, me)
    values = {
        k: base.form_text(form, k) for k in ("name", "manufacturer", "model", "serial", "tolerance_percent")
    }
    tolerance: Any = None
    if values["tolerance_percent"]:
        try:
            tolerance = float(values["tolerance_percent"]) / 100  # percent → fraction
        except ValueError:
            tolerance = values["tolerance_percent"]
    row, errors = await run_in_threadpool(
        base.run_form,
        lambda: calibrators.CalibratorIn.model_validate(
            {
                "name": values["name"],
                "manufacturer": values["manufacturer"],
                "model": values["model"],
                "serial": values["serial"],
                **({"tolerance_fraction": tolerance} if tolerance is not None else {}),
            }
        ),
        lambda body: base.write(request, calibrators.create_calibrator, me, body),
    )
    if errors:
        if "tolerance_fraction" in errors:
            errors["tolerance_percent"] = errors.pop("tolerance_fraction")
        return _page(request, me, calibrator_id=None, errors=errors, values=values, status=422)
    return base.redirect(f"/ui/qa?calibrator={row.id}", f"calibrator {row.name} registered")


async def record_check(request: Request, calibrator_id: int) -> Response:
    """``POST /ui/qa/{calibrator_id}``: a constancy or accuracy source check."""
    me = base.require_user(request, "calibrator_qa:write")
    form = await base.checked_form(request, me)
    values = {
        k: base.form_text(form, k)
        for k in ("test", "nuclide", "certified_activity_mbq", "certified_at", "measured_at", "measured_mbq")
    }
    times = {k: base.parse_local(request, values[k]) for k in ("certified_at", "measured_at")}
    errors = {k: "enter a date and time" for k, v in times.items() if v is None}
    if errors:
        return _page(request, me, calibrator_id=calibrator_id, errors=errors, values=values, status=422)
    row, errors = await run_in_threadpool(
        base.run_form,
        lambda: calibrators.SourceCheckIn.model_validate(
            {
                "test": values["test"],
                "nuclide": values["nuclide"],
                "measured_mbq": values["measured_mbq"] or None,
                "certified_activity_mbq": values["certified_activity_mbq"] or None,
                **times,
            }
        ),
        lambda body: base.write(request, calibrators.add_calibrator_qa, me, calibrator_id, body),
    )
    if errors:
        if "nuclide" not in errors and any("Nuclide" in v or "nuclide" in v for v in errors.values()):
            errors = {"nuclide": next(iter(errors.values()))}
        return _page(request, me, calibrator_id=calibrator_id, errors=errors, values=values, status=422)
    verdict = "PASS" if row.passed else "FAIL"
    return base.redirect(
        f"/ui/qa?calibrator={calibrator_id}",
        f"{verdict}: {row.test} deviation {row.deviations[0] * 100:+.2f} % "
        f"(tolerance ±{row.tolerance_fraction * 100:g} %)",
        kind="ok" if row.passed else "error",
    )


async def void_check(request: Request, qa_id: int) -> Response:
    """``POST /ui/qa/readings/{qa_id}/void``: a reading entered in error no longer counts (reason)."""
    me = base.require_user(request, "calibrator_qa:write")
    form = await base.checked_form(request, me)
    back = base.safe_next(form.get("next"), "/ui/qa")
    reason = base.form_text(form, "reason")
    _, errors = await run_in_threadpool(
        base.run_form,
        lambda: calibrators.VoidIn.model_validate({"reason": reason}),
        lambda body: base.write(request, calibrators.void_qa, me, qa_id, body),
    )
    if errors:
        return base.redirect(back, "not voided: " + next(iter(errors.values())), kind="error")
    return base.redirect(back, f"QA reading {qa_id} voided")
