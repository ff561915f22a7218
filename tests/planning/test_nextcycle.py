"""Next-cycle activity, limiting organ and stop rules against hand calculations."""

from __future__ import annotations

import json
import math

import pytest

from theradose.errors import InputError
from theradose.planning import (
    Cycle,
    RegionDose,
    TreatmentPlan,
    expected_gy_per_gbq,
    load_plan,
    load_protocol,
    one_sided_z,
    plan_next_cycle,
)

from .conftest import kidney_cycle

# Hand calculation shared by the kidney-limited tests (177Lu-DOTATATE protocol, kidney α/β = 2.6 Gy,
# T_rep = 2.8 h, cycle 1: 7.4 GBq at 1.5 ± 0.15 Gy/GBq, T_eff = 50 h):
#   λ/(μ+λ) = (1/50)/(1/2.8 + 1/50) = 2.8/52.8 = 0.0530303;  k = 0.0530303/2.6 = 0.0203963 /Gy
#   D1 = 11.1 Gy;  BED1 = 11.1 (1 + 11.1 k) = 13.6130 Gy
#   z(95 %) = 1.644854;  g_u = 1.5 + 1.644854 × 0.15 = 1.746728 Gy/GBq
# With a risk factor (BED limit 28 Gy, Bodei 2008): headroom H = 14.3870 Gy,
#   D = (sqrt(1 + 4 k H) − 1)/(2k) = 11.6288 Gy → A = 11.6288/1.746728 = 6.6575 GBq (BED-limited).
# Without (BED limit 40 Gy): the 23 Gy absorbed-dose limit binds: A = (23 − 11.1)/1.746728 = 6.8127 GBq.


def test_one_sided_z_95_percent() -> None:
    # standard normal table: Φ⁻¹(0.95) = 1.644854
    assert one_sided_z(0.95) == pytest.approx(1.644854, abs=1e-6)


def test_kidney_limited_patient_with_risk_factor_gets_lower_activity(dotatate_plan, bed) -> None:
    plan = dotatate_plan([kidney_cycle(7400, 1.5, 0.15)], risk_factors=("Hypertension",))
    result = plan_next_cycle(plan, bed_function=bed)
    assert not result.stop
    assert result.limiting_organ == "kidneys"
    assert result.recommended_activity_mbq == pytest.approx(6657.5, abs=0.5)
    assert result.recommended_activity_mbq < plan.protocol.max_activity_mbq.value
    kidneys = result.organs[0]
    assert kidneys.binding_limit == "BED 28 Gy"
    assert kidneys.limit_bed_gy == 28.0
    assert kidneys.delivered_bed_gy == pytest.approx(13.6130, abs=1e-4)
    # at the conservative Gy/GBq the projected cumulative BED lands exactly on the limit
    assert kidneys.projected_bed_upper_gy == pytest.approx(28.0, abs=1e-6)
    assert kidneys.projected_bed_gy is not None and kidneys.projected_bed_gy < 28.0
    assert "kidneys" in result.reasons[0] and "BED 28 Gy" in result.reasons[0]


def test_kidney_without_risk_factor_is_dose_limited(dotatate_plan, bed) -> None:
    plan = dotatate_plan([kidney_cycle(7400, 1.5, 0.15)])
    result = plan_next_cycle(plan, bed_function=bed)
    assert result.recommended_activity_mbq == pytest.approx(6812.7, abs=0.5)
    assert result.organs[0].binding_limit == "absorbed dose 23 Gy"
    assert result.organs[0].limit_bed_gy == 40.0
    assert result.organs[0].projected_dose_upper_gy == pytest.approx(23.0, abs=1e-9)


def test_higher_confidence_gives_lower_activity(dotatate_plan, bed) -> None:
    low = plan_next_cycle(dotatate_plan([kidney_cycle(7400, 1.5, 0.15)], confidence=0.5), bed_function=bed)
    high = plan_next_cycle(dotatate_plan([kidney_cycle(7400, 1.5, 0.15)], confidence=0.99), bed_function=bed)
    # z(0.5) = 0: A = (23 − 11.1)/1.5 = 7.9333 GBq → clipped to 7.4 GBq
    assert low.allowed_activity_mbq == pytest.approx(7933.33, abs=0.01)
    assert low.recommended_activity_mbq == 7400.0
    assert high.recommended_activity_mbq < 6812.7


