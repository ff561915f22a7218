"""CTCAE v5.0 grading at every boundary (NCI CTCAE v5.0, 2017: Investigations; Blood and lymphatic
system disorders). Values exactly on a boundary take the lower grade where CTCAE writes "<" or ">"."""

from datetime import date

import pytest

from theradose.errors import InputError
from theradose.safety.ctcae import grade_lab
from theradose.safety.labs import LabValue, to_canonical

D = date(2026, 5, 1)


def g(test: str, value: float, unit: str, **kw: float) -> int:
    return grade_lab(LabValue(test, to_canonical(test, value, unit), unit, D, **kw), sex="male").grade


# Anemia: <LLN–10.0 g/dL grade 1; <10.0–8.0 grade 2; <8.0 grade 3 (LLN 13.5 g/dL for men, default)
@pytest.mark.parametrize(("hb", "grade"), [(13.5, 0), (13.4, 1), (10.0, 1), (9.99, 2), (8.0, 2), (7.99, 3)])
def test_hemoglobin(hb: float, grade: int) -> None:
    assert g("hemoglobin", hb, "g/dL") == grade


# Platelets: <LLN–75; <75–50; <50–25; <25 (×10^9/L)
@pytest.mark.parametrize(
    ("plt", "grade"), [(150, 0), (149, 1), (75, 1), (74.9, 2), (50, 2), (49.9, 3), (25, 3), (24.9, 4)]
)
def test_platelets(plt: float, grade: int) -> None:
    assert g("platelets", plt, "10^9/L") == grade


# WBC: <LLN–3.0; <3.0–2.0; <2.0–1.0; <1.0
@pytest.mark.parametrize(
    ("wbc", "grade"), [(4.5, 0), (3.0, 1), (2.99, 2), (2.0, 2), (1.99, 3), (1.0, 3), (0.99, 4)]
)
def test_leukocytes(wbc: float, grade: int) -> None:
    assert g("leukocytes", wbc, "10^9/L") == grade


# Neutrophils: <LLN–1.5; <1.5–1.0; <1.0–0.5; <0.5
@pytest.mark.parametrize(
    ("anc", "grade"), [(1.8, 0), (1.5, 1), (1.49, 2), (1.0, 2), (0.99, 3), (0.5, 3), (0.49, 4)]
)
def test_neutrophils(anc: float, grade: int) -> None:
    assert g("neutrophils", anc, "10^9/L") == grade


# Lymphocytes: <LLN–0.8; <0.8–0.5; <0.5–0.2; <0.2
@pytest.mark.parametrize(
    ("lym", "grade"), [(1.0, 0), (0.8, 1), (0.79, 2), (0.5, 2), (0.49, 3), (0.2, 3), (0.19, 4)]
)
def test_lymphocytes(lym: float, grade: int) -> None:
    assert g("lymphocytes", lym, "10^9/L") == grade


# Creatinine: >ULN–1.5×ULN; >1.5–3.0×ULN; >3.0–6.0×ULN; >6.0×ULN (ULN 1.3 mg/dL men, default)
@pytest.mark.parametrize(
    ("cr", "grade"), [(1.3, 0), (1.31, 1), (1.95, 1), (1.96, 2), (3.9, 2), (3.91, 3), (7.8, 3), (7.81, 4)]
)
def test_creatinine_vs_uln(cr: float, grade: int) -> None:
    assert g("creatinine", cr, "mg/dL") == grade


def test_creatinine_vs_baseline() -> None:
    """Grade 2 also ">1.5–3.0 × baseline", grade 3 ">3.0 × baseline": baseline 0.6, value 1.0 (< ULN)
    is 1.67× baseline → grade 2; 1.9 is 3.17× baseline → grade 3."""
    assert g("creatinine", 1.0, "mg/dL", baseline=0.6) == 2
    assert g("creatinine", 0.9, "mg/dL", baseline=0.6) == 0
    assert g("creatinine", 1.9, "mg/dL", baseline=0.6) == 3


