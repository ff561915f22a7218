"""Partial-volume correction of quantitative SPECT from the imaging system's measured resolution.

Modules
-------
resolution
    Effective (recovery-matched) resolution of a reconstruction, measured on the site's IEC phantom.
gtm
    Geometric transfer matrix over listed regions and CT tissue-class compartments (Rousset et al. 1998).
voxelwise
    Region-based voxel-wise correction (Thomas et al. 2011).

Nothing is imported at package import time; import the submodule you need.
"""
