"""The route table of the browser UI: every page URL, its method and the view that answers it.

Views are plain functions of the request (and path/query parameters) in :mod:`.views`; each is
wrapped by :func:`.views.base.guarded` so that a refusal (login needed, role not allowed, bad CSRF
token) becomes its response. All pages are under ``/ui`` and hidden from the OpenAPI spec.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from theradose.service.web.views import (
    administer,
    audit,
    base,
    batches,
    cameras,
    directives,
    dispense,
    dosimetry,
    login,
    patients,
    qa,
    signatures,
    static,
    waste,
    worklist,
)

#: (method, path under /ui, view).
ROUTES: tuple[tuple[str, str, Callable[..., Any]], ...] = (
    ("GET", "/static/{name}", static.static_file),
    ("GET", "", login.home),
    ("GET", "/", login.home),
    ("GET", "/login", login.login_page),
    ("POST", "/login", login.login_submit),
    ("POST", "/logout", login.logout),
    ("GET", "/password", login.password_page),
    ("POST", "/password", login.password_submit),
    ("GET", "/worklist", worklist.worklist_page),
    ("GET", "/patients", patients.patients_page),
    ("POST", "/patients", patients.register),
    ("GET", "/patients/{pseudonym}", patients.patient_page),
    ("POST", "/patients/{pseudonym}/labs", patients.record_lab),
    ("POST", "/patients/{pseudonym}/directives", directives.write_directive),
    ("POST", "/patients/{pseudonym}/precycle/{cycle}/override", directives.override_precycle),
    ("POST", "/patients/{pseudonym}/next-cycle-directive", directives.draft_from_plan),
    ("POST", "/directives/{prescription_id}/cancel", directives.cancel_directive),
    ("POST", "/directives/{prescription_id}/edit", directives.edit_directive),
    ("GET", "/batches", batches.batches_page),
    ("POST", "/batches", batches.receive_batch),
    ("GET", "/batches/{batch_id}", batches.batch_page),
    ("POST", "/batches/{batch_id}/qc", batches.record_qc),
    ("POST", "/batches/{batch_id}/release", batches.release),
    ("POST", "/batches/{batch_id}/close", batches.close),
    ("GET", "/dispense", dispense.dispense_page),
    ("POST", "/dispense", dispense.dispense_submit),
    ("POST", "/dispensings/{dispensing_id}/void", dispense.void_submit),
    ("GET", "/dispensings/{dispensing_id}/label", dispense.label),
    ("GET", "/administer/{dispensing_id}", administer.administer_page),
    ("POST", "/administer/{dispensing_id}", administer.administer_submit),
    ("GET", "/qa", qa.qa_page),
    ("POST", "/qa", qa.register_calibrator),
    ("POST", "/qa/{calibrator_id}", qa.record_check),
    ("POST", "/qa/readings/{qa_id}/void", qa.void_check),
    ("GET", "/waste", waste.waste_page),
    ("POST", "/waste", waste.waste_submit),
    ("GET", "/cameras", cameras.cameras_page),
    ("POST", "/cameras", cameras.record_calibration),
    ("GET", "/dosimetry", dosimetry.dosimetry_page),
    ("POST", "/dosimetry", dosimetry.import_output),
    ("GET", "/dosimetry/{review_id}", dosimetry.review_page),
    ("GET", "/dosimetry/{review_id}/report", dosimetry.review_report),
    ("POST", "/sign", signatures.sign),
    ("GET", "/audit", audit.audit_page),
    ("POST", "/audit/verify", audit.verify),
)


def build_router() -> APIRouter:
    """The pages router (include it with ``create_app(settings, routers=[...])``)."""
    router = APIRouter(prefix="/ui", include_in_schema=False)
    for method, path, view in ROUTES:
        router.add_api_route(path, base.guarded(view), methods=[method], response_class=HTMLResponse)
    return router
