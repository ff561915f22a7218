"""Voxel-wise time-activity fitting and integration, vectorised.

All functions take the time points first and the voxel data as an array of shape ``(n_times, ...)``
(one image per time point); results have the spatial shape ``...``.

* :func:`fit_mono_exponential_voxels` — weighted log-linear least squares of A(t) = A₀·e^(−λt), in closed
  form for every voxel at once; Ã = A₀/λ (integral from 0 to ∞).
* :func:`fit_biexponential_voxels` — uptake–washout model A(t) = a·(e^(−λ₁t) − e^(−λ₂t)), λ₂ > λ₁ ≥ λ_phys,
  by Levenberg–Marquardt (Levenberg 1944; Marquardt 1963, J Soc Ind Appl Math 11:431) compiled with
  numba and run in parallel over voxels; Ã = a·(1/λ₁ − 1/λ₂).
* :func:`hybrid_tia_voxels` — the organ's time-activity shape C(t) scaled voxel by voxel: the
  least-squares factor s = Σ A(t)·C(t) / Σ C(t)² (regression through the origin) gives Ã_voxel = s·Ã_organ.
  Robust for noisy voxels since only one parameter per voxel is estimated.
* :func:`integrate_dose_rate_voxels` — the alternative order of operations: integrate dose-rate maps
  over time (trapezoids, a linear rise from 0 before the first point, and an exponential tail after the
  last one) (MIRD Pamphlet 23, Dewaraja et al. 2012, J Nucl Med 53:1310, section "Time integration").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from theradose.errors import InputError

FloatArray = npt.NDArray[np.float64]


def _check(time_h: npt.ArrayLike, values: npt.ArrayLike, name: str) -> tuple[FloatArray, FloatArray]:
    t = np.asarray(time_h, dtype=np.float64)
    a = np.asarray(values, dtype=np.float64)
    if t.ndim != 1 or t.size < 2:
        raise InputError(f"time_h must be 1-D with at least 2 points; got shape {t.shape}")
    if np.any(np.diff(t) <= 0) or t[0] < 0:
        raise InputError(f"time_h must be ≥ 0 and strictly increasing; got {t.tolist()}: sort the scans")
    if a.ndim < 1 or a.shape[0] != t.size:
        raise InputError(
            f"{name} must have shape (n_times, ...) with n_times = {t.size}; got {a.shape}: "
            "stack the time points first"
        )
    if not np.all(np.isfinite(a)):
        raise InputError(f"{name} contains NaN or infinite values: fill them (e.g. with 0)")
    return t, a


@dataclass(frozen=True)
class VoxelMonoExponentialFit:
    """Voxel-wise mono-exponential fit A(t) = A₀·e^(−λt).

    Attributes (arrays of the spatial shape)
    ----------------------------------------
    a0 : ndarray
        Activity at t = 0 (input activity unit).
    decay_constant_per_h : ndarray
        Effective decay constant λ (1/h).
    tia : ndarray
        Time-integrated activity A₀/λ (activity unit × h); 0 where not fitted.
    fitted : ndarray of bool
        False where fewer than two positive samples were available.
    clamped : ndarray of bool
        True where λ was raised to the physical decay constant.
    """

    a0: FloatArray
    decay_constant_per_h: FloatArray
    tia: FloatArray
    fitted: npt.NDArray[np.bool_]
    clamped: npt.NDArray[np.bool_]


def fit_mono_exponential_voxels(
    time_h: npt.ArrayLike,
    activity: npt.ArrayLike,
    *,
    decay_constant_per_h: float | None = None,
) -> VoxelMonoExponentialFit:
    """Fit A(t) = A₀·e^(−λt) in every voxel by weighted least squares on ln A.

    The weights are w = A (the variance of ln A is σ²/A² and Poisson counting gives σ² ∝ A, so
    var(ln A) ∝ 1/A); non-positive samples get weight 0. With ``decay_constant_per_h`` λ is bounded
    below by physical decay and A₀ refitted with λ fixed where the bound is active.

    Parameters
    ----------
    time_h : array_like, shape (n_times,)
    activity : array_like, shape (n_times, ...)
    decay_constant_per_h : float, optional
        Physical decay constant λ_phys (1/h).
    """
    t, a = _check(time_h, activity, "activity")
    spatial = a.shape[1:]
    flat = a.reshape(t.size, -1)
    positive = flat > 0
    w = np.where(positive, flat, 0.0)
    y = np.log(np.where(positive, flat, 1.0))
    tt = t[:, None]
    s = w.sum(axis=0)
    st = (w * tt).sum(axis=0)
    sy = (w * y).sum(axis=0)
    stt = (w * tt * tt).sum(axis=0)
    sty = (w * tt * y).sum(axis=0)
    n_pos = positive.sum(axis=0)
    denominator = s * stt - st * st
    fitted = (n_pos >= 2) & (denominator > 0)
    safe = np.where(fitted, denominator, 1.0)
    slope = np.where(fitted, (s * sty - st * sy) / safe, 0.0)
    lam = -slope
    intercept = np.where(fitted, (sy - slope * st) / np.where(s > 0, s, 1.0), 0.0)
    clamped = np.zeros_like(fitted)
    if decay_constant_per_h is not None:
        if decay_constant_per_h <= 0:
            raise InputError(f"decay_constant_per_h must be positive; got {decay_constant_per_h}")
        clamped = fitted & (lam < decay_constant_per_h)
        lam = np.where(clamped, decay_constant_per_h, lam)
        refit = (sy + decay_constant_per_h * st) / np.where(s > 0, s, 1.0)
        intercept = np.where(clamped, refit, intercept)
    good = fitted & (lam > 0)
    a0 = np.where(good, np.exp(intercept), 0.0)
    tia = np.where(good, a0 / np.where(good, lam, 1.0), 0.0)
    return VoxelMonoExponentialFit(
        a0=a0.reshape(spatial),
        decay_constant_per_h=np.where(good, lam, np.nan).reshape(spatial),
        tia=tia.reshape(spatial),
        fitted=good.reshape(spatial),
        clamped=clamped.reshape(spatial),
    )


@dataclass(frozen=True)
class VoxelBiExponentialFit:
    """Voxel-wise uptake–washout fit A(t) = a·(e^(−λ₁t) − e^(−λ₂t)).

    Attributes (arrays of the spatial shape)
    ----------------------------------------
    amplitude : ndarray
        a (activity unit).
    washout_per_h, uptake_per_h : ndarray
        λ₁ (≥ λ_phys) and λ₂ (> λ₁), 1/h.
    tia : ndarray
        a·(1/λ₁ − 1/λ₂); 0 where not fitted.
    converged : ndarray of bool
    sse : ndarray
        Residual sum of squares.
    """

    amplitude: FloatArray
    washout_per_h: FloatArray
    uptake_per_h: FloatArray
    tia: FloatArray
    converged: npt.NDArray[np.bool_]
    sse: FloatArray

    def evaluate(self, time_h: npt.ArrayLike) -> FloatArray:
        """Model activity at ``time_h``, shape (n_times, ...)."""
        t = np.asarray(time_h, dtype=np.float64).reshape((-1,) + (1,) * self.amplitude.ndim)
        return np.asarray(
            self.amplitude * (np.exp(-self.washout_per_h * t) - np.exp(-self.uptake_per_h * t)),
            dtype=np.float64,
        )


#: LLVM fast-math flags for the compiled fit: reassociation, contraction and approximate functions, but
#: no ``nnan``/``ninf`` so that the finiteness checks keep working.
_FASTMATH = {"contract", "arcp", "nsz", "afn", "reassoc"}
#: Voxels per parallel work item (each item allocates its small scratch arrays once).
_CHUNK_VOXELS = 512


@lru_cache(maxsize=1)
def _lm_kernel() -> Any:
    import numba

    @numba.njit(fastmath=_FASTMATH, inline="always", cache=False, error_model="numpy")
    def sse_fill(  # pragma: no cover - compiled
        t: FloatArray,
        data: FloatArray,
        v: int,
        a: float,
        l1: float,
        l2: float,
        e1: FloatArray,
        e2: FloatArray,
    ) -> float:
        """Residual sum of squares of voxel ``v``; stores e^(−λ₁t), e^(−λ₂t) in ``e1``, ``e2``."""
        s = 0.0
        for i in range(t.size):
            x1 = np.exp(-l1 * t[i])
            x2 = np.exp(-l2 * t[i])
            e1[i] = x1
            e2[i] = x2
            r = data[i, v] - a * (x1 - x2)
            s += r * r
        return s

    @numba.njit(parallel=True, fastmath=_FASTMATH, cache=False, error_model="numpy")
    def fit(  # pragma: no cover - compiled
        t: FloatArray,
        data: FloatArray,
        lam_min: float,
        max_iter: int,
        chunk: int,
        amp_out: FloatArray,
        l1_out: FloatArray,
        l2_out: FloatArray,
        tia_out: FloatArray,
        ok_out: npt.NDArray[np.bool_],
        sse_out: FloatArray,
    ) -> None:
        n_t, n_v = data.shape
        n_chunks = (n_v + chunk - 1) // chunk
        t_first = 1.0
        for i in range(n_t):
            if t[i] > 0:
                t_first = t[i]
                break
        for c in numba.prange(n_chunks):
            e1 = np.empty(n_t)
            e2 = np.empty(n_t)
            te1 = np.empty(n_t)
            te2 = np.empty(n_t)
            for v in range(c * chunk, min(n_v, (c + 1) * chunk)):
                pk = 0
                pv = data[0, v]
                for i in range(1, n_t):
                    if data[i, v] > pv:
                        pv = data[i, v]
                        pk = i
                if not pv > 0.0:
                    amp_out[v] = 0.0
                    l1_out[v] = np.nan
                    l2_out[v] = np.nan
                    tia_out[v] = 0.0
                    ok_out[v] = False
                    sse_out[v] = 0.0
                    continue
                # starting values: weighted log-linear fit (w = A) of the samples from the peak on
                s = st = sy = stt = sty = 0.0
                n_pos = 0
                for i in range(min(pk, n_t - 2), n_t):
                    y = data[i, v]
                    if y > 0:
                        ly = np.log(y)
                        s += y
                        st += y * t[i]
                        sy += y * ly
                        stt += y * t[i] * t[i]
                        sty += y * t[i] * ly
                        n_pos += 1
                den = s * stt - st * st
                lam1 = 0.01
                amp = pv
                if n_pos >= 2 and den > 0:
                    slope = (s * sty - st * sy) / den
                    if slope < 0:
                        lam1 = max(-slope, lam_min * 1.001 + 1e-6)
                        amp = np.exp((sy - slope * st) / s)
                amp = amp * 1.2 + 1e-12
                lam2 = lam1 + 3.0 / max(t[pk], t_first)
                # parameters: q0 = ln a, q1 = ln(λ1 − λmin), q2 = ln(λ2 − λ1)
                q0 = np.log(max(amp, 1e-300))
                q1 = np.log(max(lam1 - lam_min, 1e-12))
                q2 = np.log(lam2 - lam1)
                a = np.exp(q0)
                l1 = lam_min + np.exp(q1)
                l2 = l1 + np.exp(q2)
                sse = sse_fill(t, data, v, a, l1, l2, e1, e2)
                mu = 1e-3
                converged = False
                for _ in range(max_iter):
                    # J^T J and J^T r from the exponentials of the current point
                    h00 = h01 = h02 = h11 = h12 = h22 = 0.0
                    g0 = g1 = g2 = 0.0
                    d1 = l1 - lam_min
                    d2 = l2 - l1
                    for i in range(n_t):
                        m = a * (e1[i] - e2[i])
                        r = data[i, v] - m
                        j0 = m
                        j1 = d1 * a * t[i] * (e2[i] - e1[i])  # dm/dq1 (λ2 − λ1 fixed)
                        j2 = d2 * a * t[i] * e2[i]
                        h00 += j0 * j0
                        h01 += j0 * j1
                        h02 += j0 * j2
                        h11 += j1 * j1
                        h12 += j1 * j2
                        h22 += j2 * j2
                        g0 += j0 * r
                        g1 += j1 * r
                        g2 += j2 * r
                    improved = False
                    for _inner in range(12):
                        b00 = h00 * (1.0 + mu) + 1e-300
                        b11 = h11 * (1.0 + mu) + 1e-300
                        b22 = h22 * (1.0 + mu) + 1e-300
                        # the symmetric 3x3 system by Cramer's rule
                        c00 = b11 * b22 - h12 * h12
                        c01 = h01 * b22 - h12 * h02
                        c02 = h01 * h12 - b11 * h02
                        det = b00 * c00 - h01 * c01 + h02 * c02
                        if det == 0.0 or not abs(det) < np.inf:
                            mu *= 10.0
                            continue
                        inv = 1.0 / det
                        x0 = (g0 * c00 - h01 * (g1 * b22 - h12 * g2) + h02 * (g1 * h12 - b11 * g2)) * inv
                        x1 = (b00 * (g1 * b22 - h12 * g2) - g0 * c01 + h02 * (h01 * g2 - g1 * h02)) * inv
                        x2 = (b00 * (b11 * g2 - g1 * h12) - h01 * (h01 * g2 - g1 * h02) + g0 * c02) * inv
                        n0, n1, n2 = q0 + x0, q1 + x1, q2 + x2
                        if n1 > 50.0 or n2 > 50.0 or n0 > 700.0:
                            mu *= 10.0
                            continue
                        na = np.exp(n0)
                        nl1 = lam_min + np.exp(n1)
                        nl2 = nl1 + np.exp(n2)
                        new_sse = sse_fill(t, data, v, na, nl1, nl2, te1, te2)
                        if new_sse < sse:
                            rel = (sse - new_sse) / (sse + 1e-300)
                            q0, q1, q2 = n0, n1, n2
                            a, l1, l2 = na, nl1, nl2
                            sse = new_sse
                            for i in range(n_t):
                                e1[i] = te1[i]
                                e2[i] = te2[i]
                            mu = max(mu / 10.0, 1e-12)
                            improved = True
                            if rel < 1e-10:
                                converged = True
                            break
                        mu *= 10.0
                    if not improved:
                        converged = True  # no descent direction left: at a (local) minimum
                    if converged:
                        break
                amp_out[v] = a
                l1_out[v] = l1
                l2_out[v] = l2
                tia_out[v] = a * (1.0 / l1 - 1.0 / l2)
                ok_out[v] = converged and abs(a) < np.inf and abs(l1) < np.inf and abs(l2) < np.inf
                sse_out[v] = sse

    return fit


def fit_biexponential_voxels(
    time_h: npt.ArrayLike,
    activity: npt.ArrayLike,
    *,
    decay_constant_per_h: float | None = None,
    max_iterations: int = 100,
    workers: int | None = None,
) -> VoxelBiExponentialFit:
    """Fit A(t) = a·(e^(−λ₁t) − e^(−λ₂t)) in every voxel (unweighted Levenberg–Marquardt).

    Parameters are optimised as (ln a, ln(λ₁ − λ_phys), ln(λ₂ − λ₁)) so that a > 0 and
    λ₂ > λ₁ ≥ λ_phys hold throughout. Starting values: λ₁ and a from the mono-exponential fit of the
    samples after the maximum, λ₂ = λ₁ + 3/t_max with t_max the time of the maximum sample.
    Voxels with a non-positive maximum get zeros and ``converged = False``. Starting values, iterations
    and the 3×3 solve run in one compiled pass, in parallel over blocks of voxels; every voxel is fitted
    independently, so the result does not depend on the number of threads.

    Parameters
    ----------
    time_h : array_like, shape (n_times,), n_times ≥ 3
    activity : array_like, shape (n_times, ...)
    decay_constant_per_h : float, optional
        Lower bound of λ₁ (physical decay), 1/h.
    max_iterations : int
    workers : int, optional
        Threads (default: numba's default, all CPUs).
    """
    import numba

    t, a = _check(time_h, activity, "activity")
    if t.size < 3:
        raise InputError(f"the bi-exponential fit needs at least 3 time points; got {t.size}")
    max_threads: int = numba.config.NUMBA_NUM_THREADS  # type: ignore[attr-defined]
    if workers is not None and not 1 <= workers <= max_threads:
        raise InputError(f"workers must be between 1 and {max_threads}; got {workers}: lower it")
    spatial = a.shape[1:]
    flat = np.ascontiguousarray(a.reshape(t.size, -1))
    n_v = flat.shape[1]
    lam_min = 0.0 if decay_constant_per_h is None else float(decay_constant_per_h)
    amplitude, l1, l2, tia, sse = (np.empty(n_v) for _ in range(5))
    ok = np.empty(n_v, dtype=np.bool_)
    kernel = _lm_kernel()
    previous = numba.get_num_threads()
    if workers is not None:
        numba.set_num_threads(workers)
    try:
        # blocks are handed out to threads one at a time (dynamic scheduling), so a thread that gets
        # less CPU on a busy machine does not hold up the others
        with numba.parallel_chunksize(1):
            kernel(t, flat, lam_min, int(max_iterations), _CHUNK_VOXELS, amplitude, l1, l2, tia, ok, sse)
    finally:
        numba.set_num_threads(previous)
    return VoxelBiExponentialFit(
        amplitude=amplitude.reshape(spatial),
        washout_per_h=l1.reshape(spatial),
        uptake_per_h=l2.reshape(spatial),
        tia=tia.reshape(spatial),
        converged=ok.reshape(spatial),
        sse=sse.reshape(spatial),
    )


def hybrid_tia_voxels(
    time_h: npt.ArrayLike,
    activity: npt.ArrayLike,
    organ_activity: npt.ArrayLike,
    organ_tia: float,
) -> FloatArray:
    """Voxel TIA from the organ's time-activity shape: Ã_v = s_v·Ã_organ, s_v = Σ A_v·C / Σ C².

    Parameters
    ----------
    time_h : array_like, shape (n_times,)
    activity : array_like, shape (n_times, ...)
        Voxel activities.
    organ_activity : array_like, shape (n_times,)
        The organ time-activity curve C(t) (e.g. the sum over the organ's voxels, or a fitted curve).
    organ_tia : float
        The organ's time-integrated activity Ã_organ (from an organ-level fit), activity unit × h.

    Returns
    -------
    ndarray, spatial shape
        Voxel TIA. If the voxels sum to C(t) at every time, they sum to Ã_organ.
    """
    t, a = _check(time_h, activity, "activity")
    c = np.asarray(organ_activity, dtype=np.float64)
    if c.shape != t.shape:
        raise InputError(f"organ_activity must have shape {t.shape}; got {c.shape}")
    norm = float(np.sum(c * c))
    if norm <= 0:
        raise InputError("organ_activity is zero at every time: the organ curve carries no shape")
    scale = np.tensordot(c, a, axes=(0, 0)) / norm
    return np.asarray(scale * organ_tia, dtype=np.float64)


def hybrid_tia_by_label(
    time_h: npt.ArrayLike,
    activity: npt.ArrayLike,
    labels: npt.ArrayLike,
    organ_tia: Mapping[int, float],
) -> FloatArray:
    """Apply :func:`hybrid_tia_voxels` per label, the organ curve being the sum over the label's voxels.

    Voxels of labels not in ``organ_tia`` (and label 0) get TIA 0.

    Parameters
    ----------
    activity : array_like, shape (n_times, ...)
    labels : array_like of int, spatial shape
    organ_tia : mapping label → organ TIA (activity unit × h)
    """
    t, a = _check(time_h, activity, "activity")
    lab = np.asarray(labels)
    if lab.shape != a.shape[1:]:
        raise InputError(f"labels must have shape {a.shape[1:]}; got {lab.shape}")
    out = np.zeros(lab.shape)
    for label, tia in organ_tia.items():
        mask = lab == label
        if not np.any(mask):
            raise InputError(f"label {label} of organ_tia is not present in labels: check the label map")
        voxels = a[:, mask]
        out[mask] = hybrid_tia_voxels(t, voxels, voxels.sum(axis=1), float(tia))
    return out


def hybrid_tia_from_organ_fits(
    time_h: npt.ArrayLike,
    activity_mbq: npt.ArrayLike,
    labels: npt.ArrayLike,
    *,
    decay_constant_per_h: float | None = None,
    model: Literal["auto", "mono", "bi", "tri", "trapezoid"] = "auto",
) -> tuple[FloatArray, dict[int, float]]:
    """Hybrid voxel TIA with organ TIAs from :func:`theradose.kinetics.fit_tac` of each label's curve.

    Every non-zero label's summed time-activity curve is fitted (model selection by AICc with
    ``model="auto"``) and its TIA distributed over the label's voxels by :func:`hybrid_tia_voxels`.

    Returns
    -------
    tia_mbq_h : ndarray, spatial shape
        Voxel TIA (MBq·h); 0 outside the labels.
    organ_tia_mbq_h : dict
        Fitted TIA (MBq·h) per label.
    """
    from theradose.kinetics import fit_tac

    t, a = _check(time_h, activity_mbq, "activity_mbq")
    lab = np.asarray(labels)
    if lab.shape != a.shape[1:]:
        raise InputError(f"labels must have shape {a.shape[1:]}; got {lab.shape}")
    organ_tia: dict[int, float] = {}
    for value in np.unique(lab):
        if value == 0:
            continue
        curve = a[:, lab == value].sum(axis=1)
        organ_tia[int(value)] = float(
            fit_tac(t, curve, model=model, decay_constant_per_h=decay_constant_per_h).tia_mbq_h
        )
    return hybrid_tia_by_label(t, a, lab, organ_tia), organ_tia


def integrate_dose_rate_voxels(
    time_h: npt.ArrayLike,
    dose_rate_gy_per_h: npt.ArrayLike,
    *,
    decay_constant_per_h: float,
    tail: Literal["physical", "fit"] = "fit",
    head: Literal["linear_from_zero", "constant"] = "linear_from_zero",
) -> FloatArray:
    """Absorbed dose (Gy) by integrating dose-rate maps over time, voxel by voxel.

    ∫₀^∞ Ḋ dt = head + Σ trapezoids + tail, with head = Ḋ(t₁)·t₁/2 (linear rise from 0 at t = 0) or
    Ḋ(t₁)·t₁ (constant), and tail = Ḋ(t_n)/λ with λ the physical decay constant (``"physical"``) or the
    slope of ln Ḋ between the last two points, bounded below by physical decay (``"fit"``).

    Parameters
    ----------
    time_h : array_like, shape (n_times,)
    dose_rate_gy_per_h : array_like, shape (n_times, ...)
    decay_constant_per_h : float
        Physical decay constant (1/h).
    """
    t, d = _check(time_h, dose_rate_gy_per_h, "dose_rate_gy_per_h")
    if decay_constant_per_h <= 0:
        raise InputError(f"decay_constant_per_h must be positive; got {decay_constant_per_h}")
    first = d[0] * t[0] * (0.5 if head == "linear_from_zero" else 1.0)
    middle = np.trapezoid(d, t, axis=0)
    lam = np.full(d.shape[1:], decay_constant_per_h)
    if tail == "fit":
        last, before = d[-1], d[-2]
        ok = (last > 0) & (before > last)
        ratio = np.where(ok, before / np.where(ok, last, 1.0), 1.0)
        lam = np.where(ok, np.maximum(np.log(ratio) / (t[-1] - t[-2]), decay_constant_per_h), lam)
    elif tail != "physical":
        raise InputError(f"tail must be 'physical' or 'fit'; got {tail!r}")
    return np.asarray(first + middle + d[-1] / lam, dtype=np.float64)
