"""Uncertainty budget of a region's absorbed dose and BED (EANM guidance, Gear et al. 2018).

Measurement model
-----------------
Following the EANM Dosimetry Committee guidance (Gear JI et al. "EANM practical guidance on uncertainty
analysis for molecular radiotherapy absorbed dose calculations", Eur J Nucl Med Mol Imaging
2018;45:2456), the mean absorbed dose of a region is the time-integrated activity times a dose factor,
and each activity is a count rate divided by a calibration factor and a recovery coefficient:

.. math::
    D = \\tilde A_{fit}\\,\\frac{Q_0}{Q}\\,\\frac{RC_0}{RC(V)}\\,(1 + \\varepsilon_{reg})\\,
        S(m)\\,(1 + \\varepsilon_S)(1 + \\varepsilon_{decay}),
    \\qquad m = \\rho V,\\quad S(m) = S_0 (m/m_0)^{-b},\\quad RC(V) = RC_0 (V/V_0)^{\\beta}

with the inputs (each with a relative standard uncertainty ``u``):

=================  ====================================================  =====================
component          input                                                 ∂ln D/∂ln x
=================  ====================================================  =====================
``calibration``    SPECT calibration factor Q (from the QA record)       −1
``recovery``       recovery coefficient at fixed volume (PVC)            −1
``volume``         VOI volume (segmentation ±1 voxel)                    −β − b
``density``        mass density (CT calibration)                          −b
``registration``   activity lost/gained by misregistration                +1
``fit_tia``        TIA from the fit covariance                           +1
``fit_half_life``  effective half-life from the fit (BED only)           0 (BED: see below)
``s_value``        dose factor / kernel                                  +1
``decay_data``     energy per decay (nuclear data)                       +1
=================  ====================================================  =====================

``β = d ln RC/d ln V`` is the slope of the recovery curve at the region's volume (0 without volume-
dependent PVC) and ``b`` the mass exponent of the dose factor (1 for self-dose by local deposition,
S ∝ 1/m; Gear et al. 2018 fit S ∝ m^−b to sphere dose factors). The volume enters both the recovery
and the dose factor: this is the correlation between TIA and dose factor through the VOI that Gear et
al. 2018 propagate with a covariance term; here the shared input carries it exactly. The calibration
factor and the recovery coefficient are common to all time points, so they act on the TIA as a whole
and are not averaged down by the fit (Gear et al. 2018, systematic components). Further correlations
between inputs can be given (``correlations``).

Propagation
-----------
First order (JCGM 100:2008 (GUM) eq. 13; Gear et al. 2018 eq. 1): with sensitivities ``a_i`` of
``ln D`` and the covariance ``V_ij = r_ij u_i u_j`` of the relative inputs,
:math:`(u_D/D)^2 = a^T V a`. Each component is reported with its contribution ``|a_i| u_i`` and its
share of the variance ``a_i (V a)_i / a^T V a`` (shares sum to 1, covariances included). The *dominant*
components are the fewest, largest first, whose shares reach :data:`DOMINANT_SHARE` (at most three).

BED (Dale 1985, Br J Radiol 58:515): :math:`BED = D (1 + G D/(\\alpha/\\beta))` with
:math:`G = \\lambda/(\\lambda + \\mu)` for the terminal effective rate :math:`\\lambda = \\ln 2/T`;
:math:`\\partial\\ln BED/\\partial\\ln D = (1 + 2GD/(\\alpha/\\beta))/(1 + GD/(\\alpha/\\beta))` and
:math:`\\partial\\ln BED/\\partial\\ln T = -\\frac{GD/(\\alpha/\\beta)}{1 + GD/(\\alpha/\\beta)}\\,
\\frac{\\mu}{\\lambda + \\mu}`. The fit's TIA and half-life are correlated (from its covariance,
:func:`fit_components`).

:func:`monte_carlo_budget` samples the inputs (correlated normals) and evaluates the model above
exactly: the cross-check of the first-order result (GUM Supplement 1, JCGM 101:2008).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from theradose.errors import InputError

if TYPE_CHECKING:
    from theradose.kinetics.fit import FitResult

FloatArray = npt.NDArray[np.float64]

ComponentName = Literal[
    "calibration",
    "recovery",
    "volume",
    "density",
    "registration",
    "fit_tia",
    "fit_half_life",
    "s_value",
    "decay_data",
]

#: Every component of the budget, in the order of the measurement chain.
COMPONENTS: tuple[ComponentName, ...] = (
    "calibration",
    "recovery",
    "volume",
    "density",
    "registration",
    "fit_tia",
    "fit_half_life",
    "s_value",
    "decay_data",
)

#: Components whose error repeats from cycle to cycle for the same patient, camera and region (used to
#: correlate cycles in :func:`plan_confidence`).
SYSTEMATIC_COMPONENTS: frozenset[str] = frozenset(
    {"calibration", "recovery", "density", "s_value", "decay_data"}
)

#: The dominant components are the fewest whose variance shares reach this fraction.
DOMINANT_SHARE = 0.8

#: Version of the JSON shape written by :meth:`UncertaintyBudget.to_json`.
SCHEMA_VERSION = 1

#: Relative standard uncertainty of the energy emitted per decay, by nuclide (``decay_data`` component).
#: Lu-177: ICRP Publication 107 (2008) gives 147.9 keV of electron energy per decay (0.14792 MeV in the
#: package's data); an independent tabulation from the evaluated decay data gives the same 147.9 keV
#: (Alcocer-Ávila et al. 2020, EJNMMI Phys 7:33, Table 1). The agreement to the 0.1 keV stated is taken
#: as a standard uncertainty of 0.1 %.
DECAY_DATA_RELATIVE_SIGMA: Mapping[str, float] = {"Lu-177": 0.001}
#: Standard uncertainty of a voxelised boundary, in voxels: a boundary placed on the voxel grid lies
#: anywhere within ±½ voxel of the true surface, a rectangular distribution of width 1 voxel, σ = 1/√12
#: (JCGM 100:2008 (GUM) 4.3.7).
VOXELISATION_SIGMA_VOXELS = 1.0 / math.sqrt(12.0)

_LN2 = math.log(2.0)


def _relative(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    if not (math.isfinite(value) and value >= 0):
        raise InputError(f"{name} must be a finite relative standard uncertainty >= 0; got {value!r}")
    return float(value)


@dataclass(frozen=True)
class BudgetInputs:
    """Inputs of one region's budget. ``None`` means *not assessed* (listed as such, never taken as 0).

    Attributes
    ----------
    region : str
    dose_gy : float
        The region's mean absorbed dose, Gy (> 0).
    calibration_rel_sigma, recovery_rel_sigma, volume_rel_sigma, density_rel_sigma,
    registration_rel_sigma, fit_tia_rel_sigma, s_value_rel_sigma, decay_data_rel_sigma : float or None
        Relative standard uncertainties of the inputs (see the module table).
    recovery_volume_slope : float
        β = d ln RC/d ln V at the region's volume (0 without volume-dependent PVC).
    mass_exponent : float
        b of S ∝ m^−b (1 for local deposition / self-dose).
    effective_half_life_h : float, optional
        Terminal effective half-life, h (needed for BED).
    fit_half_life_rel_sigma : float, optional
        Relative standard uncertainty of the half-life from the fit.
    fit_tia_half_life_correlation : float
        Correlation between the fit's TIA and half-life (see :func:`fit_components`).
    alpha_beta_gy, repair_half_time_h : float, optional
        Tissue parameters for BED.
    correlations : Mapping[tuple[str, str], float]
        Further correlation coefficients between components.
    sources : Mapping[str, str]
        Provenance of each component's σ (e.g. "QA record, 2031-05-02").
    """

    region: str
    dose_gy: float
    calibration_rel_sigma: float | None = None
    recovery_rel_sigma: float | None = None
    volume_rel_sigma: float | None = None
    density_rel_sigma: float | None = None
    registration_rel_sigma: float | None = None
    fit_tia_rel_sigma: float | None = None
    s_value_rel_sigma: float | None = None
    decay_data_rel_sigma: float | None = None
    recovery_volume_slope: float = 0.0
    mass_exponent: float = 1.0
    effective_half_life_h: float | None = None
    fit_half_life_rel_sigma: float | None = None
    fit_tia_half_life_correlation: float = 0.0
    alpha_beta_gy: float | None = None
    repair_half_time_h: float | None = None
    correlations: Mapping[tuple[str, str], float] = field(default_factory=dict)
    sources: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.dose_gy) and self.dose_gy > 0):
            raise InputError(f"dose_gy of region {self.region!r} must be > 0; got {self.dose_gy!r}")
        for name in COMPONENTS:
            _relative(f"{name}_rel_sigma", self.relative_sigma(name))
        for label, value in (
            ("recovery_volume_slope", self.recovery_volume_slope),
            ("mass_exponent", self.mass_exponent),
        ):
            if not math.isfinite(value):
                raise InputError(f"{label} must be finite; got {value!r}")
        if not -1.0 <= self.fit_tia_half_life_correlation <= 1.0:
            raise InputError(
                "fit_tia_half_life_correlation must lie in [-1, 1]; "
                f"got {self.fit_tia_half_life_correlation!r}"
            )
        for (a, b), rho in self.correlations.items():
            if a not in COMPONENTS or b not in COMPONENTS or a == b:
                raise InputError(
                    f"correlation ({a!r}, {b!r}) must name two different components of {COMPONENTS}"
                )
            if not -1.0 <= rho <= 1.0:
                raise InputError(f"correlation between {a} and {b} must lie in [-1, 1]; got {rho!r}")
        bed_fields = (self.effective_half_life_h, self.alpha_beta_gy, self.repair_half_time_h)
        if any(v is not None for v in bed_fields) and not all(v is not None and v > 0 for v in bed_fields):
            raise InputError(
                f"region {self.region!r}: BED needs effective_half_life_h, alpha_beta_gy and "
                "repair_half_time_h, all > 0: give all three or none"
            )
        assessed = [name for name in COMPONENTS if self.relative_sigma(name) is not None]
        if not assessed:
            raise InputError(
                f"region {self.region!r}: no component assessed: give at least one relative sigma"
            )

    def relative_sigma(self, name: str) -> float | None:
        """The relative σ of a component (``None`` when not assessed)."""
        if name == "fit_half_life":
            return self.fit_half_life_rel_sigma
        value: float | None = getattr(self, f"{name}_rel_sigma")
        return value

    @property
    def has_bed(self) -> bool:
        """Whether the tissue parameters and half-life for BED were given."""
        return self.effective_half_life_h is not None

    def dose_sensitivity(self, name: str) -> float:
        """∂ln D/∂ln x of a component (module table)."""
        return {
            "calibration": -1.0,
            "recovery": -1.0,
            "volume": -self.recovery_volume_slope - self.mass_exponent,
            "density": -self.mass_exponent,
            "registration": 1.0,
            "fit_tia": 1.0,
            "fit_half_life": 0.0,
            "s_value": 1.0,
            "decay_data": 1.0,
        }[name]


@dataclass(frozen=True)
class BudgetComponent:
    """One line of the budget.

    Attributes
    ----------
    name : str
    relative_sigma : float
        u(x)/x of the input.
    sensitivity : float
        ∂ln D/∂ln x.
    relative_contribution : float
        |∂ln D/∂ln x|·u(x)/x: the relative dose uncertainty this input alone gives.
    variance_share : float
        Share of u²(D) including its covariances (shares sum to 1).
    bed_sensitivity, bed_relative_contribution, bed_variance_share : float or None
        The same for BED.
    source : str
        Where the σ came from.
    """

    name: str
    relative_sigma: float
    sensitivity: float
    relative_contribution: float
    variance_share: float
    bed_sensitivity: float | None = None
    bed_relative_contribution: float | None = None
    bed_variance_share: float | None = None
    source: str = ""


@dataclass(frozen=True)
class UncertaintyBudget:
    """The uncertainty budget of one region's dose (and BED): frozen, JSON-serialisable.

    Attributes
    ----------
    region : str
    dose_gy, dose_sigma_gy, dose_relative_sigma : float
    components : tuple of BudgetComponent
        Assessed components, in :data:`COMPONENTS` order.
    not_assessed : tuple of str
        Components without an assessed σ (not counted, and said so).
    dominant : tuple of str
        Fewest components, largest first, whose variance shares reach :data:`DOMINANT_SHARE`.
    correlations : tuple of (str, str, float)
        Correlations used between components.
    bed_gy, bed_sigma_gy, bed_relative_sigma : float or None
    bed_dominant : tuple of str
    method : str
    schema_version : int
    """

    region: str
    dose_gy: float
    dose_sigma_gy: float
    dose_relative_sigma: float
    components: tuple[BudgetComponent, ...]
    not_assessed: tuple[str, ...]
    dominant: tuple[str, ...]
    correlations: tuple[tuple[str, str, float], ...] = ()
    bed_gy: float | None = None
    bed_sigma_gy: float | None = None
    bed_relative_sigma: float | None = None
    bed_dominant: tuple[str, ...] = ()
    method: str = "first-order propagation, GUM (JCGM 100:2008) eq. 13; Gear et al. 2018 EJNMMI 45:2456"
    schema_version: int = SCHEMA_VERSION

    def component(self, name: str) -> BudgetComponent:
        """The line of ``name``."""
        for c in self.components:
            if c.name == name:
                return c
        raise InputError(
            f"component {name!r} is not in the budget of {self.region!r} (not assessed or unknown)"
        )

    def interval_gy(self, coverage: float = 0.95) -> tuple[float, float]:
        """Two-sided coverage interval of the dose, Gy (normal, GUM G.3: D ± k u with k from coverage)."""
        from scipy.stats import norm

        if not 0 < coverage < 1:
            raise InputError(f"coverage must lie in (0, 1); got {coverage!r}")
        k = float(norm.ppf(0.5 + coverage / 2.0))
        return self.dose_gy - k * self.dose_sigma_gy, self.dose_gy + k * self.dose_sigma_gy

    def rounded(self, digits: int = 6) -> UncertaintyBudget:
        """The budget with every number stated to ``digits`` significant digits (for a reproducible
        record)."""

        def r(value: float | None) -> float | None:
            if value is None or not math.isfinite(value):
                return None
            return 0.0 if value == 0 else float(f"{value:.{digits}g}")

        def rr(value: float) -> float:
            out = r(value)
            return 0.0 if out is None else out

        return UncertaintyBudget(
            region=self.region,
            dose_gy=rr(self.dose_gy),
            dose_sigma_gy=rr(self.dose_sigma_gy),
            dose_relative_sigma=rr(self.dose_relative_sigma),
            components=tuple(
                BudgetComponent(
                    name=c.name,
                    relative_sigma=rr(c.relative_sigma),
                    sensitivity=rr(c.sensitivity),
                    relative_contribution=rr(c.relative_contribution),
                    variance_share=rr(c.variance_share),
                    bed_sensitivity=r(c.bed_sensitivity),
                    bed_relative_contribution=r(c.bed_relative_contribution),
                    bed_variance_share=r(c.bed_variance_share),
                    source=c.source,
                )
                for c in self.components
            ),
            not_assessed=self.not_assessed,
            dominant=self.dominant,
            correlations=tuple((a, b, rr(rho)) for a, b, rho in self.correlations),
            bed_gy=r(self.bed_gy),
            bed_sigma_gy=r(self.bed_sigma_gy),
            bed_relative_sigma=r(self.bed_relative_sigma),
            bed_dominant=self.bed_dominant,
            method=self.method,
            schema_version=self.schema_version,
        )

    def systematic_share(self) -> float:
        """Share of u²(D) from components that repeat between cycles (:data:`SYSTEMATIC_COMPONENTS`)."""
        return float(sum(c.variance_share for c in self.components if c.name in SYSTEMATIC_COMPONENTS))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (schema :data:`SCHEMA_VERSION`)."""
        return {
            "schema_version": self.schema_version,
            "region": self.region,
            "dose_gy": self.dose_gy,
            "dose_sigma_gy": self.dose_sigma_gy,
            "dose_relative_sigma": self.dose_relative_sigma,
            "components": [
                {
                    "name": c.name,
                    "relative_sigma": c.relative_sigma,
                    "sensitivity": c.sensitivity,
                    "relative_contribution": c.relative_contribution,
                    "variance_share": c.variance_share,
                    "bed_sensitivity": c.bed_sensitivity,
                    "bed_relative_contribution": c.bed_relative_contribution,
                    "bed_variance_share": c.bed_variance_share,
                    "source": c.source,
                }
                for c in self.components
            ],
            "not_assessed": list(self.not_assessed),
            "dominant": list(self.dominant),
            "correlations": [[a, b, rho] for a, b, rho in self.correlations],
            "bed_gy": self.bed_gy,
            "bed_sigma_gy": self.bed_sigma_gy,
            "bed_relative_sigma": self.bed_relative_sigma,
            "bed_dominant": list(self.bed_dominant),
            "method": self.method,
        }

    def to_json(self) -> str:
        """Canonical JSON text (sorted keys)."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UncertaintyBudget:
        """Inverse of :meth:`to_dict`; refuses another schema version."""
        if data.get("schema_version") != SCHEMA_VERSION:
            raise InputError(
                f"uncertainty budget schema_version {data.get('schema_version')!r} is not {SCHEMA_VERSION}: "
                "re-run the dosimetry with this version"
            )
        try:
            components = tuple(BudgetComponent(**dict(c)) for c in data["components"])
            return cls(
                region=str(data["region"]),
                dose_gy=float(data["dose_gy"]),
                dose_sigma_gy=float(data["dose_sigma_gy"]),
                dose_relative_sigma=float(data["dose_relative_sigma"]),
                components=components,
                not_assessed=tuple(str(x) for x in data["not_assessed"]),
                dominant=tuple(str(x) for x in data["dominant"]),
                correlations=tuple((str(a), str(b), float(r)) for a, b, r in data["correlations"]),
                bed_gy=None if data["bed_gy"] is None else float(data["bed_gy"]),
                bed_sigma_gy=None if data["bed_sigma_gy"] is None else float(data["bed_sigma_gy"]),
                bed_relative_sigma=None
                if data["bed_relative_sigma"] is None
                else float(data["bed_relative_sigma"]),
                bed_dominant=tuple(str(x) for x in data["bed_dominant"]),
                method=str(data["method"]),
                schema_version=int(data["schema_version"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"uncertainty budget JSON is malformed ({exc}): write it with to_json") from exc

    @classmethod
    def from_json(cls, text: str) -> UncertaintyBudget:
        """Inverse of :meth:`to_json`."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"uncertainty budget JSON cannot be parsed ({exc})") from exc
        if not isinstance(data, dict):
            raise InputError("uncertainty budget JSON must be an object")
        return cls.from_dict(data)


