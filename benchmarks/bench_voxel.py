"""Voxel dosimetry performance: VSV convolution, voxel-wise fitting, Monte Carlo photon throughput.

Run: ``PYTHONPATH=src python benchmarks/bench_voxel.py``. Prints each figure and its ratio against a
baseline measured in the same process. Goals: VSV 256³ ⊛ 51³ ≤ 0.3 s on 2 cores and ≥ 3× faster than
``scipy.signal.fftconvolve``; 1e6 voxel fits ≤ 1 s; Monte Carlo ≥ 2e6 photons/s on 2 cores.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable

import numpy as np


def best_of(function: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def bench_vsv(workers: int) -> None:
    from scipy.signal import fftconvolve

    from theradose.dosimetry.engines.vsv import fft_convolve_same
    from theradose.dosimetry.kernels import nuclide_kernel

    rng = np.random.default_rng(1)
    tia = rng.random((256, 256, 256), dtype=np.float32)
    # a dense 51^3 kernel: the Lu-177 electron VSV (2 mm) plus a 1/r^2 tail like a photon contribution,
    # so that no zero planes can be trimmed
    electrons = nuclide_kernel("Lu-177", voxel_mm=2.0, size=51).values_mgy_per_mbq_s
    r2 = (np.indices((51, 51, 51)) - 25.0) ** 2
    kernel = (electrons + 1e-4 / (1.0 + r2.sum(axis=0))).astype(np.float32)
    start = time.perf_counter()
    ours = fft_convolve_same(tia, kernel, workers=workers)
    first = time.perf_counter() - start
    cached = best_of(lambda: fft_convolve_same(tia, kernel, workers=workers), 3)
    start = time.perf_counter()
    reference = fftconvolve(tia, kernel, mode="same")
    baseline = time.perf_counter() - start
    error = float(np.max(np.abs(ours - reference)) / np.max(np.abs(reference)))
    print(
        f"VSV 256^3 (*) 51^3 float32, workers={workers}: {cached:.3f} s with cached kernel spectrum "
        f"({first:.3f} s first call); scipy.signal.fftconvolve: {baseline:.3f} s; "
        f"ratio {baseline / cached:.1f}x; max rel. difference {error:.1e}"
    )


def bench_fitting() -> None:
    from scipy.optimize import curve_fit

    from theradose.kinetics.voxel import fit_biexponential_voxels, fit_mono_exponential_voxels

    rng = np.random.default_rng(2)
    n = 1_000_000
    t = np.array([4.0, 24.0, 72.0, 168.0])
    lam_phys = np.log(2) / 159.53
    a = rng.uniform(5, 50, n)
    l1 = rng.uniform(0.008, 0.03, n)
    l2 = l1 + rng.uniform(0.05, 0.5, n)
    activity = a * (np.exp(-l1 * t[:, None]) - np.exp(-l2 * t[:, None]))
    activity *= 1 + 0.03 * rng.standard_normal(activity.shape)
    mono = best_of(lambda: fit_mono_exponential_voxels(t, activity, decay_constant_per_h=lam_phys), 3)
    fit_biexponential_voxels(t, activity[:, :1000], decay_constant_per_h=lam_phys)  # compile
    start = time.perf_counter()
    fit_biexponential_voxels(t, activity, decay_constant_per_h=lam_phys)
    bi = time.perf_counter() - start

    def mono_model(tt: np.ndarray, a0: float, k: float) -> np.ndarray:
        return a0 * np.exp(-k * tt)

    def bi_model(tt: np.ndarray, amp: float, k1: float, k2: float) -> np.ndarray:
        return amp * (np.exp(-k1 * tt) - np.exp(-k2 * tt))

    sample = 300
    start = time.perf_counter()
    for v in range(sample):
        curve_fit(mono_model, t[1:], activity[1:, v], p0=(activity[1, v], 0.02), maxfev=5000)
    mono_loop = (time.perf_counter() - start) / sample * n
    start = time.perf_counter()
    for v in range(sample):
        curve_fit(bi_model, t, activity[:, v], p0=(40.0, 0.02, 0.3), maxfev=5000)
    bi_loop = (time.perf_counter() - start) / sample * n
    print(
        f"voxel fit 1e6 voxels x 4 times: mono-exponential (log-linear) {mono:.3f} s, "
        f"curve_fit loop extrapolated from {sample} voxels {mono_loop:.0f} s, ratio {mono_loop / mono:.0f}x"
    )
    print(
        f"voxel fit 1e6 voxels x 4 times: bi-exponential (numba LM) {bi:.3f} s, "
        f"curve_fit loop extrapolated {bi_loop:.0f} s, ratio {bi_loop / bi:.0f}x"
    )


def bench_mc(workers: int) -> None:
    from theradose.dosimetry.engines.mc import transport_photons

    n = 64
    idx = np.indices((n, n, n)) - (n - 1) / 2
    source = (np.sqrt((idx**2).sum(axis=0)) <= 12).astype(float)
    density = np.full((n, n, n), 1.04)
    lines_mev = [0.2084, 0.1129, 0.0550]
    yields = [0.104, 0.062, 0.045]
    kwargs = {"spacing_mm": (4.0, 4.0, 4.0), "line_energy_mev": lines_mev, "line_yield_per_decay": yields}
    transport_photons(source, density, n_photons=20_000, workers=workers, **kwargs)  # compile
    n_photons = 4_000_000
    start = time.perf_counter()
    result = transport_photons(source, density, n_photons=n_photons, n_batches=10, workers=workers, **kwargs)
    elapsed = time.perf_counter() - start
    one = statistics.median(
        best_of(lambda: transport_photons(source, density, n_photons=400_000, workers=1, **kwargs), 1)
        for _ in range(1)
    )
    print(
        f"Monte Carlo Lu-177 photons, 64^3 soft tissue, 4 mm, workers={workers}: "
        f"{n_photons / elapsed:.2e} photons/s ({result.n_steps / result.n_photons:.1f} steps/photon); "
        f"1 worker: {400_000 / one:.2e} photons/s; ratio {(n_photons / elapsed) / (400_000 / one):.2f}x"
    )


def main() -> None:
    workers = min(2, os.cpu_count() or 1)
    with tempfile.TemporaryDirectory() as cache:
        os.environ["THERADOSE_CACHE_DIR"] = cache
        print(f"load average before: {os.getloadavg()}")
        bench_vsv(workers)
        bench_fitting()
        bench_mc(workers)
        print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
