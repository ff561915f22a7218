"""Referrals and the treatment worklist.

A referral (referring physician, indication, PET result) enters the worklist as ``referred``; the
treating team accepts or declines it, schedules it and finally marks it treated. Allowed transitions
are in :data:`TRANSITIONS`; the worklist lists open referrals, positive PET results first, then oldest
first.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal, get_args

from theradose.errors import InputError
from theradose.pharmacy._checks import require_aware, require_text

ReferralStatus = Literal["referred", "accepted", "scheduled", "treated", "declined"]
PetResult = Literal["positive", "negative", "equivocal", "not_done"]
STATUSES: tuple[str, ...] = get_args(ReferralStatus)
PET_RESULTS: tuple[str, ...] = get_args(PetResult)

#: Allowed status transitions.
TRANSITIONS: dict[str, frozenset[str]] = {
    "referred": frozenset({"accepted", "declined"}),
    "accepted": frozenset({"scheduled", "declined"}),
    "scheduled": frozenset({"treated", "accepted", "declined"}),
    "treated": frozenset(),
    "declined": frozenset(),
}

#: Statuses that appear on the open worklist.
OPEN_STATUSES: frozenset[str] = frozenset({"referred", "accepted", "scheduled"})


@dataclass(frozen=True)
class Referral:
    """A referral for radioligand therapy."""

    patient_pseudonym: str
    referring_physician: str
    indication: str
    pet_result: str
    received_at: datetime
    status: str = "referred"
    pet_suv_max: float | None = None

    def __post_init__(self) -> None:
        require_text(self.patient_pseudonym, "patient_pseudonym")
        require_text(self.referring_physician, "referring_physician")
        require_text(self.indication, "indication")
        require_aware(self.received_at, "received_at")
        if self.pet_result not in PET_RESULTS:
            raise InputError(f"pet_result must be one of {', '.join(PET_RESULTS)}; got {self.pet_result!r}")
        if self.status not in STATUSES:
            raise InputError(f"status must be one of {', '.join(STATUSES)}; got {self.status!r}")
        if self.pet_suv_max is not None and not self.pet_suv_max >= 0.0:
            raise InputError(f"pet_suv_max must be >= 0; got {self.pet_suv_max!r}")


def check_transition(current: str, new: str) -> None:
    """Raise :class:`InputError` unless ``current`` → ``new`` is an allowed status change."""
    if new not in STATUSES:
        raise InputError(f"status must be one of {', '.join(STATUSES)}; got {new!r}")
    if new not in TRANSITIONS.get(current, frozenset()):
        allowed = ", ".join(sorted(TRANSITIONS.get(current, frozenset()))) or "none (final)"
        raise InputError(f"status cannot change from {current!r} to {new!r}; allowed: {allowed}")


def advance(referral: Referral, new_status: str) -> Referral:
    """Return ``referral`` with its status changed to ``new_status`` (checked)."""
    check_transition(referral.status, new_status)
    return replace(referral, status=new_status)


def worklist(referrals: Iterable[Referral]) -> list[Referral]:
    """Open referrals ordered for the treatment team: positive PET first, then by ``received_at``."""
    open_items = [r for r in referrals if r.status in OPEN_STATUSES]
    return sorted(open_items, key=lambda r: (r.pet_result != "positive", r.received_at))
