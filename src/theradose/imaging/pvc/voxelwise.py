"""Region-based voxel-wise partial-volume correction (RBV; Thomas et al. 2011, Eur J Nucl Med Mol Imaging
38:1104).

The image is multiplied voxel by voxel by the ratio of the piecewise-constant GTM estimate to its blurred
image, so that each voxel keeps its measured detail while the regional means follow the geometric transfer
matrix (:mod:`theradose.imaging.pvc.gtm`).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from theradose.imaging.pvc.gtm import GtmSolution, model_image

FloatArray = npt.NDArray[np.float64]


def rbv_image(image: FloatArray, solution: GtmSolution) -> FloatArray:
    """Region-based voxel-wise correction (Thomas et al. 2011, Eur J Nucl Med Mol Imaging 38:1104):

        f_corr(x) = f(x) · Σ_i c_i 1_i(x) / Σ_i c_i RSF_i(x),

    with c the GTM concentrations; voxels where the model image is not positive keep their value, voxels
    outside the body (no compartment) become 0.
    """
    image = np.asarray(image, dtype=np.float64)
    comps = solution.comps
    piecewise = np.where(comps.index >= 0, solution.concentration[np.clip(comps.index, 0, None)], 0.0)
    modelled = model_image(image.shape, solution.concentration, solution.rsfs)
    ratio = np.divide(piecewise, modelled, out=np.ones_like(modelled), where=modelled > 0)
    out = np.where(comps.index >= 0, image * ratio, 0.0)
    return np.asarray(np.clip(out, 0.0, None), dtype=np.float64)
