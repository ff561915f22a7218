"""Decay-in-storage waste containers: open, seal, survey and release (10 CFR 35.92)."""

from __future__ import annotations

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from theradose.service.operations import waste
from theradose.service.web.views import base


def waste_page(request: Request) -> Response:
    """``GET /ui/waste``."""
    me = base.require_user(request, "waste:read")
    rows = base.read(request, waste.list_containers, me)
    return base.render(request, "waste.html", me, rows=rows, errors={}, values={"nuclides": "Lu-177"})


async def waste_submit(request: Request) -> Response:
    """``POST /ui/waste``: ``action`` open, seal or release."""
    me = base.require_user(request, "waste:write")
    form = await base.checked_form(request, me)
    action = base.form_text(form, "action")
    ident = base.form_text(form, "container_id")
    if action == "open":
        nuclides = [n.strip() for n in base.form_text(form, "nuclides").split(",") if n.strip()]
        _, errors = await run_in_threadpool(
            base.run_form,
            lambda: waste.ContainerIn.model_validate(
                {
                    "label": base.form_text(form, "label"),
                    "nuclides": nuclides,
                    "carrier_added_lu177": base.form_text(form, "carrier_added_lu177") == "yes",
                }
            ),
            lambda body: base.write(request, waste.open_container, me, body),
        )
    elif action == "seal" and ident.isdigit():
        _, errors = await run_in_threadpool(
            base.run_form, lambda: int(ident), lambda cid: base.write(request, waste.seal_container, me, cid)
        )
    elif action == "release" and ident.isdigit():
        _, errors = await run_in_threadpool(
            base.run_form,
            lambda: waste.SurveyIn.model_validate(
                {
                    "surface_usv_h": base.form_text(form, "surface_usv_h") or None,
                    "background_usv_h": base.form_text(form, "background_usv_h") or None,
                    "instrument": base.form_text(form, "instrument"),
                }
            ),
            lambda body: base.write(request, waste.release_container, me, int(ident), body),
        )
    else:
        errors = {"_form": "unknown action"}
    if errors:
        return base.redirect("/ui/waste", "not done: " + "; ".join(errors.values()), kind="error")
    return base.redirect("/ui/waste", f"container {action} recorded")
