"""Red marrow absorbed dose: the blood-based and the image-based method, and their disagreement.

Blood-based method (EANM Dosimetry Committee guideline, Hindorf et al. 2010, Eur J Nucl Med Mol Imaging
37:1238): the marrow's activity concentration follows the blood's,

    Ã_RM / m_RM = RMBLR · Ã_bl / m_bl,

with Ã_bl/m_bl the time-integrated activity per gram of whole blood (blood samples; blood density of
the tissue registry; a plasma sample is converted to whole blood with the haematocrit for a
radiopharmaceutical that stays out of red cells, c_bl = c_pl·(1 − HCT)) and RMBLR the red-marrow-to-blood
concentration ratio: 1 for small molecules that bind neither to blood nor to marrow cells (per
radiopharmaceutical in ``data/dosimetry/marrow.toml``), or RMECFF/(1 − HCT) with RMECFF = 0.19 for
radiopharmaceuticals confined to the extracellular fluid (Sgouros 1993, J Nucl Med 34:689). The self-dose
of the electrons, absorbed locally, is then D_self = Ē_e · Ã_RM/m_RM (the marrow mass cancels); photon
self- and cross-dose need S values S(RM ← source) and the sources' time-integrated activities
(:func:`cross_dose_gy`; MIRD Pamphlet 21, Bolch et al. 2009).

Image-based method: the time-integrated activity in a VOI of vertebral bodies (L2-L4 by default)
scaled to the whole red marrow by the reference fraction of active marrow in those vertebrae (ICRP 70
Table 41 after Cristy 1981), Ã_RM = Ã_VOI / f_VOI, and D_self = Ē_e · Ã_RM / m_RM with the patient's red
marrow mass scaled from the ICRP 89 reference by body mass.

Both return a :class:`MarrowDose` with a standard uncertainty whose budget names its terms; the
disagreement is reported by :func:`compare_methods`.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from theradose.errors import DataError, FitError, InputError

FloatArray = npt.NDArray[np.float64]
SampleKind = Literal["blood", "plasma"]


@dataclass(frozen=True)
class MarrowData:
    """Reference data of ``data/dosimetry/marrow.toml`` (sources in the file)."""

    reference_mass_g: Mapping[str, float]
    reference_body_kg: Mapping[str, float]
    mass_relative_sigma: float
    blood_density_g_per_ml: float
    rmecff: float
    site_fraction: Mapping[str, float]
    vertebra_groups: Mapping[str, tuple[str, int]]
    site_fraction_relative_sigma: float
    rmblr: Mapping[str, tuple[float, float, str]]


def _blood_density() -> float:
    """Whole-blood density of the tissue registry (:mod:`theradose.tissues`)."""
    from theradose.tissues import get_tissue

    return float(get_tissue("blood").density_g_per_ml)


@lru_cache(maxsize=1)
def marrow_data() -> MarrowData:
    """The shipped red marrow reference data."""
    try:
        raw = tomllib.loads(
            resources.files("theradose").joinpath("data", "dosimetry", "marrow.toml").read_text("utf-8")
        )
        ref = raw["reference"]
        return MarrowData(
            reference_mass_g={s: float(ref[s]["red_marrow_mass_g"]) for s in ("M", "F")},
            reference_body_kg={s: float(ref[s]["body_mass_kg"]) for s in ("M", "F")},
            mass_relative_sigma=float(ref["mass_relative_sigma"]),
            blood_density_g_per_ml=_blood_density(),
            rmecff=float(raw["rmecff"]),
            site_fraction={k: float(v) for k, v in raw["site_fraction"].items()},
            vertebra_groups={
                k: (str(v["group"]), int(v["count"])) for k, v in raw["vertebra_groups"].items()
            },
            site_fraction_relative_sigma=float(raw["site_fraction_uncertainty"]["relative_sigma"]),
            rmblr={
                name: (float(e["value"]), float(e["relative_sigma"]), str(e["citation"]))
                for name, e in raw["rmblr"].items()
            },
        )
    except (OSError, KeyError, TypeError, ValueError, tomllib.TOMLDecodeError) as exc:
        raise DataError(f"marrow.toml is missing or malformed ({exc}): reinstall theradose") from exc


# ------------------------------------------------------------------------------------------ references
def red_marrow_mass_g(*, sex: str, weight_kg: float) -> float:
    """Patient red marrow mass: the ICRP 89 reference of the sex scaled by body mass (Hindorf et al. 2010)."""
    data = marrow_data()
    key = sex.upper()
    if key not in data.reference_mass_g:
        raise InputError(
            f"patient sex must be 'M' or 'F' for the red marrow reference mass; got {sex!r}: set patient.sex"
        )
    if not (weight_kg > 0 and math.isfinite(weight_kg)):
        raise InputError(
            f"patient weight_kg must be > 0 for the red marrow mass; got {weight_kg!r}: set patient.weight_kg"
        )
    return data.reference_mass_g[key] * weight_kg / data.reference_body_kg[key]


_VERTEBRA = re.compile(r"^([CTL])(\d{1,2})$")


def vertebral_marrow_fraction(vertebrae: Sequence[str]) -> float:
    """Reference fraction of the red marrow in the named vertebrae (e.g. ``["L2", "L3", "L4"]``).

    Each vertebra holds its group's ICRP 70 fraction divided by the vertebrae in the group.
    """
    data = marrow_data()
    if not vertebrae:
        raise InputError("vertebrae must name at least one vertebra, e.g. ['L2', 'L3', 'L4']")
    total = 0.0
    seen: set[str] = set()
    for v in vertebrae:
        m = _VERTEBRA.match(v.strip().upper())
        if m is None or m.group(1) not in data.vertebra_groups:
            raise InputError(
                f"vertebra {v!r} is not a vertebra name like 'L3' or 'T12': fix marrow.vertebrae"
            )
        group, count = data.vertebra_groups[m.group(1)]
        number = int(m.group(2))
        if not 1 <= number <= count:
            raise InputError(
                f"vertebra {v!r} does not exist ({m.group(1)}1-{m.group(1)}{count}): fix marrow.vertebrae"
            )
        name = f"{m.group(1)}{number}"
        if name in seen:
            raise InputError(f"vertebra {name} is listed twice in marrow.vertebrae")
        seen.add(name)
        total += data.site_fraction[group] / count
    return total


def rmblr_for(radiopharmaceutical: str) -> tuple[float, float, str]:
    """(RMBLR, relative σ, citation) of a radiopharmaceutical; unknown names are an error, never a default."""
    table = marrow_data().rmblr
    if radiopharmaceutical not in table:
        raise InputError(
            f"no cited red-marrow-to-blood ratio for {radiopharmaceutical!r} (known: {', '.join(table)}): "
            "give marrow.rmblr and marrow.rmblr_relative_sigma in the study file"
        )
    return table[radiopharmaceutical]


def rmblr_extracellular(haematocrit: float) -> float:
    """RMBLR = RMECFF/(1 − HCT), radiopharmaceutical confined to the extracellular fluid (Sgouros 1993)."""
    if not 0.0 < haematocrit < 1.0:
        raise InputError(f"haematocrit must be a fraction between 0 and 1; got {haematocrit!r}")
    return marrow_data().rmecff / (1.0 - haematocrit)


# ------------------------------------------------------------------------------------------ blood curve
@dataclass(frozen=True)
class BloodIntegral:
    """Time integral of a blood concentration curve.

    Attributes
    ----------
    tia_per_ml_mbq_h : float
        ∫₀^∞ c(t) dt, MBq·h per mL of whole blood.
    relative_sigma : float
        Its relative standard uncertainty (fit covariance, delta method).
    model : str
        ``"exp1"`` or ``"exp2"`` (sum of decaying exponentials, AICc-selected).
    parameters : tuple of (amplitude Bq/mL, rate 1/h)
    """

    tia_per_ml_mbq_h: float
    relative_sigma: float
    model: str
    parameters: tuple[tuple[float, float], ...]


def integrate_blood_curve(
    time_h: Sequence[float],
    concentration_bq_per_ml: Sequence[float],
    *,
    relative_sd: float = 0.05,
    decay_constant_per_h: float,
) -> BloodIntegral:
    """Fit sums of one, two and three decaying exponentials c(t) = Σ a_k e^{−r_k t} (rates ≥ λ_p, measured
    concentrations, not decay-corrected) by weighted least squares (σ = ``relative_sd`` × value), select
    by AICc, and integrate analytically (Σ a_k/r_k; MIRD Pamphlet 21). A model with k parameters needs
    more than k + 1 samples for its AICc (bi-exponential: 6, tri-exponential: 8); blood clearance of
    small molecules has a fast distribution phase, so frequent early samples matter."""
    from scipy.optimize import least_squares

    t = np.asarray(time_h, dtype=np.float64)
    c = np.asarray(concentration_bq_per_ml, dtype=np.float64)
    if t.ndim != 1 or t.shape != c.shape or t.size < 2:
        raise InputError("blood samples need at least 2 (time_h, concentration) pairs")
    if np.any(np.diff(t) <= 0) or np.any(t < 0):
        raise InputError(f"blood sample times must be increasing and >= 0; got {t.tolist()}: sort them")
    if np.any(c <= 0) or not np.all(np.isfinite(c)):
        raise InputError(f"blood sample concentrations must be > 0; got {c.tolist()}")
    if not relative_sd > 0:
        raise InputError(f"relative_sd must be > 0; got {relative_sd}")
    lam = float(decay_constant_per_h)
    sigma = relative_sd * c
    results: list[tuple[float, int, FloatArray, FloatArray | None]] = []
    for n_exp in (1, 2, 3):
        k = 2 * n_exp
        if t.size < k + 2:
            continue
        # parameters: log amplitudes, log(rate − λ_p); start rates spread from the sampling span
        start_rates = (
            np.geomspace(max(1.0 / max(t[-1], 1.0), 1e-3), 3.0 / max(t[1], 0.1), n_exp)
            if n_exp > 1
            else np.array([0.02])
        )
        p0 = np.concatenate([np.log(np.full(n_exp, c[0] / n_exp)), np.log(start_rates)])

        def model(p: FloatArray, n: int = n_exp) -> FloatArray:
            a = np.exp(p[:n])
            r = np.exp(p[n:]) + lam
            return np.asarray(np.sum(a[None, :] * np.exp(-r[None, :] * t[:, None]), axis=1), dtype=np.float64)

        fit = least_squares(lambda p, m=model: (m(p) - c) / sigma, p0, method="lm", max_nfev=20000)
        if not fit.success:
            continue
        rss = float(np.sum(fit.fun**2))
        n = t.size
        aicc = n * math.log(max(rss, 1e-300) / n) + 2 * k + 2 * k * (k + 1) / (n - k - 1)
        try:
            cov = np.linalg.inv(fit.jac.T @ fit.jac)
        except np.linalg.LinAlgError:
            cov = None
        results.append((aicc, n_exp, np.asarray(fit.x), cov))
    if not results:
        raise FitError("the blood curve could not be fitted by a sum of exponentials: check the samples")
    aicc, n_exp, p, cov = min(results, key=lambda r: r[0])
    a = np.exp(p[:n_exp])
    r = np.exp(p[n_exp:]) + lam
    integral = float(np.sum(a / r))
    rel = math.nan
    if cov is not None:
        # gradient of Σ a/r w.r.t. log a and log(r − λ)
        grad = np.concatenate([a / r, -a * (r - lam) / r**2])
        var = float(grad @ cov @ grad)
        rel = math.sqrt(max(var, 0.0)) / integral
    from theradose.units import bq_to_mbq

    return BloodIntegral(
        tia_per_ml_mbq_h=float(bq_to_mbq(integral)),
        relative_sigma=rel,
        model=f"exp{n_exp}",
        parameters=tuple((float(x), float(y)) for x, y in zip(a, r, strict=True)),
    )


# ------------------------------------------------------------------------------------------ results
@dataclass(frozen=True)
class MarrowDose:
    """A red marrow absorbed dose estimate.

    Attributes
    ----------
    method : {"blood", "image"}
    self_dose_gy : float
        Self-dose of the electrons absorbed in the marrow.
    self_dose_sigma_gy : float
        Its standard uncertainty.
    cross_dose_gy : float or None
        Photon self- and cross-dose from S values, None when not computed (``cross_dose_note`` says why).
    cross_dose_note : str
    marrow_tia_mbq_h : float
        Time-integrated activity of the whole red marrow.
    red_marrow_mass_g : float
    budget : dict
        Relative standard uncertainty of each term.
    parameters : dict
        What was used (RMBLR and its source, vertebrae and fraction, blood model, ...).
    """

    method: str
    self_dose_gy: float
    self_dose_sigma_gy: float
    cross_dose_gy: float | None
    cross_dose_note: str
    marrow_tia_mbq_h: float
    red_marrow_mass_g: float
    budget: Mapping[str, float] = field(default_factory=dict)
    parameters: Mapping[str, Any] = field(default_factory=dict)

    @property
    def relative_sigma(self) -> float:
        return self.self_dose_sigma_gy / self.self_dose_gy if self.self_dose_gy > 0 else math.nan

    @property
    def total_dose_gy(self) -> float | None:
        """Self-dose plus cross-dose, None when the cross-dose was not computed."""
        return None if self.cross_dose_gy is None else self.self_dose_gy + self.cross_dose_gy

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "self_dose_gy": self.self_dose_gy,
            "self_dose_sigma_gy": self.self_dose_sigma_gy,
            "cross_dose_gy": self.cross_dose_gy,
            "cross_dose_note": self.cross_dose_note,
            "total_dose_gy": self.total_dose_gy,
            "marrow_tia_mbq_h": self.marrow_tia_mbq_h,
            "red_marrow_mass_g": self.red_marrow_mass_g,
            "uncertainty_budget_relative": dict(self.budget),
            "parameters": dict(self.parameters),
        }


def _local_dose_gy(tia_mbq_h: float, mass_g: float, electron_energy_mev: float) -> float:
    """Electron energy of ``tia_mbq_h`` absorbed in ``mass_g`` (Gy)."""
    from theradose.units import decays_from_tia_mbq_h, dose_gy_from_energy_mev_and_mass_g

    return float(
        dose_gy_from_energy_mev_and_mass_g(decays_from_tia_mbq_h(tia_mbq_h) * electron_energy_mev, mass_g)
    )


def cross_dose_gy(
    source_tia_mbq_h: Mapping[str, float], s_values_mgy_per_mbq_s: Mapping[str, float]
) -> float:
    """Σ_sources Ã_s · S(RM ← s) (MIRD Pamphlet 21); every source needs an S value."""
    missing = [s for s in source_tia_mbq_h if s not in s_values_mgy_per_mbq_s]
    if missing:
        raise InputError(
            f"no S value S(red_marrow <- {missing[0]}) in the table: add it or remove the source"
        )
    from theradose.units import hours_to_seconds, mgy_to_gy

    total_mgy = sum(
        float(hours_to_seconds(tia)) * s_values_mgy_per_mbq_s[s] for s, tia in source_tia_mbq_h.items()
    )
    return float(mgy_to_gy(total_mgy))


def blood_based_dose(
    time_h: Sequence[float],
    concentration_bq_per_ml: Sequence[float],
    *,
    radiopharmaceutical: str,
    electron_energy_mev: float,
    decay_constant_per_h: float,
    sex: str,
    weight_kg: float,
    sample_kind: SampleKind = "blood",
    haematocrit: float | None = None,
    rmblr: float | None = None,
    rmblr_relative_sigma: float | None = None,
    sample_relative_sd: float = 0.05,
    cross_dose: float | None = None,
    cross_dose_note: str = "not computed: no S(red marrow <- source) table given",
) -> MarrowDose:
    """EANM blood-based red marrow dose (module docstring).

    Parameters
    ----------
    time_h, concentration_bq_per_ml : sequence of float
        Samples: time after administration and concentration (not decay-corrected).
    radiopharmaceutical : str
        Selects the cited RMBLR default (``data/dosimetry/marrow.toml``) unless ``rmblr`` is given.
    electron_energy_mev : float
        Mean electron energy per decay (ICRP 107).
    decay_constant_per_h : float
    sex, weight_kg : str, float
        For the patient's red marrow mass (reported; it cancels in the electron self-dose).
    sample_kind : {"blood", "plasma"}
        Plasma samples are converted with ``haematocrit`` (required then).
    haematocrit : float, optional
    rmblr, rmblr_relative_sigma : float, optional
        Override of the per-radiopharmaceutical default (both or neither).
    sample_relative_sd : float
        Relative standard deviation of one sample measurement (well counter, pipetting).
    cross_dose : float, optional
        Photon self- and cross-dose (Gy) computed elsewhere (:func:`cross_dose_gy`).
    """
    data = marrow_data()
    if (rmblr is None) != (rmblr_relative_sigma is None):
        raise InputError("give marrow.rmblr and marrow.rmblr_relative_sigma together, or neither")
    if rmblr is None:
        ratio, ratio_sigma, source = rmblr_for(radiopharmaceutical)
    else:
        if not (rmblr > 0 and rmblr_relative_sigma is not None and rmblr_relative_sigma >= 0):
            raise InputError(
                f"marrow.rmblr must be > 0 with a relative sigma >= 0; got {rmblr}, {rmblr_relative_sigma}"
            )
        ratio, ratio_sigma, source = float(rmblr), float(rmblr_relative_sigma), "study file"
    conc = np.asarray(concentration_bq_per_ml, dtype=np.float64)
    if sample_kind == "plasma":
        if haematocrit is None:
            raise InputError("plasma samples need marrow.haematocrit to convert them to whole blood: add it")
        if not 0.0 < haematocrit < 1.0:
            raise InputError(f"marrow.haematocrit must be a fraction between 0 and 1; got {haematocrit!r}")
        conc = conc * (1.0 - haematocrit)
    elif sample_kind != "blood":
        raise InputError(f"marrow.sample = {sample_kind!r}: choose 'blood' or 'plasma'")
    integral = integrate_blood_curve(
        time_h, conc.tolist(), relative_sd=sample_relative_sd, decay_constant_per_h=decay_constant_per_h
    )
    per_g_blood = integral.tia_per_ml_mbq_h / data.blood_density_g_per_ml
    per_g_marrow = ratio * per_g_blood
    mass = red_marrow_mass_g(sex=sex, weight_kg=weight_kg)
    dose = _local_dose_gy(per_g_marrow, 1.0, electron_energy_mev)
    fit_sigma = integral.relative_sigma if math.isfinite(integral.relative_sigma) else sample_relative_sd
    budget = {"rmblr": ratio_sigma, "blood_curve_fit": fit_sigma}
    rel = math.sqrt(sum(v * v for v in budget.values()))
    return MarrowDose(
        method="blood",
        self_dose_gy=dose,
        self_dose_sigma_gy=dose * rel,
        cross_dose_gy=cross_dose,
        cross_dose_note="" if cross_dose is not None else cross_dose_note,
        marrow_tia_mbq_h=per_g_marrow * mass,
        red_marrow_mass_g=mass,
        budget=budget,
        parameters={
            "rmblr": ratio,
            "rmblr_source": source,
            "sample": sample_kind,
            "haematocrit": haematocrit,
            "blood_model": integral.model,
            "blood_tia_per_ml_mbq_h": integral.tia_per_ml_mbq_h,
            "n_samples": len(conc),
        },
    )


def image_based_dose(
    voi_tia_mbq_h: float,
    *,
    vertebrae: Sequence[str],
    electron_energy_mev: float,
    sex: str,
    weight_kg: float,
    voi_tia_relative_sigma: float = 0.0,
    cross_dose: float | None = None,
    cross_dose_note: str = "not computed: no S(red marrow <- source) table given",
) -> MarrowDose:
    """Image-based red marrow dose from a vertebral-body VOI (module docstring).

    ``voi_tia_mbq_h`` is the (partial-volume corrected) time-integrated activity of the VOI;
    ``vertebrae`` names the vertebrae it covers.
    """
    data = marrow_data()
    if not (voi_tia_mbq_h >= 0 and math.isfinite(voi_tia_mbq_h)):
        raise InputError(f"the marrow VOI's time-integrated activity must be >= 0; got {voi_tia_mbq_h!r}")
    fraction = vertebral_marrow_fraction(vertebrae)
    mass = red_marrow_mass_g(sex=sex, weight_kg=weight_kg)
    total_tia = voi_tia_mbq_h / fraction
    dose = _local_dose_gy(total_tia, mass, electron_energy_mev)
    budget = {
        "voi_activity": float(voi_tia_relative_sigma),
        "marrow_fraction_in_vertebrae": data.site_fraction_relative_sigma,
        "red_marrow_mass": data.mass_relative_sigma,
    }
    rel = math.sqrt(sum(v * v for v in budget.values()))
    return MarrowDose(
        method="image",
        self_dose_gy=dose,
        self_dose_sigma_gy=dose * rel,
        cross_dose_gy=cross_dose,
        cross_dose_note="" if cross_dose is not None else cross_dose_note,
        marrow_tia_mbq_h=total_tia,
        red_marrow_mass_g=mass,
        budget=budget,
        parameters={"vertebrae": [v.upper() for v in vertebrae], "fraction_in_vertebrae": fraction},
    )


@dataclass(frozen=True)
class MarrowComparison:
    """Both methods and their disagreement (image − blood, relative to blood)."""

    blood: MarrowDose | None
    image: MarrowDose | None
    disagreement_percent: float | None
    within_uncertainty: bool | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "blood": None if self.blood is None else self.blood.as_dict(),
            "image": None if self.image is None else self.image.as_dict(),
            "disagreement_percent": self.disagreement_percent,
            "within_combined_uncertainty_k2": self.within_uncertainty,
        }


def compare_methods(blood: MarrowDose | None, image: MarrowDose | None) -> MarrowComparison:
    """Disagreement of the two self-doses: 100·(image − blood)/blood, and whether it lies within the
    combined expanded uncertainty (k = 2) of the two."""
    if blood is None or image is None or blood.self_dose_gy <= 0:
        return MarrowComparison(blood, image, None, None)
    diff = image.self_dose_gy - blood.self_dose_gy
    combined = math.hypot(image.self_dose_sigma_gy, blood.self_dose_sigma_gy)
    return MarrowComparison(
        blood, image, 100.0 * diff / blood.self_dose_gy, bool(abs(diff) <= 2.0 * combined)
    )
