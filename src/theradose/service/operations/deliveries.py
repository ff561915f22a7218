"""Use cases of radionuclide deliveries and generators."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from theradose.pharmacy import deliveries as delivery_logic
from theradose.pharmacy.decay import canonical_nuclide
from theradose.pharmacy.identifiers import identifier_key
from theradose.service import audit_store
from theradose.service.auth import Principal
from theradose.service.errors import conflict
from theradose.service.models import Delivery, Generator, row_to_dict
from theradose.service.operations.common import ActivityMBq, Model, Time, get_or_404, text, utcnow


class DeliveryIn(Model):
    nuclide: text(20)  # type: ignore[valid-type]
    supplier: text(200)  # type: ignore[valid-type]
    lot: text(100)  # type: ignore[valid-type]
    activity_mbq: ActivityMBq
    calibration_time: Time
    received_at: Time | None = None


class DeliveryOut(BaseModel):
    id: int
    nuclide: str
    supplier: str
    lot: str
    activity_mbq: float
    calibration_time: datetime
    received_at: datetime


class GeneratorIn(Model):
    serial: text(100)  # type: ignore[valid-type]
    parent: text(20)  # type: ignore[valid-type]
    daughter: text(20)  # type: ignore[valid-type]
    parent_activity_mbq: ActivityMBq
    calibration_time: Time


class GeneratorOut(BaseModel):
    id: int
    serial: str
    parent: str
    daughter: str
    parent_activity_mbq: float
    calibration_time: datetime


class GeneratorYieldOut(BaseModel):
    generator_id: int
    at_time: datetime
    last_elution: datetime
    parent_activity_mbq: float
    daughter_activity_mbq: float


def create_delivery(session: Session, me: Principal, body: DeliveryIn) -> DeliveryOut:
    """Receive a radionuclide delivery."""
    nuclide = canonical_nuclide(body.nuclide)
    received = body.received_at or utcnow()
    delivery_logic.Delivery(
        nuclide, body.supplier, body.lot, body.activity_mbq, body.calibration_time, received
    )
    row = Delivery(
        nuclide=nuclide,
        supplier=body.supplier,
        lot=body.lot,
        activity_mbq=body.activity_mbq,
        calibration_time=body.calibration_time,
        received_at=received,
    )
    session.add(row)
    session.flush()
    audit_store.append(
        session,
        actor=me.username,
        at=utcnow(),
        action="create",
        entity="delivery",
        entity_id=row.id,
        after=row_to_dict(row),
    )
    return DeliveryOut(**row_to_dict(row))


def list_deliveries(
    session: Session, me: Principal, *, limit: int = 100, offset: int = 0
) -> list[DeliveryOut]:
    """Deliveries, newest first."""
    rows = session.execute(
        select(Delivery).order_by(Delivery.id.desc()).limit(limit).offset(offset)
    ).scalars()
    return [DeliveryOut(**row_to_dict(r)) for r in rows]


def create_generator(session: Session, me: Principal, body: GeneratorIn) -> GeneratorOut:
    """Register a radionuclide generator."""
    parent, daughter = canonical_nuclide(body.parent), canonical_nuclide(body.daughter)
    delivery_logic.Generator(parent, daughter, body.serial, body.parent_activity_mbq, body.calibration_time)
    serial_key = identifier_key(body.serial)
    exists = session.execute(
        select(Generator.serial).where(Generator.serial_key == serial_key)
    ).scalar_one_or_none()
    if exists is not None:
        raise conflict("conflict", f"generator {exists!r} exists (same as {body.serial!r})", "serial")
    row = Generator(
        serial=body.serial,
        serial_key=serial_key,
        parent=parent,
        daughter=daughter,
        parent_activity_mbq=body.parent_activity_mbq,
        calibration_time=body.calibration_time,
    )
    session.add(row)
    session.flush()
    audit_store.append(
        session,
        actor=me.username,
        at=utcnow(),
        action="create",
        entity="generator",
        entity_id=row.id,
        after=row_to_dict(row),
    )
    return GeneratorOut(**row_to_dict(row))


def generator_available(
    session: Session, me: Principal, generator_id: int, *, last_elution: datetime, at_time: datetime
) -> GeneratorYieldOut:
    """Daughter activity available from a generator at ``at_time`` after an elution."""
    row = get_or_404(session, Generator, generator_id)
    gen = delivery_logic.Generator(
        row.parent, row.daughter, row.serial, row.parent_activity_mbq, row.calibration_time
    )
    daughter = delivery_logic.daughter_activity_mbq(gen, last_elution=last_elution, at_time=at_time)
    return GeneratorYieldOut(
        generator_id=row.id,
        at_time=at_time,
        last_elution=last_elution,
        parent_activity_mbq=gen.parent_activity_at_mbq(at_time),
        daughter_activity_mbq=daughter,
    )
