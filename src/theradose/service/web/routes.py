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
    dispense,
    dosimetry,
    login,
    patients,
    qa,
    signatures,
    static,
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
    ("GET", "/worklist", worklist.worklist_page),
    ("GET", "/patients/{pseudonym}", patients.patient_page),
    ("POST", "/patients/{pseudonym}/labs", patients.record_lab),
    ("GET", "/batches", batches.batches_page),
    ("POST", "/batches", batches.receive_batch),
    ("GET", "/batches/{batch_id}", batches.batch_page),
    ("POST", "/batches/{batch_id}/qc", batches.record_qc),
    ("POST", "/batches/{batch_id}/release", batches.release),
    ("GET", "/dispense", dispense.dispense_page),
    ("POST", "/dispense", dispense.dispense_submit),
    ("GET", "/administer/{dispensing_id}", administer.administer_page),
    ("POST", "/administer/{dispensing_id}", administer.administer_submit),
    ("GET", "/qa", qa.qa_page),
    ("POST", "/qa", qa.register_calibrator),
    ("POST", "/qa/{calibrator_id}", qa.record_check),
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
