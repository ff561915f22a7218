"""Voxel S-value convolution (MIRD Pamphlet 17, Bolch et al. 1999, J Nucl Med 40:11S, eq. 3).

D(x) = Σ_y Ã(y)·S(x − y), computed as a real FFT convolution in float32 (scipy.fft, ``workers`` threads).
The kernel spectrum is cached per (kernel, padded shape), so repeated convolutions (time points, cycles,
patients with the same grid) pay only one forward and one inverse transform.

Padding: for an output of the input's size ("same"), a circular convolution of length N ≥ n + k//2 per
axis is free of wrap-around in the kept region, so N is the next 5-smooth length ≥ n + k//2 — smaller
than the n + k − 1 of a full linear convolution.

Density correction (documented choice): the soft-tissue kernel is computed at the soft-tissue density of the
tissue registry (1.03 g/cm³). In a voxel of density ρ the dose is scaled by ρ_kernel/ρ — the energy deposited
is kept and divided by the local mass (the "density-weighted" VSV correction of Dieudonné et al. 2013, J Nucl
Med 54:236; also Lee et al. 2018, J Nucl Med 59:1123, multiple-VSV method). Voxels denser than soft tissue mix
a soft-tissue and a cortical-bone kernel with weight w = (ρ − ρ_soft)/(ρ_bone − ρ_soft) clipped to [0, 1]:

    D = (1 − w)·D_soft·ρ_soft/ρ + w·D_bone·ρ_bone/ρ.

Electron transport across density boundaries (range change in lung) is not modelled by this correction.
"""

from __future__ import annotations

from collections import OrderedDict
from threading import Lock

import numpy as np
import numpy.typing as npt

from theradose.errors import InputError

_SPECTRUM_CACHE: OrderedDict[tuple[int, str, tuple[int, ...]], npt.NDArray[np.complex64]] = OrderedDict()
_SPECTRUM_CACHE_SIZE = 8
_LOCK = Lock()


def _padded_shape(shape: tuple[int, ...], kernel_shape: tuple[int, ...]) -> tuple[int, ...]:
    import scipy.fft

    return tuple(
        int(scipy.fft.next_fast_len(n + k // 2, real=True)) for n, k in zip(shape, kernel_shape, strict=True)
    )


def kernel_spectrum(
    kernel: npt.NDArray[np.floating], padded_shape: tuple[int, ...], *, workers: int | None = None
) -> npt.NDArray[np.complex64]:
    """Real FFT (complex64) of ``kernel`` centred at index 0 on a grid of ``padded_shape``; cached."""
    import hashlib

    import scipy.fft

    kernel32 = np.ascontiguousarray(kernel, dtype=np.float32)
    key = (kernel32.shape[0], hashlib.sha1(kernel32.tobytes()).hexdigest(), tuple(padded_shape))
    with _LOCK:
        cached = _SPECTRUM_CACHE.get(key)
        if cached is not None:
            _SPECTRUM_CACHE.move_to_end(key)
            return cached
    grid = np.zeros(padded_shape, dtype=np.float32)
    half = [k // 2 for k in kernel32.shape]
    # place the kernel so that its centre sits at index 0 (negative offsets wrap to the end)
    grid[tuple(slice(0, k) for k in kernel32.shape)] = kernel32
    grid = np.roll(grid, shift=[-h for h in half], axis=(0, 1, 2))
    spectrum: npt.NDArray[np.complex64] = np.asarray(
        scipy.fft.rfftn(grid, workers=workers), dtype=np.complex64
    )
    with _LOCK:
        _SPECTRUM_CACHE[key] = spectrum
        while len(_SPECTRUM_CACHE) > _SPECTRUM_CACHE_SIZE:
            _SPECTRUM_CACHE.popitem(last=False)
    return spectrum


def trim_kernel(kernel: npt.NDArray[np.floating]) -> npt.NDArray[np.floating]:
    """Remove all-zero border planes symmetrically (the centre stays the centre); the result is exact.

    Electron kernels are often padded with zeros beyond the electron range; trimming them shrinks the FFT.
    """
    slices = []
    for axis in range(kernel.ndim):
        other = tuple(a for a in range(kernel.ndim) if a != axis)
        nonzero = np.flatnonzero(np.any(kernel != 0, axis=other))
        half = kernel.shape[axis] // 2
        reach = int(np.max(np.abs(nonzero - half))) if nonzero.size else 0
        slices.append(slice(half - reach, half + reach + 1))
    return kernel[tuple(slices)]


def fft_convolve_same(
    array: npt.NDArray[np.floating],
    kernel: npt.NDArray[np.floating],
    *,
    workers: int | None = None,
) -> npt.NDArray[np.float32]:
    """Convolve a 3-D ``array`` with an odd-sized, centred 3-D ``kernel``; output has the array's shape.

    Float32 real FFTs with the cached kernel spectrum (see module docstring). Equivalent to
    ``scipy.signal.fftconvolve(array, kernel, mode="same")`` for odd kernel sizes.
    """
    import scipy.fft

    if array.ndim != 3 or kernel.ndim != 3:
        raise InputError(f"array and kernel must be 3-D; got {array.ndim}-D and {kernel.ndim}-D")
    if any(k % 2 == 0 for k in kernel.shape):
        raise InputError(f"kernel sizes must be odd; got {kernel.shape}: use a centred kernel")
    kernel = trim_kernel(kernel)
    shape = tuple(int(n) for n in array.shape)
    # offsets beyond ±(n − 1) never connect two voxels of the array: drop them (keeps N ≥ kernel size)
    kernel = kernel[
        tuple(
            slice(max(0, k // 2 - (n - 1)), k // 2 + min(k // 2, n - 1) + 1)
            for k, n in zip(kernel.shape, shape, strict=True)
        )
    ]
    padded = _padded_shape(shape, tuple(int(k) for k in kernel.shape))
    spectrum = kernel_spectrum(kernel, padded, workers=workers)
    data = scipy.fft.rfftn(np.asarray(array, dtype=np.float32), s=padded, workers=workers)
    data *= spectrum
    result = scipy.fft.irfftn(data, s=padded, workers=workers, overwrite_x=True)
    return np.ascontiguousarray(result[: shape[0], : shape[1], : shape[2]], dtype=np.float32)


def bone_weight(
    density_g_per_ml: npt.NDArray[np.floating], *, soft_density: float, bone_density: float
) -> npt.NDArray[np.float64]:
    """Weight of the bone kernel, w = clip((ρ − ρ_soft)/(ρ_bone − ρ_soft), 0, 1)."""
    rho = np.asarray(density_g_per_ml, dtype=np.float64)
    return np.clip((rho - soft_density) / (bone_density - soft_density), 0.0, 1.0)
