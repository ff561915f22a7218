"""Types and helpers shared by the use cases: request field types, row lookup, the clock."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import select
from sqlalchemy.orm import Session

from theradose.pharmacy.ranges import EARLIEST_TIME, LATEST_TIME, MAX_ACTIVITY_MBQ, MIN_ACTIVITY_MBQ
from theradose.service.errors import not_found
from theradose.service.models import Base, Patient

T = TypeVar("T", bound=Base)

#: Largest row id (a signed 32-bit integer, the INTEGER of PostgreSQL).
MAX_ID = 2**31 - 1


def _sane_time(value: datetime) -> datetime:
    if not EARLIEST_TIME.year <= value.year < LATEST_TIME.year:
        raise ValueError(f"time must lie between {EARLIEST_TIME.year} and {LATEST_TIME.year}")
    return value.astimezone(UTC)


#: A timezone-aware date-time (1970..2200), normalised to UTC.
Time = Annotated[AwareDatetime, AfterValidator(_sane_time)]

#: A patient pseudonym (Crockford base-32, 10 characters).
PSEUDONYM_PATTERN = r"^PT-[0-9A-HJKMNP-TV-Z]{10}$"
Pseudonym = Annotated[str, Field(pattern=PSEUDONYM_PATTERN)]


def text(max_length: int) -> Any:
    """A non-empty string without NUL or other C0 control characters except tab/newline."""
    return Annotated[
        str,
        StringConstraints(
            strip_whitespace=True, min_length=1, max_length=max_length, pattern=r"^[^\x00-\x08\x0b-\x1f]+$"
        ),
    ]


def opt_text(max_length: int) -> Any:
    """Like :func:`text` but may be empty."""
    return Annotated[
        str,
        StringConstraints(strip_whitespace=True, max_length=max_length, pattern=r"^[^\x00-\x08\x0b-\x1f]*$"),
    ]


#: Activities 1 kBq .. 1 TBq in MBq (the physical range of :mod:`theradose.pharmacy._checks`).
ActivityMBq = Annotated[float, Field(ge=MIN_ACTIVITY_MBQ, le=MAX_ACTIVITY_MBQ, allow_inf_nan=False)]
#: A reading that may be zero (a residual): 0, or up to 1 TBq.
NonNegActivityMBq = Annotated[float, Field(ge=0, le=MAX_ACTIVITY_MBQ, allow_inf_nan=False)]
#: Volumes 1 nL .. 10 L in mL.
VolumeML = Annotated[float, Field(ge=1e-6, le=1e4, allow_inf_nan=False)]
Finite = Annotated[float, Field(allow_inf_nan=False, ge=-1e12, le=1e12)]
Fraction = Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]


def _blank_is_none(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None


#: An optional free-text reason (no control characters); blank or whitespace only counts as not given.
OptReason = Annotated[
    str | None,
    Field(default=None, max_length=500, pattern=r"^[^\x00-\x1f]*$"),
    AfterValidator(_blank_is_none),
]


class Model(BaseModel):
    """Base input model: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")


def utcnow() -> datetime:
    """Now, in UTC."""
    return datetime.now(UTC)


def get_or_404(session: Session, model: type[T], key: int, *, lock: bool = False) -> T:
    """Row ``key`` of ``model`` (optionally locked FOR UPDATE) or a 404 error (also for a key no row can
    have, such as 99999999999999999999, which the database driver could not even bind)."""
    if not isinstance(key, int) or not 1 <= key <= MAX_ID:
        raise not_found(table_label(model.__tablename__), key)
    stmt = select(model).where(model.id == key)  # type: ignore[attr-defined]
    if lock:
        stmt = stmt.with_for_update()
    row = session.execute(stmt).scalar_one_or_none()
    if row is None:
        raise not_found(table_label(model.__tablename__), key)
    return row


def table_label(table: str) -> str:
    """Singular, human name of a table: ``batches`` → ``batch``, ``calibrator_qa`` → ``calibrator qa``."""
    if table.endswith("ches"):
        table = table[:-2]
    elif table.endswith("s"):
        table = table[:-1]
    return table.replace("_", " ")


def patient_by_pseudonym(session: Session, pseudonym: str) -> Patient:
    """The patient with ``pseudonym`` or a 404 error."""
    row = session.execute(select(Patient).where(Patient.pseudonym == pseudonym)).scalar_one_or_none()
    if row is None:
        raise not_found("patient", pseudonym)
    return row