def _bed_terms(inputs: BudgetInputs) -> tuple[float, float, float] | None:
    """(BED, ∂ln BED/∂ln D, ∂ln BED/∂ln T) at the estimate, or None without BED inputs."""
    if not inputs.has_bed:
        return None
    assert inputs.effective_half_life_h is not None
    assert inputs.alpha_beta_gy is not None and inputs.repair_half_time_h is not None
    lam = _LN2 / inputs.effective_half_life_h
    mu = _LN2 / inputs.repair_half_time_h
    g = lam / (lam + mu)
    q = g * inputs.dose_gy / inputs.alpha_beta_gy
    bed = inputs.dose_gy * (1.0 + q)
    k_dose = (1.0 + 2.0 * q) / (1.0 + q)
    k_half_life = -(q / (1.0 + q)) * (mu / (lam + mu))
    return bed, k_dose, k_half_life


def _correlation_matrix(
    inputs: BudgetInputs, names: Sequence[str]
) -> tuple[FloatArray, list[tuple[str, str, float]]]:
    r = np.eye(len(names))
    used: list[tuple[str, str, float]] = []
    pairs = dict(inputs.correlations)
    if inputs.fit_tia_half_life_correlation:
        pairs[("fit_tia", "fit_half_life")] = inputs.fit_tia_half_life_correlation
    for (a, b), rho in pairs.items():
        if a in names and b in names and rho:
            i, j = names.index(a), names.index(b)
            r[i, j] = r[j, i] = rho
            used.append((a, b, float(rho)))
    eigenvalues = np.linalg.eigvalsh(r)
    if eigenvalues.min() < -1e-12:
        raise InputError(
            f"region {inputs.region!r}: the correlation coefficients {used} are not a valid correlation "
            "matrix (not positive semi-definite): check them"
        )
    return r, used


