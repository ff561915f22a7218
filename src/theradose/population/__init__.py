"""Population scale: batch dosimetry on Dask, a de-identified registry, dose–effect and outcome models.

Modules
-------
batch
    Run many study files as Dask tasks (LocalCluster or an existing scheduler), resumable by content hash.
registry
    Doses, kinetics, BED and outcomes (outcomes CSV, CTCAE grades and PSA response from laboratory CSVs)
    per study and region in Parquet, with de-identification on export.
analysis
    Dose–effect (logistic with confidence bands), NTCP (Lyman–Kutcher–Burman), survival by dose group
    (Kaplan–Meier, Cox), outcome prediction (cross-validated, held-out metrics, calibration plot).
cohort
    Synthetic cohorts with a known, seeded dose–response, in memory or as study files for batch runs.

Nothing is imported at package import time; import the submodule you need.
"""
