"""Hybrid Monte Carlo: photon transport in a voxelised heterogeneous medium, electrons deposited apart.

Photons
    Emitted at the nuclide's photon lines (ICRP 107) with probability proportional to the line yields,
    from a uniformly sampled point inside a voxel chosen in proportion to its number of decays, in an
    isotropic direction. They are tracked with Woodcock (delta) tracking (Woodcock et al. 1965, Proc.
    Conf. Applications of Computing Methods to Reactor Problems, ANL-7050): free paths are sampled from a
    majorant attenuation coefficient and real interactions accepted with probability μ(x)/μ_max.
    Interactions: photoelectric absorption (energy deposited locally, fluorescence neglected — K edges of
    tissue elements are below 4.1 keV), Compton scattering on free electrons sampled from the
    Klein–Nishina cross section with Kahn's rejection method (Kahn 1956, RAND AECU-3259; as given by
    Carter & Cashwell 1975, *Particle-transport simulation with the Monte Carlo method*, ERDA TID-26607),
    the recoil electron energy deposited locally, and Rayleigh scattering with the Thomson angular
    distribution (atomic form factor neglected). Photons below 1 keV are absorbed. Cross sections:
    :func:`theradose.dosimetry.materials.photon_cross_sections` (xraydb) for air, lung, soft tissue and
    cortical bone, scaled by the voxel density.
Electrons
    Deposited locally (``electrons="local"``) or with the voxel S-value kernel (``electrons="kernel"``);
    see :mod:`theradose.dosimetry.engines`.
Uncertainty
    Histories are split in ``n_batches`` independent batches (batch method, e.g. Walters, Kawrakow &
    Rogers 2002, Med Phys 29:2745): the relative standard error of the mean per voxel is
    s/(x̄·√B) with s the standard deviation of the B batch estimates.
Reproducibility
    Batch b draws from its own xoshiro256+ stream (Blackman & Vigna 2021, ACM Trans Math Softw 47:36)
    seeded from (seed, b) with :class:`numpy.random.SeedSequence`; batches run in parallel on worker
    threads (the compiled kernel releases the GIL) and are summed in order, so a given seed gives
    identical results for any number of worker threads.
Performance
    Source voxels are drawn in constant time with Walker's alias method, the interaction coefficients of
    every material are interpolated once per energy change, the density map is read in single precision.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from theradose.errors import InputError

FloatArray = npt.NDArray[np.float64]

#: Electron rest energy (MeV), CODATA 2018.
ELECTRON_REST_ENERGY_MEV = 0.51099895
#: Photons below this energy (MeV) are absorbed where they are.
PHOTON_CUTOFF_MEV = 0.001


@lru_cache(maxsize=1)
def _rng_kernels() -> Any:
    """Compiled xoshiro256+ (Blackman & Vigna 2021, ACM Trans Math Softw 47:36) on a uint64[4] state.

    Each batch owns one state seeded from :class:`numpy.random.SeedSequence`, so the random stream of
    a batch does not depend on which thread runs it; the generator is inlined into the transport loop.
    """
    import numba

    @numba.njit(nogil=True, inline="always", cache=False, error_model="numpy")
    def uniform(state: npt.NDArray[np.uint64]) -> float:  # pragma: no cover - compiled
        """Uniform double in [0, 1) from the upper 53 bits of the next xoshiro256+ output."""
        s0 = state[0]
        s1 = state[1]
        s2 = state[2]
        s3 = state[3]
        result = s0 + s3
        t = s1 << np.uint64(17)
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = (s3 << np.uint64(45)) | (s3 >> np.uint64(19))
        state[0] = s0
        state[1] = s1
        state[2] = s2
        state[3] = s3
        return float(result >> np.uint64(11)) * (1.0 / 9007199254740992.0)

    @numba.njit(nogil=True, inline="always", cache=False, error_model="numpy")
    def kahn(alpha: float, state: npt.NDArray[np.uint64]) -> float:  # pragma: no cover - compiled
        """Sample ρ = E/E′ ∈ [1, 1 + 2α] of a Compton scatter (α = E/mₑc²), Kahn's rejection method."""
        branch = (1.0 + 2.0 * alpha) / (9.0 + 2.0 * alpha)
        while True:
            r1 = uniform(state)
            r2 = uniform(state)
            r3 = uniform(state)
            if r1 <= branch:
                rk = 1.0 + 2.0 * alpha * r2
                if r3 <= 4.0 * (1.0 / rk - 1.0 / (rk * rk)):
                    return rk
            else:
                rk = (1.0 + 2.0 * alpha) / (1.0 + 2.0 * alpha * r2)
                mu_k = 1.0 - (rk - 1.0) / alpha
                if r3 <= 0.5 * (mu_k * mu_k + 1.0 / rk):
                    return rk

    @numba.njit(nogil=True, inline="always", cache=False, error_model="numpy")
    def azimuth(state: npt.NDArray[np.uint64]) -> tuple[float, float]:  # pragma: no cover - compiled
        """(cos φ, sin φ) of a uniform azimuth φ without trigonometric calls: a point (a, b) uniform in
        the unit disc gives cos φ = (a² − b²)/r², sin φ = 2ab/r² (von Neumann 1951, NBS Appl Math Ser
        12:36; Carter & Cashwell 1975, TID-26607, section 2)."""
        while True:
            a = 2.0 * uniform(state) - 1.0
            b = 2.0 * uniform(state) - 1.0
            r2 = a * a + b * b
            if 1e-300 < r2 <= 1.0:
                inv = 1.0 / r2
                return (a * a - b * b) * inv, 2.0 * a * b * inv

    return uniform, kahn, azimuth


