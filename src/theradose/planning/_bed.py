"""Thin adapter to :func:`theradose.radiobiology.bed_gy` (imported lazily).

The planning package never re-implements the BED formula: it calls the radiobiology package, or a
function with the same keyword signature passed in by the caller (:class:`BedFunction`).
"""

from __future__ import annotations

from typing import Protocol


class BedFunction(Protocol):
    """Signature of a BED function: single-administration BED (Gy) from absorbed dose (Gy)."""

    def __call__(
        self,
        dose_gy: float,
        *,
        effective_half_life_h: float,
        alpha_beta_gy: float,
        repair_half_time_h: float,
    ) -> float: ...


def radiobiology_bed_gy(
    dose_gy: float,
    *,
    effective_half_life_h: float,
    alpha_beta_gy: float,
    repair_half_time_h: float,
) -> float:
    """BED (Gy) of one administration via :func:`theradose.radiobiology.bed_gy`.

    Parameters
    ----------
    dose_gy : float
        Absorbed dose of the administration (Gy).
    effective_half_life_h : float
        Effective (mono-exponential) clearance half-life (h).
    alpha_beta_gy, repair_half_time_h : float
        Linear-quadratic tissue parameters (Gy, h).

    Returns
    -------
    float
        BED (Gy), from the radiobiology package (Dale 1985 BJR 58:515 form for exponentially
        decaying dose rate; see that package for the formula and its reference).
    """
    from theradose.radiobiology import bed_gy

    return float(
        bed_gy(
            dose_gy,
            effective_half_life_h=effective_half_life_h,
            alpha_beta_gy=alpha_beta_gy,
            repair_half_time_h=repair_half_time_h,
        )
    )