def _dominant(names: Sequence[str], shares: Sequence[float]) -> tuple[str, ...]:
    order = sorted(range(len(names)), key=lambda i: -shares[i])
    chosen: list[str] = []
    total = 0.0
    for i in order:
        if shares[i] <= 0 or len(chosen) == 3:
            break
        chosen.append(names[i])
        total += shares[i]
        if total >= DOMINANT_SHARE:
            break
    return tuple(chosen)


def propagate_budget(inputs: BudgetInputs) -> UncertaintyBudget:
    """First-order uncertainty budget of a region's dose and BED (module docstring).

    Parameters
    ----------
    inputs : BudgetInputs

    Returns
    -------
    UncertaintyBudget
    """
    names = [n for n in COMPONENTS if inputs.relative_sigma(n) is not None]
    not_assessed = tuple(n for n in COMPONENTS if inputs.relative_sigma(n) is None)
    u = np.array([float(inputs.relative_sigma(n) or 0.0) for n in names])
    r, used = _correlation_matrix(inputs, names)
    cov = r * np.outer(u, u)
    a = np.array([inputs.dose_sensitivity(n) for n in names])
    var = float(a @ cov @ a)
    rel = math.sqrt(max(var, 0.0))
    shares = (a * (cov @ a)) / var if var > 0 else np.zeros(len(names))
    bed = _bed_terms(inputs)
    b_vec = None
    bed_rel = None
    bed_shares = None
    if bed is not None:
        _, k_dose, k_half_life = bed
        b_vec = k_dose * a + k_half_life * np.array([1.0 if n == "fit_half_life" else 0.0 for n in names])
        bed_var = float(b_vec @ cov @ b_vec)
        bed_rel = math.sqrt(max(bed_var, 0.0))
        bed_shares = (b_vec * (cov @ b_vec)) / bed_var if bed_var > 0 else np.zeros(len(names))
    components = tuple(
        BudgetComponent(
            name=n,
            relative_sigma=float(u[i]),
            sensitivity=float(a[i]),
            relative_contribution=float(abs(a[i]) * u[i]),
            variance_share=float(shares[i]),
            bed_sensitivity=None if b_vec is None else float(b_vec[i]),
            bed_relative_contribution=None if b_vec is None else float(abs(b_vec[i]) * u[i]),
            bed_variance_share=None if bed_shares is None else float(bed_shares[i]),
            source=inputs.sources.get(n, ""),
        )
        for i, n in enumerate(names)
    )
    return UncertaintyBudget(
        region=inputs.region,
        dose_gy=inputs.dose_gy,
        dose_sigma_gy=inputs.dose_gy * rel,
        dose_relative_sigma=rel,
        components=components,
        not_assessed=not_assessed,
        dominant=_dominant(names, [float(s) for s in shares]),
        correlations=tuple(used),
        bed_gy=None if bed is None else bed[0],
        bed_sigma_gy=None if bed is None or bed_rel is None else bed[0] * bed_rel,
        bed_relative_sigma=bed_rel,
        bed_dominant=() if bed_shares is None else _dominant(names, [float(s) for s in bed_shares]),
    )


