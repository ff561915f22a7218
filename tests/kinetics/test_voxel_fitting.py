"""Voxel-wise kinetics: mono-exponential, bi-exponential LM, hybrid TIA and dose-rate integration."""

from __future__ import annotations

import math

import numpy as np
import pytest

from theradose.errors import InputError
from theradose.kinetics.voxel import (
    fit_biexponential_voxels,
    fit_mono_exponential_voxels,
    hybrid_tia_by_label,
    hybrid_tia_from_organ_fits,
    hybrid_tia_voxels,
    integrate_dose_rate_voxels,
)

TIME_H = np.array([4.0, 24.0, 72.0, 168.0])
LU177_DECAY_PER_H = math.log(2) / 159.53


def test_mono_exponential_exact_recovery() -> None:
    """A(t) = 30·e^(−0.02 t): A0 = 30, λ = 0.02/h, TIA = 30/0.02 = 1500 (activity·h)."""
    activity = 30.0 * np.exp(-0.02 * TIME_H)[:, None, None] * np.ones((1, 3, 2))
    fit = fit_mono_exponential_voxels(TIME_H, activity)
    np.testing.assert_allclose(fit.a0, 30.0)
    np.testing.assert_allclose(fit.decay_constant_per_h, 0.02)
    np.testing.assert_allclose(fit.tia, 1500.0)
    assert fit.tia.shape == (3, 2)


def test_mono_exponential_clamps_to_physical_decay_and_flags_empty() -> None:
    """A rising curve (λ < λ_phys) is refitted with λ = λ_phys; an all-zero voxel is not fitted."""
    rising = np.array([10.0, 11.0, 12.0, 13.0])
    activity = np.stack([rising, np.zeros(4)], axis=1)
    fit = fit_mono_exponential_voxels(TIME_H, activity, decay_constant_per_h=LU177_DECAY_PER_H)
    assert fit.clamped[0] and fit.fitted[0]
    assert fit.decay_constant_per_h[0] == pytest.approx(LU177_DECAY_PER_H)
    # intercept of the weighted fit with fixed slope: exp(Σw(y + λt)/Σw), w = A
    w = rising
    expected_a0 = math.exp(float(np.sum(w * (np.log(rising) + LU177_DECAY_PER_H * TIME_H)) / np.sum(w)))
    assert fit.a0[0] == pytest.approx(expected_a0)
    assert not fit.fitted[1] and fit.tia[1] == 0.0


def test_biexponential_recovers_parameters(rng: np.random.Generator) -> None:
    n = 2000
    a = rng.uniform(5, 50, n)
    l1 = rng.uniform(0.008, 0.03, n)
    l2 = l1 + rng.uniform(0.05, 0.5, n)
    activity = a * (np.exp(-l1 * TIME_H[:, None]) - np.exp(-l2 * TIME_H[:, None]))
    fit = fit_biexponential_voxels(TIME_H, activity, decay_constant_per_h=LU177_DECAY_PER_H)
    expected_tia = a * (1 / l1 - 1 / l2)
    rel = np.abs(fit.tia / expected_tia - 1)
    assert np.mean(fit.converged) > 0.99
    assert np.median(rel) < 1e-8
    assert np.mean(rel < 1e-4) > 0.99
    np.testing.assert_allclose(fit.evaluate(TIME_H)[:, rel < 1e-6], activity[:, rel < 1e-6], rtol=1e-5)


def test_biexponential_matches_curve_fit_on_noisy_data(rng: np.random.Generator) -> None:
    """Same least-squares optimum as scipy.optimize.curve_fit on noisy 5-point curves."""
    from scipy.optimize import curve_fit

    t = np.array([1.0, 4.0, 24.0, 72.0, 168.0])
    truth = 40.0 * (np.exp(-0.02 * t) - np.exp(-0.4 * t))
    noisy = truth[:, None] * (1 + 0.05 * rng.standard_normal((t.size, 20)))
    fit = fit_biexponential_voxels(t, noisy)

    def model(tt: np.ndarray, amp: float, k1: float, k2: float) -> np.ndarray:
        return amp * (np.exp(-k1 * tt) - np.exp(-k2 * tt))

    for v in range(noisy.shape[1]):
        p, _ = curve_fit(model, t, noisy[:, v], p0=(40.0, 0.02, 0.4), maxfev=20000)
        sse_scipy = float(np.sum((model(t, *p) - noisy[:, v]) ** 2))
        assert fit.sse[v] <= sse_scipy * (1 + 1e-6) + 1e-12
        assert fit.tia[v] == pytest.approx(p[0] * (1 / p[1] - 1 / p[2]), rel=1e-3)


