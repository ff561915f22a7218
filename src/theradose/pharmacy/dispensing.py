"""Dispensing a patient dose from a batch, with decay correction and batch stock bookkeeping.

The requested activity is the activity wanted *at the planned administration time*. Because the
solution is homogeneous, the volume to draw is ``V = A_planned / c(t_planned)`` where
``c(t) = c_ref · exp(-λ (t - t_ref))`` is the activity concentration (decay law: Cherry, Sorenson &
Phelps, *Physics in Nuclear Medicine*, 4th ed., 2012, ch. 4). The activity in the syringe at the draw
time is ``V · c(t_draw)``.

Stock is booked at the batch reference time: a draw of volume ``V`` removes ``V · c_ref`` MBq (at
reference time) and ``V`` mL, so ``remaining activity / remaining volume = c_ref`` always holds and the
sum over all draws plus the remainder equals the batch total exactly (up to float rounding).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from theradose.errors import InputError
from theradose.pharmacy._checks import require_aware, require_non_negative, require_positive
from theradose.pharmacy.batches import Batch

#: Volumes below this are treated as rounding noise when checking the remaining stock, in mL.
VOLUME_EPSILON_ML = 1e-9


class InsufficientStockError(InputError):
    """The batch holds less volume than the requested dose needs."""


@dataclass(frozen=True)
class BatchStock:
    """What is left in a batch: activity at the batch reference time (MBq) and volume (mL)."""

    remaining_activity_ref_mbq: float
    remaining_volume_ml: float

    def __post_init__(self) -> None:
        require_non_negative(self.remaining_activity_ref_mbq, "remaining_activity_ref_mbq")
        require_non_negative(self.remaining_volume_ml, "remaining_volume_ml")

    @classmethod
    def full(cls, batch: Batch) -> BatchStock:
        """The stock of an untouched batch."""
        return cls(remaining_activity_ref_mbq=batch.activity_mbq, remaining_volume_ml=batch.volume_ml)


@dataclass(frozen=True)
class DispenseResult:
    """One dispensed patient dose.

    Attributes
    ----------
    volume_ml : float
        Volume drawn from the batch in mL.
    activity_at_draw_mbq : float
        Activity in the syringe at ``draw_time`` in MBq.
    activity_at_planned_mbq : float
        Activity in the syringe at ``planned_time`` in MBq (equals the requested activity).
    activity_ref_mbq : float
        Activity removed from the batch, expressed at the batch reference time, in MBq.
    draw_time, planned_time : datetime
        When the dose was drawn and when it is planned to be administered.
    remaining : BatchStock
        Stock left in the batch after this draw.
    """

    volume_ml: float
    activity_at_draw_mbq: float
    activity_at_planned_mbq: float
    activity_ref_mbq: float
    draw_time: datetime
    planned_time: datetime
    remaining: BatchStock


def dispense(
    batch: Batch,
    stock: BatchStock,
    *,
    activity_mbq: float,
    planned_time: datetime,
    draw_time: datetime,
) -> DispenseResult:
    """Compute a dose draw of ``activity_mbq`` (at ``planned_time``) from ``batch``.

    Parameters
    ----------
    batch : Batch
        The batch drawn from.
    stock : BatchStock
        Its current stock (before this draw).
    activity_mbq : float
        Activity wanted at ``planned_time`` in MBq.
    planned_time : datetime
        Planned administration time (timezone-aware); must not be after the batch expiry.
    draw_time : datetime
        Time the dose is drawn (timezone-aware); must not be after ``planned_time``.

    Returns
    -------
    DispenseResult

    Raises
    ------
    InputError
        If the batch is expired at ``planned_time``, the draw is after the planned time, or the batch
        holds too little volume.
    """
    require_positive(activity_mbq, "activity_mbq")
    require_aware(planned_time, "planned_time")
    require_aware(draw_time, "draw_time")
    if draw_time > planned_time:
        raise InputError(
            f"draw_time {draw_time.isoformat()} is after planned_time {planned_time.isoformat()}:"
            " draw the dose before the planned administration"
        )
    if batch.is_expired(planned_time):
        raise InputError(
            f"planned_time {planned_time.isoformat()} is after the batch expiry "
            f"{batch.expiry_time.isoformat()}: use another batch"
        )
    volume_ml = activity_mbq / batch.concentration_at_mbq_per_ml(planned_time)
    if volume_ml > stock.remaining_volume_ml + VOLUME_EPSILON_ML:
        available_mbq = stock.remaining_volume_ml * batch.concentration_at_mbq_per_ml(planned_time)
        raise InsufficientStockError(
            f"activity_mbq {activity_mbq:g} needs {volume_ml:.4g} mL but batch {batch.lot} holds "
            f"{stock.remaining_volume_ml:.4g} mL ({available_mbq:.4g} MBq at the planned time):"
            " request less or use another batch"
        )
    volume_ml = min(volume_ml, stock.remaining_volume_ml)
    activity_ref_mbq = volume_ml * batch.concentration_ref_mbq_per_ml
    remaining = BatchStock(
        remaining_activity_ref_mbq=max(stock.remaining_activity_ref_mbq - activity_ref_mbq, 0.0),
        remaining_volume_ml=max(stock.remaining_volume_ml - volume_ml, 0.0),
    )
    return DispenseResult(
        volume_ml=volume_ml,
        activity_at_draw_mbq=volume_ml * batch.concentration_at_mbq_per_ml(draw_time),
        activity_at_planned_mbq=volume_ml * batch.concentration_at_mbq_per_ml(planned_time),
        activity_ref_mbq=activity_ref_mbq,
        draw_time=draw_time,
        planned_time=planned_time,
        remaining=remaining,
    )
