"""A virtual multicentre dosimetry trial: patients, sites, calibrations and truth.

Independent of :mod:`theradose.phantoms.anatomy` and :mod:`theradose.phantoms.kinetics` (another anatomy
and kinetics generator, so that a correction developed on the demo phantom is scored on patients it was
not tuned to); the SPECT projector and OSEM of :mod:`theradose.phantoms.projector` /
:mod:`theradose.phantoms.osem` are shared (they model the cameras, not the patients).

Modules
-------
anatomy
    Virtual patients from implicit surfaces: deformed, rotated organs with masses drawn within ICRP 89
    ranges, kidney cortex and medulla, vertebral bodies with spongiosa (red marrow) and cortical shell,
    subcutaneous and perirenal fat, lesions in liver, bone and lymph nodes; voxelised with sub-voxel
    partial volume on any grid and in any rigid pose (patient motion).
kinetics
    Per-compartment activity concentrations with inter-patient variability, a blood curve and red marrow
    linked to it by the patient's true marrow-to-blood ratio; analytic time-integrated activities.
sites
    Cameras, reconstructions and DICOM styles of the trial's sites (``data/phantoms/trial_sites.toml``).
simulate
    A patient imaged at a site (with motion between time points), the site's calibration cylinder and IEC
    phantom fills.
truth
    Truth doses from the known activity by local deposition of the electron energy (ICRP 107), computed
    here, never by the dose engines being scored.

The trial is written to disk (DICOM in each site's style, truth) by :mod:`theradose.io.trial`.

Nothing is imported at package import time; import the submodule you need.
"""
