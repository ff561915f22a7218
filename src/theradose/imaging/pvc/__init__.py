"""Partial-volume correction of quantitative SPECT.

One module per method; this list is the package's public API (add a method as a module here and one line
per public name below):

- :mod:`~theradose.imaging.pvc.recovery`: recovery coefficients from phantom spheres, with the
  background's spill-in removed and contrast-dependent curves (tumours and small structures).
- :mod:`~theradose.imaging.pvc.enlarged_voi`: organ activity collected from a neighbour-aware enlarged
  VOI with a background shell (MIRD Pamphlet 26).
- :mod:`~theradose.imaging.pvc.resolution`: effective (recovery-matched) resolution of a reconstruction,
  measured on the site's IEC phantom, by object size and contrast.
- :mod:`~theradose.imaging.pvc.gtm`: geometric transfer matrix over every listed region, CT tissue-class
  compartments and other uptake (Rousset et al. 1998), responses refined on each object's spill-out.
- :mod:`~theradose.imaging.pvc.voxelwise`: region-based voxel-wise correction (Thomas et al. 2011).
- :mod:`~theradose.imaging.pvc.correction`: both corrected at every time point of a registered study.
"""

from theradose.imaging.pvc.correction import LabelCorrection, PvcResult, correct_study
from theradose.imaging.pvc.enlarged_voi import (
    EnlargedVoi,
    background_sector_sigma_mbq,
    enlarged_voi_label_tacs,
    enlarged_voi_tac,
    enlarged_vois,
)
from theradose.imaging.pvc.recovery import (
    ContrastRecovery,
    RecoveryFunction,
    background_free_recovery,
    background_shell,
    recovery_corrected_tac,
    recovery_label_tacs,
)
from theradose.imaging.pvc.resolution import EffectiveResolution, effective_resolution, measure_spheres
from theradose.imaging.pvc.voxelwise import rbv_image

__all__ = [
    "ContrastRecovery",
    "EffectiveResolution",
    "EnlargedVoi",
    "LabelCorrection",
    "PvcResult",
    "RecoveryFunction",
    "background_free_recovery",
    "background_sector_sigma_mbq",
    "background_shell",
    "correct_study",
    "effective_resolution",
    "enlarged_voi_label_tacs",
    "enlarged_voi_tac",
    "enlarged_vois",
    "measure_spheres",
    "rbv_image",
    "recovery_corrected_tac",
    "recovery_label_tacs",
]