def _rng_state(seed_sequence: np.random.SeedSequence) -> npt.NDArray[np.uint64]:
    """A non-zero xoshiro256+ state from a seed sequence."""
    state = seed_sequence.generate_state(4, np.uint64)
    if not np.any(state):
        state[0] = 1
    return np.ascontiguousarray(state)


def sample_compton_energy_ratio(energy_mev: float, n: int, *, seed: int = 0) -> FloatArray:
    """``n`` samples of E′/E for Compton scattering of a photon of ``energy_mev`` (Klein–Nishina, Kahn).

    The sampler and random generator used by :func:`transport_photons`; exposed for verification.
    """
    import numba

    _, kahn, _ = _rng_kernels()

    @numba.njit(cache=False)
    def draw(alpha: float, count: int, state: npt.NDArray[np.uint64]) -> FloatArray:  # pragma: no cover
        out = np.empty(count)
        for i in range(count):
            out[i] = 1.0 / kahn(alpha, state)
        return out

    state = _rng_state(np.random.SeedSequence(seed))
    return np.asarray(draw(energy_mev / ELECTRON_REST_ENERGY_MEV, n, state))


@lru_cache(maxsize=1)
def _transport_kernel() -> Any:
    import numba

    uniform, kahn, azimuth = _rng_kernels()

    @numba.njit(nogil=True, cache=False, fastmath=True, error_model="numpy")
    def transport(  # pragma: no cover - compiled
        state: npt.NDArray[np.uint64],
        n_histories: int,
        alias_probability: FloatArray,
        alias_index: npt.NDArray[np.int64],
        source_voxels: npt.NDArray[np.int64],
        shape: npt.NDArray[np.int64],
        spacing_cm: FloatArray,
        density: npt.NDArray[np.float32],
        thresholds: FloatArray,
        line_cdf: FloatArray,
        line_energy_mev: FloatArray,
        log_e0: float,
        inv_dlog: float,
        n_e: int,
        mu_photo: FloatArray,
        mu_compton: FloatArray,
        mu_total: FloatArray,
        mu_major: FloatArray,
        edep_mev: FloatArray,
    ) -> int:
        n0, n1, n2 = shape[0], shape[1], shape[2]
        s0, s1, s2 = spacing_cm[0], spacing_cm[1], spacing_cm[2]
        inv0, inv1, inv2 = 1.0 / s0, 1.0 / s1, 1.0 / s2
        l0, l1, l2 = n0 * s0, n1 * s1, n2 * s2
        n_source = alias_probability.shape[0]
        n_lines = line_cdf.shape[0]
        total_lines = line_cdf[-1]
        n_mat = mu_total.shape[0]
        mec2 = ELECTRON_REST_ENERGY_MEV
        cutoff = PHOTON_CUTOFF_MEV
        # interaction coefficients of every material at the current energy (direct indexing per step)
        cur_total = np.empty(n_mat)
        cur_photo = np.empty(n_mat)
        cur_photo_compton = np.empty(n_mat)
        steps = 0
        for _ in range(n_histories):
            # source voxel by Walker's alias method (Walker 1977, ACM Trans Math Softw 3:253)
            u = uniform(state) * n_source
            s_i = int(u)
            if s_i >= n_source:
                s_i = n_source - 1
            if u - s_i >= alias_probability[s_i]:
                s_i = alias_index[s_i]
            v = source_voxels[s_i]
            i0 = v // (n1 * n2)
            rem = v - i0 * n1 * n2
            i1 = rem // n2
            i2 = rem - i1 * n2
            x = (i0 + uniform(state)) * s0
            y = (i1 + uniform(state)) * s1
            z = (i2 + uniform(state)) * s2
            r_line = uniform(state) * total_lines
            li = 0
            while li < n_lines - 1 and line_cdf[li] <= r_line:
                li += 1
            e = line_energy_mev[li]
            uz = 2.0 * uniform(state) - 1.0
            st = np.sqrt(max(0.0, 1.0 - uz * uz))
            cp, sp = azimuth(state)
            ux = st * cp
            uy = st * sp
            energy_changed = True
            mu_max = 1.0
            while True:
                if energy_changed:
                    t = (np.log(e) - log_e0) * inv_dlog
                    j = int(t)
                    if j < 0:
                        j = 0
                    if j > n_e - 2:
                        j = n_e - 2
                    f = t - j
                    mu_max = mu_major[j] + f * (mu_major[j + 1] - mu_major[j])
                    for m in range(n_mat):
                        p = mu_photo[m, j] + f * (mu_photo[m, j + 1] - mu_photo[m, j])
                        c = mu_compton[m, j] + f * (mu_compton[m, j + 1] - mu_compton[m, j])
                        cur_total[m] = mu_total[m, j] + f * (mu_total[m, j + 1] - mu_total[m, j])
                        cur_photo[m] = p
                        cur_photo_compton[m] = p + c
                    energy_changed = False
                step = -np.log(1.0 - uniform(state)) / mu_max
                x += step * ux
                y += step * uy
                z += step * uz
                steps += 1
                if x < 0.0 or y < 0.0 or z < 0.0 or x >= l0 or y >= l1 or z >= l2:
                    break
                k0 = int(x * inv0)
                k1 = int(y * inv1)
                k2 = int(z * inv2)
                if k0 >= n0:
                    k0 = n0 - 1
                if k1 >= n1:
                    k1 = n1 - 1
                if k2 >= n2:
                    k2 = n2 - 1
                idx = (k0 * n1 + k1) * n2 + k2
                rho = density[idx]
                # material from the density, as material_index_from_density: thresholds ≤ ρ
                m = 0
                for th in thresholds:
                    if rho >= th:
                        m += 1
                # real interaction with probability μ(x)/μ_max: compare ξ·μ_max/ρ with μ/ρ of the material
                xi = uniform(state) * mu_max / rho
                if xi >= cur_total[m]:
                    continue  # virtual interaction
                if xi < cur_photo[m]:
                    edep_mev[idx] += e
                    break
                if xi < cur_photo_compton[m]:
                    rk = kahn(e / mec2, state)
                    cos_t = 1.0 - (rk - 1.0) * mec2 / e
                    e_new = e / rk
                    edep_mev[idx] += e - e_new
                    e = e_new
                    energy_changed = True
                else:
                    # Rayleigh with the Thomson distribution (1 + cos^2)/2
                    while True:
                        cos_t = 2.0 * uniform(state) - 1.0
                        if 2.0 * uniform(state) <= 1.0 + cos_t * cos_t:
                            break
                if e < cutoff:
                    edep_mev[idx] += e
                    break
                # rotate the direction by polar angle acos(cos_t) and a uniform azimuth
                if cos_t > 1.0:
                    cos_t = 1.0
                if cos_t < -1.0:
                    cos_t = -1.0
                sin_t = np.sqrt(1.0 - cos_t * cos_t)
                cp, sp = azimuth(state)
                if abs(uz) > 0.99999:
                    ux = sin_t * cp
                    uy = sin_t * sp
                    uz = cos_t if uz > 0 else -cos_t
                else:
                    root = np.sqrt(1.0 - uz * uz)
                    nux = ux * cos_t + sin_t * (ux * uz * cp - uy * sp) / root
                    nuy = uy * cos_t + sin_t * (uy * uz * cp + ux * sp) / root
                    nuz = uz * cos_t - sin_t * cp * root
                    norm = np.sqrt(nux * nux + nuy * nuy + nuz * nuz)
                    ux = nux / norm
                    uy = nuy / norm
                    uz = nuz / norm
        return steps

    return transport


