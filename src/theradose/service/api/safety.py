"""Side-effect monitoring: laboratory values with CTCAE v5.0 grades and the pre-cycle check."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from theradose.service.api.params import Limit, Offset, PseudonymPath
from theradose.service.auth import Principal, require
from theradose.service.errors import ERROR_RESPONSES
from theradose.service.operations import labs
from theradose.service.operations.labs import LabIn, LabOut, PreCycleOut, Sex

router = APIRouter(responses=ERROR_RESPONSES)


@router.post("/patients/{pseudonym}/labs", tags=["safety"], status_code=201, summary="Record a lab value")
def record_lab(
    pseudonym: PseudonymPath,
    body: LabIn,
    request: Request,
    me: Annotated[Principal, require("labs:write")],
    sex: Annotated[Sex | None, Query()] = None,
) -> LabOut:
    with request.app.state.db.write() as session:
        return labs.record_lab(session, me, pseudonym, body, sex=sex)


@router.get("/patients/{pseudonym}/labs", tags=["safety"], summary="Lab values with CTCAE grades")
def list_labs(
    pseudonym: PseudonymPath,
    request: Request,
    me: Annotated[Principal, require("labs:read")],
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[LabOut]:
    with request.app.state.db.read() as session:
        return labs.list_labs(session, me, pseudonym, limit=limit, offset=offset)


@router.get(
    "/patients/{pseudonym}/precycle", tags=["safety"], summary="Pre-cycle check: go, delay, reduce or stop"
)
def precycle(
    pseudonym: PseudonymPath,
    request: Request,
    me: Annotated[Principal, require("labs:read")],
    protocol: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=64,
            description="a protocol of the protocol registry; default: that of the patient's directive",
        ),
    ] = None,
    sex: Annotated[Sex | None, Query()] = None,
    age_y: Annotated[float | None, Query(ge=18, le=120)] = None,
    weight_kg: Annotated[float | None, Query(ge=20, le=400)] = None,
    previously_reduced_for: Annotated[list[str] | None, Query(max_length=20)] = None,
) -> PreCycleOut:
    with request.app.state.db.read() as session:
        return labs.precycle(
            session,
            me,
            pseudonym,
            protocol=protocol,
            sex=sex,
            age_y=age_y,
            weight_kg=weight_kg,
            previously_reduced_for=previously_reduced_for or (),
        )
