"""Calibration and QA: dose calibrators, SPECT calibration, recovery, dead time, harmonisation."""
