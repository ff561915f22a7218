"""The next cycle's written directive as the plan proposes it, for a physician to review, edit and sign.

:func:`draft_directive` turns a next-cycle recommendation (:class:`~theradose.planning.NextCycleResult`)
into what the draft directive states: the cycle, the activity, the earliest date (the previous injection
plus the protocol's interval) and why — the organ that limits the activity with its projected cumulative
BED (or dose, for an organ without radiobiological parameters), expected and at the plan's one-sided
confidence. A plan that says stop drafts nothing. Nothing here is a prescription until an authorized user
signs it (10 CFR 35.40).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from theradose.errors import InputError
from theradose.planning.nextcycle import NextCycleResult
from theradose.planning.protocols import Protocol


@dataclass(frozen=True)
class DirectiveDraft:
    """What a draft directive drafted from the plan states, and the plan's reasons.

    Attributes
    ----------
    cycle : int
        The next cycle's number.
    activity_mbq : float
        The recommended activity, to the whole MBq.
    earliest_date : date
        The previous injection's date (site time zone) plus the protocol's interval.
    interval_weeks : float
        The protocol's interval used.
    organ : str or None
        The organ whose limit sets the activity; when the protocol's maximum or standard activity sets it,
        the most constrained organ (``limited_by`` says which).
    limited_by : {"organ", "protocol"}
    binding_limit : str or None
        The limit that binds for ``organ`` (e.g. ``"BED 40 Gy"``).
    projected_bed_gy, projected_bed_upper_gy : float or None
        Cumulative BED of ``organ`` after the next cycle: expected, and at ``confidence``.
    projected_dose_gy, projected_dose_upper_gy : float or None
        The same for the absorbed dose.
    confidence : float
        One-sided confidence of the upper values.
    reasons : tuple of str
        The plan's reasons, in words.
    """

    cycle: int
    activity_mbq: float
    earliest_date: date
    interval_weeks: float
    organ: str | None
    limited_by: str
    binding_limit: str | None
    projected_bed_gy: float | None
    projected_bed_upper_gy: float | None
    projected_dose_gy: float | None
    projected_dose_upper_gy: float | None
    confidence: float
    reasons: tuple[str, ...]

    def summary(self) -> str:
        """One line: the activity, the earliest date and the organ with its projected BED."""
        text = f"cycle {self.cycle}: {self.activity_mbq:.0f} MBq, not before {self.earliest_date.isoformat()}"
        if self.organ is None:
            return text
        which = "limited by" if self.limited_by == "organ" else "protocol activity; most constrained organ"
        if self.projected_bed_gy is not None and self.projected_bed_upper_gy is not None:
            value = (
                f"projected cumulative BED {self.projected_bed_gy:.3g} Gy "
                f"({self.projected_bed_upper_gy:.3g} Gy at {self.confidence:.0%} confidence)"
            )
        elif self.projected_dose_gy is not None and self.projected_dose_upper_gy is not None:
            value = (
                f"projected cumulative dose {self.projected_dose_gy:.3g} Gy "
                f"({self.projected_dose_upper_gy:.3g} Gy at {self.confidence:.0%} confidence)"
            )
        else:
            value = "no projection"
        return f"{text} ({which} {self.organ}: {value})"


def draft_directive(
    result: NextCycleResult, protocol: Protocol, *, last_injection: datetime, site_timezone: str = "UTC"
) -> DirectiveDraft:
    """The draft directive of the next cycle from the plan.

    Parameters
    ----------
    result : NextCycleResult
        The recommendation (:func:`theradose.planning.plan_next_cycle`).
    protocol : Protocol
        The protocol it was planned with (its ``interval_weeks``).
    last_injection : datetime
        The previous cycle's injection time (timezone-aware).
    site_timezone : str
        IANA zone in which the earliest date is a calendar date.

    Raises
    ------
    InputError
        The plan says stop (its reasons are named), or ``last_injection`` has no time zone.
    """
    if result.stop:
        raise InputError(
            "the plan says stop, no directive is drafted: "
            + "; ".join(result.reasons or ("no reason given",))
        )
    if last_injection.tzinfo is None:
        raise InputError("last_injection has no time zone: give the injection time with its UTC offset")
    weeks = float(protocol.interval_weeks.value)
    local = last_injection.astimezone(ZoneInfo(site_timezone)).date()
    organ = result.limiting_organ or result.most_constrained_organ
    projection = next((o for o in result.organs if o.organ == organ), None)
    return DirectiveDraft(
        cycle=result.cycle_number,
        activity_mbq=float(round(result.recommended_activity_mbq)),
        earliest_date=local + timedelta(weeks=weeks),
        interval_weeks=weeks,
        organ=organ,
        limited_by="organ" if result.limiting_organ is not None else "protocol",
        binding_limit=None if projection is None else projection.binding_limit,
        projected_bed_gy=None if projection is None else projection.projected_bed_gy,
        projected_bed_upper_gy=None if projection is None else projection.projected_bed_upper_gy,
        projected_dose_gy=None if projection is None else projection.projected_dose_gy,
        projected_dose_upper_gy=None if projection is None else projection.projected_dose_upper_gy,
        confidence=result.confidence,
        reasons=tuple(result.reasons),
    )


__all__ = ["DirectiveDraft", "draft_directive"]
