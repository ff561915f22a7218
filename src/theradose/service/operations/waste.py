"""Use cases of decay-in-storage waste containers (10 CFR 35.92): open, seal, survey and release.

A container records its nuclide mix when opened (with 177mLu added for carrier-added 177Lu, see
:mod:`theradose.pharmacy.waste`); it is sealed with a date, and released only when every nuclide is
eligible for decay-in-storage and a survey at its surface cannot be distinguished from background. The
release record holds what 10 CFR 35.2092 asks: date, instrument, background and surface readings, who.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from theradose.pharmacy import waste as waste_rules
from theradose.service import audit_store
from theradose.service.auth import Principal
from theradose.service.errors import ApiError, conflict
from theradose.service.models import WasteContainer, row_to_dict
from theradose.service.operations.common import Model, get_or_404, text, utcnow

DoseRate = Annotated[float, Field(ge=0, le=1e6, allow_inf_nan=False)]


class ContainerIn(Model):
    label: text(100)  # type: ignore[valid-type]
    nuclides: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=20)]], Field(min_length=1, max_length=10)
    ]
    carrier_added_lu177: bool


class SurveyIn(Model):
    surface_usv_h: DoseRate
    background_usv_h: DoseRate
    instrument: text(200)  # type: ignore[valid-type]


class ContainerOut(BaseModel):
    id: int
    label: str
    nuclides: list[str]
    status: str
    eligible: bool
    eligibility: str
    opened_at: datetime
    opened_by: str
    sealed_at: datetime | None
    sealed_by: str | None
    surveyed_at: datetime | None
    surface_usv_h: float | None
    background_usv_h: float | None
    instrument: str | None
    released_at: datetime | None
    released_by: str | None


def container_out(row: WasteContainer) -> ContainerOut:
    """The public view of a container with its decay-in-storage eligibility."""
    nuclides = row.nuclides.split(",")
    check = waste_rules.decay_in_storage_eligibility(nuclides)
    data = row_to_dict(row)
    data["nuclides"] = nuclides
    return ContainerOut(**data, eligible=check.eligible, eligibility=check.message)


def _audit(
    session: Session, me: Principal, row: WasteContainer, before: dict[str, object] | None, action: str
) -> None:
    audit_store.append(
        session,
        actor=me.username,
        at=utcnow(),
        action=action,
        entity="waste_container",
        entity_id=row.id,
        before=before,
        after=row_to_dict(row),
    )


def open_container(session: Session, me: Principal, body: ContainerIn) -> ContainerOut:
    """Open a waste container for a nuclide mix."""
    if session.execute(select(WasteContainer).where(WasteContainer.label == body.label)).first():
        raise conflict("conflict", f"container {body.label!r} exists", "label")
    mix = waste_rules.nuclide_mix(body.nuclides, carrier_added_lu177=body.carrier_added_lu177)
    row = WasteContainer(
        label=body.label, nuclides=",".join(mix), status="open", opened_at=utcnow(), opened_by=me.username
    )
    session.add(row)
    session.flush()
    _audit(session, me, row, None, "create")
    return container_out(row)


def seal_container(session: Session, me: Principal, container_id: int) -> ContainerOut:
    """Seal an open container (the decay time starts)."""
    row = get_or_404(session, WasteContainer, container_id, lock=True)
    if row.status != "open":
        raise conflict("container_not_open", f"container {row.label} is {row.status}")
    before = row_to_dict(row)
    row.status, row.sealed_at, row.sealed_by = "sealed", utcnow(), me.username
    session.flush()
    _audit(session, me, row, before, "update")
    return container_out(row)


def release_container(session: Session, me: Principal, container_id: int, body: SurveyIn) -> ContainerOut:
    """Release a sealed container for disposal after the survey (10 CFR 35.92(a))."""
    row = get_or_404(session, WasteContainer, container_id, lock=True)
    if row.status != "sealed":
        raise conflict("container_not_sealed", f"container {row.label} is {row.status}: seal it first")
    check = waste_rules.decay_in_storage_eligibility(row.nuclides.split(","))
    if not check.eligible:
        raise conflict("not_eligible", f"container {row.label}: {check.message}", "label")
    survey = waste_rules.ReleaseSurvey(body.surface_usv_h, body.background_usv_h, body.instrument)
    if not survey.indistinguishable_from_background:
        raise ApiError(
            409,
            "above_background",
            f"surface_usv_h {body.surface_usv_h:g} µSv/h is above background "
            f"{body.background_usv_h:g} µSv/h: "
            "keep the container in storage (10 CFR 35.92(a)(1))",
            "surface_usv_h",
        )
    before = row_to_dict(row)
    now = utcnow()
    row.status = "released"
    row.surveyed_at = row.released_at = now
    row.surface_usv_h, row.background_usv_h, row.instrument = (
        body.surface_usv_h,
        body.background_usv_h,
        body.instrument,
    )
    row.released_by = me.username
    session.flush()
    _audit(session, me, row, before, "update")
    return container_out(row)


def list_containers(session: Session, me: Principal) -> list[ContainerOut]:
    """All containers, newest first."""
    return [
        container_out(r)
        for r in session.execute(select(WasteContainer).order_by(WasteContainer.id.desc())).scalars()
    ]