@dataclass(frozen=True)
class MonteCarloBudget:
    """Result of :func:`monte_carlo_budget` (sample statistics of the exact model)."""

    n_samples: int
    dose_mean_gy: float
    dose_sigma_gy: float
    dose_quantiles_gy: tuple[float, float]
    bed_mean_gy: float | None
    bed_sigma_gy: float | None


def monte_carlo_budget(inputs: BudgetInputs, *, n_samples: int = 20000, seed: int = 0) -> MonteCarloBudget:
    """Propagation of distributions (JCGM 101:2008): sample every assessed input from a normal
    distribution (correlated as given) and evaluate the measurement model of the module docstring
    exactly — the recovery curve as a local power law ``RC ∝ V^β``, the dose factor as ``S ∝ m^−b`` —
    and BED with :func:`theradose.radiobiology.bed.g_factor` at the sampled half-life.

    Returns the sample mean, standard deviation and 2.5–97.5 % quantiles of the dose (and BED).
    """
    if n_samples < 100:
        raise InputError(f"n_samples must be at least 100; got {n_samples}")
    names = [n for n in COMPONENTS if inputs.relative_sigma(n) is not None]
    u = np.array([float(inputs.relative_sigma(n) or 0.0) for n in names])
    r, _ = _correlation_matrix(inputs, names)
    rng = np.random.default_rng(seed)
    # Correlated standard normals through the eigen-decomposition (valid for semi-definite matrices).
    w, v = np.linalg.eigh(r)
    root = v * np.sqrt(np.clip(w, 0.0, None))
    z = rng.standard_normal((n_samples, len(names))) @ root.T
    factor: dict[str, FloatArray] = {n: 1.0 + u[i] * z[:, i] for i, n in enumerate(names)}
    ones = np.ones(n_samples)

    def f(name: str) -> FloatArray:
        return factor.get(name, ones)

    if any(np.any(f(n) <= 0) for n in names):
        raise InputError(
            "a sampled input is not positive: the relative uncertainties are too large for this model"
        )
    b, beta = inputs.mass_exponent, inputs.recovery_volume_slope
    volume, density = f("volume"), f("density")
    dose = (
        inputs.dose_gy
        * f("fit_tia")
        / f("calibration")
        / (f("recovery") * volume**beta)
        * f("registration")
        * (density * volume) ** (-b)
        * f("s_value")
        * f("decay_data")
    )
    bed_mean = bed_sigma = None
    if inputs.has_bed:
        assert inputs.effective_half_life_h is not None
        assert inputs.alpha_beta_gy is not None and inputs.repair_half_time_h is not None
        half_life = inputs.effective_half_life_h * f("fit_half_life")
        lam = _LN2 / half_life
        mu = _LN2 / inputs.repair_half_time_h
        bed = dose * (1.0 + lam / (lam + mu) * dose / inputs.alpha_beta_gy)
        bed_mean, bed_sigma = float(bed.mean()), float(bed.std(ddof=1))
    low, high = np.quantile(dose, [0.025, 0.975])
    return MonteCarloBudget(
        n_samples=n_samples,
        dose_mean_gy=float(dose.mean()),
        dose_sigma_gy=float(dose.std(ddof=1)),
        dose_quantiles_gy=(float(low), float(high)),
        bed_mean_gy=bed_mean,
        bed_sigma_gy=bed_sigma,
    )


