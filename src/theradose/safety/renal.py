"""Kidney function estimates from serum creatinine."""

from __future__ import annotations

from theradose.errors import InputError
from theradose.safety.labs import Sex

#: CKD-EPI 2021 race-free creatinine equation (Inker et al. 2021, N Engl J Med 385:1737):
#: eGFR = 142 · min(Scr/κ, 1)^α · max(Scr/κ, 1)^−1.200 · 0.9938^age · 1.012 [female]
CKD_EPI_2021 = {
    "female": {"kappa": 0.7, "alpha": -0.241, "factor": 1.012},
    "male": {"kappa": 0.9, "alpha": -0.302, "factor": 1.0},
}


def _check(creatinine_mg_dl: float, age_y: float) -> None:
    if not creatinine_mg_dl > 0:
        raise InputError(f"creatinine must be > 0 mg/dL; got {creatinine_mg_dl}")
    if not 18 <= age_y <= 120:
        raise InputError(f"age must be 18-120 years for adult equations; got {age_y}")


def egfr_ckd_epi_2021(creatinine_mg_dl: float, *, age_y: float, sex: Sex) -> float:
    """Estimated GFR (mL/min/1.73 m²) by the 2021 CKD-EPI creatinine equation without race.

    References
    ----------
    Inker LA, et al. New creatinine- and cystatin C-based equations to estimate GFR without race.
    N Engl J Med 2021;385:1737-49.
    """
    _check(creatinine_mg_dl, age_y)
    c = CKD_EPI_2021[sex]
    ratio = creatinine_mg_dl / c["kappa"]
    return float(
        142.0 * min(ratio, 1.0) ** c["alpha"] * max(ratio, 1.0) ** -1.200 * 0.9938**age_y * c["factor"]
    )


def cockcroft_gault_ml_min(creatinine_mg_dl: float, *, age_y: float, sex: Sex, weight_kg: float) -> float:
    """Creatinine clearance (mL/min) by Cockcroft-Gault with actual body weight.

    CrCl = (140 − age) · weight / (72 · Scr) · 0.85 [female] (Cockcroft & Gault 1976, Nephron 16:31),
    as named in the Lutathera and Pluvicto prescribing information.
    """
    _check(creatinine_mg_dl, age_y)
    if not 20 <= weight_kg <= 400:
        raise InputError(f"weight must be 20-400 kg; got {weight_kg}")
    crcl = (140.0 - age_y) * weight_kg / (72.0 * creatinine_mg_dl)
    return crcl * 0.85 if sex == "female" else crcl
