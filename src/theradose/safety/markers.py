"""Tumour markers and trends: PSA response by PCWG3 and an early creatinine-trend alert."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

import numpy as np

from theradose.errors import InputError

#: PCWG3: a decline (or rise) must be confirmed by a second value at least 3 weeks later
#: (Scher et al. 2016, J Clin Oncol 34:1402).
CONFIRMATION_DAYS = 21
PSA_RESPONSE_DECLINE = 0.5
PSA_PROGRESSION_RISE = 0.25
PSA_PROGRESSION_ABSOLUTE_NG_ML = 2.0


@dataclass(frozen=True)
class PsaResponse:
    """PSA response category with its dates and the numbers that decided it."""

    category: Literal["response", "progression", "stable", "unconfirmed"]
    baseline_ng_ml: float
    nadir_ng_ml: float
    best_change_percent: float
    rule: str
    changes_percent: tuple[float, ...]


def psa_response(dates: Sequence[date], psa_ng_ml: Sequence[float]) -> PsaResponse:
    """PSA response per PCWG3 (Scher et al. 2016, J Clin Oncol 34:1402).

    Response: a decline ≥ 50 % from baseline, confirmed by a second value ≥ 3 weeks later that is also
    ≥ 50 % below baseline. Progression: a rise ≥ 25 % and ≥ 2 ng/mL above the nadir, confirmed ≥ 3 weeks
    later. The first value is the baseline.
    """
    if len(dates) != len(psa_ng_ml) or len(dates) < 2:
        raise InputError("PSA response needs a baseline and at least one follow-up value, each dated")
    order = np.argsort(np.array([d.toordinal() for d in dates]))
    days = [dates[i] for i in order]
    values = [float(psa_ng_ml[i]) for i in order]
    if any(v < 0 for v in values):
        raise InputError("PSA values must not be negative")
    baseline = values[0]
    if baseline <= 0:
        raise InputError("baseline PSA must be > 0 ng/mL to compute a relative change")
    changes = tuple(100.0 * (v / baseline - 1.0) for v in values)
    nadir = baseline
    for i in range(1, len(values)):
        nadir_before = min(values[: i + 1])
        if (
            values[i] >= nadir_before * (1 + PSA_PROGRESSION_RISE)
            and values[i] - nadir_before >= PSA_PROGRESSION_ABSOLUTE_NG_ML
        ):
            for j in range(i + 1, len(values)):
                if (days[j] - days[i]).days >= CONFIRMATION_DAYS and values[j] >= values[i] * 0.999:
                    return PsaResponse(
                        "progression",
                        baseline,
                        nadir_before,
                        min(changes),
                        f"PSA {values[i]:g} ng/mL on {days[i]} is ≥ 25 % and ≥ 2 ng/mL above the nadir "
                        f"{nadir_before:g}, confirmed on {days[j]} (PCWG3)",
                        changes,
                    )
        if values[i] <= baseline * (1 - PSA_RESPONSE_DECLINE):
            for j in range(i + 1, len(values)):
                if (days[j] - days[i]).days >= CONFIRMATION_DAYS and values[j] <= baseline * (
                    1 - PSA_RESPONSE_DECLINE
                ):
                    return PsaResponse(
                        "response",
                        baseline,
                        min(values),
                        min(changes),
                        f"PSA fell {changes[i]:+.0f} % by {days[i]}, "
                        f"confirmed {changes[j]:+.0f} % on {days[j]} "
                        "(≥ 50 % decline, PCWG3)",
                        changes,
                    )
        nadir = min(nadir, values[i])
    if min(changes) <= -100 * PSA_RESPONSE_DECLINE:
        return PsaResponse(
            "unconfirmed",
            baseline,
            nadir,
            min(changes),
            "≥ 50 % decline not yet confirmed ≥ 3 weeks later",
            changes,
        )
    return PsaResponse(
        "stable", baseline, nadir, min(changes), "neither a confirmed ≥ 50 % decline nor progression", changes
    )


@dataclass(frozen=True)
class TrendAlert:
    """An early warning on a rising laboratory value."""

    test: str
    rise_percent: float
    slope_per_30_days: float
    message: str


def creatinine_trend_alert(
    dates: Sequence[date], creatinine_mg_dl: Sequence[float], *, min_rise_percent: float = 20.0
) -> TrendAlert | None:
    """Alert on a rising creatinine before its CTCAE grade changes.

    Fires when at least three values rise monotonically (each ≥ the previous), the last is at least
    ``min_rise_percent`` above the first, and the least-squares slope is positive. This is a
    theradose rule (documented, not from a guideline): KDIGO 2012 treats a sustained 25 % fall in eGFR,
    i.e. roughly a 20-25 % rise in creatinine, as a significant decline worth acting on.
    """
    if len(dates) != len(creatinine_mg_dl):
        raise InputError("each creatinine value needs a date")
    if len(dates) < 3:
        return None
    order = np.argsort([d.toordinal() for d in dates])
    t = np.array([dates[i].toordinal() for i in order], dtype=float)
    v = np.array([creatinine_mg_dl[i] for i in order], dtype=float)
    rise = 100.0 * (v[-1] / v[0] - 1.0)
    monotonic = bool(np.all(np.diff(v) >= 0))
    slope = float(np.polyfit(t - t[0], v, 1)[0]) * 30.0
    if monotonic and rise >= min_rise_percent and slope > 0:
        return TrendAlert(
            "creatinine",
            rise,
            slope,
            f"creatinine rose {rise:.0f} % over {int(t[-1] - t[0])} days "
            f"in {len(v)} consecutive rising values "
            f"({slope:+.2f} mg/dL per 30 days): check renal function before the next cycle",
        )
    return None
