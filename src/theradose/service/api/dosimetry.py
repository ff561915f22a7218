"""Dosimetry on the service's records: the administration record a study is run from, dosimetry reviews
(import reconciled with the administration, read, sign) and the next-cycle plan of a patient."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Query, Request, UploadFile

from theradose.service.api.params import IdPath, PseudonymPath
from theradose.service.auth import Principal, client_address, require
from theradose.service.errors import ERROR_RESPONSES, ApiError
from theradose.service.operations import administration_record, directive_plans, dosimetry, treatment
from theradose.service.operations.common import PSEUDONYM_PATTERN
from theradose.service.operations.directive_plans import DraftOut
from theradose.service.operations.dosimetry import ReviewOut, ReviewSignIn

router = APIRouter(responses=ERROR_RESPONSES)

ReviewIdPath = Annotated[str, Path(pattern=r"^[0-9a-f]{16}$")]


@router.get(
    "/administrations/{administration_id}/record",
    tags=["dosimetry"],
    summary="What a dosimetry study takes from an administration, with the SHA-256 of its content",
)
def get_administration_record(
    administration_id: IdPath, request: Request, me: Annotated[Principal, require("administrations:read")]
) -> dict[str, Any]:
    with request.app.state.db.read() as session:
        return administration_record.administration_record(session, me, administration_id)


@router.post(
    "/dosimetry/reviews",
    tags=["dosimetry"],
    status_code=201,
    summary="Import a pipeline output (zip, or a folder under the pipeline roots), reconciled with the "
    "administration of the patient's cycle",
)
async def import_review(
    request: Request,
    me: Annotated[Principal, require("dosimetry:import")],
    patient: Annotated[str, Form(pattern=PSEUDONYM_PATTERN)],
    cycle: Annotated[int | None, Form(ge=1, le=100)] = None,
    file: UploadFile | None = None,
    folder: Annotated[str | None, Form(max_length=1000)] = None,
) -> ReviewOut:
    from fastapi.concurrency import run_in_threadpool

    if (file is None) == (folder is None):
        raise ApiError(422, "validation_error", "file: give a zip of the output folder or a folder", "file")
    data = await file.read() if file is not None else None
    state = request.app.state

    def work() -> ReviewOut:
        with state.db.write() as session:
            review = dosimetry.import_review(
                session, me, store=state.reviews, patient=patient, cycle=cycle, zip_bytes=data, folder=folder
            )
        with state.db.read() as session:
            return dosimetry.review_out(session, me, review, keys=state.keys)

    return await run_in_threadpool(work)


@router.get("/dosimetry/reviews", tags=["dosimetry"], summary="Dosimetry reviews (of one patient)")
def list_reviews(
    request: Request,
    me: Annotated[Principal, require("dosimetry:read")],
    patient: Annotated[str | None, Query(pattern=PSEUDONYM_PATTERN)] = None,
) -> list[ReviewOut]:
    state = request.app.state
    with state.db.read() as session:
        return [
            dosimetry.review_out(session, me, row["review"], keys=state.keys)
            for row in dosimetry.list_reviews(
                session, me, store=state.reviews, keys=state.keys, patient=patient
            )
        ]


@router.get(
    "/dosimetry/reviews/{review_id}",
    tags=["dosimetry"],
    summary="One review: each region's reference dose (named) and the BED computed from it",
)
def get_review(
    review_id: ReviewIdPath,
    request: Request,
    me: Annotated[Principal, require("dosimetry:read")],
) -> ReviewOut:
    state = request.app.state
    review = dosimetry.get_review(state.reviews, review_id)
    with state.db.read() as session:
        return dosimetry.review_out(session, me, review, keys=state.keys)


@router.post(
    "/dosimetry/reviews/{review_id}/signatures",
    tags=["dosimetry"],
    status_code=201,
    summary="Sign a review as checked (physicist) or approved (physician); re-enter your password",
)
def sign_review(
    review_id: ReviewIdPath,
    body: ReviewSignIn,
    request: Request,
    me: Annotated[Principal, require("sign")],
) -> ReviewOut:
    state = request.app.state
    with state.db.read() as session:
        signer = dosimetry.reauthenticate_for_review(
            session,
            me,
            review_id,
            body.meaning,
            body.password,
            store=state.reviews,
            auth=state.auth,
            client=client_address(request),
            keys=state.keys,
        )
    with state.db.write() as session:
        dosimetry.sign_review(session, signer, keys=state.keys)
    with state.db.read() as session:
        return dosimetry.review_out(session, me, signer.review, keys=state.keys)


@router.get(
    "/patients/{pseudonym}/next-cycle",
    tags=["dosimetry"],
    summary="The next-cycle plan from the patient's approved dosimetry",
)
def next_cycle(
    pseudonym: PseudonymPath,
    request: Request,
    me: Annotated[Principal, require("patients:read")],
) -> dict[str, Any]:
    state = request.app.state
    with state.db.read() as session:
        return treatment.next_cycle(session, me, pseudonym, store=state.reviews, keys=state.keys)


@router.post(
    "/patients/{pseudonym}/next-cycle/directive",
    tags=["dosimetry"],
    status_code=201,
    summary="Draft the next cycle's written directive from the plan (a physician edits and signs it)",
)
def draft_next_directive(
    pseudonym: PseudonymPath, request: Request, me: Annotated[Principal, require("prescriptions:write")]
) -> DraftOut:
    state = request.app.state
    with state.db.write() as session:
        return directive_plans.draft_next_directive(
            session,
            me,
            pseudonym,
            store=state.reviews,
            keys=state.keys,
            site_timezone=state.settings.site_timezone,
        )