# Chronic kidney disease: eGFR <LLN–60; 59–30; 29–15; <15
@pytest.mark.parametrize(
    ("egfr", "grade"), [(90, 0), (89, 1), (60, 1), (59, 2), (30, 2), (29, 3), (15, 3), (14, 4)]
)
def test_egfr(egfr: float, grade: int) -> None:
    assert g("egfr", egfr, "mL/min/1.73m2") == grade


# ALT, baseline normal: >ULN–3.0×ULN; >3.0–5.0×; >5.0–20.0×; >20.0× (ULN 35 U/L)
@pytest.mark.parametrize(
    ("alt", "grade"), [(35, 0), (36, 1), (105, 1), (106, 2), (175, 2), (176, 3), (700, 3), (701, 4)]
)
def test_alt_baseline_normal(alt: float, grade: int) -> None:
    assert g("alt", alt, "U/L") == grade


def test_alt_baseline_abnormal_uses_baseline_multiples() -> None:
    """Baseline 70 U/L (> ULN): grade 1 is 1.5–3.0 × baseline: 105 → 0, 106 → 1, 211 → 2."""
    assert g("alt", 105, "U/L", baseline=70) == 0
    assert g("alt", 106, "U/L", baseline=70) == 1
    assert g("alt", 211, "U/L", baseline=70) == 2


# Bilirubin, baseline normal: >ULN–1.5×; >1.5–3.0×; >3.0–10.0×; >10.0× (ULN 1.0 mg/dL)
@pytest.mark.parametrize(
    ("bili", "grade"), [(1.0, 0), (1.01, 1), (1.5, 1), (1.51, 2), (3.0, 2), (3.01, 3), (10.0, 3), (10.01, 4)]
)
def test_bilirubin(bili: float, grade: int) -> None:
    assert g("bilirubin", bili, "mg/dL") == grade


# ALP, baseline normal: >ULN–2.5×; >2.5–5.0×; >5.0–20.0×; >20.0× (ULN 120 U/L)
@pytest.mark.parametrize(
    ("alp", "grade"), [(120, 0), (121, 1), (300, 1), (301, 2), (600, 2), (601, 3), (2400, 3), (2401, 4)]
)
def test_alp(alp: float, grade: int) -> None:
    assert g("alp", alp, "U/L") == grade


def test_rule_text_names_threshold() -> None:
    grade = grade_lab(LabValue("platelets", 60.0, "10^9/L", D), sex="female")
    assert grade.grade == 2
    assert "< 75" in grade.rule and "Platelet count decreased" in grade.rule


def test_own_laboratory_limits_override_defaults() -> None:
    assert g("hemoglobin", 13.0, "g/dL", lln=12.5) == 0


@pytest.mark.parametrize(
    ("test", "value", "unit", "canonical"),
    [
        ("hemoglobin", 95.0, "g/L", 9.5),  # 1 g/dL = 10 g/L
        ("hemoglobin", 6.206, "mmol/L", 10.0),  # 1 g/dL = 0.6206 mmol/L (Hb monomer)
        ("creatinine", 88.42, "µmol/L", 1.0),  # 1 mg/dL = 88.42 µmol/L
        ("creatinine", 176.84, "umol/L", 2.0),
        ("bilirubin", 17.1, "µmol/L", 1.0),  # 1 mg/dL = 17.1 µmol/L
        ("platelets", 75000.0, "/mm3", 75.0),  # 1 /mm³ = 1e-3 × 10^9/L
        ("alt", 1.0, "µkat/L", 60.0),  # 1 µkat/L = 60 U/L
    ],
)
def test_unit_conversions(test: str, value: float, unit: str, canonical: float) -> None:
    assert to_canonical(test, value, unit) == pytest.approx(canonical, rel=1e-3)


@pytest.mark.parametrize(
    ("test", "value", "unit", "message"),
    [
        ("hemoglobin", -1.0, "g/dL", "negative"),
        ("hemoglobin", 10.0, "", "unit is missing"),
        ("hemoglobin", 10.0, "mg/L", "not known"),
        ("hemoglobin", 100.0, "g/dL", "implausible"),
        ("potassium", 4.0, "mmol/L", "not known"),
        ("xerostomia", 7, "grade", "grade 0-5"),
    ],
)
def test_implausible_input_rejected(test: str, value: float, unit: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        to_canonical(test, value, unit)