def test_far_below_limits_gets_protocol_maximum(bed) -> None:
    protocol = load_protocol("psma")
    cycles = (
        Cycle(
            7400,
            (
                RegionDose("Kidney", 0.4, 0.05, 40.0),
                RegionDose("parotids", 0.5, 0.1, 40.0),
                RegionDose("red_marrow", 0.03, 0.01, 40.0),
            ),
        ),
    )
    result = plan_next_cycle(TreatmentPlan(protocol, cycles), bed_function=bed)
    assert not result.stop
    assert result.recommended_activity_mbq == 8140.0  # Pluvicto label 7.4 GBq + 10 %
    assert result.limiting_organ is None
    assert result.allowed_activity_mbq > 8140.0
    assert "protocol maximum" in result.reasons[0]
    # salivary glands: 25 Gy limit, 3.7 Gy given; limit-allowed activity = (25 − 3.7)/(0.5 + z 0.1)
    salivary = next(o for o in result.organs if o.organ == "salivary_glands")
    assert salivary.allowed_activity_mbq == pytest.approx(
        (25 - 3.7) / (0.5 + 1.644854 * 0.1) * 1000, rel=1e-6
    )
    # BED with the salivary-gland tissue of the tissue registry (α/β 3 Gy, T_rep 1.5 h), T_eff 40 h:
    # k = 1.5/(41.5 · 3) = 0.0120482 /Gy; 3.7 (1 + 3.7 k) + 4.07 (1 + 4.07 k) = 3.86494 + 4.26958 Gy
    assert salivary.projected_bed_gy == pytest.approx(8.13452, abs=1e-4)
    assert any("liver: no dosimetry" in n for n in result.notes)


def test_limit_reached_stops_with_reason(dotatate_plan, bed) -> None:
    # 2 × 7.4 GBq at 1.6 Gy/GBq = 23.68 Gy ≥ 23 Gy kidney absorbed-dose limit
    cycles = [kidney_cycle(7400, 1.6, 0.1), kidney_cycle(7400, 1.6, 0.1)]
    result = plan_next_cycle(dotatate_plan(cycles), bed_function=bed)
    assert result.stop
    assert result.recommended_activity_mbq == 0.0
    assert any(
        "kidneys: cumulative absorbed dose 23.68 Gy has reached the limit 23 Gy" in r for r in result.reasons
    )


def test_bed_limit_with_risk_factor_stops(dotatate_plan, bed) -> None:
    # T_eff = 20 h: λ/(μ+λ) = 2.8/22.8 = 0.122807, k = 0.122807/2.6 = 0.0472334 /Gy.
    # 1.3 Gy/GBq × 7.4 GBq = 9.62 Gy → BED = 9.62 (1 + 9.62 k) = 13.9913 Gy; two cycles 27.9825 Gy < 28,
    # absorbed dose 19.24 Gy < 23: the remaining BED headroom (0.0175 Gy) allows far less than 3.7 GBq.
    cycles = [kidney_cycle(7400, 1.3, 0.1, 20.0)] * 2
    result = plan_next_cycle(dotatate_plan(cycles, risk_factors=("diabetes",)), bed_function=bed)
    assert result.organs[0].delivered_bed_gy == pytest.approx(27.9825, abs=1e-3)
    assert result.stop and result.recommended_activity_mbq == 0.0
    assert result.reasons[0].startswith("kidneys: the largest activity within its BED 28 Gy limit")
    assert "below the protocol minimum 3700 MBq" in result.reasons[0]
    # without the risk factor the 40 Gy BED limit leaves room; absorbed dose (23 Gy) binds:
    # A = (23 − 19.24)/(1.3 + 1.644854 × 0.1) = 2.5667 GBq < 3.7 GBq → also stops, on the dose limit
    no_rf = plan_next_cycle(dotatate_plan(cycles), bed_function=bed)
    assert no_rf.allowed_activity_mbq == pytest.approx(3.76 / 1.4644854 * 1000, rel=1e-6)
    assert "absorbed dose 23 Gy limit" in no_rf.reasons[0]


def test_bed_limit_reached_stops_with_reason(dotatate_plan, bed) -> None:
    # 1.35 × 7.4 = 9.99 Gy → BED = 9.99 (1 + 9.99 × 0.0472334) = 14.7040 Gy; two cycles 29.408 Gy ≥ 28
    cycles = [kidney_cycle(7400, 1.35, 0.1, 20.0)] * 2
    result = plan_next_cycle(dotatate_plan(cycles, risk_factors=("hypertension",)), bed_function=bed)
    assert result.stop
    assert result.reasons[0].startswith("kidneys: cumulative BED 29.41 Gy has reached the limit 28 Gy (Bodei")


