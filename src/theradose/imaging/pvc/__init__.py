"""Partial-volume correction of quantitative SPECT.

One module per method; this list is the package's public API (add a method as a module here and one line
per public name below):

- :mod:`~theradose.imaging.pvc.recovery`: recovery coefficients from phantom spheres, with the
  background's spill-in removed and contrast-dependent curves (tumours and small structures).
- :mod:`~theradose.imaging.pvc.enlarged_voi`: organ activity collected from a neighbour-aware enlarged
  VOI with a background shell (MIRD Pamphlet 26).
"""

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

__all__ = [
    "ContrastRecovery",
    "EnlargedVoi",
    "RecoveryFunction",
    "background_free_recovery",
    "background_sector_sigma_mbq",
    "background_shell",
    "enlarged_voi_label_tacs",
    "enlarged_voi_tac",
    "enlarged_vois",
    "recovery_corrected_tac",
    "recovery_label_tacs",
]
