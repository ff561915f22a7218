"""Voxel dosimetry engines behind one interface: :func:`dose_rate_or_dose`.

``engine="local"``
    Charged-particle energy deposited in the voxel of decay, divided by the voxel mass ρ·V
    (:mod:`~theradose.dosimetry.engines.local`); optionally a fixed fraction of the photon energy too.
``engine="vsv"``
    FFT convolution with voxel S-value kernels (:mod:`~theradose.dosimetry.kernels`,
    :mod:`~theradose.dosimetry.engines.vsv`), density-corrected and mixing soft-tissue and bone kernels.
``engine="mc"``
    Hybrid Monte Carlo (:mod:`~theradose.dosimetry.engines.mc`): photons transported in the
    CT-derived medium, electrons deposited locally or with the kernel.

Input ``MBq·h`` (time-integrated activity) gives absorbed dose in Gy; input ``MBq`` (activity) gives
absorbed dose rate in Gy/h. The density map is a :class:`~theradose.imaging.volume.Volume` in ``g/mL``
(or ``HU``, converted with :func:`density_from_hu`) on the same grid; without it every voxel is soft
tissue (1.03 g/cm³, tissue registry). Doses are doses to the local medium.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from theradose.dosimetry.engines.registry import DoseEngine, parse_engine
from theradose.errors import GeometryError, InputError
from theradose.units import decays_from_tia_mbq_h, dose_gy_from_energy_mev_and_mass_g, mgy_to_gy

if TYPE_CHECKING:
    from collections.abc import Sequence

    from theradose.imaging.volume import Volume

#: The engine option (:class:`~theradose.dosimetry.engines.registry.DoseEngine`; a plain name is parsed).
Engine = DoseEngine | str
ElectronTransport = Literal["local", "kernel"]
FloatArray = npt.NDArray[np.float64]

#: Smallest density used (dry air), g/cm³.
MIN_DENSITY_G_PER_ML = 0.0012


def density_from_hu(hu: npt.ArrayLike) -> FloatArray:
    """Mass density (g/cm³) from CT numbers with the calibration of :mod:`theradose.imaging.density`.

    The default table is trilinear (air −1000 HU, water 0 HU, ICRU-44 muscle 43 HU, ICRU-44 cortical bone
    1559 HU; Schneider,
    Pedroni & Lomax 1996); values are clipped below at :data:`MIN_DENSITY_G_PER_ML`.
    """
    from theradose.imaging.density import load_density_table

    rho = load_density_table().density_g_per_ml_at(np.asarray(hu, dtype=np.float64))
    return np.clip(rho, MIN_DENSITY_G_PER_ML, None)


@dataclass(frozen=True)
class MonteCarloDose:
    """Result of the Monte Carlo engine.

    Attributes
    ----------
    dose : Volume
        Total absorbed dose (Gy) or dose rate (Gy/h).
    photon_dose, electron_dose : Volume
        The photon (transported) and charged-particle parts, same unit.
    relative_uncertainty : Volume
        Relative standard error of ``dose`` (unit "1"), from the photon batches; NaN where no dose.
    n_photons : int
        Photon histories simulated.
    """

    dose: Volume
    photon_dose: Volume
    electron_dose: Volume
    relative_uncertainty: Volume
    n_photons: int


def _prepare(
    tia_or_activity: Volume, ct_density: Volume | None
) -> tuple[FloatArray, FloatArray, Literal["Gy", "Gy/h"]]:
    if tia_or_activity.unit == "MBq·h":
        out_unit: Literal["Gy", "Gy/h"] = "Gy"
    elif tia_or_activity.unit == "MBq":
        out_unit = "Gy/h"
    else:
        raise InputError(
            "tia_or_activity unit must be 'MBq·h' (dose) or 'MBq' (dose rate); "
            f"got {tia_or_activity.unit!r}: "
            "convert Bq/mL to MBq per voxel first"
        )
    values = np.asarray(tia_or_activity.array, dtype=np.float64)
    if not np.all(np.isfinite(values)):
        raise InputError("tia_or_activity contains NaN or infinite values: fill them (e.g. with 0)")
    if np.any(values < 0):
        raise InputError("tia_or_activity has negative voxels: clip them to 0 before dosimetry")
    # decays per voxel (for MBq: decays per hour, so that the result is in Gy/h)
    decays = np.asarray(decays_from_tia_mbq_h(values), dtype=np.float64)
    if ct_density is None:
        from theradose.dosimetry.materials import SOFT_TISSUE

        density = np.full(values.shape, SOFT_TISSUE.density_g_per_ml)
    else:
        if not ct_density.same_grid(tia_or_activity):
            raise GeometryError(
                "ct_density is not on the grid of tia_or_activity: resample the CT onto the SPECT grid"
            )
        if ct_density.unit == "g/mL":
            density = np.clip(np.asarray(ct_density.array, dtype=np.float64), MIN_DENSITY_G_PER_ML, None)
        elif ct_density.unit == "HU":
            density = density_from_hu(ct_density.array)
        else:
            raise InputError(f"ct_density unit must be 'g/mL' or 'HU'; got {ct_density.unit!r}")
    return decays, density, out_unit


def _photon_lines(nuclide: Any) -> tuple[FloatArray, FloatArray]:
    from theradose.units import kev_to_mev

    energies = np.array([kev_to_mev(float(line.energy_kev)) for line in nuclide.photon_lines])
    yields = np.array([float(line.yield_per_decay) for line in nuclide.photon_lines])
    return energies, yields


def _vsv_dose(
    decays: FloatArray,
    density: FloatArray,
    spacing_mm: tuple[float, float, float],
    nuclide: Any,
    *,
    workers: int | None,
    photons: bool = False,
    photon_kernel_size: int = 51,
    photon_kernel_histories: int = 2_000_000,
) -> FloatArray:
    from theradose.dosimetry.engines.vsv import bone_weight, fft_convolve_same
    from theradose.dosimetry.kernels import electron_emissions, photon_voxel_kernel, voxel_s_value_kernel
    from theradose.dosimetry.materials import CORTICAL_BONE, SOFT_TISSUE
    from theradose.units import bq_to_mbq

    emissions = electron_emissions(nuclide)
    # kernel is per MBq·s in the source voxel: convert decays to MBq·s
    source_mbq_s = np.asarray(bq_to_mbq(decays), dtype=np.float32)
    soft = voxel_s_value_kernel(emissions, voxel_mm=spacing_mm, tissue="soft")
    dose_soft = mgy_to_gy(fft_convolve_same(source_mbq_s, soft.values_mgy_per_mbq_s, workers=workers))
    rho_soft = SOFT_TISSUE.density_g_per_ml
    rho_bone = CORTICAL_BONE.density_g_per_ml
    w = bone_weight(density, soft_density=rho_soft, bone_density=rho_bone)
    dose = (1.0 - w) * dose_soft.astype(np.float64) * rho_soft / density
    if np.any(w > 0):
        bone = voxel_s_value_kernel(emissions, voxel_mm=spacing_mm, tissue="bone")
        dose_bone = mgy_to_gy(fft_convolve_same(source_mbq_s, bone.values_mgy_per_mbq_s, workers=workers))
        dose += w * dose_bone.astype(np.float64) * rho_bone / density
    if photons:
        # photon kernel of soft tissue; in other media the energy deposited per voxel is kept and divided by
        # the local mass, as for electrons (no heterogeneity correction: use the mc engine for that)
        kernel = photon_voxel_kernel(
            nuclide, voxel_mm=spacing_mm, size=photon_kernel_size, n_photons=photon_kernel_histories
        )
        dose_photons = mgy_to_gy(
            fft_convolve_same(source_mbq_s, kernel.values_mgy_per_mbq_s, workers=workers)
        )
        dose += dose_photons.astype(np.float64) * rho_soft / density
    return np.asarray(dose, dtype=np.float64)


def _local_electron_dose(
    decays: FloatArray, density: FloatArray, voxel_volume_ml: float, energy_mev_per_decay: float
) -> FloatArray:
    from theradose.dosimetry.engines.local import local_deposition_dose_gy

    return local_deposition_dose_gy(
        decays, density, voxel_volume_ml=voxel_volume_ml, energy_mev_per_decay=energy_mev_per_decay
    )


def monte_carlo_dose(
    tia_or_activity: Volume,
    ct_density: Volume | None,
    nuclide: Any,
    *,
    electrons: ElectronTransport = "local",
    include_photons: bool = True,
    n_photons: int = 1_000_000,
    n_batches: int = 10,
    seed: int = 0,
    workers: int | None = None,
) -> MonteCarloDose:
    """Hybrid Monte Carlo dose with its photon/electron parts and relative uncertainty map.

    Parameters
    ----------
    tia_or_activity : Volume
        ``MBq·h`` per voxel (→ Gy) or ``MBq`` per voxel (→ Gy/h).
    ct_density : Volume or None
        Density (``g/mL``) or CT (``HU``) on the same grid; None: uniform soft tissue.
    nuclide : str or Nuclide
        ICRP-107 nuclide.
    electrons : {"local", "kernel"}
        Deposit charged particles locally or with the voxel S-value kernel.
    include_photons : bool
        Transport the photon emissions.
    n_photons, n_batches, seed, workers
        Monte Carlo settings (see :func:`~theradose.dosimetry.engines.mc.transport_photons`).
    """
    from theradose.dosimetry.engines.mc import PHOTON_CUTOFF_MEV, transport_photons
    from theradose.dosimetry.kernels import electron_emissions
    from theradose.nuclides import get_nuclide

    n = get_nuclide(nuclide) if isinstance(nuclide, str) else nuclide
    decays, density, unit = _prepare(tia_or_activity, ct_density)
    voxel_ml = tia_or_activity.voxel_volume_ml
    energies, yields = _photon_lines(n)
    below_cutoff = energies < PHOTON_CUTOFF_MEV
    local_photon_mev = float(np.sum(energies[below_cutoff] * yields[below_cutoff]))
    emissions = electron_emissions(n)
    if electrons == "kernel":
        electron_dose = _vsv_dose(decays, density, tia_or_activity.spacing_mm, n, workers=workers)
        electron_dose += _local_electron_dose(decays, density, voxel_ml, local_photon_mev)
    elif electrons == "local":
        electron_dose = _local_electron_dose(
            decays, density, voxel_ml, emissions.energy_mev_per_decay + local_photon_mev
        )
    else:
        raise InputError(f"electrons must be 'local' or 'kernel'; got {electrons!r}")
    photon_dose = np.zeros_like(decays)
    photon_rel = np.full_like(decays, np.nan)
    simulated = 0
    if include_photons and np.any(~below_cutoff):
        result = transport_photons(
            decays,
            density,
            spacing_mm=tia_or_activity.spacing_mm,
            line_energy_mev=energies[~below_cutoff],
            line_yield_per_decay=yields[~below_cutoff],
            n_photons=n_photons,
            n_batches=n_batches,
            seed=seed,
            workers=workers,
        )
        photon_dose = np.asarray(dose_gy_from_energy_mev_and_mass_g(result.energy_mev, density * voxel_ml))
        photon_rel = result.relative_uncertainty
        simulated = result.n_photons
    total = electron_dose + photon_dose
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(total > 0, np.nan_to_num(photon_rel) * photon_dose / total, np.nan)
    return MonteCarloDose(
        dose=tia_or_activity.with_array(total, unit=unit),
        photon_dose=tia_or_activity.with_array(photon_dose, unit=unit),
        electron_dose=tia_or_activity.with_array(electron_dose, unit=unit),
        relative_uncertainty=tia_or_activity.with_array(rel, unit="1"),
        n_photons=simulated,
    )


def dose_rate_or_dose(
    tia_or_activity: Volume,
    ct_density: Volume | None,
    nuclide: Any,
    *,
    engine: Engine = DoseEngine.LOCAL,
    photon_absorbed_fraction: float = 0.0,
    workers: int | None = None,
    electrons: ElectronTransport = "local",
    include_photons: bool = True,
    n_photons: int = 1_000_000,
    n_batches: int = 10,
    seed: int = 0,
    vsv_photons: bool = False,
    vsv_photon_histories: int = 2_000_000,
) -> Volume:
    """Absorbed dose (Gy, from ``MBq·h``) or dose rate (Gy/h, from ``MBq``) with the chosen engine.

    Parameters
    ----------
    tia_or_activity : Volume
        Time-integrated activity (``MBq·h``) or activity (``MBq``) per voxel.
    ct_density : Volume or None
        Density (``g/mL``) or CT (``HU``) on the same grid; None: uniform soft tissue (1.03 g/cm³,
        tissue registry).
    nuclide : str or Nuclide
        ICRP-107 nuclide, e.g. ``"Lu-177"``.
    engine : DoseEngine or str
        See the module docstring and the engine registry (:mod:`~theradose.dosimetry.engines.registry`).
    photon_absorbed_fraction : float
        ``local`` only: fraction (0–1) of the photon energy deposited locally as well.
    workers : int, optional
        Threads for the FFTs (``vsv``) and Monte Carlo batches (``mc``).
    electrons, include_photons, n_photons, n_batches, seed
        ``mc`` only, see :func:`monte_carlo_dose`.
    vsv_photons : bool
        ``vsv`` only: add the photon dose by convolution with a Monte Carlo photon kernel of soft tissue
        (:func:`~theradose.dosimetry.kernels.photon_voxel_kernel`, 51³ voxels, cached).
    vsv_photon_histories : int
        Photon histories used to build that kernel.

    Returns
    -------
    Volume
        Unit ``Gy`` or ``Gy/h``, same grid as the input.
    """
    from theradose.dosimetry.kernels import electron_emissions
    from theradose.nuclides import get_nuclide

    n = get_nuclide(nuclide) if isinstance(nuclide, str) else nuclide
    engine = parse_engine(engine)
    if engine is DoseEngine.MC:
        return monte_carlo_dose(
            tia_or_activity,
            ct_density,
            n,
            electrons=electrons,
            include_photons=include_photons,
            n_photons=n_photons,
            n_batches=n_batches,
            seed=seed,
            workers=workers,
        ).dose
    decays, density, unit = _prepare(tia_or_activity, ct_density)
    if engine is DoseEngine.LOCAL:
        if not 0.0 <= photon_absorbed_fraction <= 1.0:
            raise InputError(
                f"photon_absorbed_fraction must be in [0, 1]; got {photon_absorbed_fraction}: e.g. 0 or 1"
            )
        energy = electron_emissions(n).energy_mev_per_decay
        energy += photon_absorbed_fraction * float(n.photon_energy_mev_per_decay)
        dose = _local_electron_dose(decays, density, tia_or_activity.voxel_volume_ml, energy)
    else:
        dose = _vsv_dose(
            decays,
            density,
            tia_or_activity.spacing_mm,
            n,
            workers=workers,
            photons=vsv_photons,
            photon_kernel_histories=vsv_photon_histories,
        )
    return tia_or_activity.with_array(dose, unit=unit)


def dose_from_dose_rates(
    activities: Sequence[Volume],
    time_h: Sequence[float],
    ct_density: Volume | None,
    nuclide: Any,
    *,
    engine: Engine = DoseEngine.VSV,
    tail: Literal["physical", "fit"] = "fit",
    head: Literal["linear_from_zero", "constant"] = "linear_from_zero",
    workers: int | None = None,
    seed: int = 0,
    n_photons: int = 1_000_000,
) -> Volume:
    """Absorbed dose (Gy) by the alternative order of operations: dose-rate maps first, then time.

    Each activity map (``MBq`` per voxel, one per time point, same grid) is turned into a dose-rate map
    (Gy/h) with ``engine``; the maps are integrated voxel by voxel with
    :func:`theradose.kinetics.voxel.integrate_dose_rate_voxels` (MIRD Pamphlet 23, Dewaraja et al.
    2012). For the linear engines this equals converting the activity integral computed by the same rule.
    """
    from theradose.kinetics.voxel import integrate_dose_rate_voxels
    from theradose.nuclides import get_nuclide

    n = get_nuclide(nuclide) if isinstance(nuclide, str) else nuclide
    if len(activities) != len(time_h) or len(activities) < 2:
        raise InputError(
            f"activities and time_h must have the same length ≥ 2; got {len(activities)} and {len(time_h)}"
        )
    first = activities[0]
    rates = []
    for k, activity in enumerate(activities):
        if not activity.same_grid(first):
            raise GeometryError(
                f"activity map {k} is not on the grid of map 0: register the time points first"
            )
        rate = dose_rate_or_dose(
            activity, ct_density, n, engine=engine, workers=workers, seed=seed + k, n_photons=n_photons
        )
        rates.append(np.asarray(rate.array, dtype=np.float64))
    dose = integrate_dose_rate_voxels(
        np.asarray(time_h, dtype=np.float64),
        np.stack(rates),
        decay_constant_per_h=float(n.decay_constant_per_h),
        tail=tail,
        head=head,
    )
    return first.with_array(dose, unit="Gy")


__all__ = [
    "DoseEngine",
    "Engine",
    "MonteCarloDose",
    "density_from_hu",
    "dose_from_dose_rates",
    "dose_rate_or_dose",
    "monte_carlo_dose",
    "parse_engine",
]