# ----------------------------------------------------------------------------------------- helpers


def volume_relative_sigma(volume_ml: float, dilated_ml: float, eroded_ml: float) -> float:
    """Relative σ of a VOI volume from segmentation ±1 voxel: ``(V₊ − V₋)/(2V)``.

    Convention: the boundary is uncertain by one voxel, taken as one standard uncertainty (the VOI
    dilated and eroded by one voxel bound the ±1σ volumes). A rectangular reading of the same bounds
    would divide by √3 (GUM 4.3.7); the convention here is the conservative one.
    """
    if not (volume_ml > 0 and dilated_ml >= volume_ml >= eroded_ml >= 0):
        raise InputError(
            "need dilated_ml >= volume_ml >= eroded_ml >= 0 and volume_ml > 0; "
            f"got {dilated_ml}, {volume_ml}, {eroded_ml}"
        )
    return (dilated_ml - eroded_ml) / (2.0 * volume_ml)


def volume_relative_sigma_from_mask(mask: npt.ArrayLike, *, boundary_sigma_voxels: float = 1.0) -> float:
    """:func:`volume_relative_sigma` of a boolean VOI mask: dilation and erosion by one voxel
    (6-connected structuring element, :func:`scipy.ndimage.binary_dilation`).

    With ``boundary_sigma_voxels`` = s the boundary's standard uncertainty is s voxels instead of one:
    the one-voxel result is scaled by s (first order: the volume changes in proportion to the
    displacement of the surface). :data:`VOXELISATION_SIGMA_VOXELS` is the error of a boundary that is
    exact but drawn on the voxel grid.
    """
    from scipy import ndimage

    if not (math.isfinite(boundary_sigma_voxels) and boundary_sigma_voxels >= 0):
        raise InputError(f"boundary_sigma_voxels must be >= 0; got {boundary_sigma_voxels!r}")

    m = np.asarray(mask, dtype=bool)
    n = int(m.sum())
    if n == 0:
        raise InputError("mask is empty: the VOI has no voxel")
    structure = ndimage.generate_binary_structure(m.ndim, 1)
    dilated = int(ndimage.binary_dilation(m, structure=structure).sum())
    eroded = int(ndimage.binary_erosion(m, structure=structure).sum())
    return boundary_sigma_voxels * volume_relative_sigma(float(n), float(dilated), float(eroded))


