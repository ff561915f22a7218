"""CT numbers → mass density and linear attenuation coefficient maps.

Density: piecewise-linear interpolation of a calibration table (default: air, water, ICRU-44 skeletal
muscle and ICRU-44 cortical bone, ``data/imaging/hu_density_default.csv``; the muscle and bone CT numbers
from the stoichiometric method of Schneider, Pedroni & Lomax, Phys Med Biol 1996;41:111, which fits
soft tissues and bone on separate lines). Below the first point the first density is used,
above the last point the last segment is extended (dense bone, contrast).

Attenuation (bilinear water/bone model; Brown S, Bailey DL, Willowson K, Baldock C, "Investigation of the
relationship between linear attenuation coefficients and CT Hounsfield units using radionuclides for
SPECT", Appl Radiat Isot 2008;66:1206): for HU ≤ 0 the voxel is water of density ρ(HU),
μ = ρ(HU)·(μ/ρ)_water(E); for HU > 0 it is a water–bone mixture with bone fraction w = HU / HU_bone,
μ = (1 − w)·μ_water(E) + w·μ_bone(E). Attenuation coefficients (total, with coherent scattering) come from
xraydb (Elam, Ravel & Sieber, Radiat Phys Chem 2002;63:121).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import numpy.typing as npt

from theradose.errors import DataError, InputError
from theradose.imaging.volume import Volume

#: Electronvolts per keV (xraydb takes energies in eV).
EV_PER_KEV = 1.0e3


@dataclass(frozen=True)
class DensityTable:
    """CT number → mass density calibration points, increasing in HU.

    Attributes
    ----------
    hu : tuple of float
        CT numbers (HU), strictly increasing.
    density_g_per_ml : tuple of float
        Mass density (g/mL) at each point, positive and non-decreasing.
    source : str
        Where the table came from (file path or citation).
    """

    hu: tuple[float, ...]
    density_g_per_ml: tuple[float, ...]
    source: str = ""

    def __post_init__(self) -> None:
        hu = np.asarray(self.hu, dtype=np.float64)
        rho = np.asarray(self.density_g_per_ml, dtype=np.float64)
        if hu.ndim != 1 or hu.shape != rho.shape or hu.size < 2:
            raise InputError(
                f"a density table needs at least 2 (hu, density) points; got {hu.size} and {rho.size}"
            )
        if not np.all(np.isfinite(hu)) or not np.all(np.isfinite(rho)):
            raise InputError("density table contains non-finite numbers: fix the table")
        if np.any(np.diff(hu) <= 0):
            raise InputError(f"density table HU values must increase strictly; got {hu.tolist()}: sort them")
        if np.any(rho <= 0) or np.any(np.diff(rho) < 0):
            raise InputError(f"densities must be positive and non-decreasing with HU; got {rho.tolist()}")

    def density_g_per_ml_at(self, hu: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Density for CT numbers ``hu`` (any shape): interpolation, clamped below, extrapolated above."""
        x = np.asarray(hu, dtype=np.float64)
        table_hu = np.asarray(self.hu)
        table_rho = np.asarray(self.density_g_per_ml)
        rho = np.interp(x, table_hu, table_rho)
        slope = (table_rho[-1] - table_rho[-2]) / (table_hu[-1] - table_hu[-2])
        above = x > table_hu[-1]
        rho = np.where(above, table_rho[-1] + slope * (x - table_hu[-1]), rho)
        return np.asarray(rho, dtype=np.float64)


def load_density_table(path: str | Path | None = None) -> DensityTable:
    """Read a calibration table (CSV with columns ``hu,density_g_per_ml``; ``#`` lines are comments).

    Without ``path`` the shipped default (``data/imaging/hu_density_default.csv``) is read.
    """
    if path is None:
        return _default_table()
    source = Path(path)
    if not source.is_file():
        raise InputError(f"density table {str(source)!r} does not exist: check the path")
    return _parse_table(source.read_text(encoding="utf-8"), str(source))


@lru_cache(maxsize=1)
def _default_table() -> DensityTable:
    resource = resources.files("theradose").joinpath("data", "imaging", "hu_density_default.csv")
    try:
        text = resource.read_text(encoding="utf-8")
    except OSError as exc:  # pragma: no cover - installation problem
        raise DataError("default HU-density table is missing: reinstall theradose") from exc
    return _parse_table(text, "theradose default (air, water, ICRU-44 muscle, ICRU-44 cortical bone)")


