"""SPECT projector and OSEM speed on 64³ and 128³ grids, against a simple baseline in the same process.

Figure: time of one full projection (120 views) and of one OSEM iteration (120 views, 10 subsets:
forward + backprojection of every view) with theradose's projector (numba splat/attenuate kernels,
depth-grouped Gaussian CDR).

Baseline: the textbook rotation projector — per view, ``scipy.ndimage.rotate`` of the activity and of
the μ-map (bilinear), attenuation by a cumulative sum and ``exp``, and one 2-D Gaussian filter per depth
plane — timed on a few views and scaled to 120 (per-view cost is constant). Its OSEM iteration is
estimated as twice its projection (a rotation backprojector costs the same as the projector).

Run: ``PYTHONPATH=src python benchmarks/bench_spect.py``
"""

from __future__ import annotations

import math
import time

import numpy as np
from scipy.ndimage import gaussian_filter, rotate

from theradose.phantoms.osem import osem
from theradose.phantoms.physical import uniform_cylinder
from theradose.phantoms.projector import FWHM_PER_SIGMA
from theradose.phantoms.spect import default_system, make_projector, mu_map_from_hu

N_VIEWS = 120
SUBSETS = 10
BASELINE_VIEWS = 4


def baseline_view(
    activity: np.ndarray, mu_per_cm: np.ndarray, angle_deg: float, spacing_mm: float, radius_mm: float
) -> np.ndarray:
    """One view with scipy.ndimage.rotate, cumsum attenuation and per-plane Gaussian blur."""
    system = default_system()
    act = rotate(activity, angle_deg, axes=(1, 2), reshape=False, order=1)
    mu = rotate(mu_per_cm, angle_deg, axes=(1, 2), reshape=False, order=1) * spacing_mm / 10.0
    path = np.cumsum(mu, axis=1) - 0.5 * mu
    weighted = act * np.exp(-path)
    n = activity.shape[1]
    proj = np.zeros((activity.shape[0], activity.shape[2]))
    for j in range(n):
        distance = radius_mm + (j - (n - 1) / 2.0) * spacing_mm
        sigma = float(system.collimator.fwhm_mm(distance)) / FWHM_PER_SIGMA / spacing_mm
        proj += gaussian_filter(weighted[:, j, :], sigma=sigma, mode="constant")
    return proj


def bench(n: int, spacing_mm: float) -> dict[str, float]:
    cyl = uniform_cylinder(
        diameter_mm=0.75 * n * spacing_mm,
        length_mm=0.8 * n * spacing_mm,
        spacing_mm=spacing_mm,
        shape=(n, n, n),
    )
    activity = cyl.activity_mbq
    mu = mu_map_from_hu(cyl.hu)
    system = default_system().with_(n_views=N_VIEWS)
    projector = make_projector(mu, cyl.grid.spacing_mm, system, shape=(n, n, n))
    projector.forward(activity, [0])  # compile the kernels outside the timing

    t0 = time.perf_counter()
    counts = np.maximum(projector.forward(activity), 0.0)
    t_fwd = time.perf_counter() - t0

    subset_views = [np.arange(s, N_VIEWS, SUBSETS) for s in range(SUBSETS)]
    for views in subset_views:  # sensitivity images are computed once per study and cached
        projector.sensitivity(views)
    t0 = time.perf_counter()
    osem(counts, projector, iterations=1, subsets=SUBSETS)
    t_iter = time.perf_counter() - t0

    angles = system.angles_deg[:BASELINE_VIEWS]
    t0 = time.perf_counter()
    for angle in angles:
        baseline_view(activity, mu, float(angle), spacing_mm, system.radius_mm)
    t_base_view = (time.perf_counter() - t0) / BASELINE_VIEWS
    return {
        "projection_s": t_fwd,
        "osem_iteration_s": t_iter,
        "baseline_projection_s": t_base_view * N_VIEWS,
        "baseline_osem_iteration_s": 2.0 * t_base_view * N_VIEWS,
    }


def main() -> None:
    print(f"SPECT projector / OSEM, {N_VIEWS} views, {SUBSETS} subsets (one process; baseline scaled)")
    for n, spacing in ((64, 9.6), (128, 4.8)):
        r = bench(n, spacing)
        print(
            f"{n}^3: projection {r['projection_s']:.2f} s (baseline {r['baseline_projection_s']:.1f} s, "
            f"ratio {r['baseline_projection_s'] / r['projection_s']:.1f}x); "
            f"OSEM iteration {r['osem_iteration_s']:.2f} s (baseline {r['baseline_osem_iteration_s']:.1f} s, "
            f"ratio {r['baseline_osem_iteration_s'] / r['osem_iteration_s']:.1f}x)"
        )
        assert math.isfinite(r["projection_s"])


if __name__ == "__main__":
    main()