def test_hybrid_tia() -> None:
    """Voxels that are scaled copies of the organ curve get the same share of the organ TIA."""
    organ_curve = np.array([20.0, 30.0, 18.0, 6.0])
    shares = np.array([0.5, 0.3, 0.2])
    activity = organ_curve[:, None] * shares[None, :]
    tia = hybrid_tia_voxels(TIME_H, activity, organ_curve, organ_tia=4000.0)
    np.testing.assert_allclose(tia, shares * 4000.0)
    labels = np.array([[1, 1, 1, 2]])
    activity_img = np.zeros((4, 1, 4))
    activity_img[:, 0, :3] = activity
    activity_img[:, 0, 3] = organ_curve
    by_label = hybrid_tia_by_label(TIME_H, activity_img, labels, {1: 4000.0, 2: 100.0})
    np.testing.assert_allclose(by_label[0, :3], shares * 4000.0)
    assert by_label[0, 3] == pytest.approx(100.0)
    with pytest.raises(InputError):
        hybrid_tia_by_label(TIME_H, activity_img, labels, {3: 1.0})


def test_dose_rate_integration_by_hand() -> None:
    """Dose rates 2, 4, 2, 1 Gy/h at 4, 24, 72, 168 h:
    head 2·4/2 = 4; trapezoids (2+4)/2·20 + (4+2)/2·48 + (2+1)/2·96 = 60 + 144 + 144 = 348;
    physical tail 1/λ = 159.53/ln 2 = 230.15 → 582.15 Gy."""
    rates = np.array([2.0, 4.0, 2.0, 1.0])[:, None]
    dose = integrate_dose_rate_voxels(TIME_H, rates, decay_constant_per_h=LU177_DECAY_PER_H, tail="physical")
    assert dose[0] == pytest.approx(4 + 348 + 159.53 / math.log(2))
    # fitted tail: slope of ln between the last two points, ln 2/96 per h > λ_phys
    fitted = integrate_dose_rate_voxels(TIME_H, rates, decay_constant_per_h=LU177_DECAY_PER_H, tail="fit")
    assert fitted[0] == pytest.approx(4 + 348 + 96 / math.log(2))


def test_dose_rate_integration_of_exponential() -> None:
    """Ḋ = 1·e^(−λt) sampled densely: ∫₀^∞ = 1/λ within the trapezoid error."""
    lam = 0.01
    t = np.linspace(0.5, 300.0, 600)
    rates = np.exp(-lam * t)[:, None]
    dose = integrate_dose_rate_voxels(t, rates, decay_constant_per_h=lam, tail="physical", head="constant")
    assert dose[0] == pytest.approx(1 / lam, rel=2e-3)


def test_bad_time_axis() -> None:
    with pytest.raises(InputError, match="increasing"):
        fit_mono_exponential_voxels([24.0, 4.0], np.ones((2, 3)))
    with pytest.raises(InputError, match="n_times"):
        fit_mono_exponential_voxels(TIME_H, np.ones((3, 3)))
    with pytest.raises(InputError, match="3 time points"):
        fit_biexponential_voxels(TIME_H[:2], np.ones((2, 3)))


