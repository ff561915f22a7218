"""The study pipeline: a study file (TOML) in, a dose report and its provenance out.

Modules
-------
spec
    The study file: parse and validate (every check before any computation).
stages
    One small adapter per stage (load, register, masks, kinetics, dose, DVH, BED) over the core packages.
cache
    Content-hash cache of each stage's result.
run
    The orchestrator: :func:`~theradose.pipeline.run.run_study`.
demo
    Virtual-patient demonstration and multi-method benchmark scored against the phantom truth.

Nothing is imported at package import time; import the submodule you need.
"""