@lru_cache(maxsize=1)
def _alias_kernel() -> Any:
    import numba

    @numba.njit(nogil=True, cache=False)
    def build(weights: FloatArray) -> tuple[FloatArray, npt.NDArray[np.int64]]:  # pragma: no cover
        n = weights.size
        scaled = weights * (n / weights.sum())
        probability = np.ones(n)
        alias = np.arange(n)
        small = np.empty(n, dtype=np.int64)
        large = np.empty(n, dtype=np.int64)
        n_small = 0
        n_large = 0
        for i in range(n):
            if scaled[i] < 1.0:
                small[n_small] = i
                n_small += 1
            else:
                large[n_large] = i
                n_large += 1
        while n_small > 0 and n_large > 0:
            n_small -= 1
            s = small[n_small]
            n_large -= 1
            g = large[n_large]
            probability[s] = scaled[s]
            alias[s] = g
            scaled[g] = (scaled[g] + scaled[s]) - 1.0
            if scaled[g] < 1.0:
                small[n_small] = g
                n_small += 1
            else:
                large[n_large] = g
                n_large += 1
        # bins left on either stack have probability 1 up to rounding
        return probability, alias

    return build


def _alias_table(weights: FloatArray) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    """Walker's alias table, Vose's construction (Vose 1991, IEEE Trans Softw Eng 17:972).

    Sampling: draw u·n, take bin i = ⌊u·n⌋, keep i if the fractional part u·n − i is below
    ``probability[i]``, otherwise take ``alias[i]``; bin i is then chosen with probability
    weights[i]/Σ weights.
    """
    probability, alias = _alias_kernel()(np.ascontiguousarray(weights, dtype=np.float64))
    return np.asarray(probability), np.asarray(alias, dtype=np.int64)