def test_hybrid_tia_from_organ_fits() -> None:
    """Voxels of a label share a mono-exponential shape: the organ fit gives Σ A0/λ and each voxel its
    share (A0 = 60 and 40 with λ = 0.03/h: organ TIA 100/0.03 = 3333.3 MBq·h, split 60 : 40)."""
    curve = np.exp(-0.03 * TIME_H)
    activity = np.zeros((4, 1, 3))
    activity[:, 0, 0] = 60.0 * curve
    activity[:, 0, 1] = 40.0 * curve
    labels = np.array([[1, 1, 0]])
    tia, organ = hybrid_tia_from_organ_fits(
        TIME_H, activity, labels, decay_constant_per_h=LU177_DECAY_PER_H, model="mono"
    )
    assert organ[1] == pytest.approx(100.0 / 0.03, rel=1e-6)
    np.testing.assert_allclose(tia[0], [60.0 / 0.03, 40.0 / 0.03, 0.0], rtol=1e-6)


def test_biexponential_independent_of_threads_and_blocks(rng: np.random.Generator) -> None:
    """The compiled fit runs in parallel over blocks of 512 voxels: the thread count must not change any
    value, and voxels without signal (zero or negative curves) placed at block boundaries stay unfitted."""
    import numba

    n = 1500  # not a multiple of the block size
    a = rng.uniform(5, 50, n)
    l1 = rng.uniform(0.008, 0.03, n)
    l2 = l1 + rng.uniform(0.05, 0.5, n)
    activity = a * (np.exp(-l1 * TIME_H[:, None]) - np.exp(-l2 * TIME_H[:, None]))
    activity *= 1 + 0.03 * rng.standard_normal(activity.shape)
    empty = np.array([0, 511, 512, 1023, 1024, 1499])
    activity[:, empty] = 0.0
    activity[:, 700] = -1.0
    volume = activity.reshape(TIME_H.size, 10, 15, 10)
    serial = fit_biexponential_voxels(TIME_H, volume, decay_constant_per_h=LU177_DECAY_PER_H, workers=1)
    threads = min(2, numba.config.NUMBA_NUM_THREADS)
    parallel = fit_biexponential_voxels(
        TIME_H, volume, decay_constant_per_h=LU177_DECAY_PER_H, workers=threads
    )
    for field in ("amplitude", "washout_per_h", "uptake_per_h", "tia", "converged", "sse"):
        np.testing.assert_array_equal(getattr(serial, field), getattr(parallel, field))
    assert serial.tia.shape == (10, 15, 10)
    flat_tia = serial.tia.reshape(-1)
    flat_ok = serial.converged.reshape(-1)
    for v in (*empty, 700):
        assert flat_tia[v] == 0.0 and not flat_ok[v]
        assert np.isnan(serial.washout_per_h.reshape(-1)[v])
    signal = np.setdiff1d(np.arange(n), np.append(empty, 700))
    assert np.mean(flat_ok[signal]) > 0.99
    # noisy 4-point curves: the least-squares TIA stays close to the true one (3 % noise)
    rel = np.abs(flat_tia[signal] / (a * (1 / l1 - 1 / l2))[signal] - 1)
    assert np.median(rel) < 0.03
    with pytest.raises(InputError, match="workers"):
        fit_biexponential_voxels(TIME_H, volume, workers=0)


def test_biexponential_optimum_by_grid_search() -> None:
    """Independent check of the optimum: the fitted SSE is not above the best of a dense grid over
    (λ₁, λ₂), with the amplitude of each grid point solved in closed form (linear least squares)."""
    t = np.array([2.0, 20.0, 50.0, 120.0, 200.0])
    y = np.array([11.0, 30.0, 24.0, 12.5, 5.0])
    fit = fit_biexponential_voxels(t, y[:, None])
    l1 = np.linspace(0.002, 0.05, 400)[:, None, None]
    l2 = np.linspace(0.051, 1.5, 400)[None, :, None]
    basis = np.exp(-l1 * t) - np.exp(-l2 * t)
    amp = (basis @ y) / np.sum(basis * basis, axis=-1)
    sse_grid = np.sum((amp[..., None] * basis - y) ** 2, axis=-1)
    best = np.unravel_index(np.argmin(sse_grid), sse_grid.shape)
    assert fit.converged[0]
    assert fit.sse[0] <= sse_grid[best] * (1 + 1e-9)
    assert fit.washout_per_h[0] == pytest.approx(float(l1[best[0], 0, 0]), rel=0.05)
