"""Activity concentrations of the trial's patients: blood-linked background, organ uptake, red marrow.

Every compartment's concentration per MBq administered is a sum of exponentials E(t) = Σ a_k e^{−r_k t}
(physical decay included in every rate), so its time integral is Σ a_k / r_k exactly.

* Blood: c_b(t) = (1/V_b) Σ_j w_j e^{−(λ_j+λ_p)t} with blood volume V_b = 70 mL/kg (ICRP 89 adult male
  blood volume 5.3 L for 73 kg) and three clearance phases.
* Tissues without specific uptake hold a fixed multiple of the blood concentration (their blood and
  extracellular content): soft tissue, fat, lung, brain, cortical bone; soft tissue also a small bound part.
* Specific uptake (kidney cortex and medulla, liver, spleen, salivary and lacrimal glands, lesions, bowel):
  c(t) = U·(1 − e^{−λ_u t})·Σ_j w_j e^{−(λ_j+λ_p)t} + v·c_b(t), U the plateau concentration.
* Bladder: urine collected and voided, A(t) = F·(e^{−(λ_v+λ_p)t} − e^{−(λ_f+λ_p)t}), spread over its volume.
* Red marrow: c_RM(t) = RMBLR_true · c_b(t)/ρ_blood per gram of marrow; each marrow site (vertebral body,
  pelvis) holds the mass f_site·M_RM of the patient's total red marrow M_RM (ICRP 89 reference 1170 g,
  scaled by body mass) with f_site the ICRP 70 / Cristy 1981 adult fraction of that site; M_RM, each f_site
  and RMBLR_true carry a log-normal patient factor, so that a method that assumes the reference values
  meets the variation of real patients.

The population values are design parameters of a virtual 177Lu-PSMA-617 population (file
``data/phantoms/trial_kinetics.toml``, with the published ranges they reproduce); they are independent of
the demo phantom's kinetics files.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np
import numpy.typing as npt

from theradose.errors import DataError, InputError
from theradose.phantoms.trial.anatomy import VERTEBRAE, TrialPatient

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ExpSum:
    """Σ_k a_k e^{−r_k t}, r_k > 0 (per MBq administered)."""

    terms: tuple[tuple[float, float], ...]

    def __call__(self, time_h: float | FloatArray) -> FloatArray:
        t = np.asarray(time_h, dtype=np.float64)
        out = np.zeros_like(t)
        for a, r in self.terms:
            out = out + a * np.exp(-r * t)
        return np.asarray(out, dtype=np.float64)

    def integral(self) -> float:
        """∫₀^∞ (exact)."""
        return float(sum(a / r for a, r in self.terms))

    def __add__(self, other: ExpSum) -> ExpSum:
        return ExpSum(self.terms + other.terms)

    def scaled(self, factor: float) -> ExpSum:
        return ExpSum(tuple((a * factor, r) for a, r in self.terms))


@lru_cache(maxsize=1)
def trial_kinetics_data() -> dict[str, Any]:
    """Population parameters (``data/phantoms/trial_kinetics.toml``)."""
    try:
        return tomllib.loads(
            resources.files("theradose")
            .joinpath("data", "phantoms", "trial_kinetics.toml")
            .read_text("utf-8")
        )
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise DataError(f"trial_kinetics.toml is missing or malformed ({exc}): reinstall theradose") from exc


def _lognormal(rng: np.random.Generator, cv: float) -> float:
    if cv <= 0:
        return 1.0
    sigma = math.sqrt(math.log1p(cv * cv))
    return math.exp(-0.5 * sigma * sigma + sigma * float(np.clip(rng.standard_normal(), -2.0, 2.0)))


LN2 = math.log(2.0)


@dataclass(frozen=True)
class BloodSample:
    """One blood sample: time after administration (h) and whole-blood concentration (Bq/mL)."""

    time_h: float
    concentration_bq_per_ml: float


@dataclass(frozen=True)
class TrialKinetics:
    """Kinetics of one patient for an administered activity.

    Attributes
    ----------
    activity_mbq : float
    decay_constant_per_h : float
    concentration : dict
        Compartment → concentration per MBq administered in Bq/mL (an :class:`ExpSum`); the bladder's is
        already divided by its volume.
    blood : ExpSum
        Whole-blood concentration per MBq administered, Bq/mL.
    rmblr : float
        The patient's true red-marrow-to-blood concentration ratio (per gram marrow / per gram blood).
    red_marrow_mass_g : float
        The patient's total red marrow mass.
    marrow_site_mass_g : dict
        Marrow site (``L3``, ``pelvis``, ...) → red marrow mass there (g).
    weight_kg : float
    haematocrit : float
    blood_samples : tuple of BloodSample
    draws : dict
        Sampled factors (for the truth file).
    """

    activity_mbq: float
    decay_constant_per_h: float
    concentration: Mapping[str, ExpSum]
    blood: ExpSum
    rmblr: float
    red_marrow_mass_g: float
    marrow_site_mass_g: Mapping[str, float]
    weight_kg: float
    haematocrit: float
    blood_samples: tuple[BloodSample, ...]
    draws: Mapping[str, float] = field(default_factory=dict)

    def concentration_bq_per_ml(self, compartment: str, time_h: float) -> float:
        return float(self.activity_mbq * self.concentration[compartment](time_h))

    def tia_per_ml_mbq_h(self, compartment: str) -> float:
        """∫ concentration dt in MBq·h per mL."""
        return float(self.activity_mbq * self.concentration[compartment].integral() / 1.0e6)

    def red_marrow_tia_per_g_mbq_h(self) -> float:
        """∫ c_RM dt in MBq·h per gram of red marrow."""
        return float(self.activity_mbq * self.concentration["red_marrow_per_g"].integral() / 1.0e6)


#: ICRP 70 (Table 41) / Cristy 1981 (Phys Med Biol 26:389) adult fractions of active marrow by bone used for
#: the trial's marrow sites; a vertebra holds its group's fraction divided equally among the group's
#: vertebrae (12 thoracic, 5 lumbar). Duplicated here on purpose: the trial's truth must not read the
#: table the dosimetry method under test reads (theradose.dosimetry.marrow).
_SITE_FRACTION: Mapping[str, float] = {
    **{name: 0.161 / 12.0 for name, _h in VERTEBRAE if name.startswith("T")},
    **{name: 0.123 / 5.0 for name, _h in VERTEBRAE if name.startswith("L")},
    "pelvis": 0.175 + 0.099,
}
#: Reference total red marrow mass (g) and body mass (kg) of the ICRP 89 adult male.
_REFERENCE_MARROW_G = 1170.0
_REFERENCE_BODY_KG = 73.0
#: Blood volume per kg body mass (mL/kg): ICRP 89 adult male 5.3 L / 73 kg.
_BLOOD_ML_PER_KG = 5300.0 / 73.0


def sample_kinetics(
    patient: TrialPatient,
    *,
    activity_mbq: float = 7400.0,
    nuclide_decay_constant_per_h: float,
    sample_times_h: Sequence[float] = (0.083, 0.5, 1.0, 2.0, 4.0, 24.0, 48.0, 96.0, 168.0),
    part_volume_ml: Mapping[str, float],
) -> TrialKinetics:
    """Draw one patient's kinetics (module docstring).

    Parameters
    ----------
    patient : TrialPatient
    activity_mbq : float
        Administered activity.
    nuclide_decay_constant_per_h : float
        λ_p of the nuclide.
    sample_times_h : sequence of float
        Blood sampling times.
    part_volume_ml : dict
        Volume of each part (mL) in the reference pose (for the bladder's volume and the marrow sites).
    """
    if not activity_mbq > 0:
        raise InputError(f"activity_mbq must be > 0; got {activity_mbq}")
    data = trial_kinetics_data()
    rng = np.random.default_rng(20_000 + patient.seed)
    lam_p = float(nuclide_decay_constant_per_h)
    draws: dict[str, float] = {}
    weight = (
        float(data["weight_kg"])
        * patient.draws["body_width"]
        * patient.draws["body_depth"]
        * patient.draws["body_height"]
    )
    draws["weight_kg"] = weight
    blood_cfg = data["blood"]
    v_blood = _BLOOD_ML_PER_KG * weight
    t_factor = _lognormal(rng, float(blood_cfg["cv_half_life"]))
    draws["blood_half_life_factor"] = t_factor
    terms = []
    for w, t_half in blood_cfg["phases"]:
        terms.append((float(w) * 1.0e6 / v_blood, LN2 / (float(t_half) * t_factor) + lam_p))
    blood = ExpSum(tuple(terms))
    conc: dict[str, ExpSum] = {"blood": blood}
    for name, ratio in data["blood_linked"].items():
        conc[name] = blood.scaled(float(ratio))
    bound = data["soft_tissue_bound"]
    b_factor = _lognormal(rng, float(bound["cv"]))
    conc["soft_tissue"] = conc["soft_tissue"] + ExpSum(
        (
            (
                float(bound["percent_ia_per_kg"]) * b_factor * 1.0e6 / 100.0 / 1000.0,
                LN2 / float(bound["half_life_h"]) + lam_p,
            ),
        )
    )
    uptake = data["uptake"]

    def specific(key: str, entry: Mapping[str, Any], *, u_factor: float | None = None) -> ExpSum:
        uf = u_factor if u_factor is not None else _lognormal(rng, float(entry["cv_uptake"]))
        tf = _lognormal(rng, float(entry["cv_half_life"]))
        draws[f"{key}_uptake_factor"] = uf
        draws[f"{key}_half_life_factor"] = tf
        u = float(entry["percent_ia_per_kg"]) * uf * 1.0e6 / 100.0 / 1000.0  # Bq/mL per MBq (1 kg ≈ 1 L)
        lam_u = LN2 / float(entry["uptake_half_life_h"])
        out: list[tuple[float, float]] = []
        for w, t_half in entry["washout"]:
            r = LN2 / (float(t_half) * tf) + lam_p
            out += [(u * float(w), r), (-u * float(w), r + lam_u)]
        return ExpSum(tuple(out)) + blood.scaled(float(entry.get("vascular_fraction", 0.0)))

    for key in ("liver", "spleen", "parotid", "submandibular", "lacrimal", "bowel"):
        conc[key] = specific(key, uptake[key])
    cortex = specific("kidney_cortex", uptake["kidney_cortex"])
    ratio = float(rng.uniform(*uptake["kidney_medulla_ratio"]))
    draws["kidney_medulla_ratio"] = ratio
    conc["kidney_cortex"] = cortex
    conc["kidney_medulla"] = cortex.scaled(ratio)
    for lesion in patient.lesions:
        lo, hi = uptake["lesion"]["percent_ia_per_kg_range"]
        u_factor = math.exp(rng.uniform(math.log(float(lo)), math.log(float(hi)))) / float(
            uptake["lesion"]["percent_ia_per_kg"]
        )
        conc[lesion.name] = specific(lesion.name, uptake["lesion"], u_factor=u_factor)
    bl = data["bladder"]
    f_bl = float(bl["fraction_ia"]) * _lognormal(rng, float(bl["cv"]))
    draws["bladder_fraction"] = f_bl
    v_bladder = part_volume_ml.get("bladder", 250.0)
    amp = f_bl * 1.0e6 / v_bladder
    r_v = LN2 / float(bl["voiding_half_life_h"]) + lam_p
    r_f = LN2 / float(bl["filling_half_life_h"]) + lam_p
    conc["bladder"] = ExpSum(((amp, r_v), (-amp, r_f)))
    # red marrow: per gram marrow, then per mL of each site's spongiosa
    mar = data["marrow"]
    rmblr = float(mar["rmblr"]) * _lognormal(rng, float(mar["cv_rmblr"]))
    total = _REFERENCE_MARROW_G * weight / _REFERENCE_BODY_KG * _lognormal(rng, float(mar["cv_total_mass"]))
    draws.update({"rmblr": rmblr, "red_marrow_mass_g": total})
    from theradose.tissues import get_tissue

    per_g = blood.scaled(rmblr / get_tissue("blood").density_g_per_ml)
    conc["red_marrow_per_g"] = per_g
    site_mass: dict[str, float] = {}
    for site, fraction in _SITE_FRACTION.items():
        f = fraction * _lognormal(rng, float(mar["cv_site_fraction"]))
        mass = f * total
        site_mass[site] = mass
        draws[f"marrow_fraction_{site}"] = f
        parts = [p for p in patient.parts if p.compartment == f"marrow_{site}"]
        volume = sum(part_volume_ml.get(p.name, 0.0) for p in parts)
        if volume > 0:
            conc[f"marrow_{site}"] = per_g.scaled(mass / volume)
    haematocrit = float(
        np.clip(rng.normal(float(mar["haematocrit_mean"]), float(mar["haematocrit_sd"])), 0.3, 0.55)
    )
    noise = float(data["blood_sample_relative_sd"])
    samples = tuple(
        BloodSample(float(t), float(activity_mbq * blood(t) * (1.0 + noise * rng.standard_normal())))
        for t in sample_times_h
    )
    return TrialKinetics(
        activity_mbq=float(activity_mbq),
        decay_constant_per_h=lam_p,
        concentration=conc,
        blood=blood,
        rmblr=rmblr,
        red_marrow_mass_g=total,
        marrow_site_mass_g=site_mass,
        weight_kg=weight,
        haematocrit=haematocrit,
        blood_samples=samples,
        draws=draws,
    )


def part_concentrations(patient: TrialPatient, kinetics: TrialKinetics, time_h: float) -> dict[str, float]:
    """Concentration (Bq/mL) of every part at ``time_h``."""
    out: dict[str, float] = {}
    for p in patient.parts:
        if p.compartment not in kinetics.concentration:
            raise InputError(f"no kinetics for compartment {p.compartment!r} of part {p.name}")
        out[p.name] = kinetics.concentration_bq_per_ml(p.compartment, time_h)
    return out


def part_tia_per_ml(patient: TrialPatient, kinetics: TrialKinetics) -> dict[str, float]:
    """∫ concentration dt (MBq·h per mL) of every part."""
    return {p.name: kinetics.tia_per_ml_mbq_h(p.compartment) for p in patient.parts}
