"""Per-organ time–activity models of the digital phantom, with inter-patient variability.

Every compartment (organ, organ group, tumour, remainder of the body) follows a sum of exponentials with
an uptake phase, the standard compartmental form of clinical dosimetry fits (e.g. MIRD Pamphlet 21,
Bolch et al. 2009, J Nucl Med 50:477; Kletting et al. 2013, Med Phys 40:102504)::

    A(t) = A0 · f · Σj wj · [exp(-(λj + λp) t) − exp(-(λj + λu + λp) t)],     Σj wj = 1

with λp the physical decay constant of the nuclide, λj = ln2 / T½,bio,j the washout rates and
λu = ln2 / T½,uptake the uptake rate (no uptake term when T½,uptake = 0). Its time integral from 0 to ∞
(the time-integrated activity, TIA) is analytic::

    Ã = A0 · f · Σj wj · [1 / (λj + λp) − 1 / (λj + λu + λp)].

Parameters are read from ``data/phantoms/kinetics_<tracer>.toml`` (sources cited there). Inter-patient
variability: each compartment's uptake fraction and its biological half-lives are multiplied by
independent mean-one log-normal factors (Hou et al. 2021, J Nucl Med, PMC8882881: effective half-lives
across patients are log-normal).

Within a compartment the activity concentration per unit volume is uniform, except for compartments
flagged ``mass_weighted`` (the remainder of the body), where activity is proportional to voxel mass.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources

import numpy as np
import numpy.typing as npt

from theradose.dosimetry.engines.registry import DoseEngine, parse_engine
from theradose.errors import DataError, InputError
from theradose.phantoms.anatomy import Anatomy
from theradose.units import decays_from_tia_mbq_h, dose_gy_from_energy_mev_and_mass_g

FloatArray = npt.NDArray[np.float64]
#: A kinetics library name: the ``<tracer>`` of a shipped ``data/phantoms/kinetics_<tracer>.toml``.
Tracer = str
#: Photon histories of the Monte Carlo truth dose (engine "mc").
MC_TRUTH_PHOTONS = 1_000_000


@dataclass(frozen=True)
class CompartmentSpec:
    """Population parameters of one compartment, as read from the kinetics file.

    Attributes
    ----------
    name : str
        Compartment name (``"kidneys"``, ``"liver"``, ..., ``"tumour"``).
    labels : tuple of str
        Anatomy labels that make up the compartment (empty for the tumour template).
    fraction_ia : float
        Asymptotic uptake fraction of the injected activity for the reference mass (per gram for the
        tumour template, see ``per_gram``).
    uptake_half_life_h : float
        Uptake half-life; 0 means instantaneous uptake.
    washout : tuple of (weight, biological half-life h)
        Washout components, weights summing to 1.
    cv_fraction, cv_half_life : float
        Coefficients of variation of the log-normal inter-patient factors.
    reference_mass_g : float or None
        Mass for which ``fraction_ia`` holds; the phantom scales the fraction by its organ mass / this.
    mass_weighted : bool
        Distribute activity in proportion to voxel mass (else uniform per volume).
    per_gram : bool
        ``fraction_ia`` is per gram of tissue (tumours).
    """

    name: str
    labels: tuple[str, ...]
    fraction_ia: float
    uptake_half_life_h: float
    washout: tuple[tuple[float, float], ...]
    cv_fraction: float
    cv_half_life: float
    reference_mass_g: float | None = None
    mass_weighted: bool = False
    per_gram: bool = False


@dataclass(frozen=True)
class KineticsLibrary:
    """Population kinetics of one radiopharmaceutical.

    Attributes
    ----------
    tracer : str
        Name of the kinetics library (:func:`available_tracers`).
    radiopharmaceutical : str
        E.g. ``"177Lu-PSMA-617"``.
    nuclide : str
        Canonical nuclide name (``"Lu-177"``).
    compartments : tuple of CompartmentSpec
        Organ and remainder compartments.
    tumour : CompartmentSpec
        Template for every tumour (``per_gram``).
    """

    tracer: Tracer
    radiopharmaceutical: str
    nuclide: str
    compartments: tuple[CompartmentSpec, ...]
    tumour: CompartmentSpec


def _spec(name: str, entry: Mapping[str, object], *, per_gram: bool = False) -> CompartmentSpec:
    try:
        washout = tuple((float(w), float(t)) for w, t in entry["washout"])  # type: ignore[attr-defined]
        fraction = float(entry["fraction_ia_per_g" if per_gram else "fraction_ia"])  # type: ignore[arg-type]
        spec = CompartmentSpec(
            name=name,
            labels=tuple(str(v) for v in entry.get("labels", ())),  # type: ignore[attr-defined]
            fraction_ia=fraction,
            uptake_half_life_h=float(entry["uptake_half_life_h"]),  # type: ignore[arg-type]
            washout=washout,
            cv_fraction=float(entry["cv_fraction"]),  # type: ignore[arg-type]
            cv_half_life=float(entry["cv_half_life"]),  # type: ignore[arg-type]
            reference_mass_g=(
                float(entry["reference_mass_g"]) if "reference_mass_g" in entry else None  # type: ignore[arg-type]
            ),
            mass_weighted=bool(entry.get("mass_weighted", False)),
            per_gram=per_gram,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"kinetics compartment {name!r} is malformed ({exc}): reinstall theradose") from exc
    if not math.isclose(sum(w for w, _ in spec.washout), 1.0, rel_tol=1e-9) or any(
        t <= 0.0 for _, t in spec.washout
    ):
        raise DataError(
            f"kinetics compartment {name!r}: washout weights must sum to 1 with positive half-lives"
        )
    return spec


def available_tracers() -> tuple[str, ...]:
    """Names of the shipped kinetics libraries (``data/phantoms/kinetics_<tracer>.toml``)."""
    folder = resources.files("theradose.data.phantoms")
    names = (p.name for p in folder.iterdir() if p.name.startswith("kinetics_") and p.name.endswith(".toml"))
    return tuple(sorted(n[len("kinetics_") : -len(".toml")] for n in names))


def load_kinetics(tracer: str) -> KineticsLibrary:
    """Population kinetics of ``tracer`` (one of :func:`available_tracers`) from the shipped data files."""
    key = tracer.strip().lower()
    if key not in available_tracers():
        raise InputError(f"tracer must be one of {', '.join(available_tracers())}; got {tracer!r}")
    try:
        text = (
            resources.files("theradose.data.phantoms")
            .joinpath(f"kinetics_{key}.toml")
            .read_text(encoding="utf-8")
        )
    except (FileNotFoundError, ModuleNotFoundError) as exc:
        raise DataError(f"kinetics_{key}.toml is missing: reinstall theradose") from exc
    raw = tomllib.loads(text)
    meta = raw["meta"]
    compartments = tuple(_spec(name, entry) for name, entry in raw["compartment"].items())
    return KineticsLibrary(
        tracer=key,
        radiopharmaceutical=str(meta["radiopharmaceutical"]),
        nuclide=str(meta["nuclide"]),
        compartments=compartments,
        tumour=_spec("tumour", raw["tumour"], per_gram=True),
    )


# --------------------------------------------------------------------------- one patient
@dataclass(frozen=True)
class CompartmentKinetics:
    """Kinetics of one compartment of one virtual patient.

    Attributes
    ----------
    name : str
        Compartment name (tumours: ``"tumour_<n>"``).
    label_values : tuple of int
        Label values of its voxels.
    fraction_ia : float
        Asymptotic uptake fraction f of the injected activity (already mass-scaled and sampled).
    uptake_half_life_h : float
        Uptake half-life (0: instantaneous).
    washout : tuple of (weight, biological half-life h)
    mass_weighted : bool
        Activity proportional to voxel mass (else uniform per volume).
    """

    name: str
    label_values: tuple[int, ...]
    fraction_ia: float
    uptake_half_life_h: float
    washout: tuple[tuple[float, float], ...]
    mass_weighted: bool

    def _rates(self, decay_constant_per_h: float) -> tuple[FloatArray, FloatArray, float]:
        weights = np.array([w for w, _ in self.washout])
        lam = math.log(2.0) / np.array([t for _, t in self.washout]) + decay_constant_per_h
        lam_u = 0.0 if self.uptake_half_life_h == 0.0 else math.log(2.0) / self.uptake_half_life_h
        return weights, lam, lam_u

    def activity_fraction(self, time_h: float | FloatArray, *, decay_constant_per_h: float) -> FloatArray:
        """A(t)/A0 (decayed), see the module docstring; ``time_h`` ≥ 0 hours after injection."""
        t = np.asarray(time_h, dtype=np.float64)
        weights, lam, lam_u = self._rates(decay_constant_per_h)
        tt = t[..., None]
        terms = np.exp(-lam * tt)
        if lam_u > 0.0:
            terms = terms - np.exp(-(lam + lam_u) * tt)
        return np.asarray(self.fraction_ia * (terms @ weights), dtype=np.float64)

    def tia_fraction_h(self, *, decay_constant_per_h: float) -> float:
        """∫₀^∞ A(t)/A0 dt in hours (analytic, see the module docstring)."""
        weights, lam, lam_u = self._rates(decay_constant_per_h)
        per = 1.0 / lam
        if lam_u > 0.0:
            per = per - 1.0 / (lam + lam_u)
        return float(self.fraction_ia * np.dot(weights, per))


@dataclass(frozen=True)
class PatientKinetics:
    """The kinetics of one virtual patient on one anatomy.

    Attributes
    ----------
    tracer : str
    radiopharmaceutical : str
    nuclide : str
    injected_activity_mbq : float
    decay_constant_per_h : float
        Physical decay constant λp of the nuclide.
    compartments : tuple of CompartmentKinetics
    seed : int or None
        Seed of the variability (None: population values).
    compartment_index : ndarray of int16, shape anatomy grid
        Compartment of every voxel (−1: none, e.g. air).
    voxel_weight : ndarray of float64, shape anatomy grid
        Fraction of its compartment's activity held by each voxel (sums to 1 per compartment).
    """

    tracer: str
    radiopharmaceutical: str
    nuclide: str
    injected_activity_mbq: float
    decay_constant_per_h: float
    compartments: tuple[CompartmentKinetics, ...]
    seed: int | None
    compartment_index: npt.NDArray[np.int16]
    voxel_weight: FloatArray

    def compartment(self, name: str) -> CompartmentKinetics:
        """The compartment called ``name``."""
        for c in self.compartments:
            if c.name == name:
                return c
        raise InputError(
            f"compartment {name!r} is unknown; choose one of {', '.join(c.name for c in self.compartments)}"
        )

    def activity_mbq(self, name: str, time_h: float | FloatArray) -> FloatArray:
        """Activity (MBq) of compartment ``name`` at ``time_h`` hours after injection."""
        c = self.compartment(name)
        return self.injected_activity_mbq * c.activity_fraction(
            time_h, decay_constant_per_h=self.decay_constant_per_h
        )

    def tia_mbq_h(self, name: str) -> float:
        """Time-integrated activity (MBq·h) of compartment ``name``, 0 → ∞, analytic."""
        c = self.compartment(name)
        return self.injected_activity_mbq * c.tia_fraction_h(decay_constant_per_h=self.decay_constant_per_h)

    def _per_compartment_map(self, values: FloatArray) -> FloatArray:
        lut = np.concatenate([values, [0.0]])  # index −1 → 0
        return np.asarray(lut[self.compartment_index] * self.voxel_weight, dtype=np.float64)

    def activity_map_mbq(self, time_h: float) -> FloatArray:
        """Activity per voxel (MBq) at ``time_h`` hours after injection, shape of the anatomy grid."""
        if not math.isfinite(time_h) or time_h < 0.0:
            raise InputError(f"time_h must be >= 0 hours after injection; got {time_h}")
        values = np.array([float(self.activity_mbq(c.name, time_h)) for c in self.compartments])
        return self._per_compartment_map(values)

    def tia_map_mbq_h(self) -> FloatArray:
        """Time-integrated activity per voxel (MBq·h), 0 → ∞ (analytic per compartment)."""
        values = np.array([self.tia_mbq_h(c.name) for c in self.compartments])
        return self._per_compartment_map(values)

    def parameters(self) -> dict[str, object]:
        """Sampled parameters of every compartment, JSON-ready."""
        return {
            c.name: {
                "fraction_ia": c.fraction_ia,
                "uptake_half_life_h": c.uptake_half_life_h,
                "washout": [{"weight": w, "biological_half_life_h": t} for w, t in c.washout],
                "mass_weighted": c.mass_weighted,
            }
            for c in self.compartments
        }


def _lognormal_factor(rng: np.random.Generator, cv: float) -> float:
    """Mean-one log-normal factor with coefficient of variation ``cv`` (σ² = ln(1 + cv²))."""
    if cv <= 0.0:
        return 1.0
    sigma = math.sqrt(math.log1p(cv * cv))
    return float(rng.lognormal(-0.5 * sigma * sigma, sigma))


def patient_kinetics(
    anatomy: Anatomy,
    tracer: str | KineticsLibrary = "psma",
    *,
    injected_activity_mbq: float = 7400.0,
    seed: int | None = None,
) -> PatientKinetics:
    """Sample the kinetics of one virtual patient on ``anatomy``.

    Parameters
    ----------
    anatomy : Anatomy
        The voxelised patient (labels, density).
    tracer : str or KineticsLibrary
        Radiopharmaceutical.
    injected_activity_mbq : float
        Administered activity A0 (MBq) at t = 0.
    seed : int or None
        Seed of the log-normal inter-patient variability; ``None`` gives the population values.

    Returns
    -------
    PatientKinetics
        Compartments with sampled parameters and the voxel weights.
    """
    from theradose.nuclides import get_nuclide

    if not math.isfinite(injected_activity_mbq) or injected_activity_mbq <= 0.0:
        raise InputError(f"injected_activity_mbq must be > 0; got {injected_activity_mbq}")
    library = tracer if isinstance(tracer, KineticsLibrary) else load_kinetics(tracer)
    nuclide = get_nuclide(library.nuclide)
    rng = np.random.default_rng(seed)
    density = anatomy.density_g_per_ml.astype(np.float64)
    voxel_ml = anatomy.grid.voxel_volume_ml

    index = np.full(anatomy.labels.shape, -1, dtype=np.int16)
    weight = np.zeros(anatomy.labels.shape, dtype=np.float64)
    compartments: list[CompartmentKinetics] = []

    def add(spec: CompartmentSpec, name: str, values: Sequence[int], mass_scale_g: float | None) -> None:
        mask = np.isin(anatomy.labels, values)
        if not mask.any():
            return
        mass_g = float(density[mask].sum() * voxel_ml)
        fraction = spec.fraction_ia
        if spec.per_gram:
            fraction *= mass_g
        elif mass_scale_g is not None:
            fraction *= mass_g / mass_scale_g
        f_factor = 1.0 if seed is None else _lognormal_factor(rng, spec.cv_fraction)
        t_factor = 1.0 if seed is None else _lognormal_factor(rng, spec.cv_half_life)
        k = len(compartments)
        compartments.append(
            CompartmentKinetics(
                name=name,
                label_values=tuple(int(v) for v in values),
                fraction_ia=fraction * f_factor,
                uptake_half_life_h=spec.uptake_half_life_h * t_factor,
                washout=tuple((w, t * t_factor) for w, t in spec.washout),
                mass_weighted=spec.mass_weighted,
            )
        )
        index[mask] = k
        w = density[mask] if spec.mass_weighted else np.ones(int(mask.sum()))
        weight[mask] = w / w.sum()

    for spec in library.compartments:
        values = [anatomy.label_table[n] for n in spec.labels if n in anatomy.label_table]
        add(spec, spec.name, values, spec.reference_mass_g)
    for tumour in anatomy.tumours:
        add(library.tumour, tumour.name, [tumour.label], None)

    total_fraction = sum(c.fraction_ia for c in compartments)
    if total_fraction > 1.0:
        raise InputError(
            f"sampled uptake fractions sum to {total_fraction:.3f} > 1 of the injected activity: "
            "use fewer or smaller tumours"
        )
    return PatientKinetics(
        tracer=library.tracer,
        radiopharmaceutical=library.radiopharmaceutical,
        nuclide=nuclide.name,
        injected_activity_mbq=float(injected_activity_mbq),
        decay_constant_per_h=float(nuclide.decay_constant_per_h),
        compartments=tuple(compartments),
        seed=seed,
        compartment_index=index,
        voxel_weight=weight,
    )


# --------------------------------------------------------------------------- truth dose
@dataclass(frozen=True)
class TruthDose:
    """Truth absorbed dose of a phantom.

    Attributes
    ----------
    dose_gy : ndarray, shape anatomy grid
        Absorbed dose per voxel.
    engine : DoseEngine
        How it was computed (see :func:`truth_dose`).
    description : str
        One line on the method, for ``truth.json``.
    """

    dose_gy: FloatArray
    engine: str
    description: str


def truth_dose(
    anatomy: Anatomy,
    tia_map_mbq_h: FloatArray,
    *,
    nuclide: str = "Lu-177",
    engine: DoseEngine | str = DoseEngine.VSV,
    seed: int = 0,
) -> TruthDose:
    """Absorbed dose (Gy) of a TIA map on the phantom's true densities.

    ``engine="local"``: each voxel absorbs the energy of all electrons (β, internal conversion, Auger;
    ICRP 107 via :mod:`theradose.nuclides`) emitted in it, photons escape (MIRD Pamphlet 21 notation,
    Bolch et al. 2009, J Nucl Med 50:477)::

        D = Ã · N_decays/(MBq·h) · E_electrons / (ρ · V_voxel)

    ``engine="vsv"`` and ``"mc"``: the voxel engines of :mod:`theradose.dosimetry.engines` (voxel
    S-value convolution with density correction; hybrid Monte Carlo with photon transport, seeded,
    :data:`MC_TRUTH_PHOTONS` histories), given the true density map.

    Parameters
    ----------
    anatomy : Anatomy
        Supplies voxel densities and the grid.
    tia_map_mbq_h : ndarray, shape anatomy grid
        Time-integrated activity per voxel.
    nuclide : str
        Nuclide name.
    engine : DoseEngine or str
        Dose calculation method (default ``vsv``: deterministic, electrons transported between voxels).
    seed : int
        Seed of the Monte Carlo engine.

    Returns
    -------
    TruthDose
    """
    from theradose.nuclides import get_nuclide

    engine = parse_engine(engine)
    if tia_map_mbq_h.shape != anatomy.labels.shape:
        raise InputError(
            f"tia_map_mbq_h shape {tia_map_mbq_h.shape} differs from the anatomy grid {anatomy.labels.shape}"
        )
    if engine is DoseEngine.LOCAL:
        energy = float(get_nuclide(nuclide).electron_energy_mev_per_decay)
        mass_g = anatomy.density_g_per_ml.astype(np.float64) * anatomy.grid.voxel_volume_ml
        dose = np.zeros_like(mass_g)
        tissue = mass_g > 0.01 * anatomy.grid.voxel_volume_ml  # not air
        dose[tissue] = dose_gy_from_energy_mev_and_mass_g(
            decays_from_tia_mbq_h(tia_map_mbq_h[tissue]) * energy, mass_g[tissue]
        )
        return TruthDose(
            dose_gy=dose,
            engine=engine,
            description=f"local deposition of the electron energy ({energy:.5f} MeV per decay) in the voxel",
        )
    from theradose.dosimetry.engines import dose_rate_or_dose
    from theradose.imaging.volume import Volume

    affine = anatomy.grid.affine()
    tia = Volume(array=tia_map_mbq_h, affine=affine, unit="MBq·h")
    density = Volume(array=anatomy.density_g_per_ml, affine=affine, unit="g/mL")
    if engine is DoseEngine.VSV:
        result = dose_rate_or_dose(tia, density, nuclide, engine=engine, workers=1)
        description = "voxel S-value convolution (theradose.dosimetry.engines, vsv), true densities"
    else:
        result = dose_rate_or_dose(
            tia, density, nuclide, engine=engine, n_photons=MC_TRUTH_PHOTONS, seed=seed, workers=1
        )
        description = (
            f"hybrid Monte Carlo (theradose.dosimetry.engines, mc), {MC_TRUTH_PHOTONS} photons, seed {seed}"
        )
    return TruthDose(
        dose_gy=np.asarray(result.array, dtype=np.float64), engine=engine, description=description
    )


@dataclass(frozen=True)
class RegionTruth:
    """Truth of one region: mass, time-integrated activity and mean absorbed dose."""

    name: str
    mass_g: float
    tia_mbq_h: float
    dose_gy: float


def region_truth(anatomy: Anatomy, tia_map_mbq_h: FloatArray, dose_gy: FloatArray) -> list[RegionTruth]:
    """Per-region truth: mass (g), TIA (MBq·h, sum over voxels) and mass-weighted mean dose (Gy)."""
    mass_g = anatomy.density_g_per_ml.astype(np.float64) * anatomy.grid.voxel_volume_ml
    out: list[RegionTruth] = []
    for name in anatomy.region_names():
        mask = anatomy.mask(name)
        m = float(mass_g[mask].sum())
        tia = float(tia_map_mbq_h[mask].sum())
        dose = float((dose_gy[mask] * mass_g[mask]).sum() / m) if m > 0 else 0.0
        out.append(RegionTruth(name, m, tia, dose))
    return out
