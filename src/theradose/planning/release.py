"""Patient release after radionuclide therapy: NRC NUREG-1556 Vol. 9 Rev. 3, Appendix U.

Dose to others
--------------
Appendix U (equations U-1 and U-2, from Regulatory Guide 8.39) models the patient as a point source
and integrates to total decay::

    D(∞) = 34.6 Γ Q0 T E / r²

``D(∞)`` dose to the maximally exposed other individual (rem); ``34.6`` = 24 h/d × 1.44 (the mean
life in half-lives, 1/ln 2); ``Γ`` exposure-rate constant (R·cm²/(mCi·h)); ``Q0`` activity at release
(mCi); ``T`` physical half-life or, where justified, the effective half-life (d); ``E`` occupancy factor
(0.25 at 1 m for half-lives over 1 day); ``r`` distance (cm, 100 cm). Appendix U equates exposure in
roentgen with dose in rem; we keep that convention so that its tables are reproduced, and report mSv
(1 rem = 10 mSv). With a measured dose rate at 1 m the factor ``Γ Q0 / r²`` is replaced by that dose
rate (Appendix U, release based on measured dose rate).

Γ comes from :func:`theradose.nuclides.air_kerma_rate_constant_ugy_m2_per_gbq_h` (air-kerma-rate
constant Γ_δ in µGy·m²/(GBq·h)). Conversion to the exposure-rate constant::

    Γ_X [R·cm²/(mCi·h)] = Γ_δ × 10⁴ cm²/m² × 0.037 GBq/mCi / (8764.3 µGy/R)

where 1 R = 2.58e-4 C/kg and air kerma per exposure = 2.58e-4 C/kg × W_air/e (33.97 J/C, ICRU Report 90)
= 8.7643 mGy (bremsstrahlung fraction g ≈ 0 for these photon energies). For ¹³¹I this gives 2.2, the
value in Appendix U Table U-1.

Release criteria: 10 CFR 35.75(a): releasable if the total effective dose equivalent to any other
individual is not likely to exceed 5 mSv (0.5 rem); 35.75(b): written instructions if it is likely to
exceed 1 mSv (0.1 rem).

Close-contact restrictions
--------------------------
For each typical contact (partner, child, work colleague; ``data/regulatory/contact_scenarios.toml``) at
distance ``d`` (m) for ``h`` hours a day, the dose if normal contact resumes at time ``t`` after
release is (Cormack & Shearer 1998, Nucl Med Commun 19:445; ICRP Publication 94, 2004)::

    D(t) = Ḋ(1 m) / d² × (h / 24) × (T_eff / ln 2) × exp(−ln 2 t / T_eff)

(inverse square from the 1-m dose rate: conservative at short distances). The restriction period is
the smallest ``t ≥ 0`` with ``D(t) ≤`` the scenario's dose constraint::

    t = (T_eff / ln 2) × ln(D(0) / constraint)     (0 if D(0) ≤ constraint)

Contact during the restriction period is assumed to be avoided entirely.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from pathlib import Path

from theradose.errors import DataError, InputError
from theradose.units import (
    HOURS_PER_DAY,
    hours_to_days,
    mbq_to_mci,
    mci_to_mbq,
    msv_to_rem,
    msv_to_usv,
    rem_to_msv,
    usv_to_msv,
)

#: 24 h/d × 1.44 (NUREG-1556 Vol. 9 Rev. 3, Appendix U, equation U-1).
NUREG_INTEGRATION_FACTOR = 34.6
#: Occupancy factor at 1 m for half-lives over 1 day (NUREG-1556 Vol. 9 Rev. 3, Appendix U).
OCCUPANCY_FACTOR_1M = 0.25
#: Distance at which Appendix U evaluates the dose (cm).
DISTANCE_CM = 100.0
#: 10 CFR 35.75(a): release allowed if the dose to others is not likely to exceed 5 mSv (0.5 rem).
RELEASE_LIMIT_MSV = 5.0
#: 10 CFR 35.75(b): written instructions required if the dose to others is likely to exceed 1 mSv.
INSTRUCTIONS_LIMIT_MSV = 1.0
#: Air kerma per roentgen (µGy/R): 2.58e-4 C/kg × 33.97 J/C (W_air/e, ICRU Report 90).
UGY_AIR_KERMA_PER_ROENTGEN = 2.58e-4 * 33.97 * 1.0e6
#: cm² per m².
CM2_PER_M2 = 1.0e4
#: GBq per mCi (1 mCi = 37 MBq exactly).
GBQ_PER_MCI = 0.037

#: Folder of the shipped contact-scenario file.
SCENARIO_FILE = Path(__file__).resolve().parent.parent / "data" / "regulatory" / "contact_scenarios.toml"


def exposure_rate_constant_r_cm2_per_mci_h(air_kerma_rate_constant_ugy_m2_per_gbq_h: float) -> float:
    """Convert an air-kerma-rate constant (µGy·m²/(GBq·h)) to an exposure-rate constant (R·cm²/(mCi·h)).

    See the module docstring for the derivation (1 R ≙ 8764.3 µGy air kerma).
    """
    return air_kerma_rate_constant_ugy_m2_per_gbq_h * CM2_PER_M2 * GBQ_PER_MCI / UGY_AIR_KERMA_PER_ROENTGEN


@dataclass(frozen=True)
class ContactScenario:
    """A typical contact situation after release."""

    name: str
    description: str
    distance_m: float
    hours_per_day: float
    dose_constraint_msv: float
    citation: str


@dataclass(frozen=True)
class Restriction:
    """Close-contact restriction for one scenario."""

    scenario: str
    description: str
    days: float
    dose_without_restriction_msv: float
    dose_constraint_msv: float
    citation: str

    def as_sentence(self) -> str:
        """The restriction in words."""
        if self.days <= 0:
            return (
                f"{self.description}: no restriction needed "
                f"(expected {self.dose_without_restriction_msv:.2f} mSv "
                f"<= constraint {self.dose_constraint_msv:g} mSv)"
            )
        return (
            f"{self.description}: avoid for {self.days:.1f} days "
            f"(otherwise {self.dose_without_restriction_msv:.2f} mSv > "
            f"constraint {self.dose_constraint_msv:g} mSv)"
        )


@dataclass(frozen=True)
class ReleaseAssessment:
    """Result of the release calculation.

    Attributes
    ----------
    releasable : bool
        D(∞) not above 5 mSv (10 CFR 35.75(a)).
    dose_to_others_msv : float
        D(∞) at 1 m with the occupancy factor (mSv).
    instructions_required : bool
        D(∞) above 1 mSv (10 CFR 35.75(b)).
    dose_rate_at_1m_usv_h : float
        Dose rate at 1 m at release (measured, or Γ Q0 / r²) in µSv/h (R taken as rem).
    half_life_h : float
        Half-life used (physical or effective).
    half_life_kind : {"physical", "effective"}
    occupancy_factor : float
    restrictions : tuple of Restriction
    method : str
        Citation of the method.
    """

    releasable: bool
    dose_to_others_msv: float
    instructions_required: bool
    dose_rate_at_1m_usv_h: float
    half_life_h: float
    half_life_kind: str
    occupancy_factor: float
    restrictions: tuple[Restriction, ...]
    method: str


def dose_to_others_rem(
    activity_mci: float,
    *,
    exposure_rate_constant_r_cm2_per_mci_h: float,
    half_life_d: float,
    occupancy_factor: float = OCCUPANCY_FACTOR_1M,
    distance_cm: float = DISTANCE_CM,
) -> float:
    """NUREG-1556 Vol. 9 Rev. 3 Appendix U equation U-1 at t = ∞: D(∞) = 34.6 Γ Q0 T E / r² (rem).

    Parameters are in the units of Appendix U: mCi, R·cm²/(mCi·h), days, cm.
    """
    for name, value in (
        ("activity_mci", activity_mci),
        ("exposure_rate_constant_r_cm2_per_mci_h", exposure_rate_constant_r_cm2_per_mci_h),
        ("half_life_d", half_life_d),
        ("occupancy_factor", occupancy_factor),
        ("distance_cm", distance_cm),
    ):
        if not (math.isfinite(value) and value >= 0):
            raise InputError(f"{name} must be finite and >= 0; got {value}: fix the value")
    if distance_cm == 0:
        raise InputError("distance_cm must be > 0; got 0: Appendix U uses 100 cm")
    return (
        NUREG_INTEGRATION_FACTOR
        * exposure_rate_constant_r_cm2_per_mci_h
        * activity_mci
        * half_life_d
        * occupancy_factor
        / distance_cm**2
    )


def releasable_activity_mbq(
    *,
    exposure_rate_constant_r_cm2_per_mci_h: float,
    half_life_d: float,
    dose_limit_msv: float = RELEASE_LIMIT_MSV,
    occupancy_factor: float = OCCUPANCY_FACTOR_1M,
) -> float:
    """Activity (MBq) at which D(∞) equals ``dose_limit_msv`` (the Appendix U Table U-1/U-2 quantity)."""
    per_mci = dose_to_others_rem(
        1.0,
        exposure_rate_constant_r_cm2_per_mci_h=exposure_rate_constant_r_cm2_per_mci_h,
        half_life_d=half_life_d,
        occupancy_factor=occupancy_factor,
    )
    if per_mci <= 0:
        raise InputError("the dose per activity is 0: the exposure-rate constant and half-life must be > 0")
    return mci_to_mbq(msv_to_rem(dose_limit_msv) / per_mci)


def load_contact_scenarios(path: str | Path | None = None) -> tuple[ContactScenario, ...]:
    """Read contact scenarios (default: the shipped ``contact_scenarios.toml``)."""
    file = Path(path) if path is not None else SCENARIO_FILE
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputError(f"scenario file {str(file)!r} does not exist: check the path") from exc
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"scenario file {str(file)!r} cannot be read ({exc}): fix the file") from exc
    scenarios = []
    for name, entry in data.get("scenarios", {}).items():
        try:
            scenario = ContactScenario(
                name=name,
                description=str(entry["description"]),
                distance_m=float(entry["distance_m"]),
                hours_per_day=float(entry["hours_per_day"]),
                dose_constraint_msv=float(entry["dose_constraint_msv"]),
                citation=str(entry["citation"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(
                f"scenarios.{name} in {str(file)!r} lacks or mistypes {exc}: give description, distance_m, "
                "hours_per_day, dose_constraint_msv, citation"
            ) from exc
        if scenario.distance_m <= 0 or not 0 < scenario.hours_per_day <= HOURS_PER_DAY:
            raise InputError(
                f"scenarios.{name}: distance_m must be > 0 and hours_per_day in (0, 24]; got "
                f"{scenario.distance_m}, {scenario.hours_per_day}: fix the scenario"
            )
        scenarios.append(scenario)
    if not scenarios:
        raise DataError(f"no [scenarios.*] in {str(file)!r}: reinstall theradose or fix the file")
    return tuple(scenarios)


def restriction_days(
    dose_rate_at_1m_usv_h: float,
    effective_half_life_h: float,
    scenario: ContactScenario,
) -> Restriction:
    """Restriction period for one contact scenario (method in the module docstring).

    Parameters
    ----------
    dose_rate_at_1m_usv_h : float
        Dose rate at 1 m from the patient at release (µSv/h).
    effective_half_life_h : float
        Whole-body effective half-life after release (h).
    scenario : ContactScenario
    """
    if not (math.isfinite(effective_half_life_h) and effective_half_life_h > 0):
        raise InputError(f"effective_half_life_h must be > 0; got {effective_half_life_h}: fix it")
    mean_life_h = effective_half_life_h / math.log(2)
    fraction_of_day = scenario.hours_per_day / HOURS_PER_DAY
    dose_usv = dose_rate_at_1m_usv_h / scenario.distance_m**2 * fraction_of_day * mean_life_h
    dose_msv = usv_to_msv(dose_usv)
    if dose_msv <= scenario.dose_constraint_msv:
        days = 0.0
    else:
        days = hours_to_days(mean_life_h * math.log(dose_msv / scenario.dose_constraint_msv))
    return Restriction(
        scenario=scenario.name,
        description=scenario.description,
        days=days,
        dose_without_restriction_msv=dose_msv,
        dose_constraint_msv=scenario.dose_constraint_msv,
        citation=scenario.citation,
    )


def assess_release(
    nuclide: str,
    activity_mbq: float,
    *,
    dose_rate_usv_h_at_1m: float | None = None,
    effective_half_life_h: float | None = None,
    occupancy_factor: float | None = None,
    scenarios: tuple[ContactScenario, ...] | None = None,
) -> ReleaseAssessment:
    """Decide on release and restrictions (NUREG-1556 Vol. 9 Rev. 3 Appendix U; 10 CFR 35.75).

    Parameters
    ----------
    nuclide : str
        Nuclide name (``"Lu-177"``); gives the physical half-life and Γ.
    activity_mbq : float
        Activity in the patient at release (MBq).
    dose_rate_usv_h_at_1m : float, optional
        Measured dose rate at 1 m (µSv/h); replaces Γ Q0 / r².
    effective_half_life_h : float, optional
        Effective half-life (h); default the physical half-life.
    occupancy_factor : float, optional
        Default 0.25 (Appendix U, half-lives over 1 day); required when the half-life is under 1 day.
    scenarios : tuple of ContactScenario, optional
        Default: the shipped partner, child and work scenarios.

    Returns
    -------
    ReleaseAssessment
    """
    from theradose.nuclides import air_kerma_rate_constant_ugy_m2_per_gbq_h, get_nuclide

    info = get_nuclide(nuclide)
    if not (math.isfinite(activity_mbq) and activity_mbq >= 0):
        raise InputError(
            f"activity_mbq must be >= 0; got {activity_mbq}: give the activity at release in MBq"
        )
    half_life_h = float(info.half_life_h)
    kind = "physical"
    if effective_half_life_h is not None:
        if not (math.isfinite(effective_half_life_h) and 0 < effective_half_life_h <= half_life_h):
            raise InputError(
                f"effective_half_life_h must be in (0, {half_life_h:g}] "
                f"(the physical half-life of {info.name}); "
                f"got {effective_half_life_h}: check the value"
            )
        half_life_h = effective_half_life_h
        kind = "effective"
    if occupancy_factor is None:
        if info.half_life_h < HOURS_PER_DAY:
            raise InputError(
                f"occupancy_factor is required for {info.name} (half-life {info.half_life_h:g} h < 1 day): "
                "Appendix U's 0.25 at 1 m applies to half-lives over 1 day"
            )
        occupancy_factor = OCCUPANCY_FACTOR_1M
    if not 0 < occupancy_factor <= 1:
        raise InputError(f"occupancy_factor must be in (0, 1]; got {occupancy_factor}: e.g. 0.25")
    gamma_x = exposure_rate_constant_r_cm2_per_mci_h(air_kerma_rate_constant_ugy_m2_per_gbq_h(info))
    if dose_rate_usv_h_at_1m is None:
        # Γ Q0 / r² in R/h at 1 m, taken as rem/h (Appendix U convention) → µSv/h
        rate_rem_h = gamma_x * mbq_to_mci(activity_mbq) / DISTANCE_CM**2
        dose_rate_usv_h_at_1m = msv_to_usv(rem_to_msv(rate_rem_h))
    elif not (math.isfinite(dose_rate_usv_h_at_1m) and dose_rate_usv_h_at_1m >= 0):
        raise InputError(
            f"dose_rate_usv_h_at_1m must be >= 0; got {dose_rate_usv_h_at_1m}: give the measured µSv/h at 1 m"
        )
    # D(∞) = 34.6 × Ḋ(1 m) × T × E with Ḋ in rem/h and T in days (Γ Q0 / r² replaced by Ḋ(1 m)).
    dose_rem = (
        NUREG_INTEGRATION_FACTOR
        * msv_to_rem(usv_to_msv(dose_rate_usv_h_at_1m))
        * hours_to_days(half_life_h)
        * occupancy_factor
    )
    dose_msv = rem_to_msv(dose_rem)
    scenario_list = scenarios if scenarios is not None else load_contact_scenarios()
    restrictions = tuple(restriction_days(dose_rate_usv_h_at_1m, half_life_h, s) for s in scenario_list)
    return ReleaseAssessment(
        releasable=dose_msv <= RELEASE_LIMIT_MSV,
        dose_to_others_msv=dose_msv,
        instructions_required=dose_msv > INSTRUCTIONS_LIMIT_MSV,
        dose_rate_at_1m_usv_h=dose_rate_usv_h_at_1m,
        half_life_h=half_life_h,
        half_life_kind=kind,
        occupancy_factor=occupancy_factor,
        restrictions=restrictions,
        method=(
            "NRC NUREG-1556 Vol. 9 Rev. 3 Appendix U, eq. U-1 (D = 34.6 Γ Q0 T E / r²); "
            "10 CFR 35.75(a) 5 mSv release, 35.75(b) 1 mSv instructions; restrictions after "
            "Cormack & Shearer 1998 and ICRP Publication 94"
        ),
    )
