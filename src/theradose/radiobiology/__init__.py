"""Radiobiology: BED and EQD2 for radionuclide dose rates, tissue parameters, cycles, alpha RBE."""

from theradose.radiobiology.bed import (
    DEFAULT_ALPHA_RBE,
    bed_fractionated_gy,
    bed_gy,
    bed_multiexponential_gy,
    bed_sigma_gy,
    eqd2_gy,
    g_factor,
    g_factor_multiexponential,
    multi_cycle_bed_gy,
    rbe_weighted_dose_gy,
)
from theradose.radiobiology.tissues import TissueParameters, tissue_names, tissue_parameters

__all__ = [
    "DEFAULT_ALPHA_RBE",
    "TissueParameters",
    "bed_fractionated_gy",
    "bed_gy",
    "bed_multiexponential_gy",
    "bed_sigma_gy",
    "eqd2_gy",
    "g_factor",
    "g_factor_multiexponential",
    "multi_cycle_bed_gy",
    "rbe_weighted_dose_gy",
    "tissue_names",
    "tissue_parameters",
]
