"""Local energy deposition: every decay's charged-particle energy stays in its voxel.

D = N·Ē / (ρ·V) (MIRD Pamphlet 23, Dewaraja et al. 2012, J Nucl Med 53:1310, "local deposition"
method), with N the number of decays in the voxel, Ē the energy deposited per decay, ρ the voxel density
and V the voxel volume. Optionally a fixed fraction of the photon energy is deposited locally as well.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from theradose.errors import InputError
from theradose.units import dose_gy_from_energy_mev_and_mass_g


def local_deposition_dose_gy(
    decays: npt.NDArray[np.floating],
    density_g_per_ml: npt.NDArray[np.floating] | float,
    *,
    voxel_volume_ml: float,
    energy_mev_per_decay: float,
) -> npt.NDArray[np.float64]:
    """Absorbed dose (Gy) from local deposition of ``energy_mev_per_decay`` per decay.

    Parameters
    ----------
    decays : ndarray, shape (n0, n1, n2)
        Number of decays in each voxel (or decays per second for a dose rate in Gy/s).
    density_g_per_ml : ndarray of the same shape, or float
        Mass density (g/cm³).
    voxel_volume_ml : float
        Voxel volume (mL = cm³).
    energy_mev_per_decay : float
        Energy deposited locally per decay (MeV).

    Returns
    -------
    ndarray of float64, same shape
        Dose in Gy (Gy/s if ``decays`` is a rate).
    """
    density = np.asarray(density_g_per_ml, dtype=np.float64)
    if np.any(density <= 0):
        raise InputError("density_g_per_ml must be positive everywhere; got values ≤ 0: clip the density map")
    if voxel_volume_ml <= 0:
        raise InputError(f"voxel_volume_ml must be positive; got {voxel_volume_ml}: check the voxel spacing")
    mass_g = density * voxel_volume_ml
    energy_mev = np.asarray(decays, dtype=np.float64) * energy_mev_per_decay
    return np.asarray(dose_gy_from_energy_mev_and_mass_g(energy_mev, mass_g), dtype=np.float64)
