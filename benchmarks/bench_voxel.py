"""Voxel dosimetry performance: VSV convolution, voxel-wise fitting, Monte Carlo photon throughput.

Run: ``PYTHONPATH=src python benchmarks/bench_voxel.py [--only vsv,fit,mc] [--repeat N]``. Prints each
figure and its ratio against a baseline measured in the same process. Goals: VSV 256³ ⊛ 51³ ≤ 0.3 s on 2
cores and ≥ 3× faster than ``scipy.signal.fftconvolve``; 1e6 voxel fits ≤ 1 s; Monte Carlo ≥ 2e6
photons/s on 2 cores.

Every timing is given as wall-clock time and as the CPU time of the process (all threads), with the
1-minute load average next to it. On a shared, busy machine the wall time includes waiting for a core;
the CPU time does not. The bi-exponential fit and the Monte Carlo are run ``--repeat`` times with the
threads used and with one thread (the baseline of the parallel speed-up); best and median are printed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable

import numpy as np


def timed(function: Callable[[], object], repeats: int = 1) -> tuple[float, float]:
    """Best wall time and the CPU time of that run (s)."""
    best = (float("inf"), float("inf"))
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        function()
        result = (time.perf_counter() - wall, time.process_time() - cpu)
        best = min(best, result)
    return best


def fmt(t: tuple[float, float]) -> str:
    return f"{t[0]:.3f} s wall ({t[1]:.3f} s CPU)"


def repeated(function: Callable[[], object], repeats: int) -> list[tuple[float, float, float]]:
    """(wall s, CPU s, 1-min load average before the run) of each of ``repeats`` runs."""
    runs = []
    for _ in range(repeats):
        before = os.getloadavg()[0]
        wall, cpu = timed(function)
        runs.append((wall, cpu, before))
    return runs


def summary(runs: list[tuple[float, float, float]], *, per: float = 1.0, unit: str = "s") -> str:
    """Best and median over runs, as times (per = 1) or as rates per / time."""
    walls = [r[0] for r in runs]
    cpus = [r[1] for r in runs]
    loads = [r[2] for r in runs]
    if unit == "s":
        best, median = min(walls), statistics.median(walls)
        return (
            f"best {best:.3f} s wall, median {median:.3f} s wall "
            f"(CPU median {statistics.median(cpus):.3f} s; load {min(loads):.2f}-{max(loads):.2f}; "
            f"n={len(runs)})"
        )
    best, median = per / min(walls), per / statistics.median(walls)
    return (
        f"best {best:.2e} {unit} wall, median {median:.2e} {unit} wall "
        f"({per / statistics.median(cpus):.2e} per CPU-second; load {min(loads):.2f}-{max(loads):.2f}; "
        f"n={len(runs)})"
    )


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
    first = timed(lambda: fft_convolve_same(tia, kernel, workers=workers))
    cached = timed(lambda: fft_convolve_same(tia, kernel, workers=workers), 3)
    baseline = timed(lambda: fftconvolve(tia, kernel, mode="same"))
    ours = fft_convolve_same(tia, kernel, workers=workers)
    reference = fftconvolve(tia, kernel, mode="same")
    error = float(np.max(np.abs(ours - reference)) / np.max(np.abs(reference)))
    print(
        f"VSV 256^3 (*) 51^3 float32, workers={workers}: {fmt(cached)} with cached kernel spectrum "
        f"(first call {fmt(first)}); scipy.signal.fftconvolve: {fmt(baseline)}; "
        f"ratio {baseline[0] / cached[0]:.1f}x wall, {baseline[1] / cached[1]:.1f}x CPU; "
        f"max rel. difference {error:.1e}"
    )


def bench_fitting(workers: int, repeats: int) -> None:
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
    mono = timed(lambda: fit_mono_exponential_voxels(t, activity, decay_constant_per_h=lam_phys), 3)
    fit_biexponential_voxels(t, activity[:, :1000], decay_constant_per_h=lam_phys)  # compile
    bi_runs = repeated(
        lambda: fit_biexponential_voxels(t, activity, decay_constant_per_h=lam_phys, workers=workers), repeats
    )
    bi_serial = repeated(
        lambda: fit_biexponential_voxels(t, activity, decay_constant_per_h=lam_phys, workers=1), repeats
    )
    bi = (min(r[0] for r in bi_runs), min(r[1] for r in bi_runs))

    def mono_model(tt: np.ndarray, a0: float, k: float) -> np.ndarray:
        return a0 * np.exp(-k * tt)

    def bi_model(tt: np.ndarray, amp: float, k1: float, k2: float) -> np.ndarray:
        return amp * (np.exp(-k1 * tt) - np.exp(-k2 * tt))

    sample = 300

    def mono_loop() -> None:
        for v in range(sample):
            curve_fit(mono_model, t[1:], activity[1:, v], p0=(activity[1, v], 0.02), maxfev=5000)

    def bi_loop() -> None:
        for v in range(sample):
            curve_fit(bi_model, t, activity[:, v], p0=(40.0, 0.02, 0.3), maxfev=5000)

    scale = n / sample
    mono_base = timed(mono_loop)
    bi_base = timed(bi_loop)
    print(
        f"voxel fit 1e6 voxels x 4 times, mono-exponential (log-linear): {fmt(mono)}; curve_fit loop "
        f"extrapolated from {sample} voxels {mono_base[0] * scale:.0f} s wall; "
        f"ratio {mono_base[0] * scale / mono[0]:.0f}x"
    )
    print(
        f"voxel fit 1e6 voxels x 4 times, bi-exponential (numba LM), {workers} threads: "
        f"{summary(bi_runs)} [goal <= 1 s]; 1 thread: {summary(bi_serial)}; "
        f"ratio {statistics.median(r[0] for r in bi_serial) / statistics.median(r[0] for r in bi_runs):.2f}x "
        f"(medians); curve_fit loop extrapolated {bi_base[0] * scale:.0f} s wall; "
        f"ratio {bi_base[0] * scale / bi[0]:.0f}x (best)"
    )


def bench_mc(workers: int, repeats: int) -> None:
    from theradose.dosimetry.engines.mc import transport_photons

    n = 64
    idx = np.indices((n, n, n)) - (n - 1) / 2
    source = (np.sqrt((idx**2).sum(axis=0)) <= 12).astype(float)
    density = np.full((n, n, n), 1.04)
    kwargs = {
        "spacing_mm": (4.0, 4.0, 4.0),
        "line_energy_mev": [0.2084, 0.1129, 0.0550],
        "line_yield_per_decay": [0.104, 0.062, 0.045],
    }
    transport_photons(source, density, n_photons=20_000, workers=workers, **kwargs)  # compile
    n_photons = 4_000_000
    parallel = repeated(
        lambda: transport_photons(source, density, n_photons=n_photons, workers=workers, **kwargs), repeats
    )
    single = repeated(
        lambda: transport_photons(source, density, n_photons=n_photons // 4, workers=1, **kwargs), repeats
    )
    ratio = (n_photons / statistics.median(r[0] for r in parallel)) / (
        n_photons / 4 / statistics.median(r[0] for r in single)
    )
    print(
        f"Monte Carlo Lu-177 photons (64^3 soft tissue, 4 mm, 5 steps/photon), {workers} threads: "
        f"{summary(parallel, per=n_photons, unit='photons/s')} [goal >= 2e6/s]; "
        f"1 thread: {summary(single, per=n_photons / 4, unit='photons/s')}; ratio {ratio:.2f}x (medians)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="vsv,fit,mc", help="comma-separated subset of vsv,fit,mc")
    parser.add_argument("--repeat", type=int, default=3, help="runs of the fit and Monte Carlo timings")
    args = parser.parse_args()
    sections = set(args.only.split(","))
    workers = min(2, os.cpu_count() or 1)
    with tempfile.TemporaryDirectory() as cache:
        os.environ["THERADOSE_CACHE_DIR"] = cache
        print(f"threads: {workers} of {os.cpu_count()} CPUs; load average before: {os.getloadavg()}")
        if "vsv" in sections:
            bench_vsv(workers)
        if "fit" in sections:
            bench_fitting(workers, args.repeat)
        if "mc" in sections:
            bench_mc(workers, args.repeat)
        print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