def test_max_cycles_and_response_stop(dotatate_plan, bed) -> None:
    cycles = [kidney_cycle(7400, 0.5, 0.05)] * 4
    result = plan_next_cycle(dotatate_plan(cycles), bed_function=bed)
    assert result.stop and "4 cycles given: the protocol allows 4" in result.reasons[0]
    progressed = plan_next_cycle(dotatate_plan(cycles[:2], response="progressive_disease"), bed_function=bed)
    assert progressed.stop and progressed.reasons[0].startswith("response progressive disease")
    stable = plan_next_cycle(dotatate_plan(cycles[:2], response="stable_disease"), bed_function=bed)
    assert not stable.stop


def test_tumour_target_reached_stops(dotatate_plan, bed) -> None:
    tumour = RegionDose("lesion", 7.0, 1.0, 80.0, kind="tumour")
    cycles = [kidney_cycle(7400, 0.5, 0.05, tumour=tumour)] * 2  # 2 × 51.8 Gy = 103.6 Gy ≥ 100 Gy target
    result = plan_next_cycle(dotatate_plan(cycles), bed_function=bed)
    assert result.stop
    assert "tumour target reached" in result.reasons[0]
    one = plan_next_cycle(dotatate_plan(cycles[:1]), bed_function=bed)
    assert not one.stop
    t = one.tumours[0]
    assert t.delivered_dose_gy == pytest.approx(51.8)
    # next cycle at 7.4 GBq: 51.8 Gy; tumour α/β 10 Gy, T_rep 1.5 h, T_eff 80 h:
    # λ/(μ+λ) = 1.5/81.5 = 0.0184049; BED = 51.8 (1 + 51.8 × 0.0184049 / 10) = 56.7384 Gy
    assert t.next_cycle_bed_gy == pytest.approx(56.7384, abs=1e-3)


def test_inverse_variance_estimate_hand_calculation() -> None:
    # g = 0.5 ± 0.05 and 0.7 ± 0.1: weights 400 and 100 → mean (200 + 70)/500 = 0.54, σ = 1/sqrt(500)
    measurements = [RegionDose("k", 0.5, 0.05, 40.0), RegionDose("k", 0.7, 0.1, 60.0)]
    est = expected_gy_per_gbq(measurements, estimate="inverse_variance")
    assert est.dose_gy_per_gbq == pytest.approx(0.54)
    assert est.sigma_gy_per_gbq == pytest.approx(1 / math.sqrt(500))
    assert est.effective_half_life_h == 60.0
    last = expected_gy_per_gbq(measurements, estimate="last")
    assert (last.dose_gy_per_gbq, last.sigma_gy_per_gbq) == (0.7, 0.1)
    with pytest.raises(InputError, match="every sigma > 0"):
        expected_gy_per_gbq(
            [RegionDose("k", 0.5, 0.0), RegionDose("k", 0.6, 0.1)], estimate="inverse_variance"
        )


def test_missing_measurement_is_filled_and_noted(dotatate_plan, bed) -> None:
    marrow = RegionDose("bone_marrow", 0.04, 0.01, 40.0)
    cycles = [kidney_cycle(7400, 0.5, 0.05, marrow=marrow), kidney_cycle(7000, 0.5, 0.05)]
    result = plan_next_cycle(dotatate_plan(cycles), bed_function=bed)
    marrow_out = next(o for o in result.organs if o.organ == "red_marrow")
    assert marrow_out.delivered_dose_gy == pytest.approx(0.04 * 14.4)
    assert any("red_marrow: not measured in cycle(s) 2" in n for n in result.notes)


def test_first_cycle_gets_standard_activity(dotatate_plan, bed) -> None:
    result = plan_next_cycle(dotatate_plan([]), bed_function=bed)
    assert result.recommended_activity_mbq == 7400.0
    assert result.cycle_number == 1 and not result.stop


def test_missing_half_life_for_bed_is_an_input_error(dotatate_plan, bed) -> None:
    cycles = [Cycle(7400, (RegionDose("kidneys", 0.5, 0.05, None),))]
    with pytest.raises(InputError, match="effective_half_life_h is missing for organ 'kidneys'"):
        plan_next_cycle(dotatate_plan(cycles), bed_function=bed)