def registration_relative_sigma(
    dice_after: float, body_mask: npt.ArrayLike, region_mask: npt.ArrayLike
) -> float:
    """Relative σ of a region's activity from the residual misregistration that the body's Dice
    coefficient after registration reports.

    A convex body of volume V and surface S translated by δ overlaps its copy with
    Dice = 1 − S·δ/(4V) (the part of it outside the copy is δ times its mean projected area, S/4, by
    Cauchy's formula; the symmetric difference is twice that). So δ = 4V(1 − Dice)/S. The same
    translation moves the fraction S_r·δ/(4V_r) of a uniformly filled region out of its VOI. With the
    surface-to-volume ratios measured the same way for both (one-voxel dilation and erosion,
    :func:`volume_relative_sigma_from_mask`, u = k·S·h/V with the same shape factor k), the relative
    σ is

    .. math:: u_{reg} = (1 - \\mathrm{Dice})\\; u_{region} / u_{body}.

    The displacement is taken as the standard uncertainty of the region's position at the registered
    time points (conservative: not averaged down over time points).
    """
    if not 0.0 < dice_after <= 1.0:
        raise InputError(f"dice_after must lie in (0, 1]; got {dice_after!r}")
    u_body = volume_relative_sigma_from_mask(body_mask)
    u_region = volume_relative_sigma_from_mask(region_mask)
    if u_body <= 0:
        raise InputError("the body mask has no surface: give the body outline")
    return (1.0 - dice_after) * u_region / u_body