def _parse_table(text: str, source: str) -> DensityTable:
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    reader = csv.DictReader(lines)
    if reader.fieldnames is None or not {"hu", "density_g_per_ml"} <= set(reader.fieldnames):
        raise InputError(f"density table {source} needs the columns hu,density_g_per_ml")
    try:
        rows = [(float(r["hu"]), float(r["density_g_per_ml"])) for r in reader]
    except (TypeError, ValueError) as exc:
        raise InputError(f"density table {source} has a non-numeric entry ({exc})") from exc
    return DensityTable(tuple(r[0] for r in rows), tuple(r[1] for r in rows), source)


def _check_ct(ct_hu: Volume) -> None:
    if not isinstance(ct_hu, Volume) or ct_hu.unit != "HU":
        unit = ct_hu.unit if isinstance(ct_hu, Volume) else type(ct_hu).__name__
        raise InputError(f"ct_hu must be a Volume in HU; got {unit!r}")


def density_map(ct_hu: Volume, *, table: DensityTable | None = None) -> Volume:
    """Mass density (unit ``"g/mL"``) of every CT voxel by the calibration ``table`` (default table)."""
    _check_ct(ct_hu)
    chosen = table or load_density_table()
    rho = chosen.density_g_per_ml_at(ct_hu.array).astype(np.float32)
    return ct_hu.with_array(rho, unit="g/mL")


@lru_cache(maxsize=1)
def cortical_bone_formula() -> str:
    """ICRU-44 cortical bone as an xraydb formula (atoms per unit mass), from the shipped composition."""
    import xraydb

    resource = resources.files("theradose").joinpath("data", "imaging", "icru44_cortical_bone.csv")
    rows = list(csv.DictReader(resource.read_text(encoding="utf-8").splitlines()))
    return "".join(
        f"{r['element']}{float(r['mass_fraction_percent']) / xraydb.atomic_mass(r['element']):.8f}"
        for r in rows
    )


def linear_attenuation_per_cm(material: str, energy_kev: float, density_g_per_ml: float) -> float:
    """μ (1/cm) of ``material`` ("water", "cortical_bone" or an xraydb formula) at ``energy_kev``."""
    import xraydb

    if not (np.isfinite(energy_kev) and 1.0 <= energy_kev <= 1.0e5):
        raise InputError(f"energy_kev must be between 1 keV and 100 MeV; got {energy_kev!r}")
    formula = {"water": "H2O", "cortical_bone": cortical_bone_formula()}.get(material, material)
    return float(xraydb.material_mu(formula, energy_kev * EV_PER_KEV, density=density_g_per_ml, kind="total"))


def attenuation_map(
    ct_hu: Volume,
    *,
    energy_kev: float,
    table: DensityTable | None = None,
    bone_hu: float | None = None,
) -> Volume:
    """Linear attenuation coefficient map (unit ``"1/cm"``) at photon energy ``energy_kev``.

    Parameters
    ----------
    ct_hu : Volume
        CT in HU.
    energy_kev : float
        Photon energy, e.g. 208.4 keV for ¹⁷⁷Lu.
    table : DensityTable, optional
        Density calibration for HU ≤ 0 (default table).
    bone_hu : float, optional
        CT number of cortical bone on this scanner; default: the last point of ``table`` (1559 HU).

    Returns
    -------
    Volume
        μ in 1/cm on the CT grid (bilinear water/bone model, see module docstring).
    """
    _check_ct(ct_hu)
    chosen = table or load_density_table()
    hu_bone = float(bone_hu) if bone_hu is not None else float(chosen.hu[-1])
    if hu_bone <= 0:
        raise InputError(f"bone_hu must be positive; got {hu_bone!r}")
    water_mass_mu = linear_attenuation_per_cm("water", energy_kev, 1.0)  # cm^2/g at unit density
    rho_bone = float(chosen.density_g_per_ml_at(hu_bone))
    mu_bone = linear_attenuation_per_cm("cortical_bone", energy_kev, rho_bone)
    hu = np.asarray(ct_hu.array, dtype=np.float64)
    soft = chosen.density_g_per_ml_at(np.minimum(hu, 0.0)) * water_mass_mu
    weight = np.maximum(hu, 0.0) / hu_bone
    mu = np.where(hu <= 0, soft, (1.0 - weight) * water_mass_mu + weight * mu_bone)
    return ct_hu.with_array(np.maximum(mu, 0.0).astype(np.float32), unit="1/cm")


__all__ = [
    "DensityTable",
    "attenuation_map",
    "density_map",
    "linear_attenuation_per_cm",
    "load_density_table",
]
