"""Side-effect monitoring: laboratory values and symptoms, CTCAE v5.0 grading, pre-cycle rules, markers.

Pure logic; the traceability service stores the records and the CLI reads them from CSV.
"""

from theradose.safety.ctcae import Grade, grade_lab, worst_grades_by_cycle
from theradose.safety.labs import LabValue, Sex, lab_catalogue, to_canonical
from theradose.safety.markers import PsaResponse, creatinine_trend_alert, psa_response
from theradose.safety.precycle import CycleDecision, check_cycle
from theradose.safety.renal import cockcroft_gault_ml_min, egfr_ckd_epi_2021

__all__ = [
    "CycleDecision",
    "Grade",
    "LabValue",
    "PsaResponse",
    "Sex",
    "check_cycle",
    "cockcroft_gault_ml_min",
    "creatinine_trend_alert",
    "egfr_ckd_epi_2021",
    "grade_lab",
    "lab_catalogue",
    "psa_response",
    "to_canonical",
    "worst_grades_by_cycle",
]