@dataclass(frozen=True)
class FitComponents:
    """The fit's contribution to a budget: relative σ of TIA and half-life and their correlation."""

    tia_rel_sigma: float
    half_life_rel_sigma: float | None
    correlation: float
    scaled: bool


def fit_components(fit: FitResult, *, scale_by_goodness_of_fit: bool = True) -> FitComponents:
    """Relative σ of the TIA and of the terminal half-life of a fit and their correlation, from the
    parameter covariance (delta method). With ``scale_by_goodness_of_fit`` both σ are scaled by
    :math:`\\sqrt{\\max(1, \\chi^2/\\nu)}` (:attr:`FitResult.tia_sigma_scaled_mbq_h`), so a fit that does
    not describe its data carries the larger uncertainty.

    Raises
    ------
    InputError
        The fit has no covariance (no TIA uncertainty).
    """
    from theradose.kinetics.models import get_model

    if fit.tia_sigma_mbq_h is None or fit.covariance is None or fit.model == "trapezoid":
        raise InputError(
            f"the {fit.model} fit has no parameter covariance: the fit term of the budget needs an "
            "exponential fit with per-point uncertainties"
        )
    model = get_model(fit.model, decay_constant_per_h=fit.decay_constant_per_h)
    params = np.array([fit.parameters[n] for n in model.parameter_names])
    g_tia = model.integral_gradient(params)
    scale = 1.0
    if scale_by_goodness_of_fit and fit.tia_sigma_scaled_mbq_h is not None:
        scale = fit.tia_sigma_scaled_mbq_h / fit.tia_sigma_mbq_h
    cov = fit.covariance
    var_tia = float(g_tia @ cov @ g_tia)
    tia_rel = math.sqrt(max(var_tia, 0.0)) / fit.tia_mbq_h
    # ln T = ln ln2 − ln λ_T: gradient −e_T/λ_T for a fitted terminal rate; 0 for physical decay.
    rates = [i for i in model.rate_indices]
    terminal = model.terminal_rate_per_h(params)
    index = next((i for i in rates if math.isclose(float(params[i]), terminal, rel_tol=1e-12)), None)
    if index is None:
        return FitComponents(tia_rel * scale, 0.0, 0.0, scale > 1.0)
    g_t = np.zeros(params.size)
    g_t[index] = -1.0 / terminal
    var_t = float(g_t @ cov @ g_t)
    t_rel = math.sqrt(max(var_t, 0.0))
    rho = float(g_tia @ cov @ g_t) / (math.sqrt(var_tia) * t_rel) if var_tia > 0 and t_rel > 0 else 0.0
    return FitComponents(tia_rel * scale, t_rel * scale, max(-1.0, min(1.0, rho)), scale > 1.0)


