"""Pharmacy domain logic against hand calculations.

Half-lives from ICRP Publication 107 (2008): 177Lu 6.647 d, 68Ge 270.95 d, 68Ga 67.71 min.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from theradose.errors import InputError, NuclideError
from theradose.pharmacy import camera, deliveries, referrals
from theradose.pharmacy.administration import net_administered_activity
from theradose.pharmacy.batches import Batch, QcResult, release_decision
from theradose.pharmacy.decay import activity_at_mbq, canonical_nuclide
from theradose.pharmacy.dispensing import BatchStock, InsufficientStockError, dispense
from theradose.pharmacy.patients import check_pseudonym, new_pseudonym
from theradose.pharmacy.prescriptions import WrittenDirective
from theradose.pharmacy.regulatory import check_dosage

T0 = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
LU_T_HALF = timedelta(days=6.647)


def _batch(**kw) -> Batch:
    args = {
        "product": "[177Lu]Lu-PSMA-617",
        "nuclide": "Lu-177",
        "lot": "L1",
        "activity_mbq": 30000.0,
        "volume_ml": 30.0,
        "reference_time": T0,
        "expiry_time": T0 + timedelta(days=9),
    }
    args.update(kw)
    return Batch(**args)


def test_decay_one_half_life_and_back() -> None:
    assert math.isclose(
        activity_at_mbq(1000.0, "Lu-177", from_time=T0, to_time=T0 + LU_T_HALF), 500.0, rel_tol=1e-9
    )
    assert math.isclose(
        activity_at_mbq(1000.0, "177Lu", from_time=T0 + LU_T_HALF, to_time=T0), 2000.0, rel_tol=1e-9
    )
    # 7 days: 2^(-168 / 159.528) by hand = 0.48183...
    expected = 1000.0 * 2.0 ** (-168.0 / (6.647 * 24.0))
    assert math.isclose(
        activity_at_mbq(1000.0, "Lu-177", from_time=T0, to_time=T0 + timedelta(days=7)), expected
    )
    assert canonical_nuclide("lu177") == "Lu-177"
    with pytest.raises(NuclideError):
        canonical_nuclide("Lu-999")
    with pytest.raises(InputError, match="timezone-aware"):
        activity_at_mbq(1.0, "Lu-177", from_time=datetime(2026, 1, 1), to_time=T0)
    with pytest.raises(InputError, match="half-lives"):
        activity_at_mbq(1.0, "Ga-68", from_time=T0, to_time=T0 + timedelta(days=3650))


def test_qc_limits_and_release() -> None:
    assert QcResult("radiochemical_purity", 95.0, "%", 95.0).passed  # inclusive limit
    assert not QcResult("radiochemical_purity", 94.9, "%", 95.0).passed
    assert not QcResult("ph", 7.2, "pH", 4.5, 7.0).passed
    with pytest.raises(InputError, match="lower_limit or upper_limit"):
        QcResult("appearance", 1.0, "")
    batch = _batch()
    good = [QcResult("radiochemical_purity", 98.0, "%", 95.0), QcResult("ph", 5.0, "pH", 4.5, 7.0)]
    assert release_decision(batch, good, decision_time=T0).released
    bad = release_decision(batch, [good[0]], decision_time=T0 + timedelta(days=10))
    assert not bad.released and bad.missing_tests == ("ph",)
    assert any("expired" in r for r in bad.reasons)
    retest = [QcResult("radiochemical_purity", 90.0, "%", 95.0), *good]  # later result supersedes
    assert release_decision(batch, retest, decision_time=T0).released
    with pytest.raises(InputError, match="expiry_time"):
        _batch(expiry_time=T0)


def test_dispense_by_hand() -> None:
    batch = _batch()
    stock = BatchStock.full(batch)
    # At one half-life the concentration is 500 MBq/mL: 7400 MBq needs 14.8 mL; drawn at T0 the
    # syringe holds 14.8 mL x 1000 MBq/mL = 14800 MBq.
    result = dispense(batch, stock, activity_mbq=7400.0, planned_time=T0 + LU_T_HALF, draw_time=T0)
    assert math.isclose(result.volume_ml, 14.8, rel_tol=1e-12)
    assert math.isclose(result.activity_at_draw_mbq, 14800.0, rel_tol=1e-12)
    assert math.isclose(result.activity_at_planned_mbq, 7400.0, rel_tol=1e-12)
    assert math.isclose(result.remaining.remaining_volume_ml, 15.2, rel_tol=1e-12)
    assert math.isclose(result.remaining.remaining_activity_ref_mbq, 15200.0, rel_tol=1e-12)
    second = dispense(batch, result.remaining, activity_mbq=7400.0, planned_time=T0 + LU_T_HALF, draw_time=T0)
    assert math.isclose(second.remaining.remaining_volume_ml, 0.4, rel_tol=1e-9)
    with pytest.raises(InsufficientStockError, match="holds"):
        dispense(batch, second.remaining, activity_mbq=7400.0, planned_time=T0 + LU_T_HALF, draw_time=T0)
    with pytest.raises(InputError, match="expiry"):
        dispense(batch, stock, activity_mbq=100.0, planned_time=T0 + timedelta(days=10), draw_time=T0)
    with pytest.raises(InputError, match="draw_time"):
        dispense(batch, stock, activity_mbq=100.0, planned_time=T0, draw_time=T0 + timedelta(hours=1))


def test_net_administered_activity_by_hand() -> None:
    # 8000 MBq one half-life before injection -> 4000; 100 MBq one half-life after -> 200; net 3800.
    inj = T0 + LU_T_HALF
    result = net_administered_activity(
        "Lu-177",
        syringe_activity_mbq=8000.0,
        syringe_measured_at=T0,
        residual_activity_mbq=100.0,
        residual_measured_at=inj + LU_T_HALF,
        injection_time=inj,
    )
    assert math.isclose(result.syringe_at_injection_mbq, 4000.0, rel_tol=1e-12)
    assert math.isclose(result.residual_at_injection_mbq, 200.0, rel_tol=1e-12)
    assert math.isclose(result.net_activity_mbq, 3800.0, rel_tol=1e-12)
    with pytest.raises(InputError, match="not less than"):
        net_administered_activity(
            "Lu-177",
            syringe_activity_mbq=100.0,
            syringe_measured_at=T0,
            residual_activity_mbq=100.0,
            residual_measured_at=T0,
            injection_time=T0,
        )
    with pytest.raises(InputError, match="route"):
        net_administered_activity(
            "Lu-177",
            syringe_activity_mbq=100.0,
            syringe_measured_at=T0,
            residual_activity_mbq=1.0,
            residual_measured_at=T0,
            injection_time=T0,
            route="nasal",
        )  # type: ignore[arg-type]


def test_dosage_check_10cfr3563() -> None:
    assert check_dosage(8880.0, 7400.0).within_limits  # exactly +20 %
    assert not check_dosage(8881.0, 7400.0).within_limits
    assert check_dosage(5920.0, 7400.0).within_limits  # exactly -20 %
    low = check_dosage(5900.0, 7400.0)
    assert not low.within_limits and math.isclose(low.deviation_fraction, -1500.0 / 7400.0)
    assert check_dosage(7400.0 * 1.08, 7400.0, tolerance_fraction=0.1).within_limits


def test_camera_calibration_history() -> None:
    cal = camera.CameraCalibration("cam", "Lu-177", 10.0, T0, (1.0, 10.0), (0.4, 0.8))
    assert math.isclose(cal.recovery_at(math.sqrt(10.0)), 0.6)  # halfway in log-volume
    assert cal.recovery_at(0.1) == 0.4 and cal.recovery_at(100.0) == 0.8
    later = camera.CameraCalibration("cam", "Lu-177", 10.6, T0 + timedelta(days=90))
    assert camera.calibration_in_force([cal, later], T0 + timedelta(days=30)) is cal
    assert camera.calibration_in_force([cal, later], T0 + timedelta(days=91)) is later
    trend = camera.sensitivity_trend([later, cal])
    assert trend.change_fraction[0] is None and math.isclose(trend.change_fraction[1], 0.06)
    assert trend.flagged == (False, True)
    with pytest.raises(InputError, match="increasing"):
        camera.CameraCalibration("cam", "Lu-177", 10.0, T0, (10.0, 1.0), (0.8, 0.4))


def test_generator_ingrowth() -> None:
    gen = deliveries.Generator("Ge-68", "Ga-68", "G1", 1850.0, T0)
    # Bateman with lambda_p << lambda_d: after one Ga-68 half-life the daughter is ~50 % of the parent;
    # after 10 it is in transient equilibrium, A_d = A_p * lambda_d / (lambda_d - lambda_p).
    lam_p = math.log(2) / (270.95 * 24)
    lam_d = math.log(2) / (67.71 / 60)
    t1 = T0 + timedelta(minutes=67.71)
    expected = (
        gen.parent_activity_at_mbq(t1)
        * lam_d
        / (lam_d - lam_p)
        * (1 - math.exp(-(lam_d - lam_p) * 67.71 / 60))
    )
    got = deliveries.daughter_activity_mbq(gen, last_elution=T0, at_time=t1)
    assert math.isclose(got, expected, rel_tol=1e-3)
    assert math.isclose(got / gen.parent_activity_at_mbq(t1), 0.5, rel_tol=2e-3)
    t10 = T0 + timedelta(minutes=677.1)
    ratio = deliveries.daughter_activity_mbq(gen, last_elution=T0, at_time=t10) / gen.parent_activity_at_mbq(
        t10
    )
    assert math.isclose(ratio, (1 - 2.0**-10) * lam_d / (lam_d - lam_p), rel_tol=1e-3)
    with pytest.raises(InputError, match="shorter-lived"):
        deliveries.daughter_activity_mbq(
            deliveries.Generator("Ga-68", "Ge-68", "X", 1.0, T0), last_elution=T0, at_time=t1
        )


def test_referral_workflow() -> None:
    a = referrals.Referral("PT-0000000001", "Dr A", "mCRPC", "negative", T0)
    b = referrals.Referral("PT-0000000002", "Dr B", "mCRPC", "positive", T0 + timedelta(days=2))
    c = referrals.Referral("PT-0000000003", "Dr C", "NET G2", "positive", T0 + timedelta(days=1))
    assert [r.patient_pseudonym for r in referrals.worklist([a, b, c])] == [
        "PT-0000000003",
        "PT-0000000002",
        "PT-0000000001",
    ]
    accepted = referrals.advance(c, "accepted")
    assert referrals.advance(referrals.advance(accepted, "scheduled"), "treated").status == "treated"
    with pytest.raises(InputError, match="cannot change"):
        referrals.advance(c, "treated")
    done = referrals.advance(referrals.advance(accepted, "scheduled"), "treated")
    assert referrals.worklist([done]) == []


def test_written_directive_and_pseudonyms() -> None:
    wd = WrittenDirective(
        "PT-0000000001",
        "[177Lu]Lu-PSMA-617",
        "Lu-177",
        7400.0,
        "intravenous",
        "dr",
        T0,
        plan_id="P1",
        cycle=2,
    )
    assert wd.cycle == 2
    with pytest.raises(InputError, match="cycle"):
        WrittenDirective("PT-0000000001", "x", "Lu-177", 7400.0, "intravenous", "dr", T0, cycle=0)
    names = {new_pseudonym() for _ in range(200)}
    assert len(names) == 200 and all(check_pseudonym(n) == n for n in names)
    with pytest.raises(InputError):
        check_pseudonym("PT-IIIIIIIIII")  # I is not Crockford base32
