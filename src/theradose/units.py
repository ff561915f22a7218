"""Named unit conversions.

theradose's canonical internal units are MBq, h, mm, g, Gy and keV/MeV as named. Every conversion
between units goes through a function here so that no bare scale factor appears in the code.

Physical constants are CODATA 2018 exact or recommended values.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import numpy.typing as npt

#: Joules per MeV (CODATA 2018: elementary charge 1.602176634e-19 C exactly).
JOULE_PER_MEV = 1.602176634e-13
SECONDS_PER_HOUR = 3600.0
SECONDS_PER_MINUTE = 60.0
HOURS_PER_DAY = 24.0
BQ_PER_MBQ = 1.0e6
MBQ_PER_GBQ = 1.0e3
MBQ_PER_MCI = 37.0
GRAM_PER_KG = 1.0e3
MM_PER_CM = 10.0
MM_PER_M = 1.0e3
MGY_PER_GY = 1.0e3
KEV_PER_MEV = 1.0e3
#: 1 rem = 0.01 Sv (10 CFR 20.1004).
MSV_PER_REM = 10.0
USV_PER_MREM = 10.0
USV_PER_MSV = 1.0e3
ML_PER_MM3 = 1.0e-3

F = TypeVar("F", float, npt.NDArray[np.floating])


def mbq_to_bq(activity_mbq: F) -> F:
    """MBq → Bq."""
    return activity_mbq * BQ_PER_MBQ


def bq_to_mbq(activity_bq: F) -> F:
    """Bq → MBq."""
    return activity_bq / BQ_PER_MBQ


def mbq_to_gbq(activity_mbq: F) -> F:
    """MBq → GBq."""
    return activity_mbq / MBQ_PER_GBQ


def gbq_to_mbq(activity_gbq: F) -> F:
    """GBq → MBq."""
    return activity_gbq * MBQ_PER_GBQ


def mci_to_mbq(activity_mci: F) -> F:
    """mCi → MBq (1 Ci = 3.7e10 Bq exactly)."""
    return activity_mci * MBQ_PER_MCI


def mbq_to_mci(activity_mbq: F) -> F:
    """MBq → mCi."""
    return activity_mbq / MBQ_PER_MCI


def hours_to_seconds(time_h: F) -> F:
    """h → s."""
    return time_h * SECONDS_PER_HOUR


def seconds_to_hours(time_s: F) -> F:
    """s → h."""
    return time_s / SECONDS_PER_HOUR


def minutes_to_hours(time_min: F) -> F:
    """min → h."""
    return time_min / (SECONDS_PER_HOUR / SECONDS_PER_MINUTE)


def days_to_hours(time_d: F) -> F:
    """d → h."""
    return time_d * HOURS_PER_DAY


def hours_to_days(time_h: F) -> F:
    """h → d."""
    return time_h / HOURS_PER_DAY


def mev_to_joule(energy_mev: F) -> F:
    """MeV → J."""
    return energy_mev * JOULE_PER_MEV


def kev_to_mev(energy_kev: F) -> F:
    """keV → MeV."""
    return energy_kev / KEV_PER_MEV


def mev_to_kev(energy_mev: F) -> F:
    """MeV → keV."""
    return energy_mev * KEV_PER_MEV


def gram_to_kg(mass_g: F) -> F:
    """g → kg."""
    return mass_g / GRAM_PER_KG


def kg_to_gram(mass_kg: F) -> F:
    """kg → g."""
    return mass_kg * GRAM_PER_KG


def gy_to_mgy(dose_gy: F) -> F:
    """Gy → mGy."""
    return dose_gy * MGY_PER_GY


def mgy_to_gy(dose_mgy: F) -> F:
    """mGy → Gy."""
    return dose_mgy / MGY_PER_GY


def mm_to_cm(length_mm: F) -> F:
    """mm → cm."""
    return length_mm / MM_PER_CM


def cm_to_mm(length_cm: F) -> F:
    """cm → mm."""
    return length_cm * MM_PER_CM


def mm3_to_ml(volume_mm3: F) -> F:
    """mm³ → mL (1 mL = 1 cm³)."""
    return volume_mm3 * ML_PER_MM3


def ml_to_mm3(volume_ml: F) -> F:
    """mL → mm³."""
    return volume_ml / ML_PER_MM3


def decays_from_tia_mbq_h(tia_mbq_h: F) -> F:
    """Number of nuclear transformations in a time-integrated activity: N = Ã[MBq·h]·1e6·3600."""
    return tia_mbq_h * BQ_PER_MBQ * SECONDS_PER_HOUR


def dose_gy_from_energy_mev_and_mass_g(energy_mev: F, mass_g: F) -> F:
    """Absorbed dose in Gy from deposited energy (MeV) and mass (g): D = E[J] / m[kg]."""
    return mev_to_joule(energy_mev) / gram_to_kg(mass_g)


def rem_to_msv(dose_rem: F) -> F:
    """rem → mSv (1 rem = 10 mSv)."""
    return dose_rem * MSV_PER_REM


def msv_to_rem(dose_msv: F) -> F:
    """mSv → rem."""
    return dose_msv / MSV_PER_REM


def usv_to_mrem(dose_usv: F) -> F:
    """µSv → mrem (1 mrem = 10 µSv)."""
    return dose_usv / USV_PER_MREM


def usv_to_msv(dose_usv: F) -> F:
    """µSv → mSv."""
    return dose_usv / USV_PER_MSV


def msv_to_usv(dose_msv: F) -> F:
    """mSv → µSv."""
    return dose_msv * USV_PER_MSV
