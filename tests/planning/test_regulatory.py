"""US NRC 10 CFR Part 35 checks at their exact edges.

35.63(d): a dosage may not be used if it differs from the prescribed dosage by MORE THAN 20 percent
(exactly 20 % is allowed). 35.3045(a)(1)(ii): a medical event needs a dose difference of MORE THAN
0.05 Sv EDE / 0.5 Sv organ / 0.5 Sv skin AND a dosage differing by 20 percent OR MORE (exactly 20 %
counts).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from theradose.errors import InputError
from theradose.planning.regulatory import (
    check_dosage,
    check_written_directive,
    detect_medical_event,
    deviation_percent,
    load_rules,
    organ_dose_difference_sv,
)


@pytest.mark.parametrize(
    ("prescribed", "measured", "deviation", "ok"),
    [
        (100.0, 119.99, 19.99, True),
        (100.0, 120.0, 20.0, True),
        (100.0, 120.01, 20.01, False),
        (100.0, 80.01, -19.99, True),
        (100.0, 80.0, -20.0, True),
        (100.0, 79.99, -20.01, False),
        (7400.0, 8880.0, 20.0, True),  # 1.2 × 7400 exactly
        (7400.0, 8880.74, 20.01, False),
        (7400.0, 8879.26, 19.99, True),
    ],
)
def test_dosage_check_edges(prescribed: float, measured: float, deviation: float, ok: bool) -> None:
    result = check_dosage(prescribed, measured)
    assert result.ok is ok
    assert result.deviation_percent == pytest.approx(deviation, abs=1e-12)
    assert "10 CFR 35.63(d)" in result.rule


def test_deviation_is_exact_decimal() -> None:
    # in binary floating point 100 * (120 - 100) / 100 is exact, but (8880 - 7400)/7400*100 need not be
    assert str(deviation_percent(7400.0, 8880.0)) == "20"
    assert str(deviation_percent(100.0, 119.99)) == "19.99"


def test_dosage_outside_prescribed_range_fails() -> None:
    result = check_dosage(7400.0, 7000.0, prescribed_range_mbq=(7200.0, 7600.0))
    assert not result.ok and "outside the prescribed range" in result.message


def test_dosage_check_bad_input() -> None:
    with pytest.raises(InputError, match="prescribed_mbq must be > 0"):
        check_dosage(0.0, 10.0)


@pytest.mark.parametrize(
    ("administered", "is_event"),
    [(119.99, False), (120.0, True), (120.01, True), (80.01, False), (80.0, True), (79.99, True)],
)
def test_medical_event_dosage_edges(administered: float, is_event: bool) -> None:
    result = detect_medical_event(100.0, administered, organ_dose_difference_sv=0.6)
    assert result.is_medical_event is is_event
    if is_event:
        assert result.criteria[0].startswith("10 CFR 35.3045(a)(1)(ii)")


@pytest.mark.parametrize(
    ("kwargs", "is_event"),
    [
        ({"organ_dose_difference_sv": 0.5}, False),  # "more than 0.5 Sv": equal is not enough
        ({"organ_dose_difference_sv": 0.50001}, True),
        ({"effective_dose_difference_sv": 0.05}, False),
        ({"effective_dose_difference_sv": 0.0501}, True),
        ({"skin_dose_difference_sv": 0.5}, False),
        ({"skin_dose_difference_sv": 0.51}, True),
        ({}, False),
    ],
)
def test_medical_event_dose_thresholds(kwargs: dict[str, float], is_event: bool) -> None:
    assert detect_medical_event(7400.0, 10000.0, **kwargs).is_medical_event is is_event


def test_medical_event_needs_both_conditions() -> None:
    # a large dose difference with a dosage within 20 % is not a medical event under (a)(1)
    assert not detect_medical_event(7400.0, 8500.0, organ_dose_difference_sv=2.0).is_medical_event
    # outside the prescribed range counts as the dosage condition
    outside = detect_medical_event(
        7400.0, 7000.0, prescribed_range_mbq=(7200.0, 7600.0), organ_dose_difference_sv=0.6
    )
    assert outside.is_medical_event and "outside the prescribed range" in outside.criteria[0]


def test_wrong_individual_is_medical_event_above_threshold() -> None:
    event = detect_medical_event(7400.0, 7400.0, wrong_individual=True, effective_dose_sv=0.3)
    assert event.is_medical_event and "35.3045(a)(2)" in event.criteria[0]
    assert not detect_medical_event(
        7400.0, 7400.0, wrong_individual=True, effective_dose_sv=0.04
    ).is_medical_event


def _directive() -> dict[str, object]:
    return {
        "patient_name": "Doe^Jane",
        "radioactive_drug": "Lu-177 DOTATATE",
        "dosage_mbq": 7400.0,
        "route_of_administration": "intravenous",
        "authorized_user": "Dr A. User",
        "signed_datetime": datetime(2026, 11, 20, 9, 0, tzinfo=UTC),
    }


def test_written_directive_complete() -> None:
    check = check_written_directive(
        _directive(), administration_datetime=datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
    )
    assert check.ok and check.problems == ()
    assert "35.40" in check.rule


def test_written_directive_missing_fields_and_late_signature() -> None:
    directive = _directive()
    del directive["route_of_administration"]
    directive["dosage_mbq"] = -1
    signed = directive["signed_datetime"]
    assert isinstance(signed, datetime)
    check = check_written_directive(directive, administration_datetime=signed - timedelta(hours=1))
    assert not check.ok
    text = " | ".join(check.problems)
    assert "route_of_administration is missing (10 CFR 35.40(b)(2)" in text
    assert "dosage_mbq must be a positive number" in text
    assert "is after the administration" in text


def test_rules_are_data() -> None:
    rules = load_rules("us_nrc")
    assert rules.dosage_fails_when == "greater_than" and rules.me_dosage_fails_when == "at_least"
    assert rules.me_organ_dose_equivalent_sv == 0.5 and rules.me_effective_dose_equivalent_sv == 0.05
    with pytest.raises(InputError, match="jurisdiction 'eu_xx' is unknown"):
        load_rules("eu_xx")


def test_organ_dose_difference_from_dosimetry() -> None:
    # kidneys 0.6 Gy/GBq, 9.0 instead of 7.4 GBq: 0.6 × 1.6 = 0.96 Sv (w_R = 1) > 0.5 Sv, deviation +21.62 %
    difference = organ_dose_difference_sv(0.6, 7400.0, 9000.0)
    assert difference == pytest.approx(0.96)
    event = detect_medical_event(7400.0, 9000.0, organ_dose_difference_sv=difference)
    assert event.is_medical_event
    assert event.deviation_percent == pytest.approx(1600 / 74)
