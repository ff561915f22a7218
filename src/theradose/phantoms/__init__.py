"""Digital phantoms with known truth: virtual theranostic patients, SPECT simulation, QA phantoms.

Modules
-------
anatomy
    Stylised adult anatomy (Cristy–Eckerman-like) on any grid: labels, CT (HU), density, tumours.
kinetics
    Per-organ time–activity models of 177Lu-PSMA-617 and 177Lu-DOTATATE with log-normal inter-patient
    variability; truth activity maps, analytic TIA per voxel and region, truth absorbed dose.
projector, spect, osem
    Rotation-based SPECT system model at 208 keV (attenuation, distance-dependent collimator response,
    optional scatter, sensitivity, Poisson noise), planar conjugate views, and OSEM reconstruction with
    the same system model.
physical
    NEMA IEC body phantom and uniform cylinder for QA.
study
    A serial SPECT/CT study of one virtual patient. Its output as a clinic would have it (DICOM CT +
    quantitative NM per time point) with the truth alongside (NIfTI + ``truth.json``) is written by
    :mod:`theradose.io.phantoms` (the I/O edge: the phantoms import nothing from :mod:`theradose.io`).

Nothing is imported at package import time; import the submodule you need.
"""
