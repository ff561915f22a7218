"""Dose point kernels (DPK) and voxel S-value (VSV) kernels for electron and alpha emitters.

Method
------
1. **Electron ranges.** The CSDA range R(E) of electrons in water is interpolated (log–log) in the NIST
   ESTAR table shipped in ``theradose/data/kernels`` (ICRU Report 37 stopping powers). In another medium
   the mass range is scaled by the ratio of electrons per gram, R_m = R_w·(Z/A)_w/(Z/A)_m, and the
   linear range by the density (ICRU Report 35, density and electron-density scaling of collision
   stopping powers; O'Connor 1957 density scaling theorem).
2. **Point kernel.** Each electron of initial energy E₀ deposits its energy along its path following the
   continuous-slowing-down approximation (CSDA) with a straight-ahead path: the energy deposited inside a
   sphere of radius r about the source is W(r) = E₀ − E_res(R(E₀) − r), with E_res the inverse of R.
   This is the CSDA point kernel (Berger 1971, MIRD Pamphlet 7, J Nucl Med 12 Suppl 5:5, eq. 1–3, without
   the straggling correction). It conserves energy exactly and has the correct range scale; it places
   the deposition somewhat farther out than the scattered-electron kernels of Berger (mean penetration
   ~10–20 % larger), which affects neighbour voxels more than the source voxel. The cumulative radial
   energy W(r) is summed over the discrete electron lines (conversion, Auger) and integrated over the
   beta spectrum of the nuclide (ICRP Publication 107 via :mod:`theradose.nuclides`). Alpha particles
   and recoil nuclei (ranges < 0.1 mm) are deposited in the source voxel.
3. **Voxel S values.** For source and target voxels (boxes with sides a = (a₀, a₁, a₂)) separated by the
   offset d, the mean absorbed dose per decay is (Bolch et al. 1999, MIRD Pamphlet 17, J Nucl Med
   40:11S, eq. 4, rewritten with the box overlap function)

       S(d) = 1/(ρ V²) ∫ dW(r) ⟨A(r·Ω − d)⟩_Ω,   A(v) = Π_i max(a_i − |v_i|, 0),

   where ⟨·⟩_Ω averages over directions (a spherical Fibonacci lattice). Because Σ_d A(v − d) = V for
   every v, the kernel sum times the voxel mass equals the emitted energy minus what lies beyond the
   kernel, for any voxel shape: energy conservation holds to the truncation.

Photons are not part of these kernels; the Monte Carlo engine (:mod:`theradose.dosimetry.engines.mc`)
transports them. Kernels are cached on disk under ``$THERADOSE_CACHE_DIR/kernels`` (default
``~/.cache/theradose/kernels``).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from theradose.errors import DataError, InputError
from theradose.units import (
    dose_gy_from_energy_mev_and_mass_g,
    gy_to_mgy,
    kev_to_mev,
    mbq_to_bq,
    mm_to_cm,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

Tissue = Literal["soft", "bone"]
FloatArray = npt.NDArray[np.float64]

#: Version of the kernel algorithm; part of the cache key.
KERNEL_METHOD_VERSION = "csda-dpk-1"
#: Number of directions of the Fibonacci lattice used for the spherical average.
DEFAULT_N_DIRECTIONS = 2048
#: Number of radial shells between 0 and the largest electron range.
DEFAULT_N_SHELLS = 512


# ----------------------------------------------------------------------------------------------------
# Electron ranges
# ----------------------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _estar_table() -> tuple[FloatArray, FloatArray]:
    path = Path(__file__).resolve().parent.parent / "data" / "kernels" / "estar_water_csda_range.csv"
    try:
        data = np.loadtxt(path, delimiter=",", comments="#", skiprows=3)
    except OSError as exc:  # pragma: no cover - installation problem
        raise DataError(f"kernel data file {path} cannot be read ({exc}): reinstall theradose") from exc
    return np.log(data[:, 0]), np.log(data[:, 1])


def csda_range_water_g_per_cm2(energy_mev: npt.ArrayLike) -> FloatArray:
    """CSDA range of electrons in liquid water (g/cm²), NIST ESTAR, log–log interpolation.

    Outside the tabulated 10 keV – 10 MeV the power law through the two end points is extrapolated.
    Energies ≤ 0 give range 0.
    """
    log_e, log_r = _estar_table()
    energy = np.asarray(energy_mev, dtype=np.float64)
    out = np.zeros_like(energy)
    positive = energy > 0
    x = np.log(energy[positive])
    y = np.interp(x, log_e, log_r)
    low = x < log_e[0]
    slope_low = (log_r[1] - log_r[0]) / (log_e[1] - log_e[0])
    y[low] = log_r[0] + slope_low * (x[low] - log_e[0])
    high = x > log_e[-1]
    slope_high = (log_r[-1] - log_r[-2]) / (log_e[-1] - log_e[-2])
    y[high] = log_r[-1] + slope_high * (x[high] - log_e[-1])
    out[positive] = np.exp(y)
    return out


def residual_energy_water_mev(range_g_per_cm2: npt.ArrayLike) -> FloatArray:
    """Inverse of :func:`csda_range_water_g_per_cm2`: energy (MeV) of an electron with this CSDA range."""
    log_e, log_r = _estar_table()
    rng = np.asarray(range_g_per_cm2, dtype=np.float64)
    out = np.zeros_like(rng)
    positive = rng > 0
    y = np.log(rng[positive])
    x = np.interp(y, log_r, log_e)
    low = y < log_r[0]
    slope_low = (log_e[1] - log_e[0]) / (log_r[1] - log_r[0])
    x[low] = log_e[0] + slope_low * (y[low] - log_r[0])
    high = y > log_r[-1]
    slope_high = (log_e[-1] - log_e[-2]) / (log_r[-1] - log_r[-2])
    x[high] = log_e[-1] + slope_high * (y[high] - log_r[-1])
    out[positive] = np.exp(x)
    return out


# ----------------------------------------------------------------------------------------------------
# Emissions
# ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ElectronEmissions:
    """Charged-particle emissions per decay that the kernels transport.

    Attributes
    ----------
    name : str
        Nuclide name (e.g. ``"Lu-177"``) or a label for synthetic sources.
    beta_energy_mev, beta_probability_per_mev : ndarray, shape (n,)
        Beta spectrum; the integral of the probability is the beta yield per decay.
    line_energy_mev, line_yield_per_decay : ndarray, shape (m,)
        Discrete electrons (internal conversion and Auger).
    local_energy_mev_per_decay : float
        Energy deposited where it is emitted (alpha particles and recoil nuclei).
    """

    name: str
    beta_energy_mev: FloatArray
    beta_probability_per_mev: FloatArray
    line_energy_mev: FloatArray
    line_yield_per_decay: FloatArray
    local_energy_mev_per_decay: float = 0.0

    @property
    def beta_energy_mev_per_decay(self) -> float:
        """Mean beta energy per decay (MeV), ∫ E·p(E) dE."""
        if self.beta_energy_mev.size < 2:
            return 0.0
        return float(np.trapezoid(self.beta_energy_mev * self.beta_probability_per_mev, self.beta_energy_mev))

    @property
    def energy_mev_per_decay(self) -> float:
        """Total charged-particle energy per decay (MeV): beta + lines + local."""
        lines = float(np.sum(self.line_energy_mev * self.line_yield_per_decay))
        return self.beta_energy_mev_per_decay + lines + self.local_energy_mev_per_decay

    @property
    def max_energy_mev(self) -> float:
        """Largest electron energy (MeV) in the emissions."""
        candidates = [0.0]
        if self.beta_energy_mev.size:
            nonzero = self.beta_energy_mev[self.beta_probability_per_mev > 0]
            if nonzero.size:
                candidates.append(float(nonzero.max()))
        if self.line_energy_mev.size:
            candidates.append(float(self.line_energy_mev.max()))
        return max(candidates)

    def fingerprint(self) -> str:
        """Hash of the emission data (part of the kernel cache key)."""
        digest = hashlib.sha256(self.name.encode())
        for array in (
            self.beta_energy_mev,
            self.beta_probability_per_mev,
            self.line_energy_mev,
            self.line_yield_per_decay,
        ):
            digest.update(np.ascontiguousarray(array, dtype=np.float64).tobytes())
        digest.update(repr(round(self.local_energy_mev_per_decay, 12)).encode())
        return digest.hexdigest()[:16]


def monoenergetic_emissions(energy_mev: float, *, yield_per_decay: float = 1.0) -> ElectronEmissions:
    """A source emitting one electron line (for tests and for kernels of a single energy)."""
    if not energy_mev > 0:
        raise InputError(f"energy_mev must be positive; got {energy_mev}: give the electron energy in MeV")
    return ElectronEmissions(
        name=f"e-{energy_mev:g}MeV",
        beta_energy_mev=np.zeros(0),
        beta_probability_per_mev=np.zeros(0),
        line_energy_mev=np.array([energy_mev]),
        line_yield_per_decay=np.array([yield_per_decay]),
    )


def electron_emissions(nuclide: Any) -> ElectronEmissions:
    """Charged-particle emissions of an ICRP-107 nuclide (name or :mod:`theradose.nuclides` object).

    Only the nuclide's own decay is included; radioactive progeny (e.g. the 225Ac chain) need their own
    kernels, weighted by their activity.
    """
    from theradose.nuclides import get_nuclide

    n = get_nuclide(nuclide) if isinstance(nuclide, str) else nuclide
    energy_mev, probability = n.beta_spectrum()
    lines = tuple(n.electron_lines)
    line_e = np.array([kev_to_mev(float(line.energy_kev)) for line in lines], dtype=np.float64)
    line_y = np.array([float(line.yield_per_decay) for line in lines], dtype=np.float64)
    local = float(n.alpha_energy_mev_per_decay) + float(getattr(n, "alpha_recoil_energy_mev_per_decay", 0.0))
    return ElectronEmissions(
        name=str(n.name),
        beta_energy_mev=np.asarray(energy_mev, dtype=np.float64),
        beta_probability_per_mev=np.asarray(probability, dtype=np.float64),
        line_energy_mev=line_e,
        line_yield_per_decay=line_y,
        local_energy_mev_per_decay=local,
    )


# ----------------------------------------------------------------------------------------------------
# Radial energy deposition (point kernel)
# ----------------------------------------------------------------------------------------------------
def cumulative_energy_within_radius_mev(
    emissions: ElectronEmissions,
    radius_cm: npt.ArrayLike,
    *,
    density_g_per_ml: float,
    electrons_per_gram_ratio_to_water: float = 1.0,
) -> FloatArray:
    """Electron energy (MeV per decay) deposited within a sphere of radius r about a point source.

    CSDA straight-ahead point kernel (Berger 1971, MIRD Pamphlet 7): W(r) = Σ y·[E₀ − E_res(R(E₀) − r)],
    integrated over the beta spectrum. Local (alpha) energy is excluded.

    Parameters
    ----------
    radius_cm : array_like, shape (k,)
        Radii in cm.
    density_g_per_ml : float
        Medium density (g/cm³).
    electrons_per_gram_ratio_to_water : float
        (Z/A)_medium / (Z/A)_water; stopping power scales with it.

    Returns
    -------
    ndarray, shape (k,)
        W(r) in MeV per decay.
    """
    r_mass = np.asarray(radius_cm, dtype=np.float64) * density_g_per_ml * electrons_per_gram_ratio_to_water

    def within(energies: FloatArray) -> FloatArray:
        # energies (n,), returns (n, k): energy deposited within r by one electron of each energy
        r0 = csda_range_water_g_per_cm2(energies)[:, None]
        remaining = np.clip(r0 - r_mass[None, :], 0.0, None)
        return energies[:, None] - residual_energy_water_mev(remaining)

    total = np.zeros_like(r_mass)
    if emissions.line_energy_mev.size:
        total += emissions.line_yield_per_decay @ within(emissions.line_energy_mev)
    if emissions.beta_energy_mev.size >= 2:
        per_energy = within(emissions.beta_energy_mev) * emissions.beta_probability_per_mev[:, None]
        total += np.trapezoid(per_energy, emissions.beta_energy_mev, axis=0)
    return total


def max_range_cm(
    emissions: ElectronEmissions, *, density_g_per_ml: float, electrons_per_gram_ratio_to_water: float
) -> float:
    """Largest CSDA range (cm) of the emitted electrons in the medium."""
    e_max = emissions.max_energy_mev
    if e_max <= 0:
        return 0.0
    r_w = float(csda_range_water_g_per_cm2(np.array([e_max]))[0])
    return r_w / (density_g_per_ml * electrons_per_gram_ratio_to_water)


# ----------------------------------------------------------------------------------------------------
# Voxel S values
# ----------------------------------------------------------------------------------------------------
def fibonacci_directions(n: int) -> FloatArray:
    """``n`` unit vectors of a spherical Fibonacci lattice, shape (n, 3).

    González 2010, Math Geosci 42:49.
    """
    i = np.arange(n, dtype=np.float64) + 0.5
    z = 1.0 - 2.0 * i / n
    rho = np.sqrt(1.0 - z * z)
    golden = math.pi * (3.0 - math.sqrt(5.0))
    phi = golden * i
    return np.stack([rho * np.cos(phi), rho * np.sin(phi), z], axis=1)


def _mean_overlap_numpy(
    offsets_cm: FloatArray, sides_cm: FloatArray, radii_cm: FloatArray, directions: FloatArray
) -> FloatArray:
    """Same as the compiled kernel, vectorised with numpy (used for small kernels: no compile latency)."""
    out = np.empty((offsets_cm.shape[0], radii_cm.shape[0]))
    points = radii_cm[:, None, None] * directions[None, :, :]  # (k, M, 3)
    for o, d in enumerate(offsets_cm):
        overlap = np.prod(np.clip(sides_cm - np.abs(points - d), 0.0, None), axis=2)
        out[o] = overlap.mean(axis=1)
    return out


#: Up to this many distinct offsets the numpy implementation is used (faster than compiling).
NUMPY_OFFSET_LIMIT = 48


@lru_cache(maxsize=1)
def _mean_overlap_kernel() -> Any:
    import numba

    @numba.njit(cache=False, fastmath=True, nogil=True)
    def mean_overlap(
        offsets_cm: FloatArray, sides_cm: FloatArray, radii_cm: FloatArray, directions: FloatArray
    ) -> FloatArray:  # pragma: no cover - compiled
        n_off = offsets_cm.shape[0]
        n_r = radii_cm.shape[0]
        n_dir = directions.shape[0]
        out = np.zeros((n_off, n_r))
        for o in range(n_off):
            for k in range(n_r):
                r = radii_cm[k]
                acc = 0.0
                for m in range(n_dir):
                    prod = 1.0
                    for axis in range(3):
                        t = sides_cm[axis] - abs(r * directions[m, axis] - offsets_cm[o, axis])
                        if t <= 0.0:
                            prod = 0.0
                            break
                        prod *= t
                    acc += prod
                out[o, k] = acc / n_dir
        return out

    return mean_overlap


@dataclass(frozen=True)
class VoxelKernel:
    """A voxel S-value kernel.

    Attributes
    ----------
    values_mgy_per_mbq_s : ndarray, shape (n0, n1, n2), odd sizes
        Mean absorbed dose rate in each target voxel per unit activity in the central voxel,
        mGy/(MBq·s); axis order as the voxel sizes.
    voxel_mm : tuple of 3 floats
        Voxel sides (mm) along the three array axes.
    tissue : {"soft", "bone"}
    density_g_per_ml : float
    nuclide : str
    emitted_energy_mev_per_decay : float
        Charged-particle energy emitted per decay (MeV).
    absorbed_energy_mev_per_decay : float
        Kernel sum × voxel mass expressed as energy per decay (MeV); equals the emitted energy minus the
        energy deposited outside the kernel.
    includes_photons : bool
        Always ``False``: photons are handled by the Monte Carlo engine.
    method : str
    """

    values_mgy_per_mbq_s: FloatArray
    voxel_mm: tuple[float, float, float]
    tissue: Tissue
    density_g_per_ml: float
    nuclide: str
    emitted_energy_mev_per_decay: float
    absorbed_energy_mev_per_decay: float
    includes_photons: bool = False
    method: str = KERNEL_METHOD_VERSION

    @property
    def shape(self) -> tuple[int, int, int]:
        """Kernel shape (n0, n1, n2)."""
        s = self.values_mgy_per_mbq_s.shape
        return (int(s[0]), int(s[1]), int(s[2]))

    @property
    def center_mgy_per_mbq_s(self) -> float:
        """Self-dose S value of the source voxel, mGy/(MBq·s)."""
        c = tuple(n // 2 for n in self.shape)
        return float(self.values_mgy_per_mbq_s[c])

    @property
    def face_neighbour_mgy_per_mbq_s(self) -> float:
        """Mean S value of the six face neighbours, mGy/(MBq·s) (0 if the kernel is 1 voxel wide)."""
        c = [n // 2 for n in self.shape]
        values = []
        for axis in range(3):
            for step in (-1, 1):
                idx = list(c)
                idx[axis] += step
                if 0 <= idx[axis] < self.shape[axis]:
                    values.append(float(self.values_mgy_per_mbq_s[tuple(idx)]))
        return float(np.mean(values)) if values else 0.0

    @property
    def sum_mgy_per_mbq_s(self) -> float:
        """Sum of the kernel, mGy/(MBq·s)."""
        return float(self.values_mgy_per_mbq_s.sum())

    @property
    def voxel_mass_g(self) -> float:
        """Mass of one voxel (g)."""
        volume_cm3 = float(np.prod([mm_to_cm(v) for v in self.voxel_mm]))
        return volume_cm3 * self.density_g_per_ml

    @property
    def truncated_fraction(self) -> float:
        """Fraction of the emitted energy deposited outside the kernel."""
        if self.emitted_energy_mev_per_decay <= 0:
            return 0.0
        return 1.0 - self.absorbed_energy_mev_per_decay / self.emitted_energy_mev_per_decay


def _mgy_per_mbq_s_per_mev_per_g() -> float:
    """Conversion of (MeV per gram per decay) to mGy/(MBq·s)."""
    return float(gy_to_mgy(dose_gy_from_energy_mev_and_mass_g(1.0, 1.0)) * mbq_to_bq(1.0))


def _normalise_voxel_mm(voxel_mm: float | Sequence[float]) -> tuple[float, float, float]:
    if isinstance(voxel_mm, (int, float)):
        sides = (float(voxel_mm),) * 3
    else:
        sides_list = [float(v) for v in voxel_mm]
        if len(sides_list) != 3:
            raise InputError(f"voxel_mm must be one number or three; got {voxel_mm!r}: give e.g. 4.42")
        sides = (sides_list[0], sides_list[1], sides_list[2])
    if not all(math.isfinite(s) and s > 0 for s in sides):
        raise InputError(f"voxel_mm must be positive; got {voxel_mm!r}: give the voxel side in mm")
    return sides


def _auto_size(reach_cm: float, sides_cm: tuple[float, float, float]) -> tuple[int, int, int]:
    return tuple(2 * (math.ceil(reach_cm / s) + 1) + 1 for s in sides_cm)  # type: ignore[return-value]


def _normalise_size(size: int | Sequence[int] | None, auto: tuple[int, int, int]) -> tuple[int, int, int]:
    if size is None:
        return auto
    sizes = [int(size)] * 3 if isinstance(size, int) else [int(s) for s in size]
    if len(sizes) != 3 or any(s < 1 or s % 2 == 0 for s in sizes):
        raise InputError(f"size must be odd and positive (one number or three); got {size!r}: e.g. 11")
    return (sizes[0], sizes[1], sizes[2])


def cache_directory() -> Path:
    """Directory of cached kernels: ``$THERADOSE_CACHE_DIR/kernels`` or ``~/.cache/theradose/kernels``."""
    root = os.environ.get("THERADOSE_CACHE_DIR")
    base = Path(root) if root else Path.home() / ".cache" / "theradose"
    return base / "kernels"


def voxel_s_value_kernel(
    emissions: ElectronEmissions,
    *,
    voxel_mm: float | Sequence[float],
    tissue: Tissue = "soft",
    size: int | Sequence[int] | None = None,
    density_g_per_ml: float | None = None,
    n_directions: int = DEFAULT_N_DIRECTIONS,
    n_shells: int = DEFAULT_N_SHELLS,
    use_cache: bool = True,
) -> VoxelKernel:
    """Voxel S-value kernel of ``emissions`` for voxels of sides ``voxel_mm`` (see module docstring).

    Parameters
    ----------
    emissions : ElectronEmissions
        From :func:`electron_emissions` (ICRP-107 nuclide) or :func:`monoenergetic_emissions`.
    voxel_mm : float or 3 floats
        Voxel sides (mm) along the array axes; anisotropic voxels are allowed.
    tissue : {"soft", "bone"}
        Medium: soft tissue or cortical bone, densities of the tissue registry (1.03 and 1.92 g/cm³).
    size : int or 3 ints, optional
        Odd kernel size per axis. Default: enough voxels to hold the largest electron range.
    density_g_per_ml : float, optional
        Override the nominal density of the medium.
    n_directions, n_shells : int
        Quadrature of the spherical average and of the radial integral.
    use_cache : bool
        Read and write the on-disk cache (:func:`cache_directory`).

    Returns
    -------
    VoxelKernel
        Kernel in mGy/(MBq·s).
    """
    from theradose.dosimetry.materials import MATERIALS

    if tissue not in ("soft", "bone"):
        raise InputError(f"tissue must be 'soft' or 'bone'; got {tissue!r}: choose one of them")
    material = MATERIALS[tissue]
    density = material.density_g_per_ml if density_g_per_ml is None else float(density_g_per_ml)
    if not density > 0:
        raise InputError(f"density_g_per_ml must be positive; got {density_g_per_ml}: give g/cm³")
    sides_mm = _normalise_voxel_mm(voxel_mm)
    ratio = material.electrons_per_gram_ratio_to_water()
    reach_cm = max_range_cm(emissions, density_g_per_ml=density, electrons_per_gram_ratio_to_water=ratio)
    sides_cm = (mm_to_cm(sides_mm[0]), mm_to_cm(sides_mm[1]), mm_to_cm(sides_mm[2]))
    shape = _normalise_size(size, _auto_size(reach_cm, sides_cm))

    key_data = {
        "method": KERNEL_METHOD_VERSION,
        "emissions": emissions.fingerprint(),
        "voxel_mm": [round(s, 9) for s in sides_mm],
        "tissue": tissue,
        "density": round(density, 9),
        "shape": list(shape),
        "n_directions": n_directions,
        "n_shells": n_shells,
    }
    key = hashlib.sha256(json.dumps(key_data, sort_keys=True).encode()).hexdigest()[:24]
    cache_file = cache_directory() / f"vsv-{emissions.name}-{key}.npz"
    if use_cache and cache_file.exists():
        with np.load(cache_file) as stored:
            values = np.asarray(stored["values"], dtype=np.float64)
        return _make_kernel(values, sides_mm, tissue, density, emissions)

    values = _compute_kernel(
        emissions, sides_cm, shape, density, ratio, reach_cm, n_directions=n_directions, n_shells=n_shells
    )
    if use_cache:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_suffix(".tmp.npz")
        np.savez(tmp, values=values, meta=json.dumps(key_data))
        tmp.replace(cache_file)
    return _make_kernel(values, sides_mm, tissue, density, emissions)


def _make_kernel(
    values: FloatArray,
    sides_mm: tuple[float, float, float],
    tissue: Tissue,
    density: float,
    emissions: ElectronEmissions,
) -> VoxelKernel:
    volume_cm3 = mm_to_cm(sides_mm[0]) * mm_to_cm(sides_mm[1]) * mm_to_cm(sides_mm[2])
    absorbed = float(values.sum()) * volume_cm3 * density / _mgy_per_mbq_s_per_mev_per_g()
    return VoxelKernel(
        values_mgy_per_mbq_s=values,
        voxel_mm=sides_mm,
        tissue=tissue,
        density_g_per_ml=density,
        nuclide=emissions.name,
        emitted_energy_mev_per_decay=emissions.energy_mev_per_decay,
        absorbed_energy_mev_per_decay=absorbed,
    )


def _compute_kernel(
    emissions: ElectronEmissions,
    sides_cm: tuple[float, float, float],
    shape: tuple[int, int, int],
    density: float,
    ratio: float,
    reach_cm: float,
    *,
    n_directions: int,
    n_shells: int,
) -> FloatArray:
    values = np.zeros(shape)
    half = [n // 2 for n in shape]
    volume_cm3 = sides_cm[0] * sides_cm[1] * sides_cm[2]
    to_mgy = _mgy_per_mbq_s_per_mev_per_g()

    if reach_cm > 0:
        edges = np.linspace(0.0, reach_cm * (1.0 + 1e-9), n_shells + 1)
        cumulative = cumulative_energy_within_radius_mev(
            emissions, edges, density_g_per_ml=density, electrons_per_gram_ratio_to_water=ratio
        )
        shell_energy = np.diff(cumulative)
        radii = 0.5 * (edges[1:] + edges[:-1])
        # offsets in the non-negative octant whose box-overlap support can be reached
        grids = np.meshgrid(*[np.arange(h + 1) for h in half], indexing="ij")
        index = np.stack([g.ravel() for g in grids], axis=1)
        offsets = index * np.asarray(sides_cm)
        gap = np.clip(offsets - np.asarray(sides_cm), 0.0, None)
        reachable = np.sqrt((gap**2).sum(axis=1)) < reach_cm
        index, offsets = index[reachable], offsets[reachable]
        directions = fibonacci_directions(n_directions)
        implementation = _mean_overlap_numpy if len(offsets) <= NUMPY_OFFSET_LIMIT else _mean_overlap_kernel()
        mean_overlap = implementation(np.ascontiguousarray(offsets), np.asarray(sides_cm), radii, directions)
        energy_per_gram = mean_overlap @ shell_energy / (density * volume_cm3**2)
        for (i, j, k), e in zip(index, energy_per_gram, strict=True):
            for si in {i, -i}:
                for sj in {j, -j}:
                    for sk in {k, -k}:
                        values[half[0] + si, half[1] + sj, half[2] + sk] = e * to_mgy
    values[half[0], half[1], half[2]] += (
        emissions.local_energy_mev_per_decay / (density * volume_cm3) * to_mgy
    )
    return values


def nuclide_kernel(
    nuclide: Any,
    *,
    voxel_mm: float | Sequence[float],
    tissue: Tissue = "soft",
    size: int | Sequence[int] | None = None,
    use_cache: bool = True,
) -> VoxelKernel:
    """Voxel S-value kernel of an ICRP-107 nuclide (name such as ``"Lu-177"`` or a nuclide object)."""
    return voxel_s_value_kernel(
        electron_emissions(nuclide), voxel_mm=voxel_mm, tissue=tissue, size=size, use_cache=use_cache
    )


@dataclass(frozen=True)
class PhotonVoxelKernel:
    """Photon voxel S-value kernel in homogeneous soft tissue, from the Monte Carlo photon transport.

    Attributes
    ----------
    values_mgy_per_mbq_s : ndarray, shape (n, n, n)
        Mean photon dose rate per unit activity in the central voxel, mGy/(MBq·s).
    voxel_mm : tuple of 3 floats
    nuclide : str
    n_photons, seed : int
        Monte Carlo settings that produced it (part of the cache key).
    """

    values_mgy_per_mbq_s: FloatArray
    voxel_mm: tuple[float, float, float]
    nuclide: str
    n_photons: int
    seed: int


def photon_voxel_kernel(
    nuclide: Any,
    *,
    voxel_mm: float | Sequence[float],
    size: int = 51,
    n_photons: int = 2_000_000,
    seed: int = 0,
    use_cache: bool = True,
) -> PhotonVoxelKernel:
    """Photon VSV kernel of an ICRP-107 nuclide in soft tissue, by Monte Carlo (point-like source voxel).

    The source voxel is at the centre of a ``size``³ grid of soft tissue (tissue registry, 1.03 g/cm³); the
    photon lines are transported with :func:`theradose.dosimetry.engines.mc.transport_photons` and the energy
    imparted per voxel divided by its mass (MIRD Pamphlet 17, Bolch et al. 1999, voxel S values). Photons
    leaving the grid are lost, as in any truncated kernel. Cached like the electron kernels.
    """
    from theradose.dosimetry.engines.mc import PHOTON_CUTOFF_MEV, transport_photons
    from theradose.dosimetry.materials import SOFT_TISSUE
    from theradose.nuclides import get_nuclide

    n = get_nuclide(nuclide) if isinstance(nuclide, str) else nuclide
    sides_mm = _normalise_voxel_mm(voxel_mm)
    if size < 1 or size % 2 == 0:
        raise InputError(f"size must be odd and positive; got {size}: e.g. 51")
    energies = np.array([kev_to_mev(float(line.energy_kev)) for line in n.photon_lines], dtype=np.float64)
    yields = np.array([float(line.yield_per_decay) for line in n.photon_lines], dtype=np.float64)
    keep = energies >= PHOTON_CUTOFF_MEV
    energies, yields = energies[keep], yields[keep]
    digest = hashlib.sha256(np.concatenate([energies, yields]).tobytes()).hexdigest()[:12]
    key_data = {
        "method": "photon-mc-1",
        "lines": digest,
        "voxel_mm": [round(v, 9) for v in sides_mm],
        "size": size,
        "n_photons": n_photons,
        "seed": seed,
    }
    key = hashlib.sha256(json.dumps(key_data, sort_keys=True).encode()).hexdigest()[:24]
    cache_file = cache_directory() / f"photon-{n.name}-{key}.npz"
    if use_cache and cache_file.exists():
        with np.load(cache_file) as stored:
            values = np.asarray(stored["values"], dtype=np.float64)
        return PhotonVoxelKernel(values, sides_mm, str(n.name), n_photons, seed)
    shape = (size, size, size)
    values = np.zeros(shape)
    if energies.size:
        source = np.zeros(shape)
        source[size // 2, size // 2, size // 2] = 1.0
        density = np.full(shape, SOFT_TISSUE.density_g_per_ml)
        result = transport_photons(
            source,
            density,
            spacing_mm=sides_mm,
            line_energy_mev=energies,
            line_yield_per_decay=yields,
            n_photons=n_photons,
            seed=seed,
        )
        volume_cm3 = mm_to_cm(sides_mm[0]) * mm_to_cm(sides_mm[1]) * mm_to_cm(sides_mm[2])
        mass_g = volume_cm3 * SOFT_TISSUE.density_g_per_ml
        # energy per decay (MeV) per voxel mass -> mGy/(MBq s)
        values = result.energy_mev / mass_g * _mgy_per_mbq_s_per_mev_per_g()
    if use_cache:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_suffix(".tmp.npz")
        np.savez(tmp, values=values, meta=json.dumps(key_data))
        tmp.replace(cache_file)
    return PhotonVoxelKernel(values, sides_mm, str(n.name), n_photons, seed)


__all__ = [
    "ElectronEmissions",
    "PhotonVoxelKernel",
    "VoxelKernel",
    "cache_directory",
    "csda_range_water_g_per_cm2",
    "cumulative_energy_within_radius_mev",
    "electron_emissions",
    "fibonacci_directions",
    "monoenergetic_emissions",
    "nuclide_kernel",
    "photon_voxel_kernel",
    "residual_energy_water_mev",
    "voxel_s_value_kernel",
]
