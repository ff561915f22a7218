"""eGFR, creatinine clearance, PSA response, creatinine trend and pre-cycle decisions."""

from datetime import date, timedelta

import pytest

from theradose.planning.protocols import load_protocol
from theradose.safety.labs import LabValue
from theradose.safety.markers import creatinine_trend_alert, psa_response
from theradose.safety.precycle import check_cycle
from theradose.safety.renal import cockcroft_gault_ml_min, egfr_ckd_epi_2021

D0 = date(2026, 1, 5)
#: Each shipped protocol's pre-cycle rule file, as its protocol names it.
RULES = {name: load_protocol(name).precycle_rules for name in ("psma", "dotatate")}


def test_ckd_epi_2021_hand_calculations() -> None:
    """Inker et al. 2021: eGFR = 142·min(Scr/κ,1)^α·max(Scr/κ,1)^−1.2·0.9938^age·1.012[F].
    Man, 60 y, Scr 1.0: 142 · (1/0.9)^−1.2 · 0.9938^60 = 142 · 0.88124 · 0.68858 = 86.2.
    Woman, 50 y, Scr 0.6: 142 · (0.6/0.7)^−0.241 · 0.9938^50 · 1.012
    = 142 · 1.03783 · 0.73286 · 1.012 = 109.3."""
    assert egfr_ckd_epi_2021(1.0, age_y=60, sex="male") == pytest.approx(86.2, abs=0.1)
    assert egfr_ckd_epi_2021(0.6, age_y=50, sex="female") == pytest.approx(109.3, abs=0.1)


def test_cockcroft_gault_hand_calculation() -> None:
    """(140 − 70) · 80 / (72 · 1.2) = 64.8 mL/min; woman × 0.85 = 55.1."""
    assert cockcroft_gault_ml_min(1.2, age_y=70, sex="male", weight_kg=80) == pytest.approx(64.81, abs=0.01)
    assert cockcroft_gault_ml_min(1.2, age_y=70, sex="female", weight_kg=80) == pytest.approx(55.09, abs=0.01)


def test_psa_confirmed_response() -> None:
    """PCWG3: −60 % at week 6, still −70 % at week 12 (≥ 3 weeks later) → response."""
    days = [D0, D0 + timedelta(weeks=6), D0 + timedelta(weeks=12)]
    result = psa_response(days, [40.0, 16.0, 12.0])
    assert result.category == "response"
    assert result.best_change_percent == pytest.approx(-70.0)


def test_psa_unconfirmed_and_progression() -> None:
    assert psa_response([D0, D0 + timedelta(weeks=6)], [40.0, 18.0]).category == "unconfirmed"
    days = [D0 + timedelta(weeks=w) for w in (0, 6, 12, 16)]
    # nadir 10, then 13 (+30 %, +3 ng/mL) confirmed 4 weeks later at 15 → progression
    assert psa_response(days, [20.0, 10.0, 13.0, 15.0]).category == "progression"
    # +30 % but only +1.5 ng/mL above a nadir of 5: not progression
    assert psa_response(days, [8.0, 5.0, 6.5, 6.6]).category == "stable"


def test_creatinine_trend_alert_before_grade_change() -> None:
    days = [D0 + timedelta(weeks=6 * i) for i in range(4)]
    alert = creatinine_trend_alert(days, [0.8, 0.85, 0.92, 1.0])  # +25 %, still below ULN (grade 0)
    assert alert is not None and alert.rise_percent == pytest.approx(25.0)
    assert creatinine_trend_alert(days, [0.8, 0.9, 0.85, 1.0]) is None  # not monotonic
    assert creatinine_trend_alert(days, [0.8, 0.82, 0.84, 0.85]) is None  # < 20 %


def lab(test: str, value: float, days: int = 0, **kw: float) -> LabValue:
    units = {"platelets": "10^9/L", "hemoglobin": "g/dL", "creatinine": "mg/dL", "neutrophils": "10^9/L"}
    return LabValue(test, value, units.get(test, "grade"), D0 + timedelta(days=days), **kw)


def test_psma_go() -> None:
    result = check_cycle(
        [lab("platelets", 200), lab("hemoglobin", 13.8), lab("creatinine", 0.9)], rules_path=RULES["psma"]
    )
    assert result.decision == "go" and result.recommended_activity_mbq == pytest.approx(7400.0)


def test_psma_grade_2_platelets_delays_without_reduction() -> None:
    result = check_cycle([lab("platelets", 60)], rules_path=RULES["psma"])
    assert result.decision == "delay" and result.activity_factor == 1.0
    assert result.rules_fired == ("myelosuppression_grade_2",)


def test_psma_grade_3_reduces_by_20_percent_and_stops_on_recurrence() -> None:
    """Pluvicto USPI Table 1: grade ≥ 3 → withhold, reduce to 5.9 GBq; recurrence → discontinue."""
    result = check_cycle([lab("platelets", 40)], rules_path=RULES["psma"])
    assert result.decision == "delay"
    assert result.recommended_activity_mbq == pytest.approx(5920.0)
    again = check_cycle(
        [lab("platelets", 40)], rules_path=RULES["psma"], previously_reduced_for=["myelosuppression_grade_3"]
    )
    assert again.decision == "stop"


def test_psma_creatinine_rise_with_clearance_fall() -> None:
    """Creatinine 0.8 → 1.4 mg/dL (+75 %, grade 1 vs ULN 1.3 but grade 2 vs 1.5× baseline): the grade-2
    rule withholds; clearance falls 43 % (≥ 40 %) so the 20 % reduction applies too."""
    labs = [lab("creatinine", 0.8), lab("creatinine", 1.4, days=42)]
    result = check_cycle(labs, rules_path=RULES["psma"], sex="male", age_y=70, weight_kg=80)
    assert result.decision == "delay"
    assert set(result.rules_fired) == {"creatinine_grade_2", "creatinine_rise_40"}
    assert result.activity_factor == pytest.approx(0.8)


def test_dotatate_grade_2_thrombocytopenia_halves_dose() -> None:
    """Lutathera USPI Table 2: grade ≥ 2 thrombocytopenia → withhold, resume at 3.7 GBq."""
    result = check_cycle([lab("platelets", 70)], rules_path=RULES["dotatate"])
    assert result.decision == "delay" and result.recommended_activity_mbq == pytest.approx(3700.0)


def test_dotatate_low_clearance() -> None:
    result = check_cycle(
        [lab("creatinine", 1.6)], rules_path=RULES["dotatate"], sex="female", age_y=75, weight_kg=55
    )
    # CrCl = (140 − 75)·55/(72·1.6)·0.85 = 26.4 mL/min < 40
    assert "crcl_below_40" in result.rules_fired


def test_clearance_rule_needs_patient_data() -> None:
    result = check_cycle([lab("creatinine", 1.0)], rules_path=RULES["dotatate"])
    assert any("give sex, age and weight" in r for r in result.reasons)


def test_xerostomia_grade_3() -> None:
    result = check_cycle([lab("xerostomia", 3)], rules_path=RULES["psma"])
    assert result.decision == "delay" and result.activity_factor == pytest.approx(0.8)
