"""The main navigation of the pages: (path, label, permission), in menu order."""

from __future__ import annotations

NAV: tuple[tuple[str, str, str], ...] = (
    ("/ui/worklist", "Worklist", "prescriptions:read"),
    ("/ui/patients", "Patients", "patients:read"),
    ("/ui/batches", "Batches", "batches:read"),
    ("/ui/dispense", "Dispense", "dispense"),
    ("/ui/qa", "Calibrator QA", "calibrators:read"),
    ("/ui/waste", "Waste", "waste:read"),
    ("/ui/cameras", "SPECT calibration", "cameras:read"),
    ("/ui/dosimetry", "Dosimetry review", "dosimetry:read"),
    ("/ui/audit", "Audit log", "audit:read"),
)