# --------------------------------------------------------------------------- next-cycle confidence


def one_sided_confidence(expected_gy: float, sigma_gy: float, limit_gy: float) -> float:
    """Probability that the true dose stays at or below ``limit_gy`` when the estimate is normal with
    mean ``expected_gy`` and standard uncertainty ``sigma_gy``: :math:`\\Phi((L - \\hat D)/\\sigma)`."""
    from scipy.stats import norm

    if not (sigma_gy >= 0 and math.isfinite(sigma_gy)):
        raise InputError(f"sigma_gy must be >= 0; got {sigma_gy!r}")
    if sigma_gy == 0:
        return 1.0 if expected_gy <= limit_gy else 0.0
    return float(norm.cdf((limit_gy - expected_gy) / sigma_gy))


def plan_confidence(
    *,
    delivered_dose_gy: float,
    delivered_sigma_gy: float,
    gy_per_gbq: float,
    activity_gbq: float,
    limit_gy: float,
    budget: UncertaintyBudget,
    inter_cycle_cv: float = 0.0,
) -> float:
    """Confidence that a planned next cycle keeps the cumulative dose within ``limit_gy``.

    The next cycle's dose :math:`gA` has the relative error :math:`e_n = e_s + e_r` with
    :math:`\\mathrm{var}(e_s) = s\\,u_B^2` — the systematic share ``s`` (:meth:`UncertaintyBudget.
    systematic_share`: calibration, recovery, density, dose factor, decay data) of the measured cycle's
    budget :math:`u_B` — and :math:`\\mathrm{var}(e_r) = (1 - s) u_B^2 + c^2` with ``inter_cycle_cv``
    :math:`c` (cycle-to-cycle variability of the Gy/GBq). The delivered dose shares :math:`e_s` (same
    camera, calibration and dose factors), at most its whole σ:
    :math:`\\mathrm{cov} = gA\\,\\sqrt{s}\\,u_B\\,\\min(\\sqrt{s}\\,u_B D_{del}, \\sigma_{del})`.
    The cumulative dose is taken normal with mean :math:`D_{del} + gA`; returns
    :func:`one_sided_confidence`. The planner today uses a one-sided quantile of the Gy/GBq
    (:mod:`theradose.planning.nextcycle`); this gives a plan's confidence from the full budget.
    """
    if activity_gbq < 0 or gy_per_gbq < 0 or delivered_dose_gy < 0 or delivered_sigma_gy < 0:
        raise InputError("doses, activity and sigmas must be >= 0")
    if not 0 <= inter_cycle_cv < 1:
        raise InputError(f"inter_cycle_cv must lie in [0, 1); got {inter_cycle_cv!r}")
    planned = gy_per_gbq * activity_gbq
    u_b = budget.dose_relative_sigma
    sigma_next = planned * math.hypot(u_b, inter_cycle_cv)
    systematic = math.sqrt(budget.systematic_share()) * u_b
    covariance = planned * systematic * min(systematic * delivered_dose_gy, delivered_sigma_gy)
    variance = delivered_sigma_gy**2 + sigma_next**2 + 2.0 * covariance
    return one_sided_confidence(delivered_dose_gy + planned, math.sqrt(max(variance, 0.0)), limit_gy)


def max_activity_for_confidence(
    *,
    delivered_dose_gy: float,
    delivered_sigma_gy: float,
    gy_per_gbq: float,
    limit_gy: float,
    budget: UncertaintyBudget,
    confidence: float,
    inter_cycle_cv: float = 0.0,
) -> float:
    """Largest activity (GBq) whose :func:`plan_confidence` is at least ``confidence`` (0 when even no
    activity reaches it); bisection, the confidence decreasing with activity."""
    if not 0.5 <= confidence < 1:
        raise InputError(f"confidence must lie in [0.5, 1); got {confidence!r}")

    def ok(activity: float) -> bool:
        return (
            plan_confidence(
                delivered_dose_gy=delivered_dose_gy,
                delivered_sigma_gy=delivered_sigma_gy,
                gy_per_gbq=gy_per_gbq,
                activity_gbq=activity,
                limit_gy=limit_gy,
                budget=budget,
                inter_cycle_cv=inter_cycle_cv,
            )
            >= confidence
        )

    if not ok(0.0) or gy_per_gbq <= 0:
        return 0.0 if not ok(0.0) else math.inf
    high = max(limit_gy / gy_per_gbq, 1e-9)
    while ok(high):
        high *= 2.0
    low = 0.0
    for _ in range(200):
        mid = 0.5 * (low + high)
        if ok(mid):
            low = mid
        else:
            high = mid
        if high - low <= 1e-12 * max(high, 1.0):
            break
    return low
