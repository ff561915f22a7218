"""SPECT/CT calibration log: sensitivity and recovery coefficients, with the sensitivity trend."""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import quote

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from sqlalchemy.orm import Session

from theradose.service.auth import Principal
from theradose.service.operations import cameras
from theradose.service.web.svg import Series, line_chart
from theradose.service.web.views import base

_CAMERA_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


def _history(
    session: Session, me: Principal, camera: str | None
) -> tuple[list[str], str | None, list[cameras.CameraCalibrationOut]]:
    names = cameras.camera_names(session, me)
    if camera is None and names:
        camera = names[0]
    return names, camera, cameras.camera_history(session, me, camera) if camera else []


def _page(
    request: Request,
    me: Principal,
    *,
    camera: str | None,
    errors: dict[str, str],
    values: Mapping[str, str],
    status: int = 200,
) -> Response:
    names, camera, history = base.read(request, _history, me, camera)
    chart = None
    if history:
        chart = line_chart(
            [
                Series(
                    camera or "",
                    list(range(1, len(history) + 1)),
                    [h.sensitivity_cps_per_mbq for h in history],
                    [h.flagged for h in history],
                )
            ],
            title=f"Sensitivity of {camera} over time",
            x_tick_labels={float(i): str(i) for i in range(1, len(history) + 1)},
            x_label="calibration number (oldest first)",
            y_label="sensitivity (cps/MBq)",
        )
    defaults = {"camera": camera or "", "nuclide": "Lu-177", "performed_at": base.now_input(request)}
    return base.render(
        request,
        "cameras.html",
        me,
        status=status,
        names=names,
        camera=camera,
        history=list(reversed(history)),
        chart=chart,
        errors=errors,
        values={**defaults, **values},
    )


def cameras_page(request: Request, camera: str | None = None) -> Response:
    """``GET /ui/cameras[?camera=NAME]``."""
    me = base.require_user(request, "cameras:read")
    return _page(request, me, camera=camera, errors={}, values={})


async def record_calibration(request: Request) -> Response:
    """``POST /ui/cameras``."""
    me = base.require_user(request, "cameras:write")
    form = await base.checked_form(request, me)
    values = {
        k: base.form_text(form, k)
        for k in ("camera", "nuclide", "sensitivity_cps_per_mbq", "performed_at", "recovery")
    }
    errors: dict[str, str] = {}
    if not _CAMERA_NAME.match(values["camera"]):
        errors["camera"] = "camera name: letters, digits, '.', '_' or '-' (1 to 100)"
    performed = base.parse_local(request, values["performed_at"])
    if performed is None:
        errors["performed_at"] = "enter a date and time"
    recovery: list[dict[str, str]] = []
    for number, line in enumerate(values["recovery"].splitlines(), start=1):
        if not line.strip():
            continue
        parts = [p.strip() for p in re.split(r"[,;\s]+", line.strip()) if p.strip()]
        if len(parts) != 2:
            errors["recovery"] = f"line {number}: write 'volume_mL, recovery' (e.g. 16, 0.82)"
            break
        recovery.append({"volume_ml": parts[0], "recovery_coefficient": parts[1]})
    if errors:
        return _page(request, me, camera=None, errors=errors, values=values, status=422)
    row, errors = await run_in_threadpool(
        base.run_form,
        lambda: cameras.CameraCalibrationIn.model_validate(
            {
                "nuclide": values["nuclide"],
                "sensitivity_cps_per_mbq": values["sensitivity_cps_per_mbq"] or None,
                "performed_at": performed,
                "recovery": recovery,
            }
        ),
        lambda body: base.write(request, cameras.add_camera_calibration, me, values["camera"], body),
    )
    if errors:
        if "recovery" in errors or any(k.startswith("recovery") for k in errors):
            errors = {"recovery": next(iter(errors.values()))}
        return _page(request, me, camera=None, errors=errors, values=values, status=422)
    note = " — FLAGGED: sensitivity changed beyond the trend limit" if row.flagged else ""
    return base.redirect(
        f"/ui/cameras?camera={quote(values['camera'])}",
        f"calibration recorded{note}",
        kind="error" if row.flagged else "ok",
    )