@dataclass(frozen=True)
class PhotonTransportResult:
    """Energy imparted by photons per voxel.

    Attributes
    ----------
    energy_mev : ndarray, shape (n0, n1, n2)
        Mean energy imparted (MeV) in each voxel for the given number of decays.
    relative_uncertainty : ndarray, shape (n0, n1, n2)
        Relative standard error of ``energy_mev`` (batch method); NaN where no energy was deposited.
    n_photons : int
        Photon histories simulated.
    n_steps : int
        Free-flight steps (real and virtual interactions) taken.
    """

    energy_mev: FloatArray
    relative_uncertainty: FloatArray
    n_photons: int
    n_steps: int


def transport_photons(
    decays: npt.NDArray[np.floating],
    density_g_per_ml: npt.NDArray[np.floating],
    *,
    spacing_mm: tuple[float, float, float],
    line_energy_mev: npt.ArrayLike,
    line_yield_per_decay: npt.ArrayLike,
    n_photons: int = 1_000_000,
    n_batches: int = 10,
    seed: int = 0,
    workers: int | None = None,
    cross_sections: Any = None,
) -> PhotonTransportResult:
    """Simulate the photon emissions of ``decays`` in the medium ``density_g_per_ml``.

    Parameters
    ----------
    decays : ndarray, shape (n0, n1, n2)
        Number of decays per voxel (≥ 0).
    density_g_per_ml : ndarray, same shape
        Mass density (g/cm³); the material (air, lung, soft tissue, bone) follows from it.
    spacing_mm : 3 floats
        Voxel sides (mm) along the array axes.
    line_energy_mev, line_yield_per_decay : array_like, shape (m,)
        Photon lines.
    n_photons : int
        Number of photon histories (split over the batches).
    n_batches : int
        Number of independent batches (≥ 2) for the uncertainty.
    seed : int
        Seed; same seed, same result.
    workers : int, optional
        Threads running batches in parallel (default: all CPUs).
    cross_sections : PhotonCrossSections, optional
        Precomputed tables (default: :func:`~theradose.dosimetry.materials.photon_cross_sections`).

    Returns
    -------
    PhotonTransportResult
    """
    import os
    from concurrent.futures import ThreadPoolExecutor

    from theradose.dosimetry.materials import (
        MATERIAL_DENSITY_THRESHOLDS_G_PER_ML,
        MC_MATERIALS,
        material_index_from_density,
    )
    from theradose.units import mm_to_cm

    source = np.asarray(decays, dtype=np.float64)
    density = np.ascontiguousarray(density_g_per_ml, dtype=np.float64)
    if source.ndim != 3 or density.shape != source.shape:
        raise InputError(
            f"decays and density must be 3-D arrays of one shape; got {source.shape} and {density.shape}"
        )
    if np.any(source < 0) or not np.all(np.isfinite(source)):
        raise InputError("decays must be finite and ≥ 0: clip negative activity before dosimetry")
    if np.any(density <= 0):
        raise InputError("density must be positive everywhere; got values ≤ 0: clip the density map")
    if n_batches < 2:
        raise InputError(f"n_batches must be at least 2; got {n_batches}: the batch method needs two")
    if n_photons < n_batches:
        raise InputError(f"n_photons must be ≥ n_batches ({n_batches}); got {n_photons}")
    energies = np.asarray(line_energy_mev, dtype=np.float64)
    yields = np.asarray(line_yield_per_decay, dtype=np.float64)
    total_decays = float(source.sum())
    photons_per_decay = float(yields.sum())
    zeros = np.zeros_like(source)
    if energies.size == 0 or photons_per_decay <= 0 or total_decays <= 0:
        return PhotonTransportResult(zeros, np.full_like(source, np.nan), 0, 0)

    xs = cross_sections if cross_sections is not None else _default_cross_sections()
    if tuple(xs.materials) != MC_MATERIALS:
        raise InputError(f"cross_sections must cover {MC_MATERIALS}; got {xs.materials}")
    # single precision halves the memory traffic of the per-step density look-up; the material is
    # derived from the same single-precision values inside the kernel
    flat_density = density.ravel().astype(np.float32)
    material = material_index_from_density(flat_density)
    log_e = np.log(xs.energy_mev)
    inv_dlog = 1.0 / (log_e[1] - log_e[0])
    max_density = np.zeros(len(MC_MATERIALS))
    for m in range(len(MC_MATERIALS)):
        in_m = material == m
        if np.any(in_m):
            max_density[m] = float(flat_density[in_m].max())
    mu_major = (max_density[:, None] * xs.total_cm2_per_g).max(axis=0)
    mu_major *= 1.0 + 1e-9

    # sample only among voxels with decays, in constant time with an alias table
    source_voxels = np.flatnonzero(source.ravel() > 0).astype(np.int64)
    alias_probability, alias_index = _alias_table(source.ravel()[source_voxels])
    line_cdf = np.cumsum(yields)
    shape = np.array(source.shape, dtype=np.int64)
    spacing_cm = np.array([mm_to_cm(float(s)) for s in spacing_mm])
    states = [_rng_state(s) for s in np.random.SeedSequence(seed).spawn(n_batches)]
    per_batch = [n_photons // n_batches + (1 if b < n_photons % n_batches else 0) for b in range(n_batches)]
    kernel = _transport_kernel()
    thresholds = np.array(MATERIAL_DENSITY_THRESHOLDS_G_PER_ML, dtype=np.float64)
    photo = np.ascontiguousarray(xs.photoelectric_cm2_per_g, dtype=np.float64)
    compton = np.ascontiguousarray(xs.compton_cm2_per_g, dtype=np.float64)
    total_xs = np.ascontiguousarray(xs.total_cm2_per_g, dtype=np.float64)

    def run_batch(b: int) -> tuple[FloatArray, int]:
        edep = np.zeros(source.size)
        steps = kernel(
            states[b],
            per_batch[b],
            alias_probability,
            alias_index,
            source_voxels,
            shape,
            spacing_cm,
            flat_density,
            thresholds,
            line_cdf,
            energies,
            float(log_e[0]),
            float(inv_dlog),
            int(log_e.size),
            photo,
            compton,
            total_xs,
            mu_major,
            edep,
        )
        # scale to the real number of photons emitted by all decays
        edep *= total_decays * photons_per_decay / per_batch[b]
        return edep, int(steps)

    n_workers = workers if workers is not None else (os.cpu_count() or 1)
    total = np.zeros(source.size)
    total_sq = np.zeros(source.size)
    n_steps = 0
    with ThreadPoolExecutor(max_workers=max(1, n_workers)) as pool:
        for edep, steps in pool.map(run_batch, range(n_batches)):
            total += edep
            total_sq += edep * edep
            n_steps += steps
    mean = total / n_batches
    variance = np.clip(total_sq / n_batches - mean * mean, 0.0, None) * n_batches / (n_batches - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(mean > 0, np.sqrt(variance / n_batches) / mean, np.nan)
    return PhotonTransportResult(
        energy_mev=mean.reshape(source.shape),
        relative_uncertainty=rel.reshape(source.shape),
        n_photons=int(sum(per_batch)),
        n_steps=n_steps,
    )


@lru_cache(maxsize=1)
def _default_cross_sections() -> Any:
    from theradose.dosimetry.materials import photon_cross_sections

    return photon_cross_sections()