def test_plan_file_with_doses_json(tmp_path, bed) -> None:
    (tmp_path / "c1").mkdir()
    doses = {
        "administered_activity_mbq": 7400.0,
        "regions": [
            {"name": "kidneys", "dose_gy": 3.7, "dose_sigma_gy": 0.37, "effective_half_life_h": 50.0},
            {"name": "lesion_1", "kind": "tumour", "dose_gy_per_gbq": 4.0, "dose_sigma_gy_per_gbq": 0.8},
        ],
    }
    (tmp_path / "c1" / "doses.json").write_text(json.dumps(doses))
    (tmp_path / "PLAN.toml").write_text(
        'protocol = "dotatate"\nconfidence = 0.9\n[patient]\nrisk_factors = ["diabetes"]\n'
        '[[cycles]]\ndoses_json = "c1/doses.json"\n'
    )
    plan = load_plan(tmp_path / "PLAN.toml")
    assert plan.cycles[0].administered_activity_mbq == 7400.0
    assert plan.cycles[0].regions[0].dose_gy_per_gbq == pytest.approx(0.5)  # 3.7 Gy / 7.4 GBq
    assert plan.cycles[0].regions[0].dose_sigma_gy_per_gbq == pytest.approx(0.05)
    assert plan.risk_factors == ("diabetes",) and plan.confidence == 0.9


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('protocol = "nope"\n', "neither a shipped protocol"),
        ('protocol = "dotatate"\ncolour = 1\n', "colour is not a plan key"),
        ('protocol = "dotatate"\nconfidence = 1.2\n', "confidence must be in"),
        (
            'protocol = "dotatate"\n[[cycles]]\nadministered_activity_mbq = 7400\n',
            "needs doses_json or regions",
        ),
        (
            'protocol = "dotatate"\n[[cycles]]\nadministered_activity_mbq = 7400\n'
            'regions = [{ name = "kidneys", dose_gy_per_gbq = 0.5 }]\n',
            "needs dose_sigma_gy_per_gbq or dose_sigma_gy",
        ),
        (
            'protocol = "dotatate"\n[[cycles]]\nadministered_activity_mbq = 7400\n'
            'regions = [{ name = "kidneys", dose_gy_per_gbq = 0.5, dose_gy = 5.0, dose_sigma_gy = 0.5 }]\n',
            "disagrees with dose_gy_per_gbq",
        ),
        ('protocol = "dotatate"\n[response]\nstatus = "cured"\n', "response must be one of"),
        ("protocol = ", "not valid TOML"),
        (
            'protocol = "dotatate"\n[[cycles]]\nactivity_mbq = 7400\n',
            r"cycles\[0\].activity_mbq is not a cycle key",
        ),
    ],
)
def test_plan_file_errors_name_the_key(tmp_path, content: str, message: str) -> None:
    path = tmp_path / "PLAN.toml"
    path.write_text(content)
    with pytest.raises(InputError, match=message):
        load_plan(path)


def test_doses_json_activity_mismatch(tmp_path) -> None:
    (tmp_path / "d.json").write_text(
        json.dumps(
            {
                "administered_activity_mbq": 7000,
                "regions": [{"name": "k", "dose_gy_per_gbq": 1, "dose_sigma_gy_per_gbq": 0.1}],
            }
        )
    )
    (tmp_path / "p.toml").write_text(
        'protocol = "psma"\n[[cycles]]\nadministered_activity_mbq = 7400\ndoses_json = "d.json"\n'
    )
    with pytest.raises(InputError, match="disagrees with 7000"):
        load_plan(tmp_path / "p.toml")


def test_tumour_without_half_life_reports_dose_only(dotatate_plan, bed) -> None:
    tumour = RegionDose("lesion", 4.0, 1.0, None, kind="tumour")
    result = plan_next_cycle(dotatate_plan([kidney_cycle(7400, 0.5, 0.05, tumour=tumour)]), bed_function=bed)
    assert result.tumours[0].next_cycle_bed_gy is None
    assert result.tumours[0].projected_dose_gy == pytest.approx(4.0 * 7.4 * 2)
    assert any("tumour lesion: effective half-life missing" in n for n in result.notes)


def test_shipped_example_plan_runs(bed) -> None:
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "examples" / "planning" / "PLAN.toml"
    plan = load_plan(example)
    assert plan.cycles[0].administered_activity_mbq == 7400.0  # from cycle1/doses.json
    assert plan.cycles[0].regions[0].dose_gy_per_gbq == pytest.approx(0.6)  # 4.44 Gy / 7.4 GBq
    result = plan_next_cycle(plan, bed_function=bed)
    assert not result.stop
    assert result.recommended_activity_mbq == 7400.0  # far below limits: protocol maximum
    assert result.limiting_organ is None and result.most_constrained_organ == "kidneys"
    assert result.tumours[0].name == "liver_met_1"
