"""Dosimetry review: import a pipeline output folder, look at its doses, DVHs and report, sign it."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from theradose.errors import TheradoseError
from theradose.service.auth import Principal
from theradose.service.errors import ApiError
from theradose.service.operations import dosimetry, patients
from theradose.service.review_store import Review, read_result
from theradose.service.web.svg import Series, line_chart
from theradose.service.web.views import base

#: The pipeline's report is shown as a document without scripts or network access.
REPORT_CSP = "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def _page(
    request: Request, me: Principal, *, errors: dict[str, str], values: Mapping[str, str], status: int = 200
) -> Response:
    store = base.state(request).store
    keys = request.app.state.keys
    rows = base.read(request, dosimetry.list_reviews, me, store=store, keys=keys)
    listed = base.read(request, patients.list_patients, me, limit=1000)
    return base.render(
        request,
        "dosimetry.html",
        me,
        status=status,
        rows=rows,
        errors=errors,
        values=values,
        patients=[p.pseudonym for p in listed],
        can_point=bool(store.pipeline_roots),
    )


def dosimetry_page(request: Request) -> Response:
    """``GET /ui/dosimetry``: the reviews and the import form."""
    me = base.require_user(request, "dosimetry:read")
    return _page(request, me, errors={}, values={})


async def import_output(request: Request) -> Response:
    """``POST /ui/dosimetry``: import a zip upload or a folder under the pipeline roots."""
    me = base.require_user(request, "dosimetry:import")
    form = await base.checked_form(request, me)
    values = {k: base.form_text(form, k) for k in ("patient", "cycle", "folder")}
    upload = form.get("file")
    zip_bytes = upload.data if isinstance(upload, base.Upload) else None
    errors: dict[str, str] = {}
    cycle: int | None = None
    if values["cycle"]:
        if values["cycle"].isdigit() and 1 <= int(values["cycle"]) <= 100:
            cycle = int(values["cycle"])
        else:
            errors["cycle"] = "cycle: a whole number from 1 to 100"
    if zip_bytes is None and not values["folder"]:
        errors["file"] = "choose a zip of the output folder, or give the folder"
    if zip_bytes is not None and values["folder"]:
        errors["file"] = "give either a zip or a folder, not both"
    if errors:
        return _page(request, me, errors=errors, values=values, status=422)

    def work() -> tuple[Review | None, dict[str, str]]:
        try:
            review = base.write(
                request,
                dosimetry.import_review,
                me,
                store=base.state(request).store,
                patient=values["patient"],
                cycle=cycle,
                zip_bytes=zip_bytes,
                folder=values["folder"] or None,
            )
        except (TheradoseError, ApiError) as exc:
            # a field of doses.json (activity_mbq, injection_time, ...) is not a field of the form
            return None, {
                (k if k in ("patient", "cycle", "file", "folder") else "_form"): v
                for k, v in base.errors_from_exception(exc, "file").items()
            }
        return review, {}

    review, errors = await run_in_threadpool(work)
    if errors or review is None:
        return _page(request, me, errors=errors, values=values, status=422)
    return base.redirect(f"/ui/dosimetry/{review.review_id}", "output imported: review the doses, then sign")


def review_page(request: Request, review_id: str) -> Response:
    """``GET /ui/dosimetry/{review_id}``: dose table, DVHs, the report and the signatures."""
    me = base.require_user(request, "dosimetry:read")
    review = base.state(request).store.review(review_id)
    if review is None:
        return base.not_found(request, me, f"dosimetry review {review_id}")
    try:
        result = read_result(review.folder)
        error = None
    except TheradoseError as exc:
        result, error = None, str(exc)
    chart = None
    if result and result.dvhs:
        chart = line_chart(
            [
                Series(
                    d.region,
                    [float(x) for x in d.dose_gy],
                    [100 * f for f in d.cumulative_fraction],
                    markers=False,
                )
                for d in result.dvhs
            ],
            title="Cumulative dose-volume histograms",
            x_label="absorbed dose (Gy)",
            y_label="volume receiving at least this dose (%)",
        )
    signatures = base.read(request, dosimetry.review_signatures, review, keys=request.app.state.keys)
    return base.render(
        request,
        "review.html",
        me,
        review=review,
        result=result,
        error=error,
        chart=chart,
        signatures=signatures,
        has_report=(review.folder / "report.html").is_file(),
        approved=any(s["meaning"] == "approved" and s["valid"] for s in signatures),
    )


def review_report(request: Request, review_id: str) -> Response:
    """``GET /ui/dosimetry/{review_id}/report``: the pipeline's HTML report, sandboxed, its checked and
    approved lines filled from the review's verified e-signatures (the file on disk is not changed: its
    SHA-256 is what the signatures bind)."""
    from theradose.report import fill_signoff

    me = base.require_user(request, "dosimetry:read")
    review = base.state(request).store.review(review_id)
    if review is None or not (review.folder / "report.html").is_file():
        return base.not_found(request, me, "report")
    signatures = base.read(request, dosimetry.review_signatures, review, keys=request.app.state.keys)
    text = (review.folder / "report.html").read_text(encoding="utf-8")
    return Response(
        fill_signoff(text, signatures, zone=base.site_tz(request)).encode("utf-8"),
        media_type="text/html",
        headers={"Content-Security-Policy": REPORT_CSP, "X-Frame-Options": "SAMEORIGIN"},
    )
